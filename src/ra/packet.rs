//! Router Solicitation and Router Advertisement messages (RFC 4861 §4.1, §4.2) and their options
//! (§4.6): a pure codec over the ICMPv6 message (the kernel adds and checks the checksum of a raw
//! ICMPv6 socket, so it is left zero here and not verified).
//!
//! Decoding checks what §6.1.1/§6.1.2 ask of the message itself: ICMP code 0, the fixed part
//! present, every option of non-zero length and inside the message. The checks that need the IP
//! header (hop limit 255, a link-local source) are the receiver's.

use std::net::Ipv6Addr;

pub const ROUTER_SOLICITATION: u8 = 133;
pub const ROUTER_ADVERTISEMENT: u8 = 134;

/// Option types (RFC 4861 §4.6).
pub mod opt {
    pub const SOURCE_LINK_ADDR: u8 = 1;
    pub const PREFIX_INFO: u8 = 3;
    pub const MTU: u8 = 5;
}

/// "Managed address configuration" and "Other configuration" flags of an RA.
pub const FLAG_MANAGED: u8 = 0x80;
pub const FLAG_OTHER: u8 = 0x40;
/// On-link and autonomous flags of a prefix.
pub const PREFIX_ON_LINK: u8 = 0x80;
pub const PREFIX_AUTONOMOUS: u8 = 0x40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0} bytes is too short for an ICMPv6 message")]
    Short(usize),
    #[error("ICMPv6 type {0} is not a router solicitation or advertisement")]
    NotRouterDiscovery(u8),
    #[error("ICMPv6 code {0} (must be 0)")]
    Code(u8),
    #[error("{kind} of {len} bytes is shorter than its fixed part")]
    Truncated { kind: &'static str, len: usize },
    #[error("option of length 0 at byte {0}")]
    ZeroLengthOption(usize),
    #[error("option at byte {at} runs past the end ({len} bytes)")]
    OptionOverrun { at: usize, len: usize },
}

/// Prefix Information (§4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixInfo {
    pub prefix_len: u8,
    /// [`PREFIX_ON_LINK`], [`PREFIX_AUTONOMOUS`] and reserved bits, as sent.
    pub flags: u8,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
    pub prefix: Ipv6Addr,
}

/// One Neighbor Discovery option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdOption {
    /// Source link-layer address: the option's data (for Ethernet, the MAC and no padding).
    SourceLinkAddr(Vec<u8>),
    PrefixInfo(PrefixInfo),
    Mtu(u32),
    /// Anything else (and a known type of the wrong length): type and data, kept as received.
    Other(u8, Vec<u8>),
}

/// A Router Solicitation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Solicitation {
    pub options: Vec<NdOption>,
}

/// A Router Advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Advertisement {
    /// 0: unspecified (hosts keep theirs).
    pub cur_hop_limit: u8,
    /// [`FLAG_MANAGED`], [`FLAG_OTHER`] and the other bits, as sent.
    pub flags: u8,
    /// Seconds; 0: not a default router.
    pub router_lifetime: u16,
    pub reachable_time: u32,
    pub retrans_timer: u32,
    pub options: Vec<NdOption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Solicitation(Solicitation),
    Advertisement(Advertisement),
}

impl NdOption {
    fn kind(&self) -> u8 {
        match self {
            NdOption::SourceLinkAddr(_) => opt::SOURCE_LINK_ADDR,
            NdOption::PrefixInfo(_) => opt::PREFIX_INFO,
            NdOption::Mtu(_) => opt::MTU,
            NdOption::Other(t, _) => *t,
        }
    }

    /// The option's data (after type and length), unpadded.
    fn data(&self) -> Vec<u8> {
        match self {
            NdOption::SourceLinkAddr(a) => a.clone(),
            NdOption::PrefixInfo(p) => {
                let mut d = Vec::with_capacity(30);
                d.push(p.prefix_len);
                d.push(p.flags);
                d.extend_from_slice(&p.valid_lifetime.to_be_bytes());
                d.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
                d.extend_from_slice(&[0; 4]);
                d.extend_from_slice(&p.prefix.octets());
                d
            }
            NdOption::Mtu(m) => {
                let mut d = vec![0, 0];
                d.extend_from_slice(&m.to_be_bytes());
                d
            }
            NdOption::Other(_, d) => d.clone(),
        }
    }

