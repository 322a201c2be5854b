//! Serial over LAN (IPMI 2.0 chapter 15): the SOL payload codec (pure, fuzzed) and the console
//! loop rcons runs over an open [`Session`]: Activate Payload, characters both ways with
//! sequence numbers, acknowledgements and retransmission, break, Deactivate Payload.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{IpmiError, Session};

/// The SOL payload type.
pub const PAYLOAD_SOL: u8 = 0x01;
/// Console → BMC operation bit: send a serial break.
pub const OP_BREAK: u8 = 0x10;
/// BMC → console status bit: SOL is being deactivated.
pub const ST_DEACTIVATING: u8 = 0x10;
/// Either way: the packet is a NACK.
pub const NACK: u8 = 0x40;

/// One SOL payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolPacket {
    /// 1-15 for a packet with data; 0 for an acknowledgement only.
    pub seq: u8,
    /// The sequence number being acknowledged (0: none).
    pub ack: u8,
    /// Characters of the acknowledged packet taken.
    pub accepted: u8,
    /// Operation (to the BMC) or status (from it).
    pub op: u8,
    pub data: Vec<u8>,
}

impl SolPacket {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.data.len());
        v.extend_from_slice(&[self.seq & 0x0f, self.ack & 0x0f, self.accepted, self.op]);
        v.extend_from_slice(&self.data);
        v
    }

    pub fn decode(b: &[u8]) -> Result<SolPacket, IpmiError> {
        if b.len() < 4 {
            return Err(IpmiError::Malformed(format!(
                "SOL payload of {} bytes",
                b.len()
            )));
        }
        Ok(SolPacket {
            seq: b[0] & 0x0f,
            ack: b[1] & 0x0f,
            accepted: b[2],
            op: b[3],
            data: b[4..].to_vec(),
        })
    }
}

/// Activate Payload (App 0x48) for SOL instance 1, encrypted and authenticated; returns the
/// largest payload the BMC takes inbound.
pub async fn activate(s: &mut Session) -> Result<usize, IpmiError> {
    let d = s
        .request(0x06, 0x48, &[PAYLOAD_SOL, 1, 0xc0, 0, 0, 0])
        .await?;
    Ok(d.get(4..6)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .filter(|n| *n > 4)
        .unwrap_or(64))
}

/// Deactivate Payload (App 0x49) for SOL instance 1.
pub async fn deactivate(s: &mut Session) -> Result<(), IpmiError> {
    s.request(0x06, 0x49, &[PAYLOAD_SOL, 1, 0, 0, 0, 0])
        .await
        .map(|_| ())
}

/// What the user side sends into the console.
#[derive(Debug)]
pub enum Input {
    Data(Vec<u8>),
    Break,
    /// Leave (the `~.` escape, or end of input).
    Quit,
}

/// Why the console loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    User,
    /// The BMC deactivated SOL (another console took it, or the BMC reset).
    Bmc,
}

