//! Reaching pods over the network from the container runtime's network
//! namespace. Pod addresses live where the runtime's CNI bridge is; when
//! the runtime runs in another namespace than the kubelet (one node
//! namespace per node, as on this machine and in the tests), the kubelet
//! opens its probe and streaming connections in the runtime's namespace,
//! found from the CRI socket's peer process. In the usual setup (same
//! namespace) this is an ordinary connect.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Dialer {
    /// The runtime's namespace, when it is not the kubelet's.
    netns: Option<Arc<File>>,
}

fn inode(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

impl Dialer {
    /// Finds the namespace of the process serving the CRI `socket`.
    pub fn discover(socket: &Path) -> Dialer {
        let Ok(stream) = std::os::unix::net::UnixStream::connect(socket) else {
            return Dialer::default();
        };
        let Ok(cred) = nix::sys::socket::getsockopt(
            &stream.as_fd(),
            nix::sys::socket::sockopt::PeerCredentials,
        ) else {
            return Dialer::default();
        };
        let theirs = format!("/proc/{}/ns/net", cred.pid());
        if inode(&theirs).is_none() || inode(&theirs) == inode("/proc/self/ns/net") {
            return Dialer::default();
        }
        match File::open(&theirs) {
            Ok(f) => {
                tracing::info!(
                    runtime_pid = cred.pid(),
                    "the container runtime runs in another network namespace; pod connections are made from there"
                );
                Dialer {
                    netns: Some(Arc::new(f)),
                }
            }
            Err(_) => Dialer::default(),
        }
    }

    /// A TCP connection to `addr` within `timeout`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<tokio::net::TcpStream> {
        let Some(netns) = self.netns.clone() else {
            return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
            };
        };
        // The socket is created in the namespace of the thread that makes
        // it: a short-lived thread of its own, so no pooled thread is moved.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = (|| -> io::Result<std::net::TcpStream> {
                nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(result);
        });
        let stream = rx
            .await
            .map_err(|_| io::Error::other("the dialing thread died"))??;
        tokio::net::TcpStream::from_std(stream)
    }
}
