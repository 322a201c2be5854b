//! The RMCP+ (IPMI 2.0 over LAN) codec: pure functions over bytes, no I/O, fuzzed
//! (`fuzz/fuzz_targets/ipmi_packet.rs`). It owns the packet layers and the session cryptography:
//!
//! ```text
//! RMCP header        06 00 ff 07                      (version 1.0, no ACK, class IPMI)
//! session header     06 | payload type | session ID (LE32) | session seq (LE32) | length (LE16)
//! payload            open session / RAKP 1-4 / IPMI message   (AES-CBC-128: IV ‖ ciphertext)
//! integrity trailer  ff… pad | pad length | 07 | AuthCode (HMAC over session header … 07)
//! ```
//!
//! Everything here follows the IPMI 2.0 specification (§13); RAKP is the authenticated key
//! exchange that turns the user's password into session keys without sending it.

use std::fmt;

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// What went wrong in a packet from the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet too short ({0} bytes) for {1}")]
    Short(usize, &'static str),
    #[error("not an RMCP packet for IPMI (header {0:02x?})")]
    NotRmcp([u8; 4]),
    #[error("not an RMCP+ (IPMI 2.0) session (auth type {0:#04x})")]
    NotRmcpPlus(u8),
    #[error("payload length {0} does not fit the {1}-byte packet")]
    BadLength(usize, usize),
    #[error("integrity check failed (wrong session key or a forged packet)")]
    Integrity,
    #[error("a packet of this session arrived without integrity protection")]
    Unauthenticated,
    #[error("encrypted payload is not a whole number of AES blocks ({0} bytes)")]
    CipherLength(usize),
    #[error("confidentiality pad is wrong after decryption")]
    BadPad,
    #[error("IPMI message checksum {0} is wrong")]
    Checksum(u8),
    #[error("unexpected payload type {0:#04x}")]
    PayloadType(u8),
}

/// Payload types (IPMI 2.0 table 13-16) carried in the session header's low six bits.
pub mod payload {
    pub const IPMI: u8 = 0x00;
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub const RAKP1: u8 = 0x12;
    pub const RAKP2: u8 = 0x13;
    pub const RAKP3: u8 = 0x14;
    pub const RAKP4: u8 = 0x15;
}

const ENCRYPTED: u8 = 0x80;
const AUTHENTICATED: u8 = 0x40;
const AUTH_TYPE_RMCP_PLUS: u8 = 0x06;
const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xff, 0x07];
/// The slave address a remote console uses for itself (a "software ID", IPMI 2.0 §5.5).
pub const CONSOLE_SWID: u8 = 0x81;
/// The BMC's own IPMB address.
pub const BMC_ADDR: u8 = 0x20;

/// The cipher suites we speak (IPMI 2.0 table 22-20). Both use AES-CBC-128 for confidentiality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128: what every IPMI 2.0 BMC (and ipmi_sim) does.
    Suite3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128: what current BMCs keep once 3 is disabled.
    Suite17,
}

impl CipherSuite {
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    pub fn from_id(id: u8) -> Option<CipherSuite> {
        match id {
            3 => Some(CipherSuite::Suite3),
            17 => Some(CipherSuite::Suite17),
            _ => None,
        }
    }

    /// Authentication algorithm number in Open Session: 1 RAKP-HMAC-SHA1, 3 RAKP-HMAC-SHA256.
    pub fn auth_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x03,
        }
    }

    /// Integrity algorithm number: 1 HMAC-SHA1-96, 4 HMAC-SHA256-128.
    pub fn integrity_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x04,
        }
    }

    /// Confidentiality algorithm number: 1 AES-CBC-128.
    pub fn confidentiality_alg(self) -> u8 {
        0x01
    }

    /// Full-length HMAC with the suite's hash (RAKP 2/3 auth codes, SIK, K1, K2).
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail; an empty result would
        // only make a verification fail, never pass.
        match self {
            CipherSuite::Suite3 => match Hmac::<Sha1>::new_from_slice(key) {
                Ok(mut m) => {
                    parts.iter().for_each(|p| m.update(p));
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            CipherSuite::Suite17 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    parts.iter().for_each(|p| m.update(p));
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// Hash output length: 20 (SHA-1) or 32 (SHA-256). K1/K2 constants have this length.
    pub fn hash_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Truncated length of the RAKP4 integrity check value and of every packet's AuthCode:
    /// 12 for HMAC-SHA1-96, 16 for HMAC-SHA256-128.
    pub fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }
}

/// Session keys derived after RAKP: K1 signs packets, the first 16 bytes of K2 are the AES key.
/// Debug never shows them.
#[derive(Clone)]
pub struct Keys {
    pub suite: CipherSuite,
    k1: Vec<u8>,
    aes: [u8; 16],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("suite", &self.suite)
            .field("k1", &"<redacted>")
            .field("aes", &"<redacted>")
            .finish()
    }
}

