//! ONC RPC version 2 (RFC 5531) as the NFS service speaks it: call headers with AUTH_NONE or
//! AUTH_SYS credentials, reply headers for every accepted and denied outcome, and TCP record
//! marking with a cap on record size. Pure codec; the socket loop lives in `server`.

use super::xdr::{Reader, Writer, XdrError};

pub const RPC_VERSION: u32 = 2;
pub const CALL: u32 = 0;
pub const REPLY: u32 = 1;

pub const AUTH_NONE: u32 = 0;
pub const AUTH_SYS: u32 = 1;

/// Largest record (all fragments together) a client may send: one maximal WRITE (1 MiB of data,
/// see `nfs3::MAX_IO`) plus room for its RPC and NFS headers. Anything larger ends the connection
/// before a byte of it is buffered.
pub const MAX_RECORD: u32 = (1 << 20) + 4096;
/// Largest credential or verifier body (RFC 5531: 400 bytes).
pub const MAX_AUTH: u32 = 400;
/// AUTH_SYS: machine name ≤ 255 bytes, ≤ 16 supplementary groups.
const MAX_MACHINE: u32 = 255;
const MAX_GIDS: u32 = 16;

/// Who the client says it is (AUTH_SYS is an assertion, not proof: the per-export address check
/// is what actually separates nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub gids: Vec<u32>,
}

impl Cred {
    /// AUTH_NONE callers act as nobody.
    pub fn nobody() -> Cred {
        Cred {
            uid: 65534,
            gid: 65534,
            gids: Vec::new(),
        }
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.gids.contains(&gid)
    }
}

/// Why a call gets a rejection rather than a procedure result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The header could not be decoded at all: no reply is possible, drop the connection.
    Garbled(XdrError),
    /// Not a CALL message (a client never sends replies to the server).
    NotCall,
    /// rpcvers ≠ 2: MSG_DENIED / RPC_MISMATCH.
    RpcMismatch { xid: u32 },
    /// Malformed or unsupported credential: MSG_DENIED / AUTH_ERROR with this auth_stat.
    Auth { xid: u32, stat: u32 },
}

pub const AUTH_BADCRED: u32 = 1;
pub const AUTH_TOOWEAK: u32 = 5;

/// A decoded call header; `args` is what follows it (the procedure's arguments).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    pub cred: Cred,
    pub args: &'a [u8],
}

/// Decodes a call message (one whole record).
pub fn decode_call(record: &[u8]) -> Result<Call<'_>, Refusal> {
    let mut r = Reader::new(record);
    let xid = r.u32("xid").map_err(Refusal::Garbled)?;
    let mtype = r.u32("msg_type").map_err(Refusal::Garbled)?;
    if mtype != CALL {
        return Err(Refusal::NotCall);
    }
    let rpcvers = r.u32("rpcvers").map_err(Refusal::Garbled)?;
    if rpcvers != RPC_VERSION {
        return Err(Refusal::RpcMismatch { xid });
    }
    let prog = r.u32("prog").map_err(Refusal::Garbled)?;
    let vers = r.u32("vers").map_err(Refusal::Garbled)?;
    let proc_ = r.u32("proc").map_err(Refusal::Garbled)?;
    let bad = |_| Refusal::Auth {
        xid,
        stat: AUTH_BADCRED,
    };
    let flavor = r.u32("cred flavor").map_err(bad)?;
    let body = r.opaque(MAX_AUTH, "cred body").map_err(bad)?;
    let cred = match flavor {
        AUTH_NONE => Cred::nobody(),
        AUTH_SYS => decode_auth_sys(body).map_err(bad)?,
        _ => {
            return Err(Refusal::Auth {
                xid,
                stat: AUTH_TOOWEAK,
            })
        }
    };
    // The verifier of AUTH_NONE/AUTH_SYS calls carries nothing we check, but must be well formed.
    r.u32("verf flavor").map_err(bad)?;
    r.opaque(MAX_AUTH, "verf body").map_err(bad)?;
    Ok(Call {
        xid,
        prog,
        vers,
        proc_,
        cred,
        args: r.rest(),
    })
}

fn decode_auth_sys(body: &[u8]) -> Result<Cred, XdrError> {
    let mut r = Reader::new(body);
    r.u32("stamp")?;
    r.opaque(MAX_MACHINE, "machinename")?;
    let uid = r.u32("uid")?;
    let gid = r.u32("gid")?;
    let n = r.count(MAX_GIDS, 4, "gids")?;
    let mut gids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        gids.push(r.u32("gid")?);
    }
    Ok(Cred { uid, gid, gids })
}

/// accept_stat values (RFC 5531 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Success,
    ProgUnavail,
    ProgMismatch { low: u32, high: u32 },
    ProcUnavail,
    GarbageArgs,
    SystemErr,
}

/// Starts an accepted reply (AUTH_NONE verifier); the caller appends results after `Success`.
/// Every reply starts with four bytes reserved for its record mark (see [`seal`]), so a reply
/// goes out in one write.
pub fn accepted(xid: u32, stat: Accept, capacity: usize) -> Writer {
    let mut w = Writer::with_capacity(28 + capacity);
    w.u32(0).u32(xid).u32(REPLY).u32(0).u32(AUTH_NONE).u32(0);
    match stat {
        Accept::Success => w.u32(0),
        Accept::ProgUnavail => w.u32(1),
        Accept::ProgMismatch { low, high } => w.u32(2).u32(low).u32(high),
        Accept::ProcUnavail => w.u32(3),
        Accept::GarbageArgs => w.u32(4),
        Accept::SystemErr => w.u32(5),
    };
    w
}

