//! Liveness probes for many nodes at once, on the tokio runtime, without a thread per node:
//! one ICMP socket sends an echo request to every IPv4 target and collects the replies, then TCP
//! connects (a bounded number in flight) find which service ports are open. This is what
//! xCAT's `nmap -PE -PA80,443,22 -p <ports>` run does for `nodestat`:
//!
//! * a target is **up** when it answers an echo request, or when any TCP connect to it is
//!   answered (accepted, or refused with a reset);
//! * the ports are connected to only on targets that are up, or that stay silent to ICMP but
//!   answer on port 22 (hosts that filter ICMP);
//! * echo requests go twice (the second time only to the silent), so one lost packet does not
//!   mark a node down.
//!
//! The ICMP socket is a ping socket (`SOCK_DGRAM`, allowed by `net.ipv4.ping_group_range`) when
//! the kernel allows it, else a raw socket (root or CAP_NET_RAW); when neither can be opened the
//! probes are TCP only, and the first use says so in the log.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::icmp;

/// How probes are run.
#[derive(Debug, Clone)]
pub struct ProbeOpts {
    /// TCP ports to report open or not, on targets that are up.
    pub ports: Vec<u16>,
    /// How long an echo reply or a TCP connect is waited for.
    pub timeout: Duration,
    /// At most this many TCP connects in flight.
    pub concurrency: usize,
}

impl Default for ProbeOpts {
    fn default() -> Self {
        ProbeOpts {
            ports: vec![22],
            timeout: Duration::from_millis(1500),
            concurrency: 512,
        }
    }
}

/// What was learnt about one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub up: bool,
    /// The ports of [`ProbeOpts::ports`] that accepted a connection, in that order.
    pub open: Vec<u16>,
}

/// The port a host that filters ICMP is asked on before it is called down (as nmap's -PA22).
const DISCOVERY_PORT: u16 = 22;

/// Probes every target; the outcomes are in the targets' order.
pub async fn probe(targets: &[IpAddr], opts: &ProbeOpts) -> Vec<Outcome> {
    let mut out = vec![Outcome::default(); targets.len()];
    let answered = ping_all(targets, opts.timeout).await;
    for (o, a) in out.iter_mut().zip(&answered) {
        o.up = *a;
    }
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    // Targets silent to ICMP get one chance on port 22.
    let silent: Vec<usize> = (0..targets.len()).filter(|&i| !out[i].up).collect();
    let mut discovered: HashMap<usize, Knock> = HashMap::new();
    for (i, k) in knock_all(
        silent.iter().map(|&i| (i, targets[i], DISCOVERY_PORT)),
        &sem,
        opts.timeout,
    )
    .await
    {
        let i = i.0;
        if k != Knock::Silent {
            out[i].up = true;
        }
        discovered.insert(i, k);
    }
    // The service ports of every target that is up.
    let mut jobs = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if !out[i].up {
            continue;
        }
        for &p in &opts.ports {
            if p == DISCOVERY_PORT {
                if let Some(k) = discovered.get(&i) {
                    if *k == Knock::Open {
                        out[i].open.push(p);
                    }
                    continue;
                }
            }
            jobs.push((i, *t, p));
        }
    }
    let mut open: Vec<(usize, u16)> = knock_all(jobs.into_iter(), &sem, opts.timeout)
        .await
        .into_iter()
        .filter(|(_, k)| *k == Knock::Open)
        .map(|((i, p), _)| (i, p))
        .collect::<Vec<_>>();
    open.sort_unstable();
    for (i, p) in open {
        out[i].open.push(p);
    }
    for o in &mut out {
        let order = |p: &u16| opts.ports.iter().position(|x| x == p).unwrap_or(usize::MAX);
        o.open.sort_by_key(order);
        o.open.dedup();
    }
    out
}

/// What a TCP connect found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Knock {
    Open,
    Refused,
    Silent,
}

async fn knock(ip: IpAddr, port: u16, timeout: Duration) -> Knock {
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect(SocketAddr::new(ip, port)),
    )
    .await
    {
        Ok(Ok(_)) => Knock::Open,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Knock::Refused,
        _ => Knock::Silent,
    }
}

/// Connects to every `(key, ip, port)`, at most the semaphore's permits at once.
async fn knock_all<K: Send + 'static + Copy + std::fmt::Debug>(
    jobs: impl Iterator<Item = (K, IpAddr, u16)>,
    sem: &Arc<Semaphore>,
    timeout: Duration,
) -> Vec<((K, u16), Knock)> {
    let mut set = tokio::task::JoinSet::new();
    let mut done = Vec::new();
    for (k, ip, port) in jobs {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        set.spawn(async move {
            let r = knock(ip, port, timeout).await;
            drop(permit);
            ((k, port), r)
        });
        // Collect what has finished so the set does not grow with the job list.
        while let Some(r) = set.try_join_next() {
            if let Ok(r) = r {
                done.push(r);
            }
        }
    }
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            done.push(r);
        }
    }
    done
}