impl Keys {
    /// K1 = HMAC_SIK(0x01 × hash length), K2 = HMAC_SIK(0x02 × hash length) (IPMI 2.0 §13.32).
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> Keys {
        let n = suite.hash_len();
        let k1 = suite.hmac(sik, &[&vec![0x01; n]]);
        let k2 = suite.hmac(sik, &[&vec![0x02; n]]);
        let mut aes = [0u8; 16];
        for (d, s) in aes.iter_mut().zip(k2.iter()) {
            *d = *s;
        }
        Keys { suite, k1, aes }
    }

    pub fn k1(&self) -> &[u8] {
        &self.k1
    }

    pub fn aes_key(&self) -> &[u8; 16] {
        &self.aes
    }

    /// The AuthCode over `covered` (session header through next-header byte).
    pub fn auth_code(&self, covered: &[u8]) -> Vec<u8> {
        let mut mac = self.suite.hmac(&self.k1, &[covered]);
        mac.truncate(self.suite.icv_len());
        mac
    }
}

/// One RMCP+ packet, payload in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Payload type without the encrypted/authenticated bits.
    pub payload_type: u8,
    pub session_id: u32,
    pub seq: u32,
    pub payload: Vec<u8>,
}

/// Builds a packet. With `keys`, the payload is AES-CBC-128 encrypted under `iv` and the packet
/// carries an integrity trailer; without, it goes in clear (session setup: open session, RAKP).
pub fn encode_packet(p: &Packet, keys: Option<&Keys>, iv: [u8; 16]) -> Vec<u8> {
    let body = match keys {
        Some(k) => encrypt(k, &p.payload, iv),
        None => p.payload.clone(),
    };
    let mut out = Vec::with_capacity(16 + body.len() + 24);
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_TYPE_RMCP_PLUS);
    let flags = if keys.is_some() {
        ENCRYPTED | AUTHENTICATED
    } else {
        0
    };
    out.push(flags | (p.payload_type & 0x3f));
    out.extend_from_slice(&p.session_id.to_le_bytes());
    out.extend_from_slice(&p.seq.to_le_bytes());
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    if let Some(k) = keys {
        // The covered span (auth type … next header) must be a multiple of 4 bytes long.
        let covered = out.len() - 4 + 2;
        let pad = (4 - covered % 4) % 4;
        out.extend(std::iter::repeat_n(0xff, pad));
        out.push(pad as u8);
        out.push(0x07);
        let code = k.auth_code(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

/// Parses a packet. With `keys` the packet must be authenticated (checked) and, when its
/// encrypted bit is set, is decrypted; without, it must be a clear setup packet.
pub fn decode_packet(b: &[u8], keys: Option<&Keys>) -> Result<Packet, WireError> {
    if b.len() < 16 {
        return Err(WireError::Short(b.len(), "an RMCP+ header"));
    }
    let rmcp = [b[0], b[1], b[2], b[3]];
    if rmcp[0] != 0x06 || rmcp[3] & 0x1f != 0x07 {
        return Err(WireError::NotRmcp(rmcp));
    }
    if b[4] != AUTH_TYPE_RMCP_PLUS {
        return Err(WireError::NotRmcpPlus(b[4]));
    }
    let flags = b[5];
    let payload_type = flags & 0x3f;
    let session_id = u32::from_le_bytes([b[6], b[7], b[8], b[9]]);
    let seq = u32::from_le_bytes([b[10], b[11], b[12], b[13]]);
    let len = usize::from(u16::from_le_bytes([b[14], b[15]]));
    let end = 16 + len;
    if end > b.len() {
        return Err(WireError::BadLength(len, b.len()));
    }
    let body = &b[16..end];
    let payload = match keys {
        None => {
            if flags & (ENCRYPTED | AUTHENTICATED) != 0 {
                return Err(WireError::PayloadType(flags));
            }
            body.to_vec()
        }
        Some(k) => {
            if flags & AUTHENTICATED == 0 {
                return Err(WireError::Unauthenticated);
            }
            // Trailer: pad (0-3 bytes of 0xff), pad length, next header, AuthCode.
            let icv = k.suite.icv_len();
            if b.len() < end + 2 + icv {
                return Err(WireError::Short(b.len(), "the integrity trailer"));
            }
            let code_at = b.len() - icv;
            let pad_len = usize::from(b[code_at - 2]);
            if code_at - 2 != end + pad_len || pad_len > 3 || b[code_at - 1] != 0x07 {
                return Err(WireError::BadLength(len, b.len()));
            }
            let expect = k.auth_code(&b[4..code_at]);
            if !constant_time_eq(&expect, &b[code_at..]) {
                return Err(WireError::Integrity);
            }
            if flags & ENCRYPTED != 0 {
                decrypt(k, body)?
            } else {
                body.to_vec()
            }
        }
    };
    Ok(Packet {
        payload_type,
        session_id,
        seq,
        payload,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// AES-CBC-128 payload (IPMI 2.0 §13.29): IV ‖ E(data ‖ 01 02 … n ‖ n), n pad bytes so the
/// plaintext fills whole 16-byte blocks.
pub fn encrypt(k: &Keys, data: &[u8], iv: [u8; 16]) -> Vec<u8> {
    let pad = (16 - (data.len() + 1) % 16) % 16;
    let mut buf = Vec::with_capacity(16 + data.len() + pad + 1);
    buf.extend_from_slice(data);
    buf.extend((1..=pad).map(|i| i as u8));
    buf.push(pad as u8);
    let n = buf.len();
    let enc = cbc::Encryptor::<aes::Aes128>::new(k.aes_key().into(), &iv.into());
    // The buffer is a whole number of blocks, so NoPadding cannot fail.
    let ct = match enc.encrypt_padded_mut::<NoPadding>(&mut buf, n) {
        Ok(ct) => ct.to_vec(),
        Err(_) => Vec::new(),
    };
    let mut out = iv.to_vec();
    out.extend_from_slice(&ct);
    out
}

/// The inverse of [`encrypt`]: checks block length and the pad.
pub fn decrypt(k: &Keys, body: &[u8]) -> Result<Vec<u8>, WireError> {
    if body.len() < 32 || !body.len().is_multiple_of(16) {
        return Err(WireError::CipherLength(body.len()));
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&body[..16]);
    let mut buf = body[16..].to_vec();
    let dec = cbc::Decryptor::<aes::Aes128>::new(k.aes_key().into(), &iv.into());
    let plain = dec
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| WireError::CipherLength(body.len()))?;
    let Some((&pad, rest)) = plain.split_last() else {
        return Err(WireError::BadPad);
    };
    let pad = usize::from(pad);
    if pad > 15 || pad > rest.len() {
        return Err(WireError::BadPad);
    }
    let (data, pads) = rest.split_at(rest.len() - pad);
    if pads
        .iter()
        .enumerate()
        .any(|(i, &p)| usize::from(p) != i + 1)
    {
        return Err(WireError::BadPad);
    }
    Ok(data.to_vec())
}

/// Two's-complement checksum: the byte that makes the sum of `bytes` plus itself zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub netfn: u8,
    pub cmd: u8,
    pub lun: u8,
    pub data: Vec<u8>,
}

/// IPMI LAN message (IPMI 2.0 §13.8): rsSA, netFn/rsLUN, chk1, rqSA, rqSeq/rqLUN, cmd, data, chk2.
pub fn encode_request(rq_seq: u8, r: &Request) -> Vec<u8> {
    let mut m = Vec::with_capacity(7 + r.data.len());
    m.push(BMC_ADDR);
    m.push((r.netfn << 2) | (r.lun & 3));
    m.push(checksum(&m[0..2]));
    m.push(CONSOLE_SWID);
    m.push((rq_seq << 2) & 0xfc);
    m.push(r.cmd);
    m.extend_from_slice(&r.data);
    m.push(checksum(&m[3..]));
    m
}

/// An IPMI response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The response netFn (request netFn | 1).
    pub netfn: u8,
    pub cmd: u8,
    pub rq_seq: u8,
    pub completion: u8,
    pub data: Vec<u8>,
}

/// Parses a response message: rqSA, netFn/rqLUN, chk1, rsSA, rqSeq/rsLUN, cmd, cc, data, chk2.
pub fn decode_response(m: &[u8]) -> Result<Response, WireError> {
    if m.len() < 8 {
        return Err(WireError::Short(m.len(), "an IPMI response"));
    }
    if checksum(&m[0..2]) != m[2] {
        return Err(WireError::Checksum(1));
    }
    let (body, chk) = m.split_at(m.len() - 1);
    if checksum(&body[3..]) != chk[0] {
        return Err(WireError::Checksum(2));
    }
    Ok(Response {
        netfn: m[1] >> 2,
        rq_seq: m[4] >> 2,
        cmd: m[5],
        completion: m[6],
        data: body[7..].to_vec(),
    })
}

/// Open Session Request (IPMI 2.0 §13.17).
pub fn open_session_request(tag: u8, max_priv: u8, console_sid: u32, s: CipherSuite) -> Vec<u8> {
    let mut m = vec![tag, max_priv, 0, 0];
    m.extend_from_slice(&console_sid.to_le_bytes());
    for (kind, alg) in [
        (0u8, s.auth_alg()),
        (1, s.integrity_alg()),
        (2, s.confidentiality_alg()),
    ] {
        m.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
    }
    m
}

/// Open Session Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    pub tag: u8,
    /// RMCP+ status code (0 = accepted); see [`rmcp_status`].
    pub status: u8,
    pub max_priv: u8,
    /// None when a refusal leaves it out.
    pub console_sid: Option<u32>,
    pub bmc_sid: u32,
    /// (authentication, integrity, confidentiality) algorithms the BMC chose.
    pub algs: (u8, u8, u8),
}

pub fn parse_open_session_response(m: &[u8]) -> Result<OpenSessionResponse, WireError> {
    if m.len() < 2 {
        return Err(WireError::Short(m.len(), "an Open Session Response"));
    }
    let le = |i: usize| {
        m.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let status = m[1];
    // An error response may stop after the console session ID, or (ipmi_sim) after the status.
    if status != 0 {
        return Ok(OpenSessionResponse {
            tag: m[0],
            status,
            max_priv: m.get(2).copied().unwrap_or(0),
            console_sid: le(4),
            bmc_sid: 0,
            algs: (0, 0, 0),
        });
    }
    if m.len() < 36 {
        return Err(WireError::Short(m.len(), "an Open Session Response"));
    }
    Ok(OpenSessionResponse {
        tag: m[0],
        status,
        max_priv: m[2],
        console_sid: le(4),
        bmc_sid: le(8).unwrap_or(0),
        algs: (m[16], m[24], m[32]),
    })
}

/// RAKP Message 1 (IPMI 2.0 §13.20): tag, BMC session ID, our random number, role, user name.
pub fn rakp1(tag: u8, bmc_sid: u32, rm: &[u8; 16], role: u8, user: &[u8]) -> Vec<u8> {
    let mut m = vec![tag, 0, 0, 0];
    m.extend_from_slice(&bmc_sid.to_le_bytes());
    m.extend_from_slice(rm);
    m.extend_from_slice(&[role, 0, 0, user.len() as u8]);
    m.extend_from_slice(user);
    m
}

/// RAKP Message 2: the BMC's random number, GUID and key exchange authentication code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    pub rc: [u8; 16],
    pub guid: [u8; 16],
    pub auth: Vec<u8>,
}

pub fn parse_rakp2(m: &[u8]) -> Result<Rakp2, WireError> {
    if m.len() < 2 || (m[1] == 0 && m.len() < 8) {
        return Err(WireError::Short(m.len(), "RAKP message 2"));
    }
    // A refusal may be cut short after its status byte (ipmi_sim does this); 0 then stands in
    // for the session ID, which the caller does not check on refusals.
    let console_sid = m
        .get(4..8)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let mut r = Rakp2 {
        tag: m[0],
        status: m[1],
        console_sid,
        rc: [0; 16],
        guid: [0; 16],
        auth: Vec::new(),
    };
    if r.status != 0 {
        return Ok(r);
    }
    if m.len() < 40 {
        return Err(WireError::Short(m.len(), "RAKP message 2"));
    }
    r.rc.copy_from_slice(&m[8..24]);
    r.guid.copy_from_slice(&m[24..40]);
    r.auth = m[40..].to_vec();
    Ok(r)
}

/// RAKP Message 3: tag, status, BMC session ID, our key exchange authentication code.
pub fn rakp3(tag: u8, status: u8, bmc_sid: u32, auth: &[u8]) -> Vec<u8> {
    let mut m = vec![tag, status, 0, 0];
    m.extend_from_slice(&bmc_sid.to_le_bytes());
    m.extend_from_slice(auth);
    m
}

/// RAKP Message 4: the BMC's integrity check value over the session it built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    pub icv: Vec<u8>,
}

