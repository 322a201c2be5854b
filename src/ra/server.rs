//! The router-advertisement loop: one raw ICMPv6 socket per served interface, bound to the
//! interface's link-local address, in the all-routers group, hop limit 255.
//!
//! - A Router Solicitation is answered after a random 0–500 ms (RFC 4861 §6.2.6): unicast to a
//!   solicitor that has an address, else to all nodes, at most one multicast every 3 s.
//! - Unsolicited advertisements: three at start, 16 s apart, then one every 198–600 s (§6.2.4,
//!   §6.2.1 defaults).
//! - At start the interface is asked for routers (one RS of our own) and stays silent for a second
//!   to hear them. A router advertisement from another router that configures anything (a
//!   default route, a prefix, DHCPv6) silences the interface for 30 minutes after the last one
//!   seen, logged once; an advertisement that configures nothing (another bootherd) does not.
//! - Messages are believed only with hop limit 255 (§6.1), advertisements only from link-local
//!   sources; our own are ignored.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::packet::{self, Advertisement, Message, NdOption, Solicitation};

pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// RFC 4861 §10 router constants and radvd's interval defaults.
const MAX_RA_DELAY_MS: u64 = 500;
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;
const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
const MIN_RTR_ADV_INTERVAL: u64 = 198;
const MAX_RTR_ADV_INTERVAL: u64 = 600;
/// How long the interface listens for other routers before it first speaks.
const LISTEN_FIRST: Duration = Duration::from_secs(1);
/// Quiet this long after another router's last advertisement (three of its longest intervals).
const QUIET_FOR: Duration = Duration::from_secs(3 * MAX_RTR_ADV_INTERVAL);
/// How often an interface without a usable link-local address is looked at again.
const ADDRESS_POLL: Duration = Duration::from_secs(1);

/// What the advertisements say, from the tables; swapped whole on a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaView {
    /// `site.routeradvertisements` is not `no`.
    pub enabled: bool,
    /// IPv6 networks of the `networks` table: prefix, length, `mgtifname`.
    pub prefixes: Vec<(Ipv6Addr, u8, Option<String>)>,
}

impl RaView {
    /// On-link prefixes to advertise on `iface`: networks naming it as `mgtifname`, or containing
    /// one of its addresses.
    pub fn prefixes_for(&self, iface: &str, addrs: &[Ipv6Addr]) -> Vec<(Ipv6Addr, u8)> {
        self.prefixes
            .iter()
            .filter(|(p, len, ifname)| {
                ifname.as_deref() == Some(iface) || addrs.iter().any(|a| in_prefix(*a, *p, *len))
            })
            .map(|(p, len, _)| (*p, *len))
            .collect()
    }
}

pub fn in_prefix(a: Ipv6Addr, p: Ipv6Addr, len: u8) -> bool {
    let len = u32::from(len.min(128));
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - len);
    u128::from(a) & mask == u128::from(p) & mask
}

/// One line of /proc/net/if_inet6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct If6Addr {
    pub addr: Ipv6Addr,
    pub ifindex: u32,
    pub prefix_len: u8,
    pub scope: u8,
    pub flags: u8,
    pub name: String,
}

/// IFA_F_TENTATIVE, IFA_F_DADFAILED: not usable as a source yet (or ever).
const IFA_F_TENTATIVE: u8 = 0x40;
const IFA_F_DADFAILED: u8 = 0x08;

impl If6Addr {
    pub fn link_local(&self) -> bool {
        self.addr.segments()[0] & 0xffc0 == 0xfe80
    }
    pub fn usable(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }
}

/// Parses /proc/net/if_inet6 (`<32 hex> <ifindex> <plen> <scope> <flags> <name>`, hex fields);
/// lines that do not parse are skipped.
pub fn parse_if_inet6(text: &str) -> Vec<If6Addr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 6 || f[0].len() != 32 {
                return None;
            }
            let addr = Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?);
            Some(If6Addr {
                addr,
                ifindex: u32::from_str_radix(f[1], 16).ok()?,
                prefix_len: u8::from_str_radix(f[2], 16).ok()?,
                scope: u8::from_str_radix(f[3], 16).ok()?,
                flags: u8::from_str_radix(f[4], 16).ok()?,
                name: f[5].to_string(),
            })
        })
        .collect()
}

fn addresses_of(iface: &str) -> Vec<If6Addr> {
    std::fs::read_to_string("/proc/net/if_inet6")
        .map(|t| parse_if_inet6(&t))
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.name == iface)
        .collect()
}