/// Which kind of ICMP socket we have.
struct Pinger {
    sock: UdpSocket,
    raw: bool,
}

fn open_pinger() -> Option<Pinger> {
    static SAID: std::sync::Once = std::sync::Once::new();
    let open = |ty: Type| -> std::io::Result<UdpSocket> {
        let s = Socket::new(Domain::IPV4, ty, Some(Protocol::ICMPV4))?;
        s.set_nonblocking(true)?;
        let std: std::net::UdpSocket = std::os::fd::OwnedFd::from(s).into();
        UdpSocket::from_std(std)
    };
    match open(Type::DGRAM) {
        Ok(sock) => return Some(Pinger { sock, raw: false }),
        Err(e) => tracing::debug!("no ICMP ping socket ({e}); trying a raw socket"),
    }
    match open(Type::RAW) {
        Ok(sock) => Some(Pinger { sock, raw: true }),
        Err(e) => {
            SAID.call_once(|| {
                tracing::warn!("cannot open an ICMP socket ({e}): liveness is probed over TCP only (allow ping sockets with sysctl net.ipv4.ping_group_range, or run as root)")
            });
            None
        }
    }
}

/// Sends echo requests to every IPv4 target (twice to the silent ones) and says which answered.
async fn ping_all(targets: &[IpAddr], timeout: Duration) -> Vec<bool> {
    let mut answered = vec![false; targets.len()];
    let mut by_ip: HashMap<Ipv4Addr, Vec<usize>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        if let IpAddr::V4(v4) = t {
            by_ip.entry(*v4).or_default().push(i);
        }
    }
    if by_ip.is_empty() {
        return answered;
    }
    let Some(p) = open_pinger() else {
        return answered;
    };
    // Our identifier (a ping socket replaces it with its own; a raw socket sees everyone's).
    let mut idb = [0u8; 2];
    let _ = getrandom::fill(&mut idb);
    let id = u16::from_ne_bytes(idb);
    let mut nonce = [0u8; 8];
    let _ = getrandom::fill(&mut nonce);
    let ips: Vec<Ipv4Addr> = by_ip.keys().copied().collect();
    let mut seen: std::collections::HashSet<Ipv4Addr> = std::collections::HashSet::new();
    let start = Instant::now();
    let resend_at = start + timeout / 2;
    let end = start + timeout;
    send_round(&p, &ips, &seen, id, nonce).await;
    let mut resent = false;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= end || seen.len() == ips.len() {
            break;
        }
        if !resent && now >= resend_at {
            resent = true;
            send_round(&p, &ips, &seen, id, nonce).await;
            continue;
        }
        let until = if resent { end } else { resend_at };
        let r = tokio::time::timeout_at(until.into(), p.sock.recv_from(&mut buf)).await;
        let Ok(Ok((n, from))) = r else {
            continue;
        };
        let Some(reply) = icmp::parse_reply(&buf[..n.min(buf.len())], p.raw) else {
            continue;
        };
        if p.raw && reply.id != id {
            continue;
        }
        let src = match (reply.source, from.ip()) {
            (Some(s), _) => Ipv4Addr::from(s),
            (None, IpAddr::V4(v4)) => v4,
            _ => continue,
        };
        if by_ip.contains_key(&src) {
            seen.insert(src);
        }
    }
    for ip in seen {
        if let Some(idx) = by_ip.get(&ip) {
            for &i in idx {
                answered[i] = true;
            }
        }
    }
    answered
}

async fn send_round(
    p: &Pinger,
    ips: &[Ipv4Addr],
    seen: &std::collections::HashSet<Ipv4Addr>,
    id: u16,
    nonce: [u8; 8],
) {
    for (seq, ip) in ips.iter().enumerate() {
        if seen.contains(ip) {
            continue;
        }
        let pkt = icmp::echo_request(id, seq as u16, nonce);
        // A full send buffer waits (send_to is async); an unreachable network is the same as
        // no answer.
        if let Err(e) = p
            .sock
            .send_to(&pkt, SocketAddr::new(IpAddr::V4(*ip), 0))
            .await
        {
            tracing::trace!("echo request to {ip}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_up_and_ports_are_told_apart() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().port();
        // A port nothing listens on: bind, note the number, close.
        let closed = {
            let c = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            c.local_addr().unwrap().port()
        };
        let opts = ProbeOpts {
            ports: vec![closed, open],
            timeout: Duration::from_millis(500),
            concurrency: 4,
        };
        let out = probe(&["127.0.0.1".parse().unwrap()], &opts).await;
        assert!(
            out[0].up,
            "loopback answers (ICMP, or a reset from a closed port)"
        );
        assert_eq!(out[0].open, vec![open]);
    }
}