pub fn parse_rakp4(m: &[u8]) -> Result<Rakp4, WireError> {
    if m.len() < 2 || (m[1] == 0 && m.len() < 8) {
        return Err(WireError::Short(m.len(), "RAKP message 4"));
    }
    Ok(Rakp4 {
        tag: m[0],
        status: m[1],
        console_sid: m
            .get(4..8)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        icv: m.get(8..).unwrap_or_default().to_vec(),
    })
}

/// The RAKP exchange's inputs, and the codes and keys computed from them (IPMI 2.0 §13.31).
/// "m" is the remote console (us), "c" the managed system (the BMC). Debug hides the password.
#[derive(Clone)]
pub struct Handshake {
    pub suite: CipherSuite,
    pub password: Vec<u8>,
    /// BMC key (Kg); None means "same as the password", the usual one-key configuration.
    pub kg: Option<Vec<u8>>,
    pub user: Vec<u8>,
    /// RAKP1 role byte: requested privilege | 0x10 for name-only lookup.
    pub role: u8,
    pub console_sid: u32,
    pub bmc_sid: u32,
    pub rm: [u8; 16],
    pub rc: [u8; 16],
    pub guid: [u8; 16],
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("suite", &self.suite)
            .field("password", &"<redacted>")
            .field("kg", &self.kg.as_ref().map(|_| "<redacted>"))
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("role", &self.role)
            .field("console_sid", &self.console_sid)
            .field("bmc_sid", &self.bmc_sid)
            .finish()
    }
}

