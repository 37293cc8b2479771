//! UDP answers sent from the address the query was sent to. A server bound
//! to 0.0.0.0 otherwise answers from whatever source address the route
//! back picks: on a node with routes to other nodes' pod CIDRs that is not
//! the address the client asked (the node's bridge), and the client drops
//! the answer. CoreDNS (miekg/dns) does the same with IP_PKTINFO.

use nix::libc;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Where a query arrived: the answer goes out from there.
#[derive(Clone, Copy)]
pub enum Arrival {
    V4(libc::in_pktinfo),
    V6(libc::in6_pktinfo),
}

pub struct Socket {
    inner: UdpSocket,
    /// Bound to an unspecified address, so arrivals are tracked.
    wildcard: bool,
}

impl Socket {
    pub fn new(inner: UdpSocket) -> io::Result<Self> {
        let local = inner.local_addr()?;
        let wildcard = local.ip().is_unspecified();
        if wildcard {
            match local {
                SocketAddr::V4(_) => setsockopt(&inner, sockopt::Ipv4PacketInfo, &true)?,
                SocketAddr::V6(_) => setsockopt(&inner, sockopt::Ipv6RecvPacketInfo, &true)?,
            }
        }
        Ok(Socket { inner, wildcard })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// One datagram: its length, sender and (on a wildcard socket) arrival.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<Arrival>)> {
        if !self.wildcard {
            let (n, from) = self.inner.recv_from(buf).await?;
            return Ok((n, from, None));
        }
        let fd = self.inner.as_raw_fd();
        self.inner
            .async_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(&mut *buf)];
                let mut space = nix::cmsg_space!(libc::in6_pktinfo);
                let msg =
                    recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
                let from = msg
                    .address
                    .as_ref()
                    .and_then(socket_addr)
                    .ok_or_else(|| io::Error::other("a datagram without a sender"))?;
                let mut arrival = None;
                for c in msg.cmsgs()? {
                    match c {
                        ControlMessageOwned::Ipv4PacketInfo(i) => arrival = Some(Arrival::V4(i)),
                        ControlMessageOwned::Ipv6PacketInfo(i) => arrival = Some(Arrival::V6(i)),
                        _ => {}
                    }
                }
                Ok((msg.bytes, from, arrival))
            })
            .await
    }

    /// Sends `data` to `to`, from the address `arrival` says the query came to.
    pub async fn send(
        &self,
        data: &[u8],
        to: SocketAddr,
        arrival: Option<Arrival>,
    ) -> io::Result<usize> {
        let Some(arrival) = arrival else {
            return self.inner.send_to(data, to).await;
        };
        // The source address only; the route back picks the interface.
        let (v4, v6) = match arrival {
            Arrival::V4(i) => (
                Some(libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: i.ipi_addr,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                }),
                None,
            ),
            Arrival::V6(i) => (
                None,
                Some(libc::in6_pktinfo {
                    ipi6_addr: i.ipi6_addr,
                    ipi6_ifindex: 0,
                }),
            ),
        };
        let cmsg = match (&v4, &v6) {
            (Some(i), _) => ControlMessage::Ipv4PacketInfo(i),
            (_, Some(i)) => ControlMessage::Ipv6PacketInfo(i),
            _ => unreachable!("one of the two is set"),
        };
        let fd = self.inner.as_raw_fd();
        let dest = SockaddrStorage::from(to);
        self.inner
            .async_io(Interest::WRITABLE, || {
                let iov = [IoSlice::new(data)];
                Ok(sendmsg(fd, &iov, &[cmsg], MsgFlags::empty(), Some(&dest))?)
            })
            .await
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client connected to 127.0.0.2 takes only datagrams from 127.0.0.2;
    /// a wildcard server answering without the arrival would send from
    /// 127.0.0.1 (the route's source) and the answer would be dropped.
    #[tokio::test]
    async fn answers_come_from_the_address_asked() {
        let server = Socket::new(UdpSocket::bind("0.0.0.0:0").await.unwrap()).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(("127.0.0.2", port)).await.unwrap();
        client.send(b"ping").await.unwrap();
        let mut buf = [0; 16];
        let (n, from, arrival) = server.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(arrival.is_some());
        server.send(b"pong", from, arrival).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("the answer reaches the connected client")
            .unwrap();
        assert_eq!(&buf[..got], b"pong");
    }
}
