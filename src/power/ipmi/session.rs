//! One RMCP+ session with one BMC, on its own connected tokio `UdpSocket`: open (Open Session,
//! RAKP 1-4, Set Session Privilege Level), numbered requests matched to their replies, close.
//! One request is outstanding at a time, as xCAT and ipmitool do; parallelism comes from many
//! sessions (one per node), not from pipelining inside one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::wire::{self, payload, CipherSuite, Handshake, Keys, Packet, Request};
use super::{IpmiError, Target};

/// Privilege levels (IPMI 2.0 table 6-1).
pub const PRIV_OPERATOR: u8 = 3;
pub const PRIV_ADMIN: u8 = 4;
/// RAKP1 role bit: look the user up by name only (not name + privilege), as xCAT does.
const NAME_ONLY_LOOKUP: u8 = 0x10;

/// An open, authenticated, encrypted session.
pub struct Session {
    sock: UdpSocket,
    peer: SocketAddr,
    keys: Keys,
    console_sid: u32,
    bmc_sid: u32,
    /// Outbound session sequence number; the BMC rejects numbers it has seen, so every packet
    /// (retransmissions too) gets the next one.
    seq: u32,
    /// 6-bit request sequence number; it stays the same across retransmissions of one request,
    /// so a late answer to the first copy still matches.
    rq_seq: u8,
    timeout: Duration,
    tries: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("suite", &self.keys.suite)
            .field("console_sid", &self.console_sid)
            .field("bmc_sid", &self.bmc_sid)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // getrandom fails only without any OS entropy source; then a time-derived value still
    // gives distinct session IDs and tags, and the BMC's own random number keeps RAKP sound.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    b
}

/// Sends what `make` builds and waits for a datagram `accept` takes, `tries` times `timeout`.
async fn exchange<T>(
    sock: &UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
    tries: u32,
    mut make: impl FnMut() -> Vec<u8>,
    mut accept: impl FnMut(&[u8]) -> Option<Result<T, IpmiError>>,
) -> Result<T, IpmiError> {
    let mut buf = vec![0u8; 2048];
    for _ in 0..tries.max(1) {
        let out = make();
        sock.send(&out).await.map_err(|e| IpmiError::Io {
            bmc: peer,
            source: e,
        })?;
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable surfaces as ECONNREFUSED on a connected socket: nobody
                // listens there. Keep waiting the try out; a restarting BMC may still answer.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Err(e)) => {
                    return Err(IpmiError::Io {
                        bmc: peer,
                        source: e,
                    })
                }
                Ok(Ok(n)) => {
                    if let Some(r) = buf.get(..n).and_then(&mut accept) {
                        return r;
                    }
                }
            }
        }
    }
    Err(IpmiError::NoAnswer {
        bmc: peer,
        tries: tries.max(1),
        timeout,
    })
}

