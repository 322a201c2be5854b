//! dhcp-loadgen: a relay-mode DHCPv4 load generator.
//!
//! It plays a DHCP relay agent: it binds UDP `giaddr:67`, sends every client's DISCOVER and
//! REQUEST by unicast to the server with `giaddr` = its own address and hops = 1, and receives the
//! server's replies on `giaddr:67` (servers answer relays there). No broadcast, no raw sockets.
//!
//! Each exchange is a full DORA for one simulated client: DISCOVER → OFFER → REQUEST (option 50 =
//! offered address, option 54 = server id) → ACK. A NAK ends the exchange as a failure. Client n
//! has MAC `02:SS:SS:nn:nn:nn` and client-id `01` + MAC; clients are used in order and cycle
//! through `--clients`, so the first pass allocates new leases and later passes are clients
//! coming back for the lease they hold. Transaction ids map replies to exchanges.
//!
//! Closed loop: at most `--window` exchanges are in flight; a finished one is replaced at once.
//! A message unanswered after `--timeout-ms` is sent again (same xid) up to `--retries` times,
//! then the exchange counts as a drop. The run ends after `--duration` seconds or, with
//! `--count N`, once N exchanges have been started and finished.
//!
//! One thread, one non-blocking socket, poll(2) with a 1 ms tick; it reports its own CPU time.

mod packet;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use packet::{Reply, Request};

const USAGE: &str = "\
usage: dhcp-loadgen --server IP --giaddr IP [options]

Relay-mode DHCPv4 load generator: full DISCOVER-OFFER-REQUEST-ACK per simulated client.
Binds giaddr:BIND_PORT and sends unicast to SERVER:SERVER_PORT with giaddr set and hops 1.

  --server IP          DHCP server address (required)
  --giaddr IP          own address = relay agent address, must be routable from the server (required)
  --server-port N      server's port [67]
  --bind-port N        local port; servers reply to relays on 67 [67]
  --duration S         run this many seconds (fractions allowed) [10]
  --count N            start at most N exchanges, then wait for them (still capped by --duration)
  --window N           exchanges in flight at most [64]
  --clients N          distinct client MACs, used in order and cycled; must be >= window [10000]
  --mac-seed N         16-bit value in MAC bytes 2-3: 02:SS:SS:nn:nn:nn [0x4248]
  --timeout-ms N       wait this long for an OFFER or ACK before sending again [1000]
  --retries N          resend a message at most N times, then count a drop [2]
  --warmup S           give up (exit 3, no_answer) if nothing is completed after S seconds; 0 = never [3]
  --label TEXT         name to put in the report (e.g. the server under test)
  --format json|csv    report format on stdout: one JSON object, or a CSV line [json]
  --csv-header         with --format csv, print the header line first
  --json FILE          also append the JSON report (one line) to FILE
  --series             print completed exchanges per second on stderr while running
";

