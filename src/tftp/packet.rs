//! TFTP messages (RFC 1350) and option negotiation (RFC 2347 options, 2348 blksize, 2349 timeout
//! and tsize, 7440 windowsize) as a pure codec: bytes ↔ [`Packet`], options → [`Negotiated`], no I/O.
//!
//! Decoding checks every length before using it and is lenient where real clients are sloppy
//! (padding after the last option, an ERROR message without its NUL); encoding always writes what
//! RFC 1350 says. [`negotiate`] applies RFC 2347's rules: unknown options and unusable values are
//! left out of the OACK (the client then uses the default), never an error.

use std::time::Duration;

/// Opcodes (RFC 1350 §5, RFC 2347 for OACK).
pub mod op {
    pub const RRQ: u16 = 1;
    pub const WRQ: u16 = 2;
    pub const DATA: u16 = 3;
    pub const ACK: u16 = 4;
    pub const ERROR: u16 = 5;
    pub const OACK: u16 = 6;
}

/// Smallest and largest block sizes RFC 2348 allows; 512 is RFC 1350's fixed size.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
pub const DEFAULT_BLKSIZE: u16 = 512;
/// DATA/ACK header: opcode and block number.
pub const DATA_HEADER: usize = 4;

/// TFTP error codes (RFC 1350 §5, 8 from RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    DiskFull = 3,
    IllegalOperation = 4,
    UnknownTid = 5,
    FileExists = 6,
    NoSuchUser = 7,
    OptionRefused = 8,
}

/// Transfer mode of a request. Names are case-insensitive on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
    Mail,
    /// Anything else, lower-cased (e.g. a client's typo); the server refuses it.
    Other(String),
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s.to_ascii_lowercase().as_str() {
            "octet" => Mode::Octet,
            "netascii" => Mode::Netascii,
            "mail" => Mode::Mail,
            other => Mode::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
            Mode::Mail => "mail",
            Mode::Other(s) => s,
        }
    }
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The file name exactly as sent (not yet checked; see `source::TftpPath`).
    pub filename: String,
    pub mode: Mode,
    /// Options in the order sent; names lower-cased (RFC 2347: case-insensitive), values as sent.
    pub options: Vec<(String, String)>,
}

/// A TFTP message. DATA borrows its payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request),
    Wrq(Request),
    Data { block: u16, data: &'a [u8] },
    Ack(u16),
    Error { code: u16, message: String },
    Oack(Vec<(String, String)>),
}

/// Why a datagram is not a TFTP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("datagram of {0} bytes is too short for a TFTP message")]
    Short(usize),
    #[error("unknown TFTP opcode {0}")]
    UnknownOpcode(u16),
    #[error("the {0} is not NUL-terminated")]
    Unterminated(&'static str),
    #[error("the {0} is not valid UTF-8")]
    NotText(&'static str),
    #[error("empty file name")]
    EmptyFilename,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Splits off one NUL-terminated string; `None` when there is no NUL.
fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|&c| c == 0)?;
    Some((&b[..end], &b[end + 1..]))
}

fn text<'b>(b: &'b [u8], what: &'static str) -> Result<&'b str, PacketError> {
    std::str::from_utf8(b).map_err(|_| PacketError::NotText(what))
}

/// Options after the mode: NUL-terminated name/value pairs. An empty name (padding some ROMs
/// append) or an incomplete last pair ends the list; bytes that are not UTF-8 skip that pair.
fn parse_options(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some((name, rest)) = cstr(b) {
        if name.is_empty() {
            break;
        }
        let Some((value, rest)) = cstr(rest) else {
            break;
        };
        if let (Ok(n), Ok(v)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
            out.push((n.to_ascii_lowercase(), v.to_string()));
        }
        b = rest;
    }
    out
}

