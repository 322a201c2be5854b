//! DHCPv4 messages (RFC 2131/2132) as a pure codec: bytes ↔ [`Packet`], no I/O.
//!
//! Options are kept raw (code → bytes, split options concatenated as RFC 3396 says) with typed
//! accessors, so a malformed option is only an error for whoever asks for it, and the server
//! decides what matters. Decoding checks every length before using it; encoding writes option 53
//! first (some PXE ROMs and embedded clients insist) and the end marker last.

use std::net::Ipv4Addr;

/// The fixed BOOTP header is 236 bytes, then the 4-byte magic cookie.
pub const HEADER_LEN: usize = 236;
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Smallest datagram we send (RFC 2131: clients must accept 576-byte messages; old ROMs want ≥ 300).
const MIN_LEN: usize = 300;

/// Option codes bootherd reads or writes.
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN: u8 = 15;
    pub const MTU: u8 = 26;
    pub const BROADCAST: u8 = 28;
    pub const NTP: u8 = 42;
    pub const VENDOR_SPECIFIC: u8 = 43;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAM_REQUEST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_SIZE: u8 = 57;
    pub const RENEWAL: u8 = 58;
    pub const REBINDING: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER: u8 = 66;
    pub const BOOTFILE: u8 = 67;
    pub const USER_CLASS: u8 = 77;
    pub const RELAY_AGENT: u8 = 82;
    pub const CLIENT_ARCH: u8 = 93;
    pub const CLIENT_NDI: u8 = 94;
    pub const UUID_GUID: u8 = 97;
    pub const DOMAIN_SEARCH: u8 = 119;
    pub const IPXE_ENCAP: u8 = 175;
    pub const PXELINUX_CONFIGFILE: u8 = 209;
    pub const PXELINUX_PATHPREFIX: u8 = 210;
    pub const END: u8 = 255;
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }
}

/// Why a datagram is not a DHCP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("datagram of {0} bytes is shorter than a DHCP header")]
    Short(usize),
    #[error("no DHCP magic cookie")]
    NoCookie,
    #[error("option {code} claims {len} bytes but only {left} remain")]
    OptionOverrun { code: u8, len: usize, left: usize },
    #[error("hardware address length {0} is larger than 16")]
    BadHlen(u8),
    #[error("option {code} has invalid length {len}")]
    BadOptionLength { code: u8, len: usize },
}

/// A DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 1 = BOOTREQUEST, 2 = BOOTREPLY.
    pub op: u8,
    pub htype: u8,
    pub hlen: u8,
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 16],
    pub sname: Vec<u8>,
    pub file: Vec<u8>,
    /// Options in the order they appeared (or are to be written); codes are unique.
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Default for Packet {
    fn default() -> Packet {
        Packet {
            op: 2,
            htype: 1,
            hlen: 6,
            hops: 0,
            xid: 0,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: [0; 16],
            sname: Vec::new(),
            file: Vec::new(),
            options: Vec::new(),
        }
    }
}

fn ip(b: &[u8], at: usize) -> Ipv4Addr {
    match b.get(at..at + 4) {
        Some(s) => Ipv4Addr::new(s[0], s[1], s[2], s[3]),
        None => Ipv4Addr::UNSPECIFIED,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .unwrap_or(0)
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

/// Walks one option area, appending to `out` (concatenating repeated codes, RFC 3396).
fn parse_options(area: &[u8], out: &mut Vec<(u8, Vec<u8>)>) -> Result<(), PacketError> {
    let mut i = 0;
    while let Some(&code) = area.get(i) {
        match code {
            opt::PAD => i += 1,
            opt::END => break,
            _ => {
                let Some(&len) = area.get(i + 1) else {
                    return Err(PacketError::OptionOverrun {
                        code,
                        len: 1,
                        left: 0,
                    });
                };
                let len = len as usize;
                let Some(data) = area.get(i + 2..i + 2 + len) else {
                    return Err(PacketError::OptionOverrun {
                        code,
                        len,
                        left: area.len().saturating_sub(i + 2),
                    });
                };
                match out.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, v)) => v.extend_from_slice(data),
                    None => out.push((code, data.to_vec())),
                }
                i += 2 + len;
            }
        }
    }
    Ok(())
}

