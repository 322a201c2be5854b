//! Boot timelines: every step of a node's boot the daemon sees (DHCP offer/ack with the boot
//! file, each TFTP/HTTP file with its size and duration, NFS mounts, install status callbacks,
//! postscripts, discovery steps, errors), kept in bootherd's own `bootevents` table and shown by
//! `bootherd timeline <node>`.
//!
//! The services call [`record`] where a step ends. It costs one relaxed load when no recorder
//! runs (admin commands, tests), and otherwise one `try_send` on a bounded lock-free channel: no
//! lock, no store access, and nothing waits (a full channel drops the event and counts it). One
//! recorder thread ([`Recorder`]) drains the channel, names the node of each event (by MAC from
//! the `mac` table, by address from `hosts.ip` or the node's DHCP lease), and writes the batch in
//! one transaction every [`FLUSH`]. Retention is bounded: the newest [`KEEP_PER_NODE`] events
//! per node; the oldest are deleted in the same transaction.
//!
//! Why a table rather than memory: `bootherd timeline` (and a dashboard) runs in another
//! process, and the store is the only channel between processes; a node stuck across a daemon
//! restart keeps its history; and batching keeps the cost to one small transaction a second
//! while nodes boot, and none while they do not.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::resolver::Resolver;
use crate::store::{Store, StoreError};

/// Events kept per node (older ones are deleted as new ones arrive).
pub const KEEP_PER_NODE: usize = 300;
/// How often the recorder writes what it has.
pub const FLUSH: Duration = Duration::from_millis(250);
/// Events of machines that are no node (`mac:` keys) written per batch; the rest are dropped.
const UNKNOWN_PER_BATCH: usize = 64;
/// Machines that are no node kept at most (the first seen are forgotten first).
const UNKNOWN_KEYS: usize = 2000;
/// Events the channel holds before new ones are dropped.
const CHANNEL: usize = 16384;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    DhcpOffer,
    DhcpAck,
    DhcpNak,
    Tftp,
    Http,
    NfsMount,
    Status,
    Postscript,
    Discovery,
    Error,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DhcpOffer => "dhcp-offer",
            Kind::DhcpAck => "dhcp-ack",
            Kind::DhcpNak => "dhcp-nak",
            Kind::Tftp => "tftp",
            Kind::Http => "http",
            Kind::NfsMount => "nfs-mount",
            Kind::Status => "status",
            Kind::Postscript => "postscript",
            Kind::Discovery => "discovery",
            Kind::Error => "error",
        }
    }
}

/// Whose event it is, as the service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Node(String),
    Mac(String),
    Ip(IpAddr),
}

/// One step.
#[derive(Debug, Clone)]
pub struct Event {
    /// Microseconds since the epoch.
    pub at_us: u64,
    pub who: Who,
    pub kind: Kind,
    pub detail: String,
    pub bytes: Option<u64>,
    pub ms: Option<u64>,
    pub peer: Option<IpAddr>,
}

impl Event {
    /// An event happening now.
    pub fn now(who: Who, kind: Kind, detail: impl Into<String>) -> Event {
        Event {
            at_us: now_us(),
            who,
            kind,
            detail: detail.into(),
            bytes: None,
            ms: None,
            peer: None,
        }
    }

    pub fn file(mut self, bytes: u64, took: Duration) -> Event {
        self.bytes = Some(bytes);
        self.ms = Some(took.as_millis() as u64);
        self
    }

