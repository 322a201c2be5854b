//! A lockstep TFTP reader (RFC 1350 + 2347/2348/2349 tsize and blksize) with the retransmission
//! schedules of the clients it imitates.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

/// pxelinux's `TimeoutTable` (core/fs/pxe/tftp.c), in 55 ms BIOS ticks: the waits before each
/// retransmission of a request or an ACK; after the last one the transfer fails.
pub const PXELINUX_TICKS: [u64; 31] = [
    2, 2, 3, 3, 4, 5, 6, 7, 9, 10, 12, 15, 18, 21, 26, 31, 37, 44, 53, 64, 77, 92, 110, 132, 159,
    191, 229, 255, 255, 255, 255,
];

pub struct Schedule(pub Vec<Duration>);

impl Schedule {
    pub fn pxelinux() -> Schedule {
        Schedule(
            PXELINUX_TICKS
                .iter()
                .map(|t| Duration::from_millis(t * 55))
                .collect(),
        )
    }
    /// A PXE ROM: 1 s, doubling, four tries (the PXE spec leaves TFTP timeouts to the ROM; this is
    /// the common Intel/EDK2 behaviour).
    pub fn rom() -> Schedule {
        Schedule(
            [1, 2, 4, 8]
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
        )
    }
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Counts {
    /// Requests sent again because nothing came back.
    pub rrq_resent: u32,
    /// ACKs sent again because the next block did not come.
    pub ack_resent: u32,
}

pub enum Got {
    /// Bytes received (and the content, when asked to keep it).
    Data(u64, Vec<u8>),
    NotFound(String),
}

fn rrq(name: &str, opts: &[(&str, String)]) -> Vec<u8> {
    let mut b = vec![0, 1];
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    b.extend_from_slice(b"octet\0");
    for (k, v) in opts {
        b.extend_from_slice(k.as_bytes());
        b.push(0);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b
}

fn ack(n: u16) -> [u8; 4] {
    let b = n.to_be_bytes();
    [0, 4, b[0], b[1]]
}

fn oack_opts(p: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut parts = p[2..].split(|&c| c == 0);
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k.is_empty() {
            break;
        }
        out.push((
            String::from_utf8_lossy(k).to_ascii_lowercase(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    out
}

fn wait(sock: &UdpSocket, buf: &mut [u8], d: Duration) -> io::Result<Option<(usize, SocketAddr)>> {
    sock.set_read_timeout(Some(d.max(Duration::from_millis(1))))?;
    match sock.recv_from(buf) {
        Ok(x) => Ok(Some(x)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// What to ask and how to behave.
pub struct Ask<'a> {
    pub local: Ipv4Addr,
    pub server: Ipv4Addr,
    pub name: &'a str,
    pub blksize: Option<u16>,
    pub tsize: bool,
    /// PXE ROMs ask `tsize` alone first, then abort with an ERROR once they know the size.
    pub probe_only: bool,
    pub keep: bool,
    pub schedule: &'a Schedule,
}

/// One transfer. `Err` when the schedule ran out or the server broke the protocol.
pub fn get(a: &Ask, counts: &mut Counts) -> Result<Got, String> {
    let sock = UdpSocket::bind(SocketAddrV4::new(a.local, 0)).map_err(|e| format!("bind: {e}"))?;
    let mut opts = Vec::new();
    if a.tsize {
        opts.push(("tsize", "0".to_string()));
    }
    if let Some(b) = a.blksize {
        opts.push(("blksize", b.to_string()));
    }
    let req = rrq(a.name, &opts);
    let to = SocketAddrV4::new(a.server, 69);
    let mut buf = vec![0u8; 65536];
    let mut blksize = 512usize;
    let mut tsize: Option<u64> = None;
    let mut kept = Vec::new();
    let mut got: u64 = 0;
    // the first answer: OACK, DATA 1 or ERROR, from the server's address and a new port
    let mut step = 0;
    let (first_len, peer) = 'req: loop {
        let Some(&d) = a.schedule.0.get(step) else {
            return Err(format!("{}: no answer to the request", a.name));
        };
        if step > 0 {
            counts.rrq_resent += 1;
        }
        step += 1;
        sock.send_to(&req, to).map_err(|e| format!("send: {e}"))?;
        let deadline = std::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                continue 'req;
            }
            match wait(&sock, &mut buf, left).map_err(|e| format!("recv: {e}"))? {
                None => continue 'req,
                Some((n, SocketAddr::V4(from))) if *from.ip() == a.server && n >= 4 => {
                    break 'req (n, from)
                }
                Some(_) => {}
            }
        }
    };
    sock.connect(peer).map_err(|e| format!("connect: {e}"))?;
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    let mut last_ack: u16;
    match op {
        5 => {
            let msg = String::from_utf8_lossy(&buf[4..first_len])
                .trim_end_matches('\0')
                .to_string();
            return Ok(Got::NotFound(msg));
        }
        6 => {
            for (k, v) in oack_opts(&buf[..first_len]) {
                match k.as_str() {
                    "blksize" => blksize = v.parse().map_err(|_| "bad blksize in OACK")?,
                    "tsize" => tsize = v.parse().ok(),
                    _ => {}
                }
            }
            if a.probe_only {
                let _ = sock.send(b"\x00\x05\x00\x08TFTP Aborted\x00");
                return Ok(Got::Data(tsize.unwrap_or(0), Vec::new()));
            }
            last_ack = 0;
            sock.send(&ack(0)).map_err(|e| format!("send: {e}"))?;
        }
        3 => {
            // no options: DATA 1 straight away
            if u16::from_be_bytes([buf[2], buf[3]]) != 1 {
                return Err(format!("{}: first DATA is not block 1", a.name));
            }
            let n = first_len - 4;
            got += n as u64;
            if a.keep {
                kept.extend_from_slice(&buf[4..first_len]);
            }
            sock.send(&ack(1)).map_err(|e| format!("send: {e}"))?;
            if n < blksize {
                return Ok(Got::Data(got, kept));
            }
            last_ack = 1;
        }
        _ => return Err(format!("{}: unexpected opcode {op}", a.name)),
    }
    // lockstep: wait for block last_ack+1, ACK it; on silence resend the last ACK per schedule
    'blocks: loop {
        let want = last_ack.wrapping_add(1);
        let mut step = 0;
        loop {
            let Some(&d) = a.schedule.0.get(step) else {
                return Err(format!("{}: block {want} never came", a.name));
            };
            match wait(&sock, &mut buf, d).map_err(|e| format!("recv: {e}"))? {
                None => {
                    counts.ack_resent += 1;
                    step += 1;
                    sock.send(&ack(last_ack))
                        .map_err(|e| format!("send: {e}"))?;
                }
                Some((n, _)) if n >= 4 => {
                    let op = u16::from_be_bytes([buf[0], buf[1]]);
                    if op == 5 {
                        return Err(format!(
                            "{}: server error {}",
                            a.name,
                            String::from_utf8_lossy(&buf[4..n]).trim_end_matches('\0')
                        ));
                    }
                    if op != 3 {
                        continue;
                    }
                    let blk = u16::from_be_bytes([buf[2], buf[3]]);
                    if blk != want {
                        // a duplicate: pxelinux ACKs it again ("the ACK got lost")
                        let _ = sock.send(&ack(last_ack));
                        continue;
                    }
                    let len = n - 4;
                    got += len as u64;
                    if a.keep {
                        kept.extend_from_slice(&buf[4..n]);
                    }
                    sock.send(&ack(blk)).map_err(|e| format!("send: {e}"))?;
                    last_ack = blk;
                    if len < blksize {
                        break 'blocks;
                    }
                    continue 'blocks;
                }
                Some(_) => {}
            }
        }
    }
    if let Some(t) = tsize {
        if t != got {
            return Err(format!("{}: {got} bytes, tsize said {t}", a.name));
        }
    }
    Ok(Got::Data(got, kept))
}