impl Packet {
    /// Decodes a datagram. Options whose content is malformed are kept as they are; the typed
    /// accessors validate them when asked.
    pub fn decode(b: &[u8]) -> Result<Packet, PacketError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(PacketError::Short(b.len()));
        }
        if b.get(HEADER_LEN..HEADER_LEN + 4) != Some(&COOKIE[..]) {
            return Err(PacketError::NoCookie);
        }
        let hlen = b[2];
        if hlen > 16 {
            return Err(PacketError::BadHlen(hlen));
        }
        let mut chaddr = [0u8; 16];
        chaddr.copy_from_slice(&b[28..44]);
        let mut options = Vec::new();
        parse_options(&b[HEADER_LEN + 4..], &mut options)?;
        let mut sname = b[44..108].to_vec();
        let mut file = b[108..236].to_vec();
        // Option overload (52): the file and/or sname fields carry more options.
        if let Some((_, v)) = options.iter().find(|(c, _)| *c == opt::OVERLOAD) {
            let which = v.first().copied().unwrap_or(0);
            let (f, s) = (file.clone(), sname.clone());
            if which & 1 != 0 {
                parse_options(&f, &mut options)?;
                file.clear();
            }
            if which & 2 != 0 {
                parse_options(&s, &mut options)?;
                sname.clear();
            }
        }
        let trim = |v: &mut Vec<u8>| {
            if let Some(p) = v.iter().position(|&c| c == 0) {
                v.truncate(p);
            }
        };
        trim(&mut sname);
        trim(&mut file);
        Ok(Packet {
            op: b[0],
            htype: b[1],
            hlen,
            hops: b[3],
            xid: be32(b, 4),
            secs: be16(b, 8),
            flags: be16(b, 10),
            ciaddr: ip(b, 12),
            yiaddr: ip(b, 16),
            siaddr: ip(b, 20),
            giaddr: ip(b, 24),
            chaddr,
            sname,
            file,
            options,
        })
    }

    /// Encodes the message: header, cookie, option 53 first, the rest in order, END, padding.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(576);
        b.extend_from_slice(&[self.op, self.htype, self.hlen, self.hops]);
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&self.secs.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        for a in [self.ciaddr, self.yiaddr, self.siaddr, self.giaddr] {
            b.extend_from_slice(&a.octets());
        }
        b.extend_from_slice(&self.chaddr);
        let field = |v: &[u8], n: usize, b: &mut Vec<u8>| {
            let take = v.len().min(n - 1); // keep a terminating NUL
            b.extend_from_slice(&v[..take]);
            b.resize(b.len() + (n - take), 0);
        };
        field(&self.sname, 64, &mut b);
        field(&self.file, 128, &mut b);
        b.extend_from_slice(&COOKIE);
        let write = |code: u8, v: &[u8], b: &mut Vec<u8>| {
            // Long values are split into 255-byte pieces (RFC 3396).
            if v.is_empty() {
                b.extend_from_slice(&[code, 0]);
            }
            for chunk in v.chunks(255) {
                b.push(code);
                b.push(chunk.len() as u8);
                b.extend_from_slice(chunk);
            }
        };
        if let Some((c, v)) = self.options.iter().find(|(c, _)| *c == opt::MESSAGE_TYPE) {
            write(*c, v, &mut b);
        }
        for (c, v) in self
            .options
            .iter()
            .filter(|(c, _)| *c != opt::MESSAGE_TYPE && *c != opt::END && *c != opt::PAD)
        {
            write(*c, v, &mut b);
        }
        b.push(opt::END);
        if b.len() < MIN_LEN {
            b.resize(MIN_LEN, 0);
        }
        b
    }

    /// The raw bytes of option `code`.
    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets (or replaces) option `code`.
    pub fn set(&mut self, code: u8, value: impl Into<Vec<u8>>) {
        let value = value.into();
        match self.options.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => *v = value,
            None => self.options.push((code, value)),
        }
    }

    pub fn set_ip(&mut self, code: u8, a: Ipv4Addr) {
        self.set(code, a.octets().to_vec());
    }

    pub fn set_ips(&mut self, code: u8, addrs: &[Ipv4Addr]) {
        self.set(
            code,
            addrs.iter().flat_map(|a| a.octets()).collect::<Vec<u8>>(),
        );
    }

    pub fn set_u32(&mut self, code: u8, v: u32) {
        self.set(code, v.to_be_bytes().to_vec());
    }

    /// Option 53, when present and valid.
    pub fn message_type(&self) -> Option<MessageType> {
        match self.get(opt::MESSAGE_TYPE) {
            Some([t]) => MessageType::from_u8(*t),
            _ => None,
        }
    }

    /// An option holding exactly one IPv4 address.
    pub fn get_ip(&self, code: u8) -> Option<Ipv4Addr> {
        match self.get(code) {
            Some([a, b, c, d]) => Some(Ipv4Addr::new(*a, *b, *c, *d)),
            _ => None,
        }
    }

    /// An option holding text (hostname, vendor class); invalid UTF-8 is replaced.
    pub fn get_str(&self, code: u8) -> Option<String> {
        self.get(code).map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        })
    }

    /// The client hardware address (the first `hlen` bytes of chaddr).
    pub fn hwaddr(&self) -> &[u8] {
        &self.chaddr[..(self.hlen as usize).min(16)]
    }

    /// The hardware address as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        hex_joined(self.hwaddr(), Some(':'))
    }

    /// The broadcast bit of `flags`.
    pub fn broadcast(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// Client architecture (option 93): the first of its u16 values. A malformed option is ignored.
    pub fn client_arch(&self) -> Option<u16> {
        match self.get(opt::CLIENT_ARCH) {
            // Lenient about trailing bytes: a broken ROM that sends 3 bytes still says what it is.
            Some(v) if v.len() >= 2 => Some(u16::from_be_bytes([v[0], v[1]])),
            _ => None,
        }
    }

    /// User class (option 77) strings. Both RFC 3004 (length-prefixed) and the plain text some
    /// ROMs send (iPXE sends "iPXE", xCAT's build "xNBA") are understood.
    pub fn user_classes(&self) -> Vec<String> {
        let Some(v) = self.get(opt::USER_CLASS) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut i = 0;
        let mut rfc3004 = true;
        while i < v.len() {
            let len = v[i] as usize;
            match v.get(i + 1..i + 1 + len) {
                Some(s) if len > 0 => out.push(String::from_utf8_lossy(s).to_string()),
                _ => {
                    rfc3004 = false;
                    break;
                }
            }
            i += 1 + len;
        }
        if !rfc3004 || out.is_empty() {
            return vec![String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()];
        }
        out
    }
}