    pub fn peer(mut self, ip: IpAddr) -> Event {
        self.peer = Some(ip);
        self
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

static ON: AtomicBool = AtomicBool::new(false);
static TX: OnceLock<SyncSender<Event>> = OnceLock::new();
/// Events dropped because the channel was full.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Whether a recorder runs (build an event only then).
#[inline]
pub fn enabled() -> bool {
    ON.load(Relaxed)
}

/// Hands an event to the recorder; never blocks.
pub fn record(ev: Event) {
    if !enabled() {
        return;
    }
    if let Some(tx) = TX.get() {
        if let Err(TrySendError::Full(_)) = tx.try_send(ev) {
            DROPPED.fetch_add(1, Relaxed);
        }
    }
}

/// Events of machines that are no node the recorder still takes before its next write: services
/// that would have to format such an event ask [`take_unknown`] first.
static UNKNOWN_LEFT: AtomicUsize = AtomicUsize::new(UNKNOWN_PER_BATCH);

/// Whether an event of a machine that is no node would be kept (one of the next write's
/// [`UNKNOWN_PER_BATCH`]); counts it as taken. When `false`, the event is counted as dropped
/// and should not be built.
pub fn take_unknown() -> bool {
    let taken = UNKNOWN_LEFT
        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
        .is_ok();
    if !taken {
        DROPPED.fetch_add(1, Relaxed);
    }
    taken
}

/// Builds and records an event only when a recorder runs.
#[inline]
pub fn record_with(f: impl FnOnce() -> Event) {
    if enabled() {
        record(f());
    }
}

/// The recorder: installed once per process (`bootherd serve`).
pub struct Recorder {
    rx: Receiver<Event>,
    resolver: Arc<Resolver>,
    /// Per key, the seqs stored, oldest first.
    kept: HashMap<String, VecDeque<u64>>,
    /// The `mac:` keys in `kept`, first seen first.
    unknown_keys: VecDeque<String>,
    last_seq: u64,
    ip_cache: Option<(u64, HashMap<String, String>)>,
}

impl Recorder {
    /// Installs the process's recorder and loads what the table holds. `None` when one is
    /// installed already.
    pub fn install(resolver: Arc<Resolver>) -> Result<Option<Recorder>, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL);
        if TX.set(tx).is_err() {
            return Ok(None);
        }
        let mut kept: HashMap<String, VecDeque<u64>> = HashMap::new();
        let mut last_seq = 0;
        for r in resolver.store().rows("bootevents")? {
            let (Some(Some(node)), Some(Some(seq))) = (r.first(), r.get(1)) else {
                continue;
            };
            let Ok(seq) = seq.parse::<u64>() else {
                continue;
            };
            last_seq = last_seq.max(seq);
            kept.entry(node.clone()).or_default().push_back(seq);
        }
        for q in kept.values_mut() {
            q.make_contiguous().sort_unstable();
        }
        let unknown_keys = kept
            .keys()
            .filter(|k| k.starts_with("mac:"))
            .cloned()
            .collect();
        Ok(Some(Recorder {
            rx,
            resolver,
            kept,
            unknown_keys,
            last_seq,
            ip_cache: None,
        }))
    }

    /// Runs on its own thread until the process ends; services record from here on.
    pub fn run(mut self) {
        ON.store(true, Relaxed);
        loop {
            let Ok(first) = self.rx.recv() else {
                return;
            };
            std::thread::sleep(FLUSH);
            let mut batch = vec![first];
            while let Ok(e) = self.rx.try_recv() {
                batch.push(e);
                if batch.len() >= 8192 {
                    break;
                }
            }
            if let Err(e) = self.write(batch) {
                tracing::warn!("boot timeline: cannot write events: {e}");
            }
        }
    }

    /// The key an event is kept under.
    fn key(
        &self,
        who: &Who,
        macs: &HashMap<String, String>,
        ips: &HashMap<String, String>,
    ) -> String {
        let by_mac = |m: &str| {
            let m = m.to_ascii_lowercase();
            macs.get(&m).cloned().unwrap_or_else(|| format!("mac:{m}"))
        };
        match who {
            Who::Node(n) => n.clone(),
            Who::Mac(m) => by_mac(m),
            Who::Ip(ip) => {
                let s = ip.to_string();
                if let Some(n) = ips.get(&s) {
                    return n.clone();
                }
                // A dynamic address: the lease says whose.
                if let Ok(Some(lease)) = self.resolver.store().get("dhcpleases", &[&s]) {
                    if let Some(Some(n)) = lease.get(4) {
                        if !n.is_empty() {
                            return n.clone();
                        }
                    }
                    if let Some(Some(m)) = lease.get(1) {
                        return by_mac(m);
                    }
                }
                format!("ip:{s}")
            }
        }
    }

    /// Address → node, from each node's `hosts.ip` (group and regex rows included); rebuilt
    /// when the resolver has seen a change.
    fn ips(&mut self) -> HashMap<String, String> {
        let gen = self.resolver.generation();
        if let Some((g, m)) = &self.ip_cache {
            if *g == gen {
                return m.clone();
            }
        }
        let mut m = HashMap::new();
        if let Ok(members) = self.resolver.membership() {
            for n in &members.nodes {
                if let Ok(Some(ip)) = self.resolver.attr(n, "hosts", "ip") {
                    m.insert(ip.trim().to_string(), n.clone());
                }
            }
        }
        self.ip_cache = Some((gen, m.clone()));
        m
    }

    /// MAC → node, from the `mac` table (`mac|mac!ifname` lists).
    fn macs(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Ok(t) = self.resolver.table("mac") {
            let mc = t.spec.col_index("mac").unwrap_or(2);
            for r in &t.rows {
                let (Some(Some(node)), Some(Some(list))) = (r.first(), r.get(mc)) else {
                    continue;
                };
                for one in list.split('|') {
                    let mac = one
                        .split('!')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    if !mac.is_empty() {
                        m.insert(mac, node.clone());
                    }
                }
            }
        }
        m
    }