fn mac_of(iface: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address")).ok()?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

fn jitter(max_ms: u64) -> Duration {
    let r = getrandom::u64().unwrap_or(max_ms / 2);
    Duration::from_millis(r % (max_ms + 1))
}

/// A bound interface: socket, link-local source, index.
struct Bound {
    sock: AsyncFd<socket2::Socket>,
    ll: Ipv6Addr,
    ifindex: u32,
}

fn open(iface: &str, ll: Ipv6Addr, ifindex: u32) -> std::io::Result<Bound> {
    use nix::sys::socket::{setsockopt, sockopt};
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    s.set_multicast_loop_v6(false)?;
    s.set_multicast_if_v6(ifindex)?;
    s.join_multicast_v6(&ALL_ROUTERS, ifindex)?;
    setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true).map_err(std::io::Error::from)?;
    s.bind(&SocketAddrV6::new(ll, 0, 0, ifindex).into())?;
    s.set_nonblocking(true)?;
    // SAFETY: the socket owns its descriptor, which stays open and the same until the AsyncFd
    // (and the socket inside it) is dropped.
    let sock = unsafe { AsyncFd::register(s) }.map_err(std::io::Error::from)?;
    Ok(Bound { sock, ll, ifindex })
}

/// One received message: payload, source, hop limit.
fn receive(fd: &socket2::Socket, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddrV6, i32)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn6};
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let m = recvmsg::<SockaddrIn6>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    let mut hops = -1;
    if let Ok(cmsgs) = m.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::Ipv6HopLimit(h) = c {
                hops = h;
            }
        }
    }
    let from = m
        .address
        .map(|a| SocketAddrV6::new(a.ip(), a.port(), a.flowinfo(), a.scope_id()))
        .ok_or_else(|| std::io::Error::other("no source address"))?;
    Ok((m.bytes, from, hops))
}

/// Per-interface state of the advertising machine (no I/O; tested below).
#[derive(Debug)]
pub struct Speaker {
    /// Another router's advertisement was seen; silent until then.
    quiet_until: Option<Instant>,
    /// Unicast answers due: destination → when.
    unicast: HashMap<Ipv6Addr, Instant>,
    /// Multicast advertisement due.
    multicast: Option<Instant>,
    last_multicast: Option<Instant>,
    initial_left: u32,
}

/// What a [`Speaker`] wants sent now.
#[derive(Debug, PartialEq, Eq)]
pub enum Send {
    To(Ipv6Addr),
    AllNodes,
}

impl Speaker {
    pub fn new(now: Instant) -> Speaker {
        Speaker {
            quiet_until: None,
            unicast: HashMap::new(),
            multicast: Some(now + LISTEN_FIRST),
            last_multicast: None,
            initial_left: MAX_INITIAL_RTR_ADVERTISEMENTS,
        }
    }

    pub fn quiet(&self, now: Instant) -> bool {
        self.quiet_until.is_some_and(|t| now < t)
    }

    /// A solicitation from `from` (unspecified: the solicitor has no address yet).
    pub fn solicited(&mut self, from: Ipv6Addr, now: Instant, delay: Duration) {
        if self.quiet(now) {
            return;
        }
        if from.is_unspecified() {
            let mut at = now + delay;
            if let Some(last) = self.last_multicast {
                at = at.max(last + MIN_DELAY_BETWEEN_RAS);
            }
            self.multicast = Some(self.multicast.map_or(at, |m| m.min(at)));
        } else {
            self.unicast.entry(from).or_insert(now + delay);
        }
    }

    /// Another router's advertisement that configures something: returns true the first time of
    /// a quiet spell (to log it).
    pub fn other_router(&mut self, now: Instant) -> bool {
        let first = !self.quiet(now);
        self.quiet_until = Some(now + QUIET_FOR);
        self.unicast.clear();
        first
    }

    /// When something is next due (`None`: nothing scheduled).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        if let Some(q) = self.quiet_until.filter(|q| now < *q) {
            return Some(q);
        }
        self.unicast.values().copied().chain(self.multicast).min()
    }

    /// What to send now; `interval` is the next unsolicited spacing to use after a multicast.
    pub fn due(&mut self, now: Instant, interval: Duration) -> Vec<Send> {
        if self.quiet(now) {
            return Vec::new();
        }
        if let Some(q) = self.quiet_until.take() {
            // The quiet spell is over: speak again as at start.
            let _ = q;
            self.multicast = Some(now);
            self.initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS;
        }
        let mut out = Vec::new();
        self.unicast.retain(|to, at| {
            if *at <= now {
                out.push(Send::To(*to));
                false
            } else {
                true
            }
        });
        if self.multicast.is_some_and(|m| m <= now) {
            out.push(Send::AllNodes);
            self.last_multicast = Some(now);
            let next = if self.initial_left > 1 {
                self.initial_left -= 1;
                interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL)
            } else {
                self.initial_left = 0;
                interval
            };
            self.multicast = Some(now + next);
        }
        out
    }
}

