//! A TCP relay from a node's network namespace to the machine's loopback:
//! it listens on 127.0.0.1:PORT inside the namespace and connects to
//! 127.0.0.1:PORT outside. Daemons that run inside the node namespace
//! (kube-proxy, cluster-dns, like a real node's host-network daemons)
//! reach the apiserver through it with the same kubeconfig as everyone.
//! Traffic stays on the two loopbacks.

use anyhow::{Context, Result};
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::thread::JoinHandle;

pub struct Relay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A listener bound inside the namespace at `path`; the calling thread
/// goes back to its own namespace afterwards.
pub fn bind_in(path: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    let own = File::open("/proc/thread-self/ns/net").context("opening the own namespace")?;
    let theirs = File::open(path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(theirs.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering {path}"))?;
    let bound = std::net::TcpListener::bind(addr);
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .context("returning to the own namespace")?;
    let listener = bound.with_context(|| format!("binding {addr} in {path}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl Relay {
    /// Relays `127.0.0.1:port` inside `netns` (a /run/netns path) to
    /// `127.0.0.1:port` here.
    pub fn start(netns: &str, port: u16) -> Result<Relay> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let netns = netns.to_string();
        // A thread of its own: the relay outlives any test runtime's
        // blocking, and its outgoing connections are made here, outside.
        let thread = std::thread::spawn(move || {
            let listener = match bind_in(&netns, addr) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                let _ = ready_tx.send(Ok(()));
                loop {
                    let mut inside = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((s, _)) => s,
                            Err(_) => continue,
                        },
                    };
                    tokio::spawn(async move {
                        if let Ok(mut outside) = tokio::net::TcpStream::connect(addr).await {
                            let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                        }
                    });
                }
            });
        });
        ready_rx.recv().context("the relay thread died")??;
        Ok(Relay {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