    fn write(&mut self, batch: Vec<Event>) -> Result<(), StoreError> {
        UNKNOWN_LEFT.store(UNKNOWN_PER_BATCH, Relaxed);
        let _ = self.resolver.catch_up();
        let macs = self.macs();
        let ips = if batch.iter().any(|e| matches!(e.who, Who::Ip(_))) {
            self.ips()
        } else {
            HashMap::new()
        };
        let mut rows: Vec<(String, u64, Event)> = Vec::with_capacity(batch.len());
        let mut unknown = 0usize;
        for e in batch {
            let key = self.key(&e.who, &macs, &ips);
            // An address that is no node's and holds no lease (an admin's browser, a scraper)
            // has no boot to follow.
            if key.starts_with("ip:") {
                continue;
            }
            // Machines that are no node yet are kept, but a flood of them (a DHCP load test,
            // a misconfigured relay) must not double the store's write load: a few per batch.
            if key.starts_with("mac:") {
                unknown += 1;
                if unknown > UNKNOWN_PER_BATCH {
                    DROPPED.fetch_add(1, Relaxed);
                    continue;
                }
            }
            let seq = e.at_us.max(self.last_seq + 1);
            self.last_seq = seq;
            rows.push((key, seq, e));
        }
        let mut deletes: Vec<(String, u64)> = Vec::new();
        for (key, seq, _) in &rows {
            if key.starts_with("mac:") && !self.kept.contains_key(key) {
                self.unknown_keys.push_back(key.clone());
                while self.unknown_keys.len() > UNKNOWN_KEYS {
                    if let Some(old) = self.unknown_keys.pop_front() {
                        for s in self.kept.remove(&old).unwrap_or_default() {
                            deletes.push((old.clone(), s));
                        }
                    }
                }
            }
            let q = self.kept.entry(key.clone()).or_default();
            q.push_back(*seq);
            while q.len() > KEEP_PER_NODE {
                if let Some(old) = q.pop_front() {
                    deletes.push((key.clone(), old));
                }
            }
        }
        self.resolver.store().write(None, |tx| {
            for (key, seq, e) in &rows {
                let seq_s = seq.to_string();
                let time = local_time(e.at_us);
                let bytes = e.bytes.map(|b| b.to_string());
                let ms = e.ms.map(|b| b.to_string());
                let peer = e.peer.map(|p| p.to_string());
                tx.set(
                    "bootevents",
                    &[key, &seq_s],
                    &[
                        ("time", Some(&time)),
                        ("event", Some(e.kind.as_str())),
                        ("detail", Some(&e.detail)),
                        ("bytes", bytes.as_deref()),
                        ("ms", ms.as_deref()),
                        ("peer", peer.as_deref()),
                    ],
                )?;
            }
            for (key, seq) in &deletes {
                tx.delete("bootevents", &[key, &seq.to_string()])?;
            }
            Ok(())
        })
    }
}

/// Local time with milliseconds, `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn local_time(at_us: u64) -> String {
    let secs = (at_us / 1_000_000) as libc::time_t;
    let ms = (at_us / 1000) % 1000;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes into our own tm and reads only secs.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{ms:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// One stored event, as `bootherd timeline` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub time: String,
    pub event: String,
    pub detail: String,
    pub bytes: Option<u64>,
    pub ms: Option<u64>,
    pub peer: Option<String>,
}

/// A node's events, oldest first.
pub fn events(store: &Store, node: &str) -> Result<Vec<Stored>, StoreError> {
    let mut out: Vec<Stored> = store
        .rows("bootevents")?
        .into_iter()
        .filter(|r| r.first().cloned().flatten().as_deref() == Some(node))
        .filter_map(|r| {
            let get = |i: usize| r.get(i).cloned().flatten();
            Some(Stored {
                seq: get(1)?.parse().ok()?,
                time: get(2).unwrap_or_default(),
                event: get(3).unwrap_or_default(),
                detail: get(4).unwrap_or_default(),
                bytes: get(5).and_then(|v| v.parse().ok()),
                ms: get(6).and_then(|v| v.parse().ok()),
                peer: get(7),
            })
        })
        .collect();
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// One line of `bootherd timeline`.
pub fn line(e: &Stored) -> String {
    let mut s = format!("{}  {:<11} {}", e.time, e.event, e.detail);
    match (e.bytes, e.ms) {
        (Some(b), Some(ms)) => s.push_str(&format!(" ({b} bytes in {ms} ms)")),
        (Some(b), None) => s.push_str(&format!(" ({b} bytes)")),
        _ => {}
    }
    if let Some(p) = &e.peer {
        s.push_str(&format!(" from {p}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_times() {
        let e = Stored {
            seq: 1,
            time: "2026-12-06 07:50:01.123".into(),
            event: "tftp".into(),
            detail: "xcat/xnba.kpxe".into(),
            bytes: Some(1000),
            ms: Some(12),
            peer: Some("10.0.0.5".into()),
        };
        assert_eq!(
            line(&e),
            "2026-12-06 07:50:01.123  tftp        xcat/xnba.kpxe (1000 bytes in 12 ms) from 10.0.0.5"
        );
        assert_eq!(local_time(0).len(), 23);
    }

    #[test]
    fn nothing_is_recorded_without_a_recorder() {
        // No recorder in unit tests: record is a no-op and builds nothing.
        let mut built = false;
        record_with(|| {
            built = true;
            Event::now(Who::Node("n1".into()), Kind::Status, "x")
        });
        assert!(!built || enabled());
    }
}
