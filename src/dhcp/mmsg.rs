//! Batched UDP I/O for the DHCP server: `recvmmsg(2)` takes every queued datagram (up to a
//! batch) in one system call and `sendmmsg(2)` sends a round's replies in one, so a busy server
//! pays one kernel entry per batch instead of one per packet.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Whether UDP segmentation offload is used for replies to one destination (`UDP_SEGMENT`,
/// Linux ≥ 4.18): switched off for the process the first time the kernel refuses it (a device
/// without checksum offload answers EIO), and the refused datagrams go out one by one.
static GSO: AtomicBool = AtomicBool::new(true);

/// Most datagrams in one GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64 before Linux 6.10).
const GSO_SEGMENTS: usize = 64;
/// Most bytes in one GSO send (an IPv4 datagram's payload).
const GSO_BYTES: usize = 65_000;
/// A datagram goes into a GSO send only when padding it to the send's segment size adds at most
/// this much: every segment but the last is the same size, so shorter replies are padded with
/// DHCP PAD options (zeros after END, RFC 2132 §3.2).
const GSO_SLACK: usize = 64;

/// Largest segment sent with GSO: a reply that would not fit an Ethernet frame goes alone
/// (the kernel fragments it, which GSO does not do).
const GSO_SEG_MAX: usize = 1472;

/// Turns segmentation offload off or on for the process (tests of the fallback).
pub fn set_gso(on: bool) {
    GSO.store(on, Ordering::Relaxed);
}

/// One `sendmmsg` entry: a single datagram, or a GSO run of datagrams to one destination
/// (padded, concatenated into `buf`, `seg` bytes each but the last).
struct Entry {
    to: SocketAddrV4,
    /// Indices into `out`, in the order of the segments.
    items: Vec<usize>,
    buf: Vec<u8>,
    seg: usize,
}

/// Sends every `(datagram, destination)` in `out` with as few system calls and as little work
/// in the kernel as it allows: one `sendmmsg` per 256 entries, and replies to one destination
/// (a relay agent's giaddr, or the broadcast address of a link) sent as one GSO datagram that
/// the kernel cuts into segments as late as it can — one route lookup and one trip through the
/// IP stack and the device's queue for up to 64 replies. A datagram the kernel refuses is
/// skipped; returns the errors met (destination and error).
pub fn send_all(fd: RawFd, out: &[(Vec<u8>, SocketAddrV4)]) -> Vec<(SocketAddrV4, io::Error)> {
    let mut errors = Vec::new();
    let mut entries = plan(out, GSO.load(Ordering::Relaxed));
    let mut start = 0;
    const CHUNK: usize = 256;
    while start < entries.len() {
        let end = entries.len().min(start + CHUNK);
        let refused = send_entries(fd, out, &mut entries[start..end], &mut errors);
        if !refused.is_empty() {
            // The kernel does not do UDP GSO here: from now on datagrams go one by one, and
            // the refused runs are sent again that way.
            if GSO.swap(false, Ordering::Relaxed) {
                tracing::info!("UDP segmentation offload refused by the kernel; DHCP replies are sent one by one");
            }
            let mut again: Vec<Entry> = refused
                .iter()
                .flat_map(|&k| entries[start + k].items.clone())
                .map(|i| Entry {
                    to: out[i].1,
                    items: vec![i],
                    buf: Vec::new(),
                    seg: 0,
                })
                .collect();
            let _ = send_entries(fd, out, &mut again, &mut errors);
        }
        start = end;
    }
    errors
}

/// Groups `out` into [`Entry`]s: with `gso`, runs of datagrams to one destination of similar
/// size; every other datagram alone.
fn plan(out: &[(Vec<u8>, SocketAddrV4)], gso: bool) -> Vec<Entry> {
    let single = |i: usize| Entry {
        to: out[i].1,
        items: vec![i],
        buf: Vec::new(),
        seg: 0,
    };
    if !gso || out.len() < 2 {
        return (0..out.len()).map(single).collect();
    }
    // By destination, longest first: each run's first datagram sets its segment size.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| {
        let (da, db) = (&out[a], &out[b]);
        (u32::from(*da.1.ip()), da.1.port(), db.0.len()).cmp(&(
            u32::from(*db.1.ip()),
            db.1.port(),
            da.0.len(),
        ))
    });
    let mut entries = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let first = order[k];
        let (to, seg) = (out[first].1, out[first].0.len());
        let mut items = vec![first];
        let mut j = k + 1;
        while j < order.len() {
            let (d, t) = &out[order[j]];
            if *t != to
                || d.is_empty()
                || seg - d.len() > GSO_SLACK
                || items.len() >= GSO_SEGMENTS
                || (items.len() + 1) * seg > GSO_BYTES
            {
                break;
            }
            items.push(order[j]);
            j += 1;
        }
        k = j;
        if items.len() == 1 || seg == 0 || seg > GSO_SEG_MAX {
            entries.extend(items.into_iter().map(single));
            continue;
        }
        let mut buf = Vec::with_capacity(items.len() * seg);
        let last = items.len() - 1;
        for (n, &i) in items.iter().enumerate() {
            buf.extend_from_slice(&out[i].0);
            if n < last {
                buf.resize((n + 1) * seg, 0);
            }
        }
        entries.push(Entry {
            to,
            items,
            buf,
            seg,
        });
    }
    entries
}

