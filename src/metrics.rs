//! Prometheus metrics: counters and histograms the services bump on their hot paths, and the
//! text exposition (format 0.0.4) the HTTP service serves at `/metrics`.
//!
//! Everything the services touch is a plain `static` of atomics: an increment is one relaxed
//! `fetch_add`, with no lock, no allocation and no label lookup (each service has its own
//! fields; the `service` label is written only when the page is rendered). The DHCP engine
//! counts per round (one add for all the datagrams of a `recvmmsg` batch), not per packet.
//! Gauges that describe the store (nodes per status, leases per network) and the process
//! metrics are computed when the page is asked for.
//!
//! Why not the `prometheus-client` crate: its histograms take a lock per observation and its
//! labelled families a lock per lookup, which the DHCP and TFTP paths must not pay; the format
//! is small enough to write here, and the tests parse it with Prometheus' own parser.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the duration buckets, in seconds (a DHCP round is sub-millisecond, a kernel
/// over TFTP takes seconds).
pub const BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// A histogram of durations: one counter per bucket (not cumulative; summed when rendered), the
/// count and the sum in nanoseconds.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    /// `n` observations of the same duration (a batch answered together).
    pub fn observe_n(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(n, Relaxed);
        }
        self.count.fetch_add(n, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns.saturating_mul(n), Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

/// What one service counts.
pub struct Service {
    /// Requests taken (DHCP datagrams, TFTP read/write requests, HTTP requests, RPC calls).
    pub requests: AtomicU64,
    /// Bytes sent in answers (payload: files, replies).
    pub bytes: AtomicU64,
    /// Requests that ended in an error (HTTP 4xx/5xx, TFTP errors and timeouts, NFS errors,
    /// undecodable or unanswerable datagrams, failed sends).
    pub errors: AtomicU64,
    /// Time to answer (TFTP: the whole transfer; HTTP: head read → last byte sent).
    pub duration: Histogram,
}

impl Service {
    pub const fn new() -> Service {
        Service {
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            duration: Histogram::new(),
        }
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub fn requests_n(&self, n: u64) {
        self.requests.fetch_add(n, Relaxed);
    }

    pub fn sent(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
}

impl Default for Service {
    fn default() -> Self {
        Service::new()
    }
}

pub static DHCP: Service = Service::new();
pub static TFTP: Service = Service::new();
pub static HTTP: Service = Service::new();
pub static NFS: Service = Service::new();
/// Write transactions committed by this process (`Store::write`), begin → commit.
pub static STORE_COMMIT: Histogram = Histogram::new();

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cum = 0u64;
    for (i, b) in BUCKETS.iter().enumerate() {
        cum += h.buckets[i].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
    }
    // Read the count after the buckets so +Inf is never below a finite bucket.
    let count = h.count.load(Relaxed).max(cum);
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let sum = h.sum_ns.load(Relaxed) as f64 / 1e9;
    if labels.is_empty() {
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    } else {
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// What the store says at scrape time.
#[derive(Debug, Default, Clone)]
pub struct StoreGauges {
    /// `nodelist.status` (empty: "unknown") → nodes.
    pub nodes_by_status: Vec<(String, u64)>,
    /// Network (`net/mask` of the networks table, or "other") → active leases.
    pub leases_by_network: Vec<(String, u64)>,
}

/// Counts nodes per status and active leases per network.
pub fn store_gauges(store: &crate::store::Store) -> Result<StoreGauges, crate::store::StoreError> {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let spec = crate::store::table_spec("nodelist")?;
    let sc = spec.col_index("status").unwrap_or(2);
    for r in store.rows("nodelist")? {
        let st = r.get(sc).cloned().flatten().unwrap_or_default();
        let st = if st.trim().is_empty() {
            "unknown".to_string()
        } else {
            st
        };
        *by_status.entry(st).or_default() += 1;
    }
    let nspec = crate::store::table_spec("networks")?;
    let (nc, mc) = (
        nspec.col_index("net").unwrap_or(1),
        nspec.col_index("mask").unwrap_or(2),
    );
    let nets: Vec<(Ipv4Addr, Ipv4Addr, String)> = store
        .rows("networks")?
        .into_iter()
        .filter_map(|r| {
            let net: Ipv4Addr = r.get(nc).cloned().flatten()?.trim().parse().ok()?;
            let mask: Ipv4Addr = r.get(mc).cloned().flatten()?.trim().parse().ok()?;
            let bits = u32::from(mask).count_ones();
            Some((net, mask, format!("{net}/{bits}")))
        })
        .collect();
    let lspec = crate::store::table_spec("dhcpleases")?;
    let (ic, ec, sc) = (
        lspec.col_index("ip").unwrap_or(0),
        lspec.col_index("ends").unwrap_or(6),
        lspec.col_index("state").unwrap_or(7),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut by_net: BTreeMap<String, u64> = nets.iter().map(|n| (n.2.clone(), 0)).collect();
    for r in store.rows("dhcpleases")? {
        let state = r.get(sc).cloned().flatten().unwrap_or_default();
        if state != "active" {
            continue;
        }
        let ends: i64 = r
            .get(ec)
            .cloned()
            .flatten()
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(i64::MAX);
        if ends <= now {
            continue;
        }
        let Some(ip) = r
            .get(ic)
            .cloned()
            .flatten()
            .and_then(|i| i.trim().parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let name = nets
            .iter()
            .find(|(n, m, _)| u32::from(ip) & u32::from(*m) == u32::from(*n) & u32::from(*m))
            .map(|n| n.2.clone())
            .unwrap_or_else(|| "other".into());
        *by_net.entry(name).or_default() += 1;
    }
    Ok(StoreGauges {
        nodes_by_status: by_status.into_iter().collect(),
        leases_by_network: by_net.into_iter().collect(),
    })
}

/// The process's own numbers, from /proc/self.
#[derive(Debug, Default, Clone, Copy)]
struct Process {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time: f64,
    open_fds: u64,
    max_fds: u64,
    threads: u64,
}

fn process() -> Process {
    let mut p = Process::default();
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(4096) as u64;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            // utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (1-based);
            // f[0] is field 3.
            p.cpu_seconds = (num(11) + num(12)) as f64 / tick;
            p.threads = num(17);
            let boot = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("btime "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .unwrap_or(0);
            p.start_time = boot as f64 + num(19) as f64 / tick;
            p.virtual_bytes = num(20);
            p.resident_bytes = num(21) * page;
        }
    }
    p.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    if let Ok((soft, _)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        p.max_fds = soft;
    }
    p
}

/// The whole page.
pub fn render(g: &StoreGauges) -> String {
    let mut out = String::with_capacity(8192);
    let services: [(&str, &Service); 4] = [
        ("dhcp", &DHCP),
        ("tftp", &TFTP),
        ("http", &HTTP),
        ("nfs", &NFS),
    ];
    let counter = |out: &mut String, name: &str, help: &str, f: &dyn Fn(&Service) -> u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (s, m) in &services {
            let _ = writeln!(out, "{name}{{service=\"{s}\"}} {}", f(m));
        }
    };
    counter(
        &mut out,
        "bootherd_requests_total",
        "Requests taken per service (DHCP datagrams, TFTP transfers, HTTP requests, NFS/MOUNT/portmapper calls).",
        &|m| m.requests.load(Relaxed),
    );
    counter(
        &mut out,
        "bootherd_response_bytes_total",
        "Bytes sent in answers per service.",
        &|m| m.bytes.load(Relaxed),
    );
    counter(
        &mut out,
        "bootherd_errors_total",
        "Requests that ended in an error per service.",
        &|m| m.errors.load(Relaxed),
    );
    let name = "bootherd_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to answer per service (TFTP and HTTP: until the last byte is sent; DHCP: receipt to reply per round)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (s, m) in &services {
        histogram(&mut out, name, &format!("service=\"{s}\""), &m.duration);
    }
    let name = "bootherd_store_commit_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Store write transactions of this process, begin to durable commit."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    histogram(&mut out, name, "", &STORE_COMMIT);
    let _ = writeln!(
        out,
        "# HELP bootherd_nodes Nodes per nodelist.status (unknown: empty)."
    );
    let _ = writeln!(out, "# TYPE bootherd_nodes gauge");
    for (st, n) in &g.nodes_by_status {
        let _ = writeln!(out, "bootherd_nodes{{status=\"{}\"}} {n}", label(st));
    }
    let _ = writeln!(
        out,
        "# HELP bootherd_dhcp_leases Active DHCP leases per network of the networks table."
    );
    let _ = writeln!(out, "# TYPE bootherd_dhcp_leases gauge");
    for (net, n) in &g.leases_by_network {
        let _ = writeln!(
            out,
            "bootherd_dhcp_leases{{network=\"{}\"}} {n}",
            label(net)
        );
    }
    let p = process();
    for (name, ty, help, v) in [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds as f64,
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            p.threads as f64,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {ty}");
        let _ = writeln!(out, "{name} {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe_n(Duration::from_millis(3), 2);
        h.observe(Duration::from_secs(500));
        let mut s = String::new();
        histogram(&mut s, "x", "", &h);
        assert!(s.contains("x_bucket{le=\"0.0001\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.005\"} 3\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"120\"} 3\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 4\n"), "{s}");
        assert!(s.contains("x_count 4\n"), "{s}");
    }

    #[test]
    fn page_has_process_metrics_and_escapes_labels() {
        let g = StoreGauges {
            nodes_by_status: vec![("a\"b".into(), 2)],
            leases_by_network: vec![],
        };
        let p = render(&g);
        assert!(p.contains("bootherd_nodes{status=\"a\\\"b\"} 2\n"));
        assert!(p.contains("process_resident_memory_bytes "));
        assert!(!p.contains("process_resident_memory_bytes 0\n"));
    }
}