fn unsolicited_interval() -> Duration {
    let span = MAX_RTR_ADV_INTERVAL - MIN_RTR_ADV_INTERVAL;
    Duration::from_secs(MIN_RTR_ADV_INTERVAL) + jitter(span * 1000)
}

/// Serves one interface until shutdown: waits for its link-local address, then advertises.
pub async fn serve_interface(
    iface: String,
    mut view: watch::Receiver<Arc<RaView>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut waiting_logged = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let enabled = view.borrow().enabled;
        let ll = addresses_of(&iface)
            .into_iter()
            .find(|a| a.link_local() && a.usable());
        let ifindex = nix::net::if_::if_nametoindex(iface.as_str()).unwrap_or(0);
        match (enabled, ll) {
            (false, _) => {
                // Off: wait for the setting to change.
                tokio::select! {
                    r = view.changed() => if r.is_err() { return },
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            (true, Some(a)) if ifindex != 0 => match open(&iface, a.addr, ifindex) {
                Ok(b) => {
                    info!(interface = %iface, address = %a.addr, "router advertisements: listening for solicitations");
                    waiting_logged = false;
                    if speak(&iface, b, &mut view, &mut shutdown).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if !waiting_logged {
                        warn!(interface = %iface, "router advertisements: cannot open an ICMPv6 socket: {e}; trying again");
                        waiting_logged = true;
                    }
                }
            },
            (true, _) => {
                if !waiting_logged {
                    info!(interface = %iface, "router advertisements: waiting for an IPv6 link-local address on the interface");
                    waiting_logged = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ADDRESS_POLL) => {},
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs the speaker on a bound socket. Returns true on shutdown, false to rebind (address gone,
/// turned off).
async fn speak(
    iface: &str,
    b: Bound,
    view: &mut watch::Receiver<Arc<RaView>>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mac = mac_of(iface);
    let mut speaker = Speaker::new(Instant::now());
    // Ask the segment's routers to speak first.
    let rs = Solicitation {
        options: mac
            .map(|m| vec![NdOption::SourceLinkAddr(m.to_vec())])
            .unwrap_or_default(),
    };
    let _ = b.sock.get_ref().send_to(
        &rs.encode(),
        &SocketAddrV6::new(ALL_ROUTERS, 0, 0, b.ifindex).into(),
    );
    let mut buf = vec![0u8; 2048];
    let mut send_errors_logged = false;
    loop {
        let now = Instant::now();
        let wake = speaker
            .next_due(now)
            .unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.changed() => return true,
            r = view.changed() => {
                if r.is_err() { return true; }
                if !view.borrow().enabled {
                    info!(interface = %iface, "router advertisements: turned off (site.routeradvertisements)");
                    return false;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                let sends = speaker.due(now, unsolicited_interval());
                if sends.is_empty() {
                    continue;
                }
                let addrs: Vec<Ipv6Addr> = addresses_of(iface).iter().map(|a| a.addr).collect();
                if !addrs.contains(&b.ll) {
                    info!(interface = %iface, address = %b.ll, "router advertisements: the link-local address is gone; waiting for one");
                    return false;
                }
                let ra = Advertisement::null(mac, &view.borrow().prefixes_for(iface, &addrs)).encode();
                for s in sends {
                    let to = match s { Send::To(a) => a, Send::AllNodes => ALL_NODES };
                    match b.sock.get_ref().send_to(&ra, &SocketAddrV6::new(to, 0, 0, b.ifindex).into()) {
                        Ok(_) => debug!(interface = %iface, to = %to, "router advertisement sent"),
                        Err(e) if !send_errors_logged => {
                            warn!(interface = %iface, to = %to, "cannot send a router advertisement: {e}");
                            send_errors_logged = true;
                        }
                        Err(_) => {}
                    }
                }
            }
            r = b.sock.readable() => {
                let mut guard = match r {
                    Ok(g) => g,
                    Err(e) => {
                        warn!(interface = %iface, "router advertisements: socket failed: {e}");
                        return false;
                    }
                };
                let got = guard.try_io(|s| receive(s.get_ref(), &mut buf));
                let (n, from, hops) = match got {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => {
                        debug!(interface = %iface, "ICMPv6 receive failed: {e}");
                        continue;
                    }
                    Err(_would_block) => continue,
                };
                handle(iface, &b, &mut speaker, &buf[..n], *from.ip(), hops);
            }
        }
    }
}

fn handle(iface: &str, b: &Bound, speaker: &mut Speaker, data: &[u8], from: Ipv6Addr, hops: i32) {
    // Other ICMPv6 (neighbour discovery, MLD, echo) arrives here too: not ours to judge.
    if !matches!(
        data.first(),
        Some(&packet::ROUTER_SOLICITATION) | Some(&packet::ROUTER_ADVERTISEMENT)
    ) {
        return;
    }
    if from == b.ll {
        return;
    }
    if hops != 255 {
        debug!(interface = %iface, from = %from, hops, "router discovery message with hop limit below 255 dropped");
        return;
    }
    let now = Instant::now();
    match packet::decode(data) {
        Err(e) => {
            debug!(interface = %iface, from = %from, "bad router discovery message dropped: {e}")
        }
        Ok(Message::Solicitation(s)) => {
            if from.is_unspecified() && s.source_link_addr().is_some() {
                debug!(interface = %iface, "solicitation from :: with a link-layer address dropped (RFC 4861 §6.1.1)");
                return;
            }
            if speaker.quiet(now) {
                debug!(interface = %iface, from = %from, "router solicitation left to the other router");
                return;
            }
            speaker.solicited(from, now, jitter(MAX_RA_DELAY_MS));
        }
        Ok(Message::Advertisement(ra)) => {
            if from.segments()[0] & 0xffc0 != 0xfe80 {
                debug!(interface = %iface, from = %from, "router advertisement from a non-link-local source dropped");
                return;
            }
            if !ra.configures_something() {
                debug!(interface = %iface, from = %from, "another router advertisement that configures nothing; ignored");
                return;
            }
            if speaker.other_router(now) {
                info!(
                    interface = %iface,
                    router = %from,
                    lifetime = ra.router_lifetime,
                    prefixes = ra.prefixes().count(),
                    "router advertisements: another router advertises on this segment; bootherd stays quiet here"
                );
            }
        }
    }
}

/// Runs every interface until shutdown; `view` carries table changes.
pub async fn run(
    interfaces: Vec<String>,
    view: watch::Receiver<Arc<RaView>>,
    shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in interfaces {
        tasks.spawn(serve_interface(i, view.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_if_inet6_lines() {
        let t = "fe80000000000000505400fffe123456 03 40 20 80     br0\n\
                 fd000000000000000000000000000001 03 40 00 c0     br0\n\
                 fe80000000000000000000000000abcd 04 40 20 40    eth1\n\
                 garbage\n";
        let a = parse_if_inet6(t);
        assert_eq!(a.len(), 3);
        assert_eq!(
            a[0].addr,
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().expect("addr")
        );
        assert_eq!(
            (a[0].ifindex, a[0].prefix_len, a[0].name.as_str()),
            (3, 64, "br0")
        );
        assert!(a[0].link_local() && a[0].usable());
        assert!(!a[1].link_local());
        assert!(a[2].link_local() && !a[2].usable(), "tentative");
    }

    #[test]
    fn prefixes_by_interface_name_or_address() {
        let v = RaView {
            enabled: true,
            prefixes: vec![
                ("fd00:1::".parse().expect("p"), 64, None),
                ("fd00:2::".parse().expect("p"), 64, Some("br0".into())),
            ],
        };
        let mine: Vec<Ipv6Addr> = vec!["fd00:1::5".parse().expect("a")];
        assert_eq!(v.prefixes_for("br0", &mine).len(), 2);
        assert_eq!(v.prefixes_for("eth9", &mine).len(), 1);
        assert!(v.prefixes_for("eth9", &[]).is_empty());
    }

    #[test]
    fn answers_are_unicast_soon_and_multicast_rate_limited() {
        let t0 = Instant::now();
        let mut s = Speaker::new(t0);
        let host: Ipv6Addr = "fe80::1".parse().expect("a");
        s.solicited(host, t0, Duration::from_millis(200));
        assert_eq!(s.next_due(t0), Some(t0 + Duration::from_millis(200)));
        assert_eq!(
            s.due(t0 + Duration::from_millis(200), Duration::from_secs(300)),
            vec![Send::To(host)]
        );
        // The first unsolicited one, after listening for a second.
        let t1 = t0 + LISTEN_FIRST;
        assert_eq!(s.due(t1, Duration::from_secs(300)), vec![Send::AllNodes]);
        // A solicitation from :: right after: multicast, but not before 3 s have passed.
        s.solicited(Ipv6Addr::UNSPECIFIED, t1, Duration::from_millis(10));
        assert_eq!(s.next_due(t1), Some(t1 + MIN_DELAY_BETWEEN_RAS));
    }

    #[test]
    fn another_router_silences_then_expires() {
        let t0 = Instant::now();
        let mut s = Speaker::new(t0);
        assert!(s.other_router(t0));
        assert!(!s.other_router(t0 + Duration::from_secs(1)), "logged once");
        let host: Ipv6Addr = "fe80::1".parse().expect("a");
        s.solicited(host, t0 + Duration::from_secs(2), Duration::ZERO);
        assert!(s
            .due(t0 + Duration::from_secs(3), Duration::from_secs(300))
            .is_empty());
        let later = t0 + Duration::from_secs(1) + QUIET_FOR;
        assert_eq!(s.due(later, Duration::from_secs(300)), vec![Send::AllNodes]);
    }
}