impl Session {
    /// Opens a session to `t` with the first cipher suite of `t.suites` the BMC accepts.
    ///
    /// Suite choice: we try suite 17 first and fall back to 3 (xCAT's order). Asking first with
    /// Get Channel Cipher Suites would cost the same round trip, but it is an IPMI message that
    /// has to be sent outside a session, which several BMCs (ipmi_sim among them) never answer;
    /// a refused Open Session, by contrast, comes back at once with a status code.
    pub async fn open(t: &Target) -> Result<Session, IpmiError> {
        let bind: SocketAddr = if t.addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let io = |e| IpmiError::Io {
            bmc: t.addr,
            source: e,
        };
        let sock = UdpSocket::bind(bind).await.map_err(io)?;
        sock.connect(t.addr).await.map_err(io)?;
        let mut last = None;
        for (i, &suite) in t.suites.iter().enumerate() {
            let more = i + 1 < t.suites.len();
            match Self::handshake(&sock, t, suite).await {
                Ok(keys) => {
                    let mut s = Session {
                        sock,
                        peer: t.addr,
                        console_sid: keys.1,
                        bmc_sid: keys.2,
                        keys: keys.0,
                        seq: 0,
                        rq_seq: random::<1>()[0] & 0x3f,
                        timeout: t.timeout,
                        tries: t.tries,
                    };
                    // The session starts at USER privilege (or the role's, on some BMCs);
                    // chassis control needs OPERATOR, boot options ADMIN. ipmi_sim refuses
                    // everything above USER until this is sent.
                    s.request(0x06, 0x3b, &[PRIV_ADMIN]).await?;
                    return Ok(s);
                }
                Err(e @ IpmiError::SuiteRefused { .. }) if more => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(IpmiError::NoSuites))
    }

    /// Open Session + RAKP 1-4 for one suite: the keys and (console, BMC) session IDs.
    async fn handshake(
        sock: &UdpSocket,
        t: &Target,
        suite: CipherSuite,
    ) -> Result<(Keys, u32, u32), IpmiError> {
        let console_sid = u32::from_le_bytes(random::<4>()) | 1;
        let mut tag = random::<1>()[0];
        let setup = |p: u8, payload: Vec<u8>| {
            wire::encode_packet(
                &Packet {
                    payload_type: p,
                    session_id: 0,
                    seq: 0,
                    payload,
                },
                None,
                [0; 16],
            )
        };
        let clear = |b: &[u8], want: u8| -> Option<Vec<u8>> {
            wire::decode_packet(b, None)
                .ok()
                .filter(|p| p.payload_type == want)
                .map(|p| p.payload)
        };
        let peer = t.addr;

        // Open Session: privilege 0 asks for the highest the user may have, as xCAT does.
        tag = tag.wrapping_add(1);
        let req = wire::open_session_request(tag, 0, console_sid, suite);
        let osr = exchange(
            sock,
            peer,
            t.timeout,
            t.tries,
            || setup(payload::OPEN_SESSION_REQUEST, req.clone()),
            |b| {
                let p = clear(b, payload::OPEN_SESSION_RESPONSE)?;
                let r = match wire::parse_open_session_response(&p) {
                    Ok(r) => r,
                    Err(e) => return Some(Err(IpmiError::Malformed(e.to_string()))),
                };
                let ours = r.console_sid.is_none_or(|c| c == console_sid);
                (r.tag == tag && ours).then_some(Ok(r))
            },
        )
        .await?;
        if osr.status != 0 {
            return Err(IpmiError::SuiteRefused {
                suite: suite.id(),
                status: osr.status,
            });
        }
        let want = (
            suite.auth_alg(),
            suite.integrity_alg(),
            suite.confidentiality_alg(),
        );
        if osr.algs != want {
            return Err(IpmiError::Malformed(format!(
                "BMC answered cipher suite {} with algorithms {:?}",
                suite.id(),
                osr.algs
            )));
        }

        let mut h = Handshake {
            suite,
            password: t.password.expose().as_bytes().to_vec(),
            kg: None,
            user: t.user.as_bytes().to_vec(),
            role: PRIV_ADMIN | NAME_ONLY_LOOKUP,
            console_sid,
            bmc_sid: osr.bmc_sid,
            rm: random::<16>(),
            rc: [0; 16],
            guid: [0; 16],
        };
        if h.user.len() > 16 {
            return Err(IpmiError::Credentials(
                "the user name is longer than IPMI's 16 bytes".into(),
            ));
        }

        // RAKP 1 → 2: the BMC proves it knows the password for this user.
        tag = tag.wrapping_add(1);
        let m1 = wire::rakp1(tag, h.bmc_sid, &h.rm, h.role, &h.user);
        let r2 = exchange(
            sock,
            peer,
            t.timeout,
            t.tries,
            || setup(payload::RAKP1, m1.clone()),
            |b| {
                let p = clear(b, payload::RAKP2)?;
                let r = match wire::parse_rakp2(&p) {
                    Ok(r) => r,
                    Err(e) => return Some(Err(IpmiError::Malformed(e.to_string()))),
                };
                (r.tag == tag && (r.status != 0 || r.console_sid == console_sid)).then_some(Ok(r))
            },
        )
        .await?;
        match r2.status {
            0 => {}
            // 0x0d "unauthorized name", 0x09/0x0a role trouble: xCAT reads these from suite-17
            // attempts of BMCs that only do 3 as well, so they let the next suite be tried.
            s @ (0x09 | 0x0a | 0x0d) if suite == CipherSuite::Suite17 => {
                return Err(IpmiError::SuiteRefused {
                    suite: suite.id(),
                    status: s,
                })
            }
            s @ (0x0d | 0x09 | 0x0a | 0x0c) => {
                return Err(IpmiError::Credentials(format!(
                    "RAKP2: {s:#04x} {}",
                    wire::rmcp_status(s)
                )))
            }
            s => {
                return Err(IpmiError::Refused {
                    stage: "RAKP2",
                    status: s,
                })
            }
        }
        h.rc = r2.rc;
        h.guid = r2.guid;
        let expect = h.rakp2_auth();
        if !Handshake::verify(&expect, &r2.auth) {
            // Some BMCs accept suite 17 and then send an all-zero RAKP2 code; xCAT retries 3.
            if suite == CipherSuite::Suite17 && r2.auth.iter().all(|b| *b == 0) {
                return Err(IpmiError::SuiteRefused {
                    suite: suite.id(),
                    status: 0x0f,
                });
            }
            return Err(IpmiError::Credentials(
                "RAKP2: the BMC's key exchange code does not match this password".into(),
            ));
        }

        // RAKP 3 → 4: we prove it back; the BMC's answer proves it derived the same SIK.
        tag = tag.wrapping_add(1);
        let m3 = wire::rakp3(tag, 0, h.bmc_sid, &h.rakp3_auth());
        let r4 = exchange(
            sock,
            peer,
            t.timeout,
            t.tries,
            || setup(payload::RAKP3, m3.clone()),
            |b| {
                let p = clear(b, payload::RAKP4)?;
                let r = match wire::parse_rakp4(&p) {
                    Ok(r) => r,
                    Err(e) => return Some(Err(IpmiError::Malformed(e.to_string()))),
                };
                (r.tag == tag && (r.status != 0 || r.console_sid == console_sid)).then_some(Ok(r))
            },
        )
        .await?;
        match r4.status {
            0 => {}
            s @ (0x0d | 0x0f) => {
                return Err(IpmiError::Credentials(format!(
                    "RAKP4: {s:#04x} {}",
                    wire::rmcp_status(s)
                )))
            }
            s => {
                return Err(IpmiError::Refused {
                    stage: "RAKP4",
                    status: s,
                })
            }
        }
        if !Handshake::verify(&h.rakp4_icv(), &r4.icv) {
            return Err(IpmiError::Malformed(
                "RAKP4 integrity check value does not verify (BMC key set?)".into(),
            ));
        }
        Ok((h.keys(), console_sid, h.bmc_sid))
    }

    /// Sends one IPMI request and returns the response data after a zero completion code; a
    /// non-zero one is [`IpmiError::Completion`].
    pub async fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>, IpmiError> {
        let (cc, data) = self.request_cc(netfn, cmd, data).await?;
        if cc != 0 {
            return Err(IpmiError::Completion {
                netfn,
                cmd,
                code: cc,
            });
        }
        Ok(data)
    }

    /// Like [`Session::request`] but hands back the completion code, for callers that treat
    /// some codes as answers (FRU "not present", SDR reservation lost, chunk too large).
    pub async fn request_cc(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<(u8, Vec<u8>), IpmiError> {
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let rq_seq = self.rq_seq;
        let msg = wire::encode_request(
            rq_seq,
            &Request {
                netfn,
                cmd,
                lun: 0,
                data: data.to_vec(),
            },
        );
        let (keys, sid, console_sid) = (self.keys.clone(), self.bmc_sid, self.console_sid);
        let seq = &mut self.seq;
        let r = exchange(
            &self.sock,
            self.peer,
            self.timeout,
            self.tries,
            || {
                *seq = seq.wrapping_add(1).max(1);
                wire::encode_packet(
                    &Packet {
                        payload_type: payload::IPMI,
                        session_id: sid,
                        seq: *seq,
                        payload: msg.clone(),
                    },
                    Some(&keys),
                    random::<16>(),
                )
            },
            |b| {
                // Anything that fails integrity, is for another session or answers another
                // request is ignored: it may be a stray or late datagram, never a reason to fail.
                let p = wire::decode_packet(b, Some(&keys)).ok()?;
                if p.payload_type != payload::IPMI || p.session_id != console_sid {
                    return None;
                }
                let r = wire::decode_response(&p.payload).ok()?;
                (r.rq_seq == rq_seq && r.netfn == (netfn | 1) && r.cmd == cmd).then_some(Ok(r))
            },
        )
        .await?;
        Ok((r.completion, r.data))
    }

    /// Sends one payload of `payload_type` (SOL) in the session, protected like IPMI messages.
    pub async fn send_payload(&mut self, payload_type: u8, data: &[u8]) -> Result<(), IpmiError> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let b = wire::encode_packet(
            &Packet {
                payload_type,
                session_id: self.bmc_sid,
                seq: self.seq,
                payload: data.to_vec(),
            },
            Some(&self.keys),
            random::<16>(),
        );
        self.sock.send(&b).await.map_err(|e| IpmiError::Io {
            bmc: self.peer,
            source: e,
        })?;
        Ok(())
    }

    /// Waits for the next datagram; `Some(payload)` when it is a valid packet of `payload_type`
    /// for this session, `None` for anything else (ignored, as in [`Session::request`]).
    pub async fn recv_payload(&mut self, payload_type: u8) -> Result<Option<Vec<u8>>, IpmiError> {
        let mut buf = vec![0u8; 2048];
        let n = match self.sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
            Err(e) => {
                return Err(IpmiError::Io {
                    bmc: self.peer,
                    source: e,
                })
            }
        };
        let Some(b) = buf.get(..n) else {
            return Ok(None);
        };
        Ok(wire::decode_packet(b, Some(&self.keys))
            .ok()
            .filter(|p| p.payload_type == payload_type && p.session_id == self.console_sid)
            .map(|p| p.payload))
    }

    /// The cipher suite in use.
    pub fn suite(&self) -> CipherSuite {
        self.keys.suite
    }

    /// Close Session (App 0x3C), one try: a BMC that misses it times the session out anyway.
    pub async fn close(mut self) {
        self.tries = 1;
        self.timeout = self.timeout.min(Duration::from_millis(500));
        let sid = self.bmc_sid.to_le_bytes();
        let _ = self.request_cc(0x06, 0x3c, &sid).await;
    }
}