fn parse_request(b: &[u8]) -> Result<Request, PacketError> {
    let (name, rest) = cstr(b).ok_or(PacketError::Unterminated("file name"))?;
    if name.is_empty() {
        return Err(PacketError::EmptyFilename);
    }
    let filename = text(name, "file name")?.to_string();
    let (mode, rest) = cstr(rest).ok_or(PacketError::Unterminated("mode"))?;
    let mode = Mode::parse(text(mode, "mode")?);
    Ok(Request {
        filename,
        mode,
        options: parse_options(rest),
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl<'a> Packet<'a> {
    /// Decodes a datagram.
    pub fn decode(b: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        let Some(opcode) = be16(b, 0) else {
            return Err(PacketError::Short(b.len()));
        };
        let body = &b[2..];
        match opcode {
            op::RRQ => Ok(Packet::Rrq(parse_request(body)?)),
            op::WRQ => Ok(Packet::Wrq(parse_request(body)?)),
            op::DATA => {
                let block = be16(b, 2).ok_or(PacketError::Short(b.len()))?;
                Ok(Packet::Data {
                    block,
                    data: &b[DATA_HEADER..],
                })
            }
            op::ACK => Ok(Packet::Ack(be16(b, 2).ok_or(PacketError::Short(b.len()))?)),
            op::ERROR => {
                let code = be16(b, 2).ok_or(PacketError::Short(b.len()))?;
                // Lenient: a missing terminator (or bytes after it) still leaves a readable message.
                let raw = &b[4..];
                let msg = cstr(raw).map(|(m, _)| m).unwrap_or(raw);
                Ok(Packet::Error {
                    code,
                    message: String::from_utf8_lossy(msg).into_owned(),
                })
            }
            op::OACK => Ok(Packet::Oack(parse_options(body))),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let request = |out: &mut Vec<u8>, opcode: u16, r: &Request| {
            out.extend_from_slice(&opcode.to_be_bytes());
            put_str(out, &r.filename);
            put_str(out, r.mode.as_str());
            for (n, v) in &r.options {
                put_str(out, n);
                put_str(out, v);
            }
        };
        match self {
            Packet::Rrq(r) => request(out, op::RRQ, r),
            Packet::Wrq(r) => request(out, op::WRQ, r),
            Packet::Data { block, data } => {
                out.extend_from_slice(&data_header(*block));
                out.extend_from_slice(data);
            }
            Packet::Ack(block) => {
                out.extend_from_slice(&op::ACK.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&op::ERROR.to_be_bytes());
                out.extend_from_slice(&code.to_be_bytes());
                // A NUL inside would end the message early on the client; drop it.
                out.extend(message.bytes().filter(|&c| c != 0));
                out.push(0);
            }
            Packet::Oack(options) => {
                out.extend_from_slice(&op::OACK.to_be_bytes());
                for (n, v) in options {
                    put_str(out, n);
                    put_str(out, v);
                }
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// The opcode of a datagram, if it has one (to answer a malformed request, not other noise).
pub fn op_of(b: &[u8]) -> Option<u16> {
    be16(b, 0)
}

/// The 4-byte header of DATA block `block` (the server writes the payload right after it).
pub fn data_header(block: u16) -> [u8; DATA_HEADER] {
    let [a, b] = op::DATA.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

/// Longest ERROR text sent: the message stays within RFC 1350's 512 bytes (the server relies on
/// that: with segmentation offload on, only longer sends are cut into blocks).
pub const MAX_ERROR_TEXT: usize = 500;

/// An ERROR message (text cut to [`MAX_ERROR_TEXT`] bytes).
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut end = message.len().min(MAX_ERROR_TEXT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Packet::Error {
        code: code as u16,
        message: message[..end].to_string(),
    }
    .encode()
}

/// What the server is willing to grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest block size granted (≤ [`MAX_BLKSIZE`]); the server lowers it to the path MTU.
    pub max_blksize: u16,
    /// Largest window granted (RFC 7440 allows up to 65535).
    pub max_windowsize: u16,
    /// Largest `blksize × windowsize`: what one transfer may hold in memory for retransmission.
    pub max_window_bytes: usize,
    /// Largest retransmission timeout (RFC 2349 `timeout`, seconds) granted. RFC 2349 lets the
    /// server only accept or ignore the value, so a larger one is left out of the OACK and the
    /// server keeps its own timeout: a client asking for 255 s cannot hold a slot for 25 minutes
    /// of retransmissions.
    pub max_timeout: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_blksize: MAX_BLKSIZE,
            max_windowsize: 64,
            max_window_bytes: 512 * 1024,
            max_timeout: 10,
        }
    }
}

/// A file as netascii sends it (RFC 1350, RFC 764): every LF becomes CR LF and every CR becomes
/// CR NUL, so the receiver's translation back gives exactly the original bytes, binary or not.
pub fn to_netascii(data: &[u8]) -> Vec<u8> {
    let extra = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let mut out = Vec::with_capacity(data.len() + extra);
    let mut rest = data;
    while let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(if rest[i] == b'\n' { b"\r\n" } else { b"\r\0" });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out
}

/// The outcome of negotiation: the transfer's parameters and the OACK that announces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    /// The client's retransmission timeout (RFC 2349), when it asked for one.
    pub timeout: Option<Duration>,
    /// Block number after 65535: 0 (what most clients expect) or 1 (tftpd-hpa's `rollover` option).
    pub rollover: u16,
    /// Options granted, in the client's order, with the values the server chose. Empty: no OACK,
    /// the transfer starts with DATA 1 under RFC 1350 defaults.
    pub oack: Vec<(String, String)>,
}

/// Applies RFC 2347's rules to a read request's options for a file of `size` bytes (`None`: the size
/// is not known before sending, as in netascii mode, and `tsize` is left out of the OACK, as
/// tftpd-hpa does). Unknown options, repeated ones and values the RFCs do not allow are ignored
/// (left out of the OACK); values above what the server grants are lowered, as RFC 2348 and 7440
/// allow.
pub fn negotiate(options: &[(String, String)], size: Option<u64>, limits: &Limits) -> Negotiated {
    let mut n = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        windowsize: 1,
        timeout: None,
        rollover: 0,
        oack: Vec::new(),
    };
    let max_blksize = limits.max_blksize.clamp(MIN_BLKSIZE, MAX_BLKSIZE);
    let mut windowsize_asked: Option<u16> = None;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in options {
        if seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        // Values are decimal ASCII; RFC 2347 allows nothing else (no sign, no spaces).
        let number = (!value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten();
        match (name.as_str(), number) {
            ("blksize", Some(v)) if v >= u64::from(MIN_BLKSIZE) => {
                n.blksize = v.min(u64::from(max_blksize)) as u16;
                n.oack.push((name.clone(), n.blksize.to_string()));
            }
            // RFC 2349 has the client send 0; whatever it sends (atftp's "tsize enable" sends
            // "enable"), the question is the same and the answer is the size.
            ("tsize", _) => {
                if let Some(size) = size {
                    n.oack.push((name.clone(), size.to_string()));
                }
            }
            ("timeout", Some(v)) if (1..=255).contains(&v) && v <= limits.max_timeout => {
                n.timeout = Some(Duration::from_secs(v));
                n.oack.push((name.clone(), v.to_string()));
            }
            ("windowsize", Some(v)) if (1..=65535).contains(&v) => {
                // The granted value depends on the final blksize (memory bound); filled in below.
                windowsize_asked = Some(v as u16);
                n.oack.push((name.clone(), String::new()));
            }
            ("rollover", Some(v)) if v <= 1 => {
                n.rollover = v as u16;
                n.oack.push((name.clone(), v.to_string()));
            }
            _ => {}
        }
    }
    if let Some(asked) = windowsize_asked {
        let by_memory = (limits.max_window_bytes / usize::from(n.blksize)).clamp(1, 65535) as u16;
        // At most half the block-number space, so an ACK always names one block of the window.
        n.windowsize = asked
            .min(limits.max_windowsize.clamp(1, 32768))
            .min(by_memory);
        for (name, value) in &mut n.oack {
            if name == "windowsize" {
                *value = n.windowsize.to_string();
            }
        }
    }
    n
}

/// The block number on the wire of the `index`-th block (1-based, unbounded): it counts up to
/// 65535 and then wraps to `rollover` (0 or 1), so files of any size can be sent.
pub fn wire_block(index: u64, rollover: u16) -> u16 {
    if index <= 65535 {
        return index as u16;
    }
    let base = u64::from(rollover.min(1));
    (base + (index - 65536) % (65536 - base)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// OVMF's PXE read request, as captured in the test bed (README §3).
    fn ovmf_rrq() -> Vec<u8> {
        b"\x00\x01ipxe.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00"
            .to_vec()
    }

    #[test]
    fn decodes_ovmf_read_request() {
        let b = ovmf_rrq();
        let Ok(Packet::Rrq(r)) = Packet::decode(&b) else {
            panic!("not an RRQ: {:?}", Packet::decode(&b));
        };
        assert_eq!(r.filename, "ipxe.efi");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(
            r.options,
            opts(&[("tsize", "0"), ("blksize", "1468"), ("windowsize", "4")])
        );
        assert_eq!(Packet::Rrq(r).encode(), b, "round trip");
    }

    #[test]
    fn names_and_modes_are_case_insensitive_and_padding_is_ignored() {
        let b = b"\x00\x01a/B\x00OcTeT\x00BLKSIZE\x00512\x00\x00\x00\x00";
        let Ok(Packet::Rrq(r)) = Packet::decode(b) else {
            panic!("not an RRQ");
        };
        assert_eq!(r.filename, "a/B", "file names keep their case");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(r.options, opts(&[("blksize", "512")]));
        // An option without its value is dropped, the rest kept.
        let b = b"\x00\x01f\x00netascii\x00tsize\x000\x00blksize\x00";
        let Ok(Packet::Rrq(r)) = Packet::decode(b) else {
            panic!("not an RRQ");
        };
        assert_eq!(r.mode, Mode::Netascii);
        assert_eq!(r.options, opts(&[("tsize", "0")]));
    }

    #[test]
    fn other_messages_round_trip() {
        let data = [7u8; 10];
        for p in [
            Packet::Data {
                block: 65535,
                data: &data,
            },
            Packet::Data {
                block: 0,
                data: &[],
            },
            Packet::Ack(0),
            Packet::Ack(513),
            Packet::Error {
                code: 8,
                message: "option refused".into(),
            },
            Packet::Oack(opts(&[("blksize", "1468"), ("tsize", "123")])),
            Packet::Wrq(Request {
                filename: "up".into(),
                mode: Mode::Octet,
                options: vec![],
            }),
        ] {
            let b = p.encode();
            assert_eq!(Packet::decode(&b).as_ref(), Ok(&p), "{p:?}");
        }
        assert_eq!(
            error(ErrorCode::FileNotFound, "no\0such"),
            b"\x00\x05\x00\x01nosuch\x00"
        );
        assert!(error(ErrorCode::NotDefined, &"é".repeat(400)).len() <= 512);
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        assert_eq!(Packet::decode(b""), Err(PacketError::Short(0)));
        assert_eq!(Packet::decode(b"\x00"), Err(PacketError::Short(1)));
        assert_eq!(Packet::decode(b"\x00\x04\x01"), Err(PacketError::Short(3)));
        assert_eq!(
            Packet::decode(b"\x00\x09xx"),
            Err(PacketError::UnknownOpcode(9))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01file"),
            Err(PacketError::Unterminated("file name"))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01file\x00octet"),
            Err(PacketError::Unterminated("mode"))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01\x00octet\x00"),
            Err(PacketError::EmptyFilename)
        );
        assert_eq!(
            Packet::decode(b"\x00\x01\xff\xfe\x00octet\x00"),
            Err(PacketError::NotText("file name"))
        );
        // An ERROR without its terminator still carries its message.
        assert_eq!(
            Packet::decode(b"\x00\x05\x00\x00abort"),
            Ok(Packet::Error {
                code: 0,
                message: "abort".into()
            })
        );
        // Every truncation and a few thousand mutations of a valid request decode or error.
        let full = ovmf_rrq();
        for n in 0..full.len() {
            let _ = Packet::decode(&full[..n]);
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            let mut d = ovmf_rrq();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = (x as usize) % d.len();
                d[i] = (x >> 8) as u8;
            }
            if let Ok(Packet::Rrq(r)) = Packet::decode(&d) {
                let _ = negotiate(&r.options, Some(1 << 40), &Limits::default());
            }
        }
    }

    #[test]
    fn negotiation_follows_the_rfcs() {
        let l = Limits::default();
        // OVMF: everything granted as asked.
        let n = negotiate(
            &opts(&[("tsize", "0"), ("blksize", "1468"), ("windowsize", "4")]),
            Some(1234),
            &l,
        );
        assert_eq!((n.blksize, n.windowsize, n.timeout), (1468, 4, None));
        assert_eq!(
            n.oack,
            opts(&[("tsize", "1234"), ("blksize", "1468"), ("windowsize", "4")])
        );
        // No options: no OACK, RFC 1350 defaults.
        let n = negotiate(&[], Some(10), &l);
        assert_eq!((n.blksize, n.windowsize, n.oack.len()), (512, 1, 0));
        // Bad values and unknown options are ignored; too-large values lowered; repeats ignored.
        let n = negotiate(
            &opts(&[
                ("blksize", "7"),
                ("blksize", "9000"),
                ("timeout", "0"),
                ("windowsize", "0"),
                ("multicast", ""),
                ("utimeout", "5000"),
            ]),
            Some(10),
            &l,
        );
        assert_eq!((n.blksize, n.windowsize), (512, 1), "{n:?}");
        assert!(n.oack.is_empty(), "{:?}", n.oack);
        let n = negotiate(&opts(&[("tsize", "enable")]), Some(77), &l);
        assert_eq!(
            n.oack,
            opts(&[("tsize", "77")]),
            "any tsize value asks for the size"
        );
        let n = negotiate(
            &opts(&[
                ("blksize", "100000"),
                ("windowsize", "65535"),
                ("timeout", "3"),
                ("rollover", "1"),
            ]),
            Some(10),
            &Limits {
                max_window_bytes: 1 << 30,
                ..l
            },
        );
        assert_eq!((n.blksize, n.windowsize), (MAX_BLKSIZE, 64));
        assert_eq!(n.timeout, Some(Duration::from_secs(3)));
        assert_eq!(n.rollover, 1);
        assert_eq!(
            n.oack,
            opts(&[
                ("blksize", "65464"),
                ("windowsize", "64"),
                ("timeout", "3"),
                ("rollover", "1"),
            ])
        );
        // The memory bound lowers the window for huge blocks; the path MTU lowers blksize.
        let n = negotiate(
            &opts(&[("windowsize", "64"), ("blksize", "65464")]),
            Some(10),
            &l,
        );
        assert_eq!((n.blksize, n.windowsize), (65464, 8));
        let n = negotiate(
            &opts(&[("blksize", "8192")]),
            Some(10),
            &Limits {
                max_blksize: 1468,
                ..l
            },
        );
        assert_eq!(n.oack, opts(&[("blksize", "1468")]));
        // Signs, spaces and overflow are not numbers.
        for v in ["+512", " 512", "512 ", "-1", "99999999999999999999999"] {
            assert!(
                negotiate(&opts(&[("blksize", v)]), Some(1), &l)
                    .oack
                    .is_empty(),
                "{v}"
            );
        }
    }

    #[test]
    fn block_numbers_roll_over() {
        assert_eq!(wire_block(1, 0), 1);
        assert_eq!(wire_block(65535, 0), 65535);
        assert_eq!(wire_block(65536, 0), 0);
        assert_eq!(wire_block(65537, 0), 1);
        assert_eq!(wire_block(65536 * 2, 0), 0);
        assert_eq!(wire_block(65536, 1), 1);
        assert_eq!(wire_block(65536 + 65534, 1), 65535);
        assert_eq!(wire_block(65536 + 65535, 1), 1);
    }

    #[test]
    fn netascii_translates_line_ends_and_carriage_returns() {
        assert_eq!(to_netascii(b""), b"");
        assert_eq!(to_netascii(b"plain"), b"plain");
        assert_eq!(to_netascii(b"a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(to_netascii(b"\r\n"), b"\r\0\r\n");
        assert_eq!(to_netascii(b"\x00\r\xff\n\n"), b"\x00\r\0\xff\r\n\r\n");
        // A size not known before translating: tsize is not granted (tftpd-hpa leaves it out).
        let n = negotiate(
            &opts(&[("tsize", "0"), ("blksize", "1024")]),
            None,
            &Limits::default(),
        );
        assert_eq!(n.oack, opts(&[("blksize", "1024")]));
    }
}