    fn parse(kind: u8, data: &[u8]) -> NdOption {
        match (kind, data.len()) {
            (opt::SOURCE_LINK_ADDR, _) => NdOption::SourceLinkAddr(data.to_vec()),
            (opt::PREFIX_INFO, 30) => {
                let mut p = [0u8; 16];
                p.copy_from_slice(&data[14..30]);
                NdOption::PrefixInfo(PrefixInfo {
                    prefix_len: data[0],
                    flags: data[1],
                    valid_lifetime: be32(&data[2..6]),
                    preferred_lifetime: be32(&data[6..10]),
                    prefix: Ipv6Addr::from(p),
                })
            }
            (opt::MTU, 6) => NdOption::Mtu(be32(&data[2..6])),
            _ => NdOption::Other(kind, data.to_vec()),
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn decode_options(buf: &[u8], start: usize) -> Result<Vec<NdOption>, Error> {
    let mut out = Vec::new();
    let mut at = start;
    while at < buf.len() {
        if buf.len() - at < 2 {
            return Err(Error::OptionOverrun { at, len: buf.len() });
        }
        let kind = buf[at];
        let units = usize::from(buf[at + 1]);
        if units == 0 {
            return Err(Error::ZeroLengthOption(at));
        }
        let end = at + units * 8;
        if end > buf.len() {
            return Err(Error::OptionOverrun { at, len: buf.len() });
        }
        out.push(NdOption::parse(kind, &buf[at + 2..end]));
        at = end;
    }
    Ok(out)
}

/// Appends options, each padded with zeros to a multiple of 8 bytes.
fn encode_options(out: &mut Vec<u8>, options: &[NdOption]) {
    for o in options {
        let data = o.data();
        let total = (2 + data.len()).div_ceil(8) * 8;
        // An option longer than 255 units cannot be said; such a one is left out.
        let Ok(units) = u8::try_from(total / 8) else {
            continue;
        };
        out.push(o.kind());
        out.push(units);
        out.extend_from_slice(&data);
        out.resize(out.len() + (total - 2 - data.len()), 0);
    }
}

/// Decodes an ICMPv6 message that should be an RS or RA.
pub fn decode(buf: &[u8]) -> Result<Message, Error> {
    if buf.len() < 4 {
        return Err(Error::Short(buf.len()));
    }
    let (kind, code) = (buf[0], buf[1]);
    if kind != ROUTER_SOLICITATION && kind != ROUTER_ADVERTISEMENT {
        return Err(Error::NotRouterDiscovery(kind));
    }
    if code != 0 {
        return Err(Error::Code(code));
    }
    if kind == ROUTER_SOLICITATION {
        if buf.len() < 8 {
            return Err(Error::Truncated {
                kind: "router solicitation",
                len: buf.len(),
            });
        }
        return Ok(Message::Solicitation(Solicitation {
            options: decode_options(buf, 8)?,
        }));
    }
    if buf.len() < 16 {
        return Err(Error::Truncated {
            kind: "router advertisement",
            len: buf.len(),
        });
    }
    Ok(Message::Advertisement(Advertisement {
        cur_hop_limit: buf[4],
        flags: buf[5],
        router_lifetime: u16::from_be_bytes([buf[6], buf[7]]),
        reachable_time: be32(&buf[8..12]),
        retrans_timer: be32(&buf[12..16]),
        options: decode_options(buf, 16)?,
    }))
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Solicitation(s) => s.encode(),
            Message::Advertisement(a) => a.encode(),
        }
    }
}

impl Solicitation {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
        encode_options(&mut out, &self.options);
        out
    }

    /// The sender's link-layer address, when it said it.
    pub fn source_link_addr(&self) -> Option<&[u8]> {
        self.options.iter().find_map(|o| match o {
            NdOption::SourceLinkAddr(a) => Some(a.as_slice()),
            _ => None,
        })
    }
}

