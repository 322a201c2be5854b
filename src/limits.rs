//! What every service uses to keep one client from taking the whole appliance: per-source slot
//! accounting ([`PerSource`]), a log line that is written at most once per interval with a count
//! of what was held back ([`Throttle`]), a bounded, expiring "already said so" set ([`Recent`]),
//! and the site-table reader for the limits ([`site_limit`]).
//!
//! The pattern for a service with a shared pool of `N` slots (connections, transfers): a new
//! client first takes a slot of its source ([`PerSource::try_acquire`]; at most `per_source` at
//! once), then one of the pool. A source over its share is refused at once, so one address (or a
//! few) can never hold the slots the nodes need. The map holds only sources with a slot in use,
//! so it is bounded by the pool.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Slots in use per source address, each at most `max`.
#[derive(Debug)]
pub struct PerSource {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot of one source; given back when dropped.
#[derive(Debug)]
pub struct SourceSlot {
    owner: Arc<PerSource>,
    ip: IpAddr,
}

impl PerSource {
    pub fn new(max: usize) -> Arc<PerSource> {
        Arc::new(PerSource {
            max: max.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// The most slots one source may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `ip`, or `None` when it holds its share already.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = canonical(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            owner: self.clone(),
            ip,
        })
    }

    /// Slots `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Sources holding at least one slot.
    pub fn sources(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Requests per second per source address, for services answering datagrams inline (DNS):
/// a source over `per_sec` in the current second is refused until the next one. At most `cap`
/// sources are counted; when that many sent in this second, new sources are refused too (a
/// flood of forged addresses cannot grow the map, and cannot crowd out counted sources).
#[derive(Debug)]
pub struct Rate {
    per_sec: u32,
    cap: usize,
    second: u64,
    counts: HashMap<IpAddr, u32>,
}

impl Rate {
    pub fn new(per_sec: u32, cap: usize) -> Rate {
        Rate {
            per_sec: per_sec.max(1),
            cap: cap.max(1),
            second: 0,
            counts: HashMap::new(),
        }
    }

    /// Whether one more request from `ip` is allowed now.
    pub fn allow(&mut self, ip: IpAddr) -> bool {
        let sec = now_ms() / 1000;
        if sec != self.second {
            self.second = sec;
            self.counts.clear();
        }
        let ip = canonical(ip);
        let full = self.counts.len() >= self.cap;
        match self.counts.get_mut(&ip) {
            Some(n) if *n >= self.per_sec => false,
            Some(n) => {
                *n += 1;
                true
            }
            None if full => false,
            None => {
                self.counts.insert(ip, 1);
                true
            }
        }
    }
}

/// Milliseconds since the first call (monotonic), never 0.
fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = BASE.get_or_init(Instant::now);
    base.elapsed().as_millis() as u64 + 1
}

/// How often a throttled line may be written.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A log line written at most once per [`LOG_INTERVAL`] (or, made with [`Throttle::burst`], a
/// burst of lines and then one per interval); the lines held back in between are counted and the
/// count goes out with the next one. Meant as a `static` per kind of line:
///
/// ```
/// use bootherd::limits::Throttle;
/// static BAD: Throttle = Throttle::new();
/// if let Some(suppressed) = BAD.check() {
///     tracing::warn!(suppressed, "bad datagram");
/// }
/// ```
#[derive(Debug)]
pub struct Throttle {
    state: Mutex<Bucket>,
    burst: u64,
    interval_ms: u64,
}

#[derive(Debug)]
struct Bucket {
    /// Lines that may be written now.
    tokens: u64,
    /// When a token was last added (ms, [`now_ms`]); 0: never used.
    last: u64,
    suppressed: u64,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new()
    }
}

impl Throttle {
    /// One line per [`LOG_INTERVAL`].
    pub const fn new() -> Throttle {
        Throttle::every(LOG_INTERVAL)
    }

    /// One line per `interval`.
    pub const fn every(interval: Duration) -> Throttle {
        Throttle::burst(1, interval)
    }

    /// Up to `burst` lines at once, then one more per `interval`: for lines that name each
    /// refused request (an administrator reading why a client was refused), which a client
    /// repeating its request many times a second must not turn into a flood.
    pub const fn burst(burst: u64, interval: Duration) -> Throttle {
        Throttle {
            state: Mutex::new(Bucket {
                tokens: 0,
                last: 0,
                suppressed: 0,
            }),
            burst: if burst == 0 { 1 } else { burst },
            interval_ms: interval.as_millis() as u64,
        }
    }

