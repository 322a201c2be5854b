//! ICMP echo (RFC 792) for liveness probes: building an echo request and recognising an echo
//! reply. Pure functions over bytes; the socket work is in [`super::probe`].
//!
//! A raw socket (`SOCK_RAW`, needs CAP_NET_RAW) delivers every ICMP packet the host receives,
//! with its IPv4 header; a ping socket (`SOCK_DGRAM`, allowed by `net.ipv4.ping_group_range`)
//! delivers only the replies to its own requests, without the IP header, and the kernel puts its
//! own identifier in. [`parse_reply`] handles both.

/// ICMP type numbers.
const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request with `id`, `seq` and an 8-byte payload.
pub fn echo_request(id: u16, seq: u16, payload: [u8; 8]) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = ECHO_REQUEST;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&payload);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// An echo reply seen on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub seq: u16,
    /// The IPv4 source address, when the packet carried its IP header (raw sockets).
    pub source: Option<[u8; 4]>,
}

/// Recognises an echo reply. `with_ip_header`: the packet starts with an IPv4 header (a raw
/// socket). Anything else (other ICMP types, truncated or malformed packets) is `None`.
pub fn parse_reply(packet: &[u8], with_ip_header: bool) -> Option<Reply> {
    let (icmp, source) = if with_ip_header {
        let first = *packet.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 || packet.len() < ihl {
            return None;
        }
        // Protocol 1 is ICMP.
        if packet[9] != 1 {
            return None;
        }
        let src = [packet[12], packet[13], packet[14], packet[15]];
        (&packet[ihl..], Some(src))
    } else {
        (packet, None)
    };
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    Some(Reply {
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksum_verifies() {
        let p = echo_request(0x1234, 7, *b"bootherd");
        assert_eq!(p[0], 8);
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to ddf2 (one's complement: 220d).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn replies_with_and_without_ip_header() {
        let mut icmp = echo_request(9, 3, [0; 8]);
        icmp[0] = 0;
        assert_eq!(
            parse_reply(&icmp, false),
            Some(Reply {
                id: 9,
                seq: 3,
                source: None
            })
        );
        let mut ip = vec![
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 7, 10, 0, 0, 1,
        ];
        ip.extend_from_slice(&icmp);
        let r = parse_reply(&ip, true).expect("reply");
        assert_eq!(r.source, Some([10, 0, 0, 7]));
        assert_eq!((r.id, r.seq), (9, 3));
        // Our own request looped back, an unreachable, a TCP packet, short packets: not replies.
        assert_eq!(parse_reply(&echo_request(9, 3, [0; 8]), false), None);
        ip[9] = 6;
        assert_eq!(parse_reply(&ip, true), None);
        assert_eq!(parse_reply(&[0x45, 0, 0], true), None);
        assert_eq!(parse_reply(&[0x4f], true), None);
        assert_eq!(parse_reply(&[0, 0, 0], false), None);
        assert_eq!(parse_reply(&[], true), None);
    }
}