#[derive(Debug, Clone)]
struct Args {
    server: Ipv4Addr,
    giaddr: Ipv4Addr,
    server_port: u16,
    bind_port: u16,
    duration: Duration,
    count: Option<u64>,
    window: usize,
    clients: u32,
    mac_seed: u16,
    timeout: Duration,
    retries: u32,
    warmup: Option<Duration>,
    label: String,
    csv: bool,
    csv_header: bool,
    json_file: Option<String>,
    series: bool,
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    let t = v.trim();
    let parsed = if let Some(h) = t.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
            .ok()
            .and_then(|n| n.to_string().parse().ok())
    } else {
        t.parse().ok()
    };
    parsed.ok_or_else(|| format!("{flag}: not a valid number: {v:?}"))
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = parse_num(flag, v)?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(format!("{flag}: out of range: {v}"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut a = Args {
        server: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        server_port: 67,
        bind_port: 67,
        duration: Duration::from_secs(10),
        count: None,
        window: 64,
        clients: 10_000,
        mac_seed: 0x4248,
        timeout: Duration::from_millis(1000),
        retries: 2,
        warmup: Some(Duration::from_secs(3)),
        label: String::new(),
        csv: false,
        csv_header: false,
        json_file: None,
        series: false,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let flag = flag.as_str();
        // flags without a value
        match flag {
            "-h" | "--help" => return Err(String::new()),
            "--csv-header" => {
                a.csv_header = true;
                continue;
            }
            "--series" => {
                a.series = true;
                continue;
            }
            _ => {}
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag}: needs a value (see --help)"))?;
        match flag {
            "--server" => a.server = parse_num(flag, v)?,
            "--giaddr" => a.giaddr = parse_num(flag, v)?,
            "--server-port" => a.server_port = parse_num(flag, v)?,
            "--bind-port" => a.bind_port = parse_num(flag, v)?,
            "--duration" => a.duration = secs(flag, v)?,
            "--count" => a.count = Some(parse_num(flag, v)?),
            "--window" => a.window = parse_num(flag, v)?,
            "--clients" => a.clients = parse_num(flag, v)?,
            "--mac-seed" => a.mac_seed = parse_num(flag, v)?,
            "--timeout-ms" => a.timeout = Duration::from_millis(parse_num(flag, v)?),
            "--retries" => a.retries = parse_num(flag, v)?,
            "--warmup" => {
                let w = secs(flag, v)?;
                a.warmup = (!w.is_zero()).then_some(w);
            }
            "--label" => a.label = v.clone(),
            "--format" => {
                a.csv = match v.as_str() {
                    "json" => false,
                    "csv" => true,
                    _ => return Err(format!("--format: json or csv, not {v:?}")),
                }
            }
            "--json" => a.json_file = Some(v.clone()),
            _ => return Err(format!("unknown option {flag:?} (see --help)")),
        }
    }
    if a.server.is_unspecified() || a.giaddr.is_unspecified() {
        return Err("--server and --giaddr are required".into());
    }
    if a.window == 0 || a.window > 65_536 {
        return Err("--window: 1..=65536".into());
    }
    if a.clients == 0 || a.clients > 1 << 24 {
        return Err("--clients: 1..=16777216 (the low 3 bytes of the MAC)".into());
    }
    if (a.clients as usize) < a.window {
        return Err(
            "--clients must be at least --window: one client cannot be in two exchanges at once"
                .into(),
        );
    }
    if a.timeout.is_zero() {
        return Err("--timeout-ms must be positive".into());
    }
    Ok(a)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// DISCOVER sent, waiting for an OFFER.
    Discover,
    /// REQUEST sent for `yiaddr` to `server_id`, waiting for ACK/NAK.
    Request {
        yiaddr: Ipv4Addr,
        server_id: Ipv4Addr,
    },
}

#[derive(Debug)]
struct Exchange {
    seq: u64,
    mac: [u8; 6],
    phase: Phase,
    started: Instant,
    sent: Instant,
    tries: u32,
}

#[derive(Debug, Default)]
struct Stats {
    started: u64,
    discovers: u64,
    offers: u64,
    requests: u64,
    acks: u64,
    naks: u64,
    drops: u64,
    drops_waiting_offer: u64,
    drops_waiting_ack: u64,
    retransmits: u64,
    duplicate_offers: u64,
    stray: u64,
    malformed: u64,
    send_errors: u64,
    /// ACKs for the first exchange of a client (new leases).
    new_acks: u64,
    /// When the first pass over the clients ended (the first client came back), from the start,
    /// and how many exchanges had completed by then.
    first_pass: Option<(Duration, u64)>,
    lat_us: Vec<u32>,
    per_second: Vec<u32>,
}

struct Gen {
    a: Args,
    sock: UdpSocket,
    dst: SocketAddrV4,
    buf: Vec<u8>,
    inflight: HashMap<u32, Exchange>,
    next_xid: u32,
    st: Stats,
    t0: Instant,
}

impl Gen {
    fn new(a: Args, sock: UdpSocket) -> Gen {
        Gen {
            dst: SocketAddrV4::new(a.server, a.server_port),
            sock,
            buf: Vec::with_capacity(packet::MIN_LEN),
            inflight: HashMap::with_capacity(a.window * 2),
            // deterministic xids: runs against different servers send identical packets
            next_xid: u32::from(a.mac_seed) << 16 | 1,
            st: Stats {
                lat_us: Vec::with_capacity(1 << 20),
                ..Stats::default()
            },
            t0: Instant::now(),
            a,
        }
    }

    fn req(&self, xid: u32, mac: [u8; 6]) -> Request {
        Request {
            xid,
            mac,
            giaddr: self.a.giaddr,
        }
    }

    fn send(&mut self) -> bool {
        match self.sock.send_to(&self.buf, self.dst) {
            Ok(_) => true,
            Err(_) => {
                self.st.send_errors += 1;
                false
            }
        }
    }

    /// Builds the packet for the exchange's current phase into `self.buf`.
    fn build(&mut self, xid: u32) {
        let ex = &self.inflight[&xid];
        let r = self.req(xid, ex.mac);
        match ex.phase {
            Phase::Discover => packet::discover(&mut self.buf, &r),
            Phase::Request { yiaddr, server_id } => {
                packet::request(&mut self.buf, &r, yiaddr, server_id)
            }
        }
    }

    fn start_exchange(&mut self, now: Instant) {
        let seq = self.st.started;
        if seq == u64::from(self.a.clients) {
            self.st.first_pass = Some((now - self.t0, self.st.acks));
        }
        let client = (seq % u64::from(self.a.clients)) as u32;
        let mac = packet::client_mac(self.a.mac_seed, client);
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1);
        self.inflight.insert(
            xid,
            Exchange {
                seq,
                mac,
                phase: Phase::Discover,
                started: now,
                sent: now,
                tries: 0,
            },
        );
        self.st.started += 1;
        self.build(xid);
        self.send();
        self.st.discovers += 1;
    }

    fn on_reply(&mut self, r: Reply, now: Instant) {
        let Some(ex) = self.inflight.get_mut(&r.xid) else {
            // a late answer to a dropped exchange, or a second answer to a retransmission
            self.st.stray += 1;
            return;
        };
        if ex.mac != r.chaddr {
            self.st.stray += 1;
            return;
        }
        match (r.msg_type, ex.phase) {
            (packet::DHCPOFFER, Phase::Discover) => {
                self.st.offers += 1;
                ex.phase = Phase::Request {
                    yiaddr: r.yiaddr,
                    server_id: r.server_id.unwrap_or(self.a.server),
                };
                ex.tries = 0;
                ex.sent = now;
                self.build(r.xid);
                self.send();
                self.st.requests += 1;
            }
            (packet::DHCPOFFER, Phase::Request { .. }) => self.st.duplicate_offers += 1,
            (packet::DHCPACK, Phase::Request { .. }) => {
                let ex = self.inflight.remove(&r.xid).expect("present");
                self.st.acks += 1;
                let us = (now - ex.started).as_micros().min(u128::from(u32::MAX)) as u32;
                self.st.lat_us.push(us);
                let sec = (now - self.t0).as_secs() as usize;
                if self.st.per_second.len() <= sec {
                    self.st.per_second.resize(sec + 1, 0);
                }
                self.st.per_second[sec] += 1;
                if ex.seq < u64::from(self.a.clients) {
                    self.st.new_acks += 1;
                }
            }
            (packet::DHCPNAK, _) => {
                self.inflight.remove(&r.xid);
                self.st.naks += 1;
            }
            _ => self.st.stray += 1,
        }
    }

    /// Resends what has waited longer than the timeout, or gives up on it.
    fn sweep(&mut self, now: Instant) {
        let timeout = self.a.timeout;
        let expired: Vec<u32> = self
            .inflight
            .iter()
            .filter(|(_, e)| now.duration_since(e.sent) >= timeout)
            .map(|(x, _)| *x)
            .collect();
        for xid in expired {
            let ex = self.inflight.get_mut(&xid).expect("present");
            if ex.tries < self.a.retries {
                ex.tries += 1;
                ex.sent = now;
                self.st.retransmits += 1;
                self.build(xid);
                self.send();
            } else {
                let ex = self.inflight.remove(&xid).expect("present");
                self.st.drops += 1;
                match ex.phase {
                    Phase::Discover => self.st.drops_waiting_offer += 1,
                    Phase::Request { .. } => self.st.drops_waiting_ack += 1,
                }
            }
        }
    }

    /// Returns (elapsed, no_answer).
    fn run(&mut self) -> (Duration, bool) {
        let end = self.t0 + self.a.duration;
        let limit = self.a.count.unwrap_or(u64::MAX);
        let mut rx = [0u8; 1500];
        let mut last_sweep = self.t0;
        let mut last_series = 0usize;
        let fd = self.sock.as_raw_fd();
        loop {
            let now = Instant::now();
            if now >= end {
                return (now - self.t0, false);
            }
            if self.st.started >= limit && self.inflight.is_empty() {
                return (now - self.t0, false);
            }
            if let Some(w) = self.a.warmup {
                if self.st.acks == 0 && now - self.t0 >= w {
                    return (now - self.t0, true);
                }
            }
            while self.inflight.len() < self.a.window && self.st.started < limit {
                self.start_exchange(now);
            }
            // drain everything that is queued
            let mut got = 0usize;
            loop {
                match self.sock.recv(&mut rx) {
                    Ok(n) => {
                        got += 1;
                        match packet::parse_reply(&rx[..n]) {
                            Some(r) => self.on_reply(r, Instant::now()),
                            None => self.st.malformed += 1,
                        }
                        // keep the window full while a burst is being drained
                        if got % 16 == 0 {
                            let now = Instant::now();
                            while self.inflight.len() < self.a.window && self.st.started < limit {
                                self.start_exchange(now);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // e.g. ECONNREFUSED from an ICMP port unreachable: nobody listens (yet)
                    Err(_) => {
                        self.st.send_errors += 1;
                        break;
                    }
                }
            }
            let now = Instant::now();
            if now.duration_since(last_sweep) >= Duration::from_millis(1) {
                self.sweep(now);
                last_sweep = now;
            }
            if self.a.series {
                let sec = (now - self.t0).as_secs() as usize;
                if sec > last_series {
                    let n = self.st.per_second.get(last_series).copied().unwrap_or(0);
                    eprintln!("dhcp-loadgen: second {}: {n} completed", last_series + 1);
                    last_series = sec;
                }
            }
            if got == 0 {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, the socket outlives the call.
                unsafe { libc::poll(&mut p, 1, 1) };
            }
        }
    }
}

fn set_buf(sock: &UdpSocket, force: libc::c_int, opt: libc::c_int, bytes: libc::c_int) {
    let set = |o: libc::c_int| {
        // SAFETY: plain setsockopt on an open socket with a c_int value.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                o,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(force) != 0 {
        set(opt);
    }
}

fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// Value of the q-quantile (0..=1) of sorted samples, in milliseconds.
fn quantile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let i = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    Some(f64::from(sorted_us[i]) / 1000.0)
}

/// Full seconds without a single completed exchange, after the first one completed.
fn stalled_seconds(per_second: &[u32]) -> usize {
    per_second
        .iter()
        .skip_while(|&&n| n == 0)
        .filter(|&&n| n == 0)
        .count()
}

/// One report: ordered (name, value) pairs, values already formatted as JSON scalars.
struct Report {
    fields: Vec<(&'static str, String)>,
    per_second: Vec<u32>,
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("null".into(), |x| format!("{x:.2}"))
}

fn report(a: &Args, st: &mut Stats, elapsed: Duration, no_answer: bool, inflight: usize) -> Report {
    st.lat_us.sort_unstable();
    let el = elapsed.as_secs_f64();
    // every full second of the run has an entry, so seconds without a completion show as 0
    let full = elapsed.as_secs() as usize;
    if st.per_second.len() < full {
        st.per_second.resize(full, 0);
    }
    let stalled = stalled_seconds(&st.per_second[..full.min(st.per_second.len())]);
    let (user, sys) = cpu_seconds();
    let rate = |n: u64, t: f64| if t > 0.0 { n as f64 / t } else { 0.0 };
    // the rate while only new clients were being served
    let new_rate = match st.first_pass {
        Some((t, acks)) => rate(acks, t.as_secs_f64()),
        None => rate(st.acks, el),
    };
    let f = |v: u64| v.to_string();
    let fields = vec![
        ("label", json_str(&a.label)),
        ("server", json_str(&a.server.to_string())),
        ("giaddr", json_str(&a.giaddr.to_string())),
        ("window", a.window.to_string()),
        ("clients", a.clients.to_string()),
        ("timeout_ms", a.timeout.as_millis().to_string()),
        ("retries", a.retries.to_string()),
        ("duration_s", format!("{el:.3}")),
        ("no_answer", no_answer.to_string()),
        ("completed", f(st.acks)),
        ("dora_per_s", format!("{:.1}", rate(st.acks, el))),
        ("started", f(st.started)),
        ("drops", f(st.drops)),
        ("drops_waiting_offer", f(st.drops_waiting_offer)),
        ("drops_waiting_ack", f(st.drops_waiting_ack)),
        ("naks", f(st.naks)),
        ("stalled_s", stalled.to_string()),
        ("in_flight_at_end", inflight.to_string()),
        ("discovers", f(st.discovers)),
        ("offers", f(st.offers)),
        ("requests", f(st.requests)),
        ("retransmits", f(st.retransmits)),
        ("duplicate_offers", f(st.duplicate_offers)),
        ("stray", f(st.stray)),
        ("malformed", f(st.malformed)),
        ("socket_errors", f(st.send_errors)),
        ("new_leases", f(st.new_acks)),
        (
            "first_pass_s",
            st.first_pass
                .map_or("null".into(), |(t, _)| format!("{:.3}", t.as_secs_f64())),
        ),
        ("new_lease_dora_per_s", format!("{new_rate:.1}")),
        ("lat_p50_ms", opt_ms(quantile_ms(&st.lat_us, 0.50))),
        ("lat_p99_ms", opt_ms(quantile_ms(&st.lat_us, 0.99))),
        ("lat_max_ms", opt_ms(quantile_ms(&st.lat_us, 1.0))),
        ("cpu_user_s", format!("{user:.2}")),
        ("cpu_sys_s", format!("{sys:.2}")),
        (
            "cpu_pct",
            format!(
                "{:.1}",
                if el > 0.0 {
                    (user + sys) / el * 100.0
                } else {
                    0.0
                }
            ),
        ),
    ];
    Report {
        fields,
        per_second: std::mem::take(&mut st.per_second),
    }
}

impl Report {
    fn json(&self) -> String {
        let mut o = String::from("{");
        for (k, v) in &self.fields {
            let _ = write!(o, "\"{k}\":{v},");
        }
        let series: Vec<String> = self.per_second.iter().map(u32::to_string).collect();
        let _ = write!(o, "\"completed_per_second\":[{}]}}", series.join(","));
        o
    }
    fn csv_header(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|(k, _)| *k).collect();
        names.join(",")
    }
    fn csv(&self) -> String {
        let vals: Vec<String> = self
            .fields
            .iter()
            .map(|(_, v)| match v.as_str() {
                "null" => String::new(),
                v => v.trim_matches('"').replace(',', ";"),
            })
            .collect();
        vals.join(",")
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dhcp-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let sock = match UdpSocket::bind(SocketAddrV4::new(a.giaddr, a.bind_port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "dhcp-loadgen: cannot bind {}:{}: {e} (port 67 needs root or CAP_NET_BIND_SERVICE)",
                a.giaddr, a.bind_port
            );
            return ExitCode::from(1);
        }
    };
    // FORCE variants (root) go past net.core.[rw]mem_max: a full window of replies must fit.
    set_buf(&sock, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 4 << 20);
    set_buf(&sock, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 4 << 20);
    if let Err(e) = sock.set_nonblocking(true) {
        eprintln!("dhcp-loadgen: {e}");
        return ExitCode::from(1);
    }
    let mut g = Gen::new(a.clone(), sock);
    let (elapsed, no_answer) = g.run();
    let inflight = g.inflight.len();
    let r = report(&a, &mut g.st, elapsed, no_answer, inflight);
    let mut out = io::stdout().lock();
    let line = if a.csv {
        if a.csv_header {
            let _ = writeln!(out, "{}", r.csv_header());
        }
        r.csv()
    } else {
        r.json()
    };
    let _ = writeln!(out, "{line}");
    if let Some(p) = &a.json_file {
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .and_then(|mut f| writeln!(f, "{}", r.json()));
        if let Err(e) = res {
            eprintln!("dhcp-loadgen: cannot write {p}: {e}");
            return ExitCode::from(1);
        }
    }
    if no_answer {
        eprintln!(
            "dhcp-loadgen: no exchange completed within the warm-up ({:?}): is a server answering at {}?",
            a.warmup.unwrap_or_default(),
            a.server
        );
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse_args(&v)
    }

    #[test]
    fn args_defaults_and_overrides() {
        let a = args("--server 10.99.0.1 --giaddr 10.99.128.1").unwrap();
        assert_eq!((a.window, a.clients, a.retries), (64, 10_000, 2));
        assert_eq!(a.timeout, Duration::from_secs(1));
        let a = args("--server 10.99.0.1 --giaddr 10.99.128.1 --duration 2.5 --window 8 --clients 8 --mac-seed 0x0102 --warmup 0 --count 100").unwrap();
        assert_eq!(a.duration, Duration::from_millis(2500));
        assert_eq!((a.window, a.clients, a.mac_seed), (8, 8, 0x0102));
        assert_eq!((a.warmup, a.count), (None, Some(100)));
        assert!(args("--server 10.99.0.1").is_err());
        assert!(args("--server 10.99.0.1 --giaddr 10.99.128.1 --window 64 --clients 10").is_err());
        assert!(args("--server 10.99.0.1 --giaddr x").is_err());
        assert!(args("--server 10.99.0.1 --giaddr 10.99.128.1 --bogus 1").is_err());
    }

    fn gen(a: Args) -> Gen {
        let sock = UdpSocket::bind(SocketAddrV4::new(a.giaddr, a.bind_port)).unwrap();
        sock.set_nonblocking(true).unwrap();
        Gen::new(a, sock)
    }

    #[test]
    fn stalls_count_only_after_the_first_completion() {
        assert_eq!(stalled_seconds(&[0, 0, 5, 0, 7, 0, 0]), 3);
        assert_eq!(stalled_seconds(&[0, 0]), 0);
        assert_eq!(stalled_seconds(&[]), 0);
    }

    #[test]
    fn quantiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&v, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&v, 1.0), Some(100.0));
        assert_eq!(quantile_ms(&[], 0.5), None);
        assert_eq!(quantile_ms(&[7], 0.99), Some(0.007));
    }

    /// A complete DORA against a tiny in-process server on loopback, then a server that does
    /// not answer (drops after retries).
    #[test]
    fn dora_over_loopback() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = srv.local_addr().unwrap().port();
        let gen_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let gen_port = gen_sock.local_addr().unwrap().port();
        drop(gen_sock);
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 1500];
            let mut acked = 0;
            srv.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while acked < 4 {
                let (n, from) = srv.recv_from(&mut b).unwrap();
                let mut p = b[..n].to_vec();
                assert_eq!(p[3], 1, "hops");
                assert_eq!(&p[24..28], &[127, 0, 0, 1], "giaddr");
                let t = p[242];
                p[0] = packet::BOOTREPLY;
                p[16..20].copy_from_slice(&[10, 0, 0, 9]);
                p.truncate(240);
                let reply_type = if t == packet::DHCPDISCOVER {
                    packet::DHCPOFFER
                } else {
                    packet::DHCPACK
                };
                if t == packet::DHCPREQUEST {
                    acked += 1;
                }
                p.extend_from_slice(&[53, 1, reply_type, 54, 4, 127, 0, 0, 1, 255]);
                srv.send_to(&p, from).unwrap();
            }
        });
        let base = format!(
            "--server 127.0.0.1 --server-port {port} --giaddr 127.0.0.1 --bind-port {gen_port} --window 1 --clients 3 --count 4 --duration 5 --timeout-ms 200"
        );
        let a = args(&base).unwrap();
        let mut g = gen(a);
        let (_, no_answer) = g.run();
        t.join().unwrap();
        assert!(!no_answer);
        assert_eq!(
            (g.st.acks, g.st.new_acks, g.st.drops, g.st.naks),
            (4, 3, 0, 0)
        );
        // 4 exchanges from 3 clients: the 4th is client 0 coming back
        assert_eq!((g.st.discovers, g.st.offers, g.st.requests), (4, 4, 4));
        assert_eq!(g.st.first_pass.map(|(_, acks)| acks), Some(3));
        assert_eq!(g.st.lat_us.len(), 4);
        drop(g); // frees the port for the second run

        // nobody answers: 1 + 1 retry per exchange, then drops; the warm-up ends the run
        let a = args(&format!(
            "--server 127.0.0.1 --server-port {port} --giaddr 127.0.0.1 --bind-port {gen_port} --window 2 --clients 2 --duration 5 --timeout-ms 100 --retries 1 --warmup 0.5"
        ))
        .unwrap();
        let mut g = gen(a);
        let (el, no_answer) = g.run();
        assert!(no_answer);
        assert!(el < Duration::from_secs(2));
        assert_eq!(g.st.acks, 0);
        assert!(g.st.drops >= 2, "{:?}", g.st);
        assert!(g.st.retransmits >= g.st.drops, "{:?}", g.st);
    }
}