    /// `Some(lines held back since the last one)` when this line may be written now.
    pub fn check(&self) -> Option<u64> {
        let now = now_ms();
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if b.last == 0 {
            b.tokens = self.burst;
            b.last = now;
        } else {
            match now.saturating_sub(b.last).checked_div(self.interval_ms) {
                Some(0) => {}
                Some(add) => {
                    b.tokens = b.tokens.saturating_add(add).min(self.burst);
                    b.last += add * self.interval_ms;
                }
                None => b.tokens = self.burst,
            }
        }
        if b.tokens > 0 {
            b.tokens -= 1;
            return Some(std::mem::take(&mut b.suppressed));
        }
        b.suppressed += 1;
        None
    }
}

/// Keys seen recently ("this MAC was logged"), at most `cap` of them, each forgotten after
/// `ttl`. When full of live keys, new keys are not remembered and [`Recent::first`] answers
/// `false` for them: a flood of distinct keys cannot grow it, and its lines go through the
/// caller's [`Throttle`] instead.
#[derive(Debug)]
pub struct Recent {
    cap: usize,
    ttl: Duration,
    seen: HashMap<String, Instant>,
}

impl Recent {
    pub fn new(cap: usize, ttl: Duration) -> Recent {
        Recent {
            cap: cap.max(1),
            ttl,
            seen: HashMap::new(),
        }
    }

    /// Whether `key` is new (or its last sighting expired); remembers it when there is room.
    /// `None` when the set is full and `key` is not in it.
    pub fn first(&mut self, key: &str) -> Option<bool> {
        let now = Instant::now();
        if let Some(t) = self.seen.get_mut(key) {
            if now.duration_since(*t) < self.ttl {
                return Some(false);
            }
            *t = now;
            return Some(true);
        }
        if self.seen.len() >= self.cap {
            let ttl = self.ttl;
            self.seen.retain(|_, t| now.duration_since(*t) < ttl);
            if self.seen.len() >= self.cap {
                return None;
            }
        }
        self.seen.insert(key.to_string(), now);
        Some(true)
    }

    pub fn clear(&mut self) {
        self.seen = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A limit from `site.<key>`: a positive integer, else `default` (an unset or empty key is the
/// default; a value that is not a positive integer is named in a warning and the default used).
pub fn site_limit(store: &crate::store::Store, key: &str, default: usize) -> usize {
    match store.site(key) {
        Ok(Some(v)) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!("site.{key} '{v}' is not a positive integer; using {default}");
                default
            }
        },
        _ => default,
    }
}

/// [`site_limit`] in seconds.
pub fn site_secs(store: &crate::store::Store, key: &str, default: Duration) -> Duration {
    Duration::from_secs(site_limit(store, key, default.as_secs() as usize) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_over_its_rate_is_refused_others_are_not() {
        let mut r = Rate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let c: IpAddr = "10.0.0.3".parse().expect("ip");
        // Unless the second turns over in between, the fourth from a is refused.
        let allowed = (0..4).filter(|_| r.allow(a)).count();
        assert!(allowed == 3 || allowed == 4);
        assert!(r.allow(b));
        // The map holds two sources: a third one waits for the next second.
        let _ = r.allow(c);
        assert!(r.counts.len() <= 2);
    }

    #[test]
    fn a_source_gets_its_share_and_slots_come_back() {
        let p = PerSource::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = p.try_acquire(a).expect("first");
        let _s2 = p.try_acquire(a).expect("second");
        assert!(p.try_acquire(a).is_none(), "third refused");
        let _t = p.try_acquire(b).expect("another source is not affected");
        // ::ffff:10.0.0.1 is the same source.
        assert!(p
            .try_acquire("::ffff:10.0.0.1".parse().expect("ip"))
            .is_none());
        drop(s1);
        assert!(p.try_acquire(a).is_some());
        assert_eq!(p.sources(), 2);
    }

    #[test]
    fn throttle_writes_once_per_interval_and_counts_the_rest() {
        let t = Throttle::every(Duration::from_millis(200));
        assert_eq!(t.check(), Some(0));
        for _ in 0..5 {
            assert_eq!(t.check(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.check(), Some(5));
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let t = Throttle::burst(3, Duration::from_millis(200));
        assert_eq!(
            (t.check(), t.check(), t.check()),
            (Some(0), Some(0), Some(0))
        );
        assert_eq!(t.check(), None);
        assert_eq!(t.check(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.check(), Some(2));
        assert_eq!(t.check(), None);
    }

    #[test]
    fn recent_is_bounded_and_expires() {
        let mut r = Recent::new(3, Duration::from_millis(200));
        assert_eq!(r.first("a"), Some(true));
        assert_eq!(r.first("a"), Some(false));
        assert_eq!(r.first("b"), Some(true));
        assert_eq!(r.first("c"), Some(true));
        assert_eq!(r.first("d"), None, "full of live keys");
        assert_eq!(r.len(), 3);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.first("d"), Some(true), "expired keys make room");
        assert_eq!(r.first("a"), Some(true), "an expired key is new again");
        assert!(r.len() <= 3);
    }
}