/// One `sendmmsg` loop over `entries`. Errors of single datagrams go to `errors`; returns the
/// positions of GSO entries the kernel refused as such (EIO, EINVAL: no offload here).
fn send_entries(
    fd: RawFd,
    out: &[(Vec<u8>, SocketAddrV4)],
    entries: &mut [Entry],
    errors: &mut Vec<(SocketAddrV4, io::Error)>,
) -> Vec<usize> {
    // SAFETY (for the zeroed values below): sockaddr_in, mmsghdr and the cmsg buffer are plain
    // C data for which all-zero is valid.
    let mut addrs: Vec<libc::sockaddr_in> = entries
        .iter()
        .map(|e| {
            let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = e.to.port().to_be();
            a.sin_addr.s_addr = u32::from(*e.to.ip()).to_be();
            a
        })
        .collect();
    let mut iovs: Vec<libc::iovec> = entries
        .iter()
        .map(|e| {
            let d: &[u8] = if e.seg > 0 {
                &e.buf
            } else {
                &out[e.items[0]].0
            };
            libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            }
        })
        .collect();
    // One control message per GSO entry: SOL_UDP / UDP_SEGMENT with the segment size.
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    let mut control = vec![0u64; (entries.len() * space).div_ceil(8).max(1)];
    let base = control.as_mut_ptr().cast::<u8>();
    let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
        h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_hdr.msg_iov = &mut iovs[i];
        h.msg_hdr.msg_iovlen = 1;
        if e.seg > 0 {
            // SAFETY: this entry's `space` bytes of `control` (8-aligned, as cmsghdr needs)
            // lie inside the buffer; the header and its u16 are written inside them.
            unsafe {
                let c = base.add(i * space);
                h.msg_hdr.msg_control = c.cast();
                h.msg_hdr.msg_controllen = space as _;
                let cm = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                (*cm).cmsg_level = libc::SOL_UDP;
                (*cm).cmsg_type = UDP_SEGMENT;
                (*cm).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u16>(), e.seg as u16);
            }
        }
        hdrs.push(h);
    }
    let mut refused = Vec::new();
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
            // The first unsent entry failed: report it and go on with the rest.
            let en = &entries[done];
            let no_gso = matches!(
                e.raw_os_error(),
                Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
            );
            if en.seg > 0 && no_gso {
                refused.push(done);
            } else {
                errors.extend(
                    en.items
                        .iter()
                        .map(|&i| (out[i].1, io::Error::new(e.kind(), e.to_string()))),
                );
            }
            done += 1;
        } else {
            done += r as usize;
        }
    }
    refused
}

/// `UDP_SEGMENT` (linux/udp.h), not exported by the libc crate for glibc targets.
const UDP_SEGMENT: libc::c_int = 103;

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

    /// Replies to one destination go out as one GSO send and arrive as the datagrams they were,
    /// the shorter ones padded with zeros (DHCP PAD options); when the kernel refuses GSO the
    /// same datagrams go out one by one, unpadded, and GSO stays off.
    #[test]
    fn replies_to_one_destination_share_a_segmented_send_and_fall_back_without_it() {
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let c = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (SocketAddr4(to_b), SocketAddr4(to_c)) = (SocketAddr4::of(&b), SocketAddr4::of(&c));
        // 300–330 bytes to b (one run), 500 bytes to b (too much padding: alone), 300 to c.
        let mut out: Vec<(Vec<u8>, SocketAddrV4)> = (0..8u8)
            .map(|i| (vec![i + 1; 300 + 4 * usize::from(i)], to_b))
            .collect();
        out.push((vec![0xee; 500], to_b));
        out.push((vec![0xcc; 300], to_c));
        let planned = plan(&out, true);
        let mut runs: Vec<(usize, usize)> =
            planned.iter().map(|e| (e.items.len(), e.seg)).collect();
        runs.sort();
        assert_eq!(runs, [(1, 0), (1, 0), (8, 328)]);
        assert_eq!(plan(&out, false).len(), out.len());

        let receive = |sock: &std::net::UdpSocket, n: usize| {
            sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .expect("timeout");
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut buf = [0u8; 2048];
            while got.len() < n {
                let k = sock.recv(&mut buf).expect("datagram");
                got.push(buf[..k].to_vec());
            }
            got.sort();
            got
        };
        let strip = |d: &Vec<u8>| {
            let v = d[0];
            let body = d.iter().take_while(|x| **x == v).count();
            assert!(d[body..].iter().all(|x| *x == 0), "padding is zeros");
            (v, body, d.len())
        };
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        set_gso(true);
        assert!(send_all(a.as_raw_fd(), &out).is_empty());
        let at_b: Vec<(u8, usize, usize)> = receive(&b, 9).iter().map(strip).collect();
        let mut want: Vec<(u8, usize, usize)> = (0..8u8)
            .map(|i| {
                let n = 300 + 4 * usize::from(i);
                // The run's segments are 328 bytes but its last (the shortest) keeps its own.
                (i + 1, n, if i == 0 { n } else { 328 })
            })
            .collect();
        want.push((0xee, 500, 500));
        assert_eq!(at_b, want);
        assert_eq!(receive(&c, 1), [vec![0xcc; 300]]);

        // A socket that may not send without UDP checksums cannot use GSO (EINVAL).
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and option value.
        let r = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        assert!(send_all(a.as_raw_fd(), &out).is_empty());
        let at_b: Vec<(u8, usize, usize)> = receive(&b, 9).iter().map(strip).collect();
        let mut exact: Vec<(u8, usize, usize)> = (0..8u8)
            .map(|i| (i + 1, 300 + 4 * usize::from(i), 300 + 4 * usize::from(i)))
            .collect();
        exact.push((0xee, 500, 500));
        assert_eq!(at_b, exact, "sent one by one, unpadded");
        assert!(!GSO.load(Ordering::Relaxed), "GSO switched off");
        set_gso(true);
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