impl Advertisement {
    /// An advertisement that configures nothing: not a default router, no addresses, no
    /// DHCPv6 — only "a router has answered", so hosts finish autoconfiguration at once.
    /// `mac` is the sender's (source link-layer address option); `prefixes` are on-link only.
    pub fn null(mac: Option<[u8; 6]>, prefixes: &[(Ipv6Addr, u8)]) -> Advertisement {
        let mut options = Vec::new();
        if let Some(m) = mac {
            options.push(NdOption::SourceLinkAddr(m.to_vec()));
        }
        for (p, len) in prefixes {
            options.push(NdOption::PrefixInfo(PrefixInfo {
                prefix_len: *len,
                flags: PREFIX_ON_LINK,
                // radvd's defaults (AdvValidLifetime, AdvPreferredLifetime).
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: *p,
            }));
        }
        Advertisement {
            options,
            ..Advertisement::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![
            ROUTER_ADVERTISEMENT,
            0,
            0,
            0,
            self.cur_hop_limit,
            self.flags,
        ];
        out.extend_from_slice(&self.router_lifetime.to_be_bytes());
        out.extend_from_slice(&self.reachable_time.to_be_bytes());
        out.extend_from_slice(&self.retrans_timer.to_be_bytes());
        encode_options(&mut out, &self.options);
        out
    }

    pub fn prefixes(&self) -> impl Iterator<Item = &PrefixInfo> {
        self.options.iter().filter_map(|o| match o {
            NdOption::PrefixInfo(p) => Some(p),
            _ => None,
        })
    }

    /// Whether hosts take anything from it: a default route, a prefix, DHCPv6. An advertisement
    /// that configures nothing (another bootherd's) is no reason to stay quiet.
    pub fn configures_something(&self) -> bool {
        self.router_lifetime != 0
            || self.flags & (FLAG_MANAGED | FLAG_OTHER) != 0
            || self.prefixes().next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_advertisement_bytes() {
        let ra = Advertisement::null(Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]), &[]);
        assert_eq!(
            ra.encode(),
            vec![
                134, 0, 0, 0, // type, code, checksum (the kernel's)
                0, 0, 0, 0, // hop limit unspecified, M=O=0, router lifetime 0
                0, 0, 0, 0, 0, 0, 0, 0, // reachable time, retrans timer unspecified
                1, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, // source link-layer address
            ]
        );
        assert!(!ra.configures_something());
    }

    #[test]
    fn prefix_option_layout() {
        let p: Ipv6Addr = "fd00:10::".parse().expect("addr");
        let ra = Advertisement::null(None, &[(p, 64)]);
        let b = ra.encode();
        assert_eq!(b.len(), 16 + 32);
        assert_eq!(&b[16..20], &[3, 4, 64, PREFIX_ON_LINK]);
        assert_eq!(&b[20..24], &86400u32.to_be_bytes());
        assert_eq!(&b[32..48], &p.octets());
        assert_eq!(decode(&b), Ok(Message::Advertisement(ra.clone())));
        assert!(ra.configures_something());
    }

    #[test]
    fn solicitation_from_a_host() {
        // rdisc6/Linux: type 133, code 0, checksum, reserved, SLLAO.
        let b = [133, 0, 0xab, 0xcd, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9];
        let Ok(Message::Solicitation(s)) = decode(&b) else {
            panic!("not an RS");
        };
        assert_eq!(s.source_link_addr(), Some(&[2u8, 0, 0, 0, 0, 9][..]));
    }

    #[test]
    fn bad_messages_are_errors() {
        assert_eq!(decode(&[133, 0, 0]), Err(Error::Short(3)));
        assert_eq!(
            decode(&[135, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::NotRouterDiscovery(135))
        );
        assert_eq!(decode(&[133, 1, 0, 0, 0, 0, 0, 0]), Err(Error::Code(1)));
        assert!(matches!(
            decode(&[134, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::Truncated { .. })
        ));
        assert_eq!(
            decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::ZeroLengthOption(8))
        );
        assert!(matches!(
            decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0]),
            Err(Error::OptionOverrun { .. })
        ));
        assert!(matches!(
            decode(&[133, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(Error::OptionOverrun { .. })
        ));
    }

    #[test]
    fn a_router_with_a_default_route_configures_something() {
        let ra = Advertisement {
            router_lifetime: 1800,
            ..Advertisement::default()
        };
        assert!(ra.configures_something());
        let ra = Advertisement {
            flags: FLAG_OTHER,
            ..Advertisement::default()
        };
        assert!(ra.configures_something());
    }

    #[test]
    fn odd_options_round_trip() {
        let ra = Advertisement {
            options: vec![
                NdOption::Mtu(1500),
                NdOption::Other(25, vec![0; 6]),
                NdOption::Other(opt::PREFIX_INFO, vec![7; 14]),
            ],
            ..Advertisement::default()
        };
        assert_eq!(decode(&ra.encode()), Ok(Message::Advertisement(ra)));
    }
}