impl Handshake {
    /// What RAKP2's auth code must be: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENm, UNAMEm).
    /// A match proves the BMC knows the password (and that we typed the right one).
    pub fn rakp2_auth(&self) -> Vec<u8> {
        self.suite.hmac(
            &self.password,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// RAKP3's auth code: HMAC_Kuid(Rc, SIDm, ROLEm, ULENm, UNAMEm), our proof to the BMC.
    pub fn rakp3_auth(&self) -> Vec<u8> {
        self.suite.hmac(
            &self.password,
            &[
                &self.rc,
                &self.console_sid.to_le_bytes(),
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// Session Integrity Key: HMAC_Kg(Rm, Rc, ROLEm, ULENm, UNAMEm).
    pub fn sik(&self) -> Vec<u8> {
        let kg = self.kg.as_deref().unwrap_or(&self.password);
        self.suite.hmac(
            kg,
            &[
                &self.rm,
                &self.rc,
                &[self.role, self.user.len() as u8],
                &self.user,
            ],
        )
    }

    /// What RAKP4's integrity check value must be: HMAC_SIK(Rm, SIDc, GUIDc), truncated.
    pub fn rakp4_icv(&self) -> Vec<u8> {
        let mut v = self.suite.hmac(
            &self.sik(),
            &[&self.rm, &self.bmc_sid.to_le_bytes(), &self.guid],
        );
        v.truncate(self.suite.icv_len());
        v
    }

    pub fn keys(&self) -> Keys {
        Keys::derive(self.suite, &self.sik())
    }

    /// Constant-time comparison for the codes the BMC sends.
    pub fn verify(expected: &[u8], got: &[u8]) -> bool {
        constant_time_eq(expected, got)
    }
}

/// RMCP+ status codes of Open Session and RAKP replies (IPMI 2.0 table 13-15).
pub fn rmcp_status(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0a => "unauthorized role or privilege level requested",
        0x0b => "insufficient resources to create a session at the requested role",
        0x0c => "invalid name length",
        0x0d => "unauthorized name",
        0x0e => "unauthorized GUID",
        0x0f => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// IPMI completion codes (IPMI 2.0 table 5-2), worded as xCAT's ipmi.pm words them.
pub fn completion_name(code: u8) -> &'static str {
    match code {
        0x00 => "command completed normally",
        0xc0 => "node busy, command could not be processed",
        0xc1 => "invalid or unsupported command",
        0xc2 => "command invalid for given LUN",
        0xc3 => "timeout while processing command, response unavailable",
        0xc4 => "out of space, could not execute command",
        0xc5 => "reservation canceled or invalid reservation ID",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xca => "cannot return number of requested data bytes",
        0xcb => "requested sensor, data, or record not present",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for specified sensor or record type",
        0xce => "command response could not be provided",
        0xcf => "cannot execute duplicated request",
        0xd0 => "SDR repository in update mode",
        0xd1 => "device in firmware update mode",
        0xd2 => "BMC initialization in progress",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "command or request parameter(s) not supported in present state",
        0xd6 => "sub-function disabled or unavailable",
        0xff => "unspecified error",
        0x80..=0xbe => "command-specific error",
        _ => "unknown completion code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// A fixed handshake. The expected values for suite 17 below were computed independently
    /// with Python's hmac/hashlib (see `tests/data/ipmi/suite17-vectors.py`, which prints them),
    /// not with this code.
    fn handshake(suite: CipherSuite) -> Handshake {
        Handshake {
            suite,
            password: b"tbpass123".to_vec(),
            kg: None,
            user: b"admin".to_vec(),
            role: 0x14,
            console_sid: 0xa0a1a2a3,
            bmc_sid: 0x01020304,
            rm: core::array::from_fn(|i| i as u8),
            rc: core::array::from_fn(|i| 0x10 + i as u8),
            guid: core::array::from_fn(|i| 0xf0 - i as u8),
        }
    }

    #[test]
    fn suite17_key_exchange_matches_independent_vectors() {
        let h = handshake(CipherSuite::Suite17);
        assert_eq!(
            h.rakp2_auth(),
            hex("983d95be9a6236b1255a3809aef685ffa4cdee1eecdfaa85bf6fdb94f5499115")
        );
        assert_eq!(
            h.rakp3_auth(),
            hex("c4c6884d50ef53d7185183d75e3b64f2a4fb7b7fa50e99d37541e881eadd1a24")
        );
        assert_eq!(
            h.sik(),
            hex("8958a24986b1505457718fcb8ec4decfc77c91d74eb3040d877fc99bfcf9310b")
        );
        assert_eq!(h.rakp4_icv(), hex("3fc1686fd3db697e475b7553dcee314d"));
        let k = h.keys();
        assert_eq!(
            k.k1(),
            &hex("e7145a63dcbe488b03d5624e0dc0ce8e844da5792d66895e390f78ea2aa67a8a")[..]
        );
        assert_eq!(k.aes_key(), &hex("99cad39c8c6fddea40ccf19b2351f57d")[..]);
        // HMAC-SHA256-128 over a fixed span.
        assert_eq!(
            k.auth_code(b"\x06\xc0\x04\x03\x02\x01"),
            hex("8a4d73e499443d22e09c253045eef0f5")
        );
    }

    #[test]
    fn suite3_lengths_and_roundtrip() {
        let h = handshake(CipherSuite::Suite3);
        assert_eq!(h.rakp2_auth().len(), 20);
        assert_eq!(h.rakp4_icv().len(), 12);
        let k = h.keys();
        for n in 0..40 {
            let payload: Vec<u8> = (0..n as u8).collect();
            let p = Packet {
                payload_type: payload::IPMI,
                session_id: 7,
                seq: 9,
                payload,
            };
            let b = encode_packet(&p, Some(&k), [0x55; 16]);
            // Covered span multiple of 4, trailer = AuthCode of 12 bytes.
            assert_eq!((b.len() - 4 - 12) % 4, 0);
            assert_eq!(decode_packet(&b, Some(&k)), Ok(p.clone()));
            let mut bad = b.clone();
            bad[20] ^= 1;
            assert_eq!(decode_packet(&bad, Some(&k)), Err(WireError::Integrity));
        }
    }

    #[test]
    fn suite17_packets_roundtrip() {
        let k = handshake(CipherSuite::Suite17).keys();
        let p = Packet {
            payload_type: payload::IPMI,
            session_id: 1,
            seq: 2,
            payload: encode_request(
                5,
                &Request {
                    netfn: 0,
                    cmd: 1,
                    lun: 0,
                    data: vec![],
                },
            ),
        };
        let b = encode_packet(&p, Some(&k), [1; 16]);
        assert_eq!(decode_packet(&b, Some(&k)), Ok(p));
    }

    #[test]
    fn ipmi_message_checksums() {
        // Get Chassis Status from software ID 0x81 with rqSeq 1, as the spec's layout gives it.
        let m = encode_request(
            1,
            &Request {
                netfn: 0,
                cmd: 1,
                lun: 0,
                data: vec![],
            },
        );
        assert_eq!(m, vec![0x20, 0x00, 0xe0, 0x81, 0x04, 0x01, 0x7a]);
        // A response: rqSA 81, netFn 01 (chassis response), chk, rsSA 20, seq 1, cmd 1, cc 0, data.
        let mut r = vec![0x81, 0x04];
        r.push(checksum(&r));
        r.extend_from_slice(&[0x20, 0x04, 0x01, 0x00, 0x01, 0x00, 0x00]);
        r.push(checksum(&r[3..]));
        let d = decode_response(&r).expect("response");
        assert_eq!((d.netfn, d.cmd, d.rq_seq, d.completion), (1, 1, 1, 0));
        assert_eq!(d.data, vec![1, 0, 0]);
        let mut bad = r.clone();
        bad[8] ^= 1;
        assert_eq!(decode_response(&bad), Err(WireError::Checksum(2)));
    }

    #[test]
    fn setup_messages_layout() {
        let m = open_session_request(7, 4, 0x11223344, CipherSuite::Suite17);
        assert_eq!(m.len(), 32);
        assert_eq!(&m[..8], &[7, 4, 0, 0, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&m[8..16], &[0, 0, 0, 8, 3, 0, 0, 0]);
        assert_eq!(&m[16..24], &[1, 0, 0, 8, 4, 0, 0, 0]);
        assert_eq!(&m[24..32], &[2, 0, 0, 8, 1, 0, 0, 0]);
        let r1 = rakp1(8, 0x0a0b0c0d, &[9; 16], 0x14, b"admin");
        assert_eq!(r1.len(), 28 + 5);
        assert_eq!(r1[24], 0x14);
        assert_eq!(r1[27], 5);
        // A refused Open Session is short; it still parses.
        let refused = parse_open_session_response(&[7, 0x11, 0, 0, 1, 2, 3, 4]).expect("short");
        assert_eq!(
            (refused.status, refused.console_sid),
            (0x11, Some(0x04030201))
        );
        // ipmi_sim refuses suite 17 with just [tag, status].
        let refused = parse_open_session_response(&[7, 0x11]).expect("shorter");
        assert_eq!((refused.status, refused.console_sid), (0x11, None));
        // A successful RAKP2 must be whole; a refusal may be two bytes.
        assert!(parse_rakp2(&[1, 0, 3]).is_err());
        assert_eq!(parse_rakp2(&[1, 0x0d]).map(|r| r.status), Ok(0x0d));
        assert!(parse_rakp4(&[1, 0, 0, 0]).is_err());
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode_packet(&[], None).is_err());
        assert!(decode_packet(
            &[0x06, 0, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            None
        )
        .is_err());
        let mut p = encode_packet(
            &Packet {
                payload_type: 0x11,
                session_id: 0,
                seq: 0,
                payload: vec![1, 2],
            },
            None,
            [0; 16],
        );
        assert!(decode_packet(&p, None).is_ok());
        p[14] = 0xff;
        assert!(matches!(
            decode_packet(&p, None),
            Err(WireError::BadLength(..))
        ));
    }
}