/// Runs the console until the user quits or the BMC ends it. Characters from the BMC go to
/// `out`; each of our packets is resent until acknowledged (every 1 s, 10 times).
pub async fn console(
    s: &mut Session,
    max_payload: usize,
    mut input: mpsc::Receiver<Input>,
    mut out: impl FnMut(&[u8]),
) -> Result<Ended, IpmiError> {
    let chunk = max_payload.saturating_sub(4).clamp(1, 255);
    let mut next_seq: u8 = 1;
    let mut last_seen: u8 = 0;
    // Our packet in flight: (packet, when sent, tries).
    let mut pending: Option<(SolPacket, Instant, u32)> = None;
    let mut queue: std::collections::VecDeque<u8> = Default::default();
    let mut want_break = false;
    let mut quitting = false;
    loop {
        if pending.is_none() && (!queue.is_empty() || want_break) {
            let n = queue.len().min(chunk);
            let p = SolPacket {
                seq: next_seq,
                ack: 0,
                accepted: 0,
                op: if want_break { OP_BREAK } else { 0 },
                data: queue.drain(..n).collect(),
            };
            want_break = false;
            next_seq = if next_seq >= 15 { 1 } else { next_seq + 1 };
            s.send_payload(PAYLOAD_SOL, &p.encode()).await?;
            pending = Some((p, Instant::now(), 1));
        }
        if quitting && pending.is_none() {
            return Ok(Ended::User);
        }
        let resend_at = pending
            .as_ref()
            .map(|(_, at, _)| *at + Duration::from_secs(1))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            got = input.recv(), if !quitting => match got {
                Some(Input::Data(d)) => queue.extend(d),
                Some(Input::Break) => want_break = true,
                Some(Input::Quit) | None => quitting = true,
            },
            r = s.recv_payload(PAYLOAD_SOL) => {
                let p = match r? {
                    Some(b) => match SolPacket::decode(&b) { Ok(p) => p, Err(_) => continue },
                    None => continue,
                };
                if p.ack != 0 {
                    if let Some((sent, _, _)) = &pending {
                        if p.ack == sent.seq {
                            let sent = sent.clone();
                            pending = None;
                            // Characters the BMC could not take go first next time.
                            let taken = usize::from(p.accepted).min(sent.data.len());
                            if p.op & NACK != 0 || taken < sent.data.len() {
                                for b in sent.data[taken..].iter().rev() {
                                    queue.push_front(*b);
                                }
                            }
                        }
                    }
                }
                if p.seq != 0 {
                    // New data (a repeat of the last packet is only acknowledged again).
                    if p.seq != last_seen {
                        out(&p.data);
                        last_seen = p.seq;
                    }
                    let ack = SolPacket { seq: 0, ack: p.seq, accepted: p.data.len().min(255) as u8, op: 0, data: vec![] };
                    s.send_payload(PAYLOAD_SOL, &ack.encode()).await?;
                }
                if p.op & ST_DEACTIVATING != 0 && p.ack == 0 {
                    return Ok(Ended::Bmc);
                }
            },
            _ = tokio::time::sleep_until(resend_at), if pending.is_some() => {
                if let Some((p, at, tries)) = pending.as_mut() {
                    if *tries >= 10 {
                        return Err(IpmiError::Unexpected("the BMC stopped acknowledging console data".into()));
                    }
                    s.send_payload(PAYLOAD_SOL, &p.encode()).await?;
                    *at = Instant::now();
                    *tries += 1;
                }
            },
        }
    }
}

/// The `~.` escape (and `~B` for a break) at the start of a line, as ssh and ipmitool do.
#[derive(Debug, Default)]
pub struct Escape {
    at_line_start: bool,
    tilde: bool,
}

impl Escape {
    pub fn new() -> Escape {
        Escape {
            at_line_start: true,
            tilde: false,
        }
    }

    /// Splits typed bytes into console input; stops at `~.`.
    pub fn feed(&mut self, typed: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        let mut data = Vec::new();
        for &b in typed {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => {
                        if !data.is_empty() {
                            out.push(Input::Data(std::mem::take(&mut data)));
                        }
                        out.push(Input::Quit);
                        return out;
                    }
                    b'B' => {
                        if !data.is_empty() {
                            out.push(Input::Data(std::mem::take(&mut data)));
                        }
                        out.push(Input::Break);
                        self.at_line_start = false;
                        continue;
                    }
                    b'~' => {
                        data.push(b'~');
                        self.at_line_start = false;
                        continue;
                    }
                    other => {
                        data.push(b'~');
                        data.push(other);
                        self.at_line_start = other == b'\r' || other == b'\n';
                        continue;
                    }
                }
            }
            if b == b'~' && self.at_line_start {
                self.tilde = true;
                continue;
            }
            data.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        if !data.is_empty() {
            out.push(Input::Data(data));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_short_ones_are_refused() {
        let p = SolPacket {
            seq: 3,
            ack: 2,
            accepted: 5,
            op: OP_BREAK,
            data: b"ls\r".to_vec(),
        };
        assert_eq!(SolPacket::decode(&p.encode()).ok(), Some(p));
        assert!(SolPacket::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn tilde_dot_leaves_only_at_a_line_start() {
        let mut e = Escape::new();
        let v = e.feed(b"a~.b\r~.");
        assert!(matches!(&v[0], Input::Data(d) if d == b"a~.b\r"));
        assert!(matches!(v[1], Input::Quit));
        let mut e = Escape::new();
        let v = e.feed(b"~~x~B");
        assert!(matches!(&v[0], Input::Data(d) if d == b"~x~B"));
        let mut e = Escape::new();
        let v = e.feed(b"~B");
        assert!(matches!(v[0], Input::Break));
    }
}
