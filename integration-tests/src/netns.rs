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

#[derive(Debug)]
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

/// A connection made from inside the namespace at `path`.
pub fn connect_in(path: &str, addr: SocketAddr) -> Result<std::net::TcpStream> {
    let own = File::open("/proc/thread-self/ns/net").context("opening the own namespace")?;
    let theirs = File::open(path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(theirs.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering {path}"))?;
    let connected = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2));
    nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .context("returning to the own namespace")?;
    let stream = connected.with_context(|| format!("connecting to {addr} in {path}"))?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

type Dial = Box<dyn Fn() -> Result<std::net::TcpStream> + Send>;

impl Relay {
    /// Relays `127.0.0.1:port` inside `netns` (a /run/netns path) to
    /// `127.0.0.1:port` here.
    pub fn start(netns: &str, port: u16) -> Result<Relay> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let ns = netns.to_string();
        Relay::run(
            Box::new(move || bind_in(&ns, addr)),
            Box::new(move || {
                let s =
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))?;
                s.set_nonblocking(true)?;
                Ok(s)
            }),
        )
    }

    /// The other way: `127.0.0.1:outside` here reaches `127.0.0.1:inside`
    /// in `netns` (a node's daemons for a scraper on the machine).
    pub fn inward(netns: &str, outside: u16, inside: u16) -> Result<Relay> {
        let here: SocketAddr = ([127, 0, 0, 1], outside).into();
        let there: SocketAddr = ([127, 0, 0, 1], inside).into();
        let ns = netns.to_string();
        Relay::run(
            Box::new(move || {
                let l = std::net::TcpListener::bind(here)?;
                l.set_nonblocking(true)?;
                Ok(l)
            }),
            Box::new(move || connect_in(&ns, there)),
        )
    }

    /// A small TCP load balancer on `127.0.0.1:port` here: each connection
    /// goes to the next of `backends` (loopback ports) that accepts it.
    pub fn balance(port: u16, backends: Vec<u16>) -> Result<Relay> {
        let here: SocketAddr = ([127, 0, 0, 1], port).into();
        let next = std::sync::atomic::AtomicUsize::new(0);
        Relay::run(
            Box::new(move || {
                let l = std::net::TcpListener::bind(here)?;
                l.set_nonblocking(true)?;
                Ok(l)
            }),
            Box::new(move || {
                let start = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for k in 0..backends.len() {
                    let port = backends[(start + k) % backends.len()];
                    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                    if let Ok(s) = std::net::TcpStream::connect_timeout(
                        &addr,
                        std::time::Duration::from_millis(500),
                    ) {
                        s.set_nonblocking(true)?;
                        return Ok(s);
                    }
                }
                anyhow::bail!("no backend of {backends:?} accepts")
            }),
        )
    }

    /// A thread of its own, so the relay outlives any test runtime's
    /// blocking: it listens where `listen` binds and dials with `dial`.
    fn run(
        listen: Box<dyn FnOnce() -> Result<std::net::TcpListener> + Send>,
        dial: Dial,
    ) -> Result<Relay> {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let listener = match listen() {
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
                    let mut accepted = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((s, _)) => s,
                            Err(_) => continue,
                        },
                    };
                    // Dialling blocks for a moment (setns, connect): fine here.
                    let Ok(dialled) = dial() else { continue };
                    let Ok(mut dialled) = tokio::net::TcpStream::from_std(dialled) else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut accepted, &mut dialled).await;
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
