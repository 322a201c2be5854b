//! Batched UDP I/O for the DHCP server: `recvmmsg(2)` takes every queued datagram (up to a
//! batch) in one system call and `sendmmsg(2)` sends a round's replies in one, so a busy server
//! pays one kernel entry per batch instead of one per packet.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

/// Largest datagram taken (an Ethernet frame's worth; DHCP messages are smaller). A longer one is
/// truncated by the kernel and reported as such.
pub const SLOT: usize = 1536;

/// Buffers for one `recvmmsg` call.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    got: usize,
}

// The raw pointers inside point into the batch's own heap buffers only.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub fn new(n: usize) -> RecvBatch {
        let n = n.max(1);
        RecvBatch {
            bufs: vec![0; n * SLOT],
            // SAFETY: sockaddr_in and mmsghdr are plain C structs for which all-zero is valid.
            addrs: vec![unsafe { std::mem::zeroed() }; n],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                n
            ],
            hdrs: vec![unsafe { std::mem::zeroed() }; n],
            got: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to [`RecvBatch::capacity`] datagrams. `wait`: block (up to the socket's
    /// `SO_RCVTIMEO`) for the first one, then take only what is already queued; otherwise never
    /// block. Returns how many arrived (`WouldBlock` when none).
    pub fn recv(&mut self, fd: RawFd, wait: bool) -> io::Result<usize> {
        let n = self.hdrs.len();
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            // SAFETY: i * SLOT + SLOT <= bufs.len(), so every iovec lies inside `bufs`.
            self.iovs[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
            self.iovs[i].iov_len = SLOT;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        let flags = if wait {
            libc::MSG_WAITFORONE
        } else {
            libc::MSG_DONTWAIT
        };
        // SAFETY: hdrs holds n initialised headers whose buffers outlive the call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            self.got = 0;
            return Err(io::Error::last_os_error());
        }
        self.got = r as usize;
        Ok(self.got)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: its bytes and sender; `None` when it was
    /// truncated or its sender is not IPv4.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddrV4)> {
        if i >= self.got {
            return None;
        }
        let h = &self.hdrs[i];
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let a = &self.addrs[i];
        if a.sin_family != libc::AF_INET as libc::sa_family_t {
            return None;
        }
        let len = (h.msg_len as usize).min(SLOT);
        let from = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
            u16::from_be(a.sin_port),
        );
        Some((&self.bufs[i * SLOT..i * SLOT + len], from))
    }
}

/// Sends every `(datagram, destination)` in `out` with as few `sendmmsg` calls as the kernel
/// allows. A datagram the kernel refuses is skipped; returns the errors met (destination and error).
pub fn send_all(fd: RawFd, out: &[(Vec<u8>, SocketAddrV4)]) -> Vec<(SocketAddrV4, io::Error)> {
    let mut errors = Vec::new();
    let mut start = 0;
    const CHUNK: usize = 256;
    while start < out.len() {
        let part = &out[start..out.len().min(start + CHUNK)];
        let mut addrs: Vec<libc::sockaddr_in> = part
            .iter()
            .map(|(_, to)| {
                // SAFETY: all-zero is a valid sockaddr_in.
                let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                a.sin_family = libc::AF_INET as libc::sa_family_t;
                a.sin_port = to.port().to_be();
                a.sin_addr.s_addr = u32::from(*to.ip()).to_be();
                a
            })
            .collect();
        let mut iovs: Vec<libc::iovec> = part
            .iter()
            .map(|(d, _)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = (0..part.len())
            .map(|i| {
                // SAFETY: all-zero is a valid mmsghdr; the pointers set below outlive the call.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let mut done = 0;
        while done < hdrs.len() {
            // SAFETY: hdrs[done..] are initialised and point at live buffers.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[done..].as_mut_ptr(),
                    (hdrs.len() - done) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first unsent datagram failed: report it and go on with the rest.
                errors.push((part[done].1, e));
                done += 1;
            } else {
                done += r as usize;
            }
        }
        start += part.len();
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_of_datagrams_goes_out_and_comes_back_in_one_call_each() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let SocketAddr4(to) = SocketAddr4::of(&b);
        let out: Vec<(Vec<u8>, SocketAddrV4)> = (0..10u8).map(|i| (vec![i; 300], to)).collect();
        assert!(send_all(a.as_raw_fd(), &out).is_empty());
        let mut rb = RecvBatch::new(16);
        let mut got = Vec::new();
        while got.len() < 10 {
            let n = rb.recv(b.as_raw_fd(), true).expect("recv");
            for i in 0..n {
                let (d, from) = rb.get(i).expect("datagram");
                assert_eq!(from, SocketAddr4::of(&a).0);
                got.push((d.len(), d[0]));
            }
        }
        assert_eq!(got, (0..10u8).map(|i| (300, i)).collect::<Vec<_>>());
        b.set_nonblocking(true).expect("nonblocking");
        let e = rb.recv(b.as_raw_fd(), false).expect_err("nothing queued");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    struct SocketAddr4(SocketAddrV4);
    impl SocketAddr4 {
        fn of(s: &std::net::UdpSocket) -> SocketAddr4 {
            match s.local_addr().expect("addr") {
                std::net::SocketAddr::V4(a) => SocketAddr4(a),
                std::net::SocketAddr::V6(_) => panic!("v6"),
            }
        }
    }
}