/// Bytes as lower-case hex, `sep` between them: one allocation (this runs for every packet).
pub fn hex_joined(bytes: &[u8], sep: Option<char>) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            if let Some(c) = sep {
                s.push(c);
            }
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_joined_matches_the_formatting_it_replaces() {
        let b = [0x00u8, 0x0a, 0xff, 0x52, 0x54];
        let want: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(super::hex_joined(&b, Some(':')), want.join(":"));
        assert_eq!(super::hex_joined(&b, None), want.concat());
        assert_eq!(super::hex_joined(&[], Some(':')), "");
    }

    use super::*;

    /// A DHCPDISCOVER as QEMU's iPXE ROM sends it (hand-assembled from RFC 2131 field offsets).
    fn discover() -> Vec<u8> {
        let mut b = vec![0u8; 236];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        b[10] = 0x80;
        b[28..34].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        b.extend_from_slice(&COOKIE);
        b.extend_from_slice(&[53, 1, 1]);
        b.extend_from_slice(&[93, 2, 0, 7]);
        b.extend_from_slice(&[77, 5, 4, b'i', b'P', b'X', b'E']);
        b.extend_from_slice(&[60, 9]);
        b.extend_from_slice(b"PXEClient");
        b.extend_from_slice(&[94, 3, 1, 2, 1]);
        b.push(255);
        b
    }

    #[test]
    fn decodes_the_fields_a_pxe_server_needs() {
        let p = Packet::decode(&discover()).expect("decodes");
        assert_eq!(p.op, 1);
        assert_eq!(p.xid, 0x1234_5678);
        assert!(p.broadcast());
        assert_eq!(p.mac_string(), "52:54:00:12:34:56");
        assert_eq!(p.message_type(), Some(MessageType::Discover));
        assert_eq!(p.client_arch(), Some(7));
        assert_eq!(p.user_classes(), ["iPXE"]);
        assert_eq!(p.get_str(opt::VENDOR_CLASS).as_deref(), Some("PXEClient"));
    }

    #[test]
    fn plain_text_user_class_is_understood() {
        let mut p = Packet::decode(&discover()).expect("decodes");
        p.set(opt::USER_CLASS, b"xNBA".to_vec());
        assert_eq!(p.user_classes(), ["xNBA"]);
    }

    #[test]
    fn encode_puts_message_type_first_and_round_trips() {
        let mut p = Packet {
            op: 2,
            xid: 7,
            yiaddr: Ipv4Addr::new(10, 0, 0, 5),
            ..Packet::default()
        };
        p.set_ip(opt::SERVER_ID, Ipv4Addr::new(10, 0, 0, 1));
        p.set(opt::MESSAGE_TYPE, vec![MessageType::Offer as u8]);
        p.set(opt::BOOTFILE, vec![b'x'; 300]);
        p.file = b"xcat/xnba.kpxe".to_vec();
        let b = p.encode();
        assert_eq!(&b[240..243], &[53, 1, 2], "option 53 comes first");
        let q = Packet::decode(&b).expect("decodes");
        assert_eq!(q.message_type(), Some(MessageType::Offer));
        assert_eq!(
            q.get(opt::BOOTFILE).map(<[u8]>::len),
            Some(300),
            "split long option re-joins"
        );
        assert_eq!(q.file, b"xcat/xnba.kpxe");
        assert_eq!(q.yiaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert!(b.len() >= 300);
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        assert!(matches!(
            Packet::decode(&[0u8; 10]),
            Err(PacketError::Short(10))
        ));
        let mut d = discover();
        d[236] = 0;
        assert_eq!(Packet::decode(&d), Err(PacketError::NoCookie));
        let mut d = discover();
        d.truncate(d.len() - 3); // inside option 94
        assert!(matches!(
            Packet::decode(&d),
            Err(PacketError::OptionOverrun { .. })
        ));
        let mut d = discover();
        d[2] = 200;
        assert_eq!(Packet::decode(&d), Err(PacketError::BadHlen(200)));
        // Option 94 of the wrong length, option 93 odd-sized, a huge option 43: decoded, ignored by accessors.
        let mut d = discover();
        d.pop();
        d.extend_from_slice(&[43, 255]);
        d.extend_from_slice(&[0xaa; 255]);
        d.extend_from_slice(&[93, 3, 0, 0, 7]);
        d.push(255);
        let p = Packet::decode(&d).expect("decodes");
        assert_eq!(
            p.client_arch(),
            Some(7),
            "the two option 93s concatenate (5 bytes); the first value counts"
        );
        // Every truncation of a valid packet either decodes or errors.
        let full = discover();
        for n in 0..full.len() {
            let _ = Packet::decode(&full[..n]);
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            let mut d = discover();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = (x as usize) % d.len();
                d[i] = (x >> 8) as u8;
            }
            if let Ok(p) = Packet::decode(&d) {
                let _ = (
                    p.client_arch(),
                    p.user_classes(),
                    p.message_type(),
                    p.mac_string(),
                    p.encode(),
                );
            }
        }
    }

    #[test]
    fn overloaded_file_field_carries_options() {
        let mut d = discover();
        d.pop();
        d.extend_from_slice(&[52, 1, 1, 255]);
        d[108] = 12;
        d[109] = 2;
        d[110] = b'h';
        d[111] = b'x';
        d[112] = 255;
        let p = Packet::decode(&d).expect("decodes");
        assert_eq!(p.get_str(opt::HOSTNAME).as_deref(), Some("hx"));
        assert!(p.file.is_empty());
    }
}