/// A MSG_DENIED reply for a refusal; `None` when no reply can be sent (drop the connection).
pub fn denied(refusal: &Refusal) -> Option<Writer> {
    let mut w = Writer::with_capacity(28);
    w.u32(0);
    match refusal {
        Refusal::RpcMismatch { xid } => {
            w.u32(*xid)
                .u32(REPLY)
                .u32(1)
                .u32(0)
                .u32(RPC_VERSION)
                .u32(RPC_VERSION);
        }
        Refusal::Auth { xid, stat } => {
            w.u32(*xid).u32(REPLY).u32(1).u32(1).u32(*stat);
        }
        Refusal::Garbled(_) | Refusal::NotCall => return None,
    }
    Some(w)
}

/// A record-marking fragment header: the last-fragment bit and the fragment length.
pub fn fragment_header(word: [u8; 4]) -> (bool, u32) {
    let v = u32::from_be_bytes(word);
    (v & 0x8000_0000 != 0, v & 0x7fff_ffff)
}

/// Prefixes a reply with its (single, last) fragment header.
pub fn mark(len: usize) -> [u8; 4] {
    (0x8000_0000u32 | len as u32).to_be_bytes()
}

/// Fills in the reserved record mark of a reply: the bytes to send on TCP.
pub fn seal(mut w: Writer) -> Vec<u8> {
    let len = w.len().saturating_sub(4);
    w.buf[..4].copy_from_slice(&mark(len));
    w.buf
}

/// The reply without its record mark: what to send on UDP.
pub fn unsealed(w: &Writer) -> &[u8] {
    &w.buf[4.min(w.buf.len())..]
}

/// Whether a record that already holds `so_far` bytes may take a fragment of `next` more.
pub fn fits(so_far: u32, next: u32) -> bool {
    so_far.checked_add(next).is_some_and(|t| t <= MAX_RECORD)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn call(prog: u32, vers: u32, proc_: u32, cred: Option<(u32, u32)>) -> Writer {
        let mut w = Writer::new();
        w.u32(9).u32(CALL).u32(2).u32(prog).u32(vers).u32(proc_);
        match cred {
            None => {
                w.u32(AUTH_NONE).u32(0);
            }
            Some((uid, gid)) => {
                let mut b = Writer::new();
                b.u32(1).opaque(b"node").u32(uid).u32(gid).u32(1).u32(10);
                w.u32(AUTH_SYS).opaque(&b.buf);
            }
        }
        w.u32(AUTH_NONE).u32(0);
        w
    }

    #[test]
    fn decodes_auth_sys_call() {
        let mut w = call(100003, 3, 1, Some((1000, 100)));
        w.u32(0xdead);
        let c = decode_call(&w.buf).unwrap();
        assert_eq!((c.xid, c.prog, c.vers, c.proc_), (9, 100003, 3, 1));
        assert_eq!(c.cred.uid, 1000);
        assert!(c.cred.in_group(10));
        assert_eq!(c.args, &[0, 0, 0xde, 0xad]);
    }

    #[test]
    fn refusals() {
        let mut w = Writer::new();
        w.u32(5).u32(CALL).u32(3);
        assert_eq!(
            decode_call(&w.buf).unwrap_err(),
            Refusal::RpcMismatch { xid: 5 }
        );
        let mut w = Writer::new();
        w.u32(5).u32(REPLY);
        assert_eq!(decode_call(&w.buf).unwrap_err(), Refusal::NotCall);
        assert!(matches!(
            decode_call(&[1, 2]).unwrap_err(),
            Refusal::Garbled(_)
        ));
        let mut w = Writer::new();
        w.u32(5).u32(CALL).u32(2).u32(1).u32(1).u32(1).u32(6).u32(0);
        assert_eq!(
            decode_call(&w.buf).unwrap_err(),
            Refusal::Auth {
                xid: 5,
                stat: AUTH_TOOWEAK
            }
        );
        let mut w = Writer::new();
        w.u32(5)
            .u32(CALL)
            .u32(2)
            .u32(1)
            .u32(1)
            .u32(1)
            .u32(1)
            .u32(0x7fff_ffff);
        assert_eq!(
            decode_call(&w.buf).unwrap_err(),
            Refusal::Auth {
                xid: 5,
                stat: AUTH_BADCRED
            }
        );
    }

    #[test]
    fn record_marks() {
        assert_eq!(fragment_header([0x80, 0, 0, 8]), (true, 8));
        assert_eq!(
            fragment_header([0x7f, 0xff, 0xff, 0xff]),
            (false, 0x7fff_ffff)
        );
        assert!(!fits(0, 0x7fff_ffff));
        assert!(fits(MAX_RECORD - 1, 1));
        assert!(!fits(MAX_RECORD, 1));
        assert_eq!(mark(8), [0x80, 0, 0, 8]);
    }
}
