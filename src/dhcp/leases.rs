//! Leases: held in memory ([`LeaseBook`]) and made durable by one writer with group commit
//! ([`LeaseWriter`]): an ACK is sent only after its lease is in the store, and every lease waiting
//! while a commit runs goes into the next one, so one fsync covers many ACKs.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError};

/// How long an OFFER holds an address for its client.
pub const OFFER_HOLD_SECS: u64 = 60;
/// How long a declined address is kept out of the pool.
pub const DECLINE_HOLD_SECS: u64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Offered, not yet requested: memory only.
    Offered,
    Active,
    Released,
    Declined,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Active => "active",
            LeaseState::Released => "released",
            LeaseState::Declined => "declined",
        }
    }
    fn parse(s: &str) -> Option<LeaseState> {
        Some(match s {
            "active" => LeaseState::Active,
            "released" => LeaseState::Released,
            "declined" => LeaseState::Declined,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub mac: String,
    pub client_id: Option<String>,
    pub hostname: Option<String>,
    pub node: Option<String>,
    pub starts: u64,
    pub ends: u64,
    pub state: LeaseState,
}

impl Lease {
    /// Whether the address is taken at time `now`.
    fn holds(&self, now: u64) -> bool {
        match self.state {
            LeaseState::Active | LeaseState::Offered | LeaseState::Declined => self.ends > now,
            LeaseState::Released => false,
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// All leases, by address and by MAC.
#[derive(Debug, Default)]
pub struct LeaseBook {
    by_ip: HashMap<Ipv4Addr, Lease>,
    by_mac: HashMap<String, Ipv4Addr>,
    /// Where the next search for a free address starts, per range start (keeps allocation O(1) on average).
    cursor: HashMap<Ipv4Addr, u32>,
    /// Where searches start before the first pick of a range: appliances sharing a store start
    /// at different places of a range ([`LeaseBook::spread`]), so they seldom pick one address.
    seed: u32,
}

impl LeaseBook {
    /// Loads the durable leases from the store.
    pub fn load(store: &Store) -> Result<LeaseBook, StoreError> {
        let mut b = LeaseBook::default();
        for row in store.rows("dhcpleases")? {
            if let Some(l) = lease_of(&row) {
                b.insert(l);
            }
        }
        Ok(b)
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Starts this appliance's searches at a place of each range chosen by its name.
    pub fn spread(&mut self, appliance: &str) {
        // FNV-1a: stable across runs and builds.
        let mut h: u32 = 0x811c_9dc5;
        for b in appliance.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        self.seed = h;
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    pub fn insert(&mut self, l: Lease) {
        if let Some(old) = self.by_ip.get(&l.ip) {
            if old.mac != l.mac && self.by_mac.get(&old.mac) == Some(&l.ip) {
                self.by_mac.remove(&old.mac);
            }
        }
        if let Some(prev_ip) = self.by_mac.insert(l.mac.clone(), l.ip) {
            if prev_ip != l.ip
                && self
                    .by_ip
                    .get(&prev_ip)
                    .is_some_and(|p| p.mac == l.mac && p.state != LeaseState::Active)
            {
                self.by_ip.remove(&prev_ip);
            }
        }
        self.by_ip.insert(l.ip, l);
    }

    pub fn by_ip(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    pub fn by_mac(&self, mac: &str) -> Option<&Lease> {
        self.by_mac.get(mac).and_then(|ip| self.by_ip.get(ip))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_ip.values()
    }

    /// Is `ip` free for `mac` at `now` (not held by another client)?
    pub fn free_for(&self, ip: Ipv4Addr, mac: &str, now: u64) -> bool {
        match self.by_ip.get(&ip) {
            None => true,
            Some(l) => l.mac == mac && l.state != LeaseState::Declined || !l.holds(now),
        }
    }

    /// An address from `ranges` for `mac`: its current one if still in range, else a free one
    /// that `reserved` does not claim. `None` when the pool is exhausted.
    pub fn pick(
        &mut self,
        mac: &str,
        ranges: &[(Ipv4Addr, Ipv4Addr)],
        reserved: &dyn Fn(Ipv4Addr) -> bool,
        now: u64,
    ) -> Option<Ipv4Addr> {
        let in_ranges = |ip: Ipv4Addr| {
            ranges
                .iter()
                .any(|(a, b)| u32::from(*a) <= u32::from(ip) && u32::from(ip) <= u32::from(*b))
        };
        if let Some(l) = self.by_mac(mac) {
            if in_ranges(l.ip) && l.state != LeaseState::Declined && !reserved(l.ip) {
                return Some(l.ip);
            }
        }
        for (a, b) in ranges {
            let (lo, hi) = (u32::from(*a), u32::from(*b));
            let size = hi - lo + 1;
            let start = self.cursor.get(a).copied().unwrap_or(self.seed) % size;
            for k in 0..size {
                let off = (start + k) % size;
                let ip = Ipv4Addr::from(lo + off);
                if !reserved(ip) && self.free_for(ip, mac, now) {
                    self.cursor.insert(*a, off + 1);
                    return Some(ip);
                }
            }
        }
        None
    }

    /// Removes leases named by a change-log key: `ip=…`, `node=…` or `mac=…`. Returns how many.
    pub fn forget(&mut self, key: &str) -> usize {
        if key == "*" {
            let n = self.by_ip.len();
            self.by_ip.clear();
            self.by_mac.clear();
            return n;
        }
        let Some((col, val)) = key.split_once('=') else {
            return 0;
        };
        let ips: Vec<Ipv4Addr> = self
            .by_ip
            .values()
            .filter(|l| match col {
                "ip" => l.ip.to_string() == val,
                "node" => l.node.as_deref() == Some(val),
                "mac" => l.mac == val,
                _ => false,
            })
            .map(|l| l.ip)
            .collect();
        for ip in &ips {
            if let Some(l) = self.by_ip.remove(ip) {
                if self.by_mac.get(&l.mac) == Some(ip) {
                    self.by_mac.remove(&l.mac);
                }
            }
        }
        ips.len()
    }

    /// Takes in the leases of `stored` (the store's view, shared with other appliances) that
    /// hold their address at `now` and that this book shows free or held by another client:
    /// after a commit was refused, the book is known to be behind what other appliances gave
    /// out. The book's own entries for the same client are kept. Returns how many were learned.
    pub fn learn(&mut self, stored: Vec<Lease>, now: u64) -> usize {
        let mut n = 0;
        for l in stored {
            if !l.holds(now) {
                continue;
            }
            let known = self.by_ip.get(&l.ip).is_some_and(|b| b.mac == l.mac);
            if !known {
                self.insert(l);
                n += 1;
            }
        }
        n
    }

    /// Drops `mac`'s offer, if it has one (not an active lease): the client chose another server
    /// (RFC 2131 §3.1.4), so the address goes back to the pool at once instead of after
    /// [`OFFER_HOLD_SECS`]. True when there was one.
    pub fn withdraw_offer(&mut self, mac: &str) -> bool {
        let Some(ip) = self.by_mac.get(mac).copied() else {
            return false;
        };
        if self
            .by_ip
            .get(&ip)
            .is_some_and(|l| l.mac == mac && l.state == LeaseState::Offered)
        {
            self.by_ip.remove(&ip);
            self.by_mac.remove(mac);
            return true;
        }
        false
    }

    /// Drops `mac`'s lease on `ip` (RELEASE): the address goes back to the pool.
    pub fn release(&mut self, mac: &str, ip: Ipv4Addr, now: u64) -> Option<Lease> {
        let l = self.by_ip.get_mut(&ip).filter(|l| l.mac == mac)?;
        l.state = LeaseState::Released;
        l.ends = now;
        Some(l.clone())
    }
}

/// A request to make a lease durable.
struct WriteReq {
    lease: Lease,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle for making leases durable; cheap to clone.
#[derive(Clone)]
pub struct LeaseWriter {
    tx: mpsc::Sender<WriteReq>,
    store: Arc<Store>,
    /// Whether commits check for another appliance's hold ([`Store::shared`]).
    check_others: bool,
}

/// Largest batch one commit takes.
const MAX_BATCH: usize = 4096;

impl LeaseWriter {
    /// Starts the writer task. It stops when every handle is dropped.
    pub fn spawn(store: Arc<Store>) -> LeaseWriter {
        let (tx, mut rx) = mpsc::channel::<WriteReq>(MAX_BATCH * 2);
        let st = store.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let leases: Vec<Lease> = batch.iter().map(|r| r.lease.clone()).collect();
                let s = store.clone();
                let check = s.shared();
                let result = tokio::task::spawn_blocking(move || write_batch(&s, &leases, check))
                    .await
                    .map_err(|e| format!("lease writer task failed: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()));
                if let Err(e) = &result {
                    tracing::error!("leases not saved: {e}");
                }
                for (i, r) in batch.into_iter().enumerate() {
                    let mine = match &result {
                        Err(e) => Err(e.clone()),
                        Ok(refused) => match refused.iter().find(|x| x.index == i) {
                            Some(x) => Err(format!(
                                "{} is held by {} (another appliance's lease)",
                                x.holder.ip, x.holder.mac
                            )),
                            None => Ok(()),
                        },
                    };
                    let _ = r.done.send(mine);
                }
            }
        });
        LeaseWriter {
            tx,
            check_others: st.shared(),
            store: st,
        }
    }

    /// Checks for other appliances' holds even on a store of this appliance alone (tests of
    /// the shared-store path on SQLite).
    #[cfg(test)]
    pub fn checking_others(mut self) -> LeaseWriter {
        self.check_others = true;
        self
    }

    /// Makes `leases` durable in one transaction (one fsync), on the calling thread: for a thread
    /// that gathered a round of requests and sends their ACKs once this returns `Ok`.
    /// The leases another appliance's hold kept out come back as [`Refused`].
    pub fn commit_blocking(&self, leases: &[Lease]) -> Result<Vec<Refused>, String> {
        write_batch(&self.store, leases, self.check_others).map_err(|e| e.to_string())
    }

    /// Every lease the store holds (after a refusal: what other appliances gave out).
    pub fn stored(&self) -> Result<Vec<Lease>, String> {
        self.store
            .rows("dhcpleases")
            .map(|rows| rows.iter().filter_map(|r| lease_of(r)).collect())
            .map_err(|e| e.to_string())
    }

    /// Returns once `lease` is durable in the store.
    pub async fn persist(&self, lease: Lease) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(WriteReq { lease, done })
            .await
            .map_err(|_| "lease writer stopped".to_string())?;
        wait.await.map_err(|_| "lease writer stopped".to_string())?
    }
}

/// A lease the store refused because another appliance sharing it holds the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Index of the refused lease in the batch.
    pub index: usize,
    /// The lease that holds the address, as the store has it.
    pub holder: Lease,
}

/// The lease a `dhcpleases` row holds.
fn lease_of(row: &[Option<String>]) -> Option<Lease> {
    let get = |i: usize| row.get(i).cloned().flatten();
    Some(Lease {
        ip: get(0)?.parse().ok()?,
        mac: get(1)?,
        client_id: get(2),
        hostname: get(3),
        node: get(4),
        starts: get(5).and_then(|s| s.parse().ok()).unwrap_or(0),
        ends: get(6).and_then(|s| s.parse().ok()).unwrap_or(0),
        state: get(7).as_deref().and_then(LeaseState::parse)?,
    })
}

/// Writes `leases` in one transaction. A dynamic lease (no node) whose address the store shows
/// held by another client — another appliance gave it out — is not written: it comes back as
/// [`Refused`], so the caller sends no ACK and learns the holder. The writers of one store are
/// serialised (SQLite's write lock, PostgreSQL's advisory lock), so the check and the write
/// are atomic. A node's lease is its reserved address and always written. `check_others`:
/// whether other appliances may write this store ([`Store::shared`]); without them the lease
/// book in memory is the only giver of addresses and the check is skipped (it doubled an
/// SQLite commit's time under perfdhcp).
fn write_batch(
    store: &Store,
    leases: &[Lease],
    check_others: bool,
) -> Result<Vec<Refused>, StoreError> {
    let t = now();
    store.write(None, |tx| {
        // The store's view of the dynamic leases' addresses, in one statement.
        let dynamic: Vec<String> = leases
            .iter()
            .filter(|l| check_others && l.node.is_none())
            .map(|l| l.ip.to_string())
            .collect();
        let keys: Vec<&str> = dynamic.iter().map(String::as_str).collect();
        let stored: std::collections::HashMap<Ipv4Addr, Lease> = tx
            .get_many("dhcpleases", &keys)?
            .iter()
            .filter_map(|row| lease_of(row))
            .map(|l| (l.ip, l))
            .collect();
        let mut refused = Vec::new();
        for (index, l) in leases.iter().enumerate() {
            let ip = l.ip.to_string();
            if l.node.is_none() {
                let held = stored.get(&l.ip).filter(|h| h.mac != l.mac && h.holds(t));
                if let Some(holder) = held {
                    refused.push(Refused {
                        index,
                        holder: holder.clone(),
                    });
                    continue;
                }
            }
            let (s, e) = (l.starts.to_string(), l.ends.to_string());
            tx.set(
                "dhcpleases",
                &[&ip],
                &[
                    ("mac", Some(&l.mac)),
                    ("clientid", l.client_id.as_deref()),
                    ("hostname", l.hostname.as_deref()),
                    ("node", l.node.as_deref()),
                    ("starts", Some(&s)),
                    ("ends", Some(&e)),
                    ("state", Some(l.state.as_str())),
                ],
            )?;
        }
        Ok(refused)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ip: [u8; 4], mac: &str, state: LeaseState, ends: u64) -> Lease {
        Lease {
            ip: ip.into(),
            mac: mac.into(),
            client_id: None,
            hostname: None,
            node: None,
            starts: 0,
            ends,
            state,
        }
    }

    #[test]
    fn pick_reuses_the_clients_address_and_skips_taken_and_reserved_ones() {
        let mut b = LeaseBook::default();
        let range = [(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 13))];
        let reserved = |ip: Ipv4Addr| ip == Ipv4Addr::new(10, 0, 0, 11);
        b.insert(lease([10, 0, 0, 10], "aa", LeaseState::Active, 1000));
        assert_eq!(
            b.pick("bb", &range, &reserved, 10),
            Some(Ipv4Addr::new(10, 0, 0, 12))
        );
        assert_eq!(
            b.pick("aa", &range, &reserved, 10),
            Some(Ipv4Addr::new(10, 0, 0, 10))
        );
        b.insert(lease([10, 0, 0, 12], "bb", LeaseState::Active, 1000));
        b.insert(lease([10, 0, 0, 13], "cc", LeaseState::Active, 1000));
        assert_eq!(b.pick("dd", &range, &reserved, 10), None, "pool exhausted");
        // An expired lease is reused.
        assert_eq!(
            b.pick("dd", &range, &reserved, 2000)
                .map(|ip| ip != Ipv4Addr::new(10, 0, 0, 11)),
            Some(true)
        );
        // A released one too.
        b.release("cc", Ipv4Addr::new(10, 0, 0, 13), 20);
        assert_eq!(
            b.pick("ee", &range, &reserved, 30),
            Some(Ipv4Addr::new(10, 0, 0, 13))
        );
    }

    #[tokio::test]
    async fn writer_makes_leases_durable_and_book_reloads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = crate::store::Store::test_url(dir.path(), "l");
        let store = Arc::new(Store::open(&url).expect("store"));
        let w = LeaseWriter::spawn(store.clone());
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.persist(lease(
                    [10, 0, 1, i],
                    &format!("52:54:00:00:00:{i:02x}"),
                    LeaseState::Active,
                    5000,
                ))
                .await
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("durable");
        }
        let again = Store::open(&url).expect("reopen");
        let b = LeaseBook::load(&again).expect("load");
        assert_eq!(b.len(), 50);
        assert_eq!(
            b.by_mac("52:54:00:00:00:07").map(|l| l.ip),
            Some(Ipv4Addr::new(10, 0, 1, 7))
        );
    }

    #[test]
    fn an_address_another_appliance_holds_is_refused_not_overwritten() {
        let store = Store::open_test().expect("store");
        let t = now();
        // sn1 gave 10.0.2.5 to aa.
        let mine = lease([10, 0, 2, 5], "aa", LeaseState::Active, t + 600);
        assert_eq!(
            write_batch(&store, std::slice::from_ref(&mine), true).expect("write"),
            vec![]
        );
        // sn2, not knowing, gives it to bb; a free address to cc in the same batch.
        let theirs = lease([10, 0, 2, 5], "bb", LeaseState::Active, t + 600);
        let free = lease([10, 0, 2, 6], "cc", LeaseState::Active, t + 600);
        let refused = write_batch(&store, &[theirs, free], true).expect("write");
        assert_eq!(refused.len(), 1);
        assert_eq!(
            (refused[0].index, refused[0].holder.mac.as_str()),
            (0, "aa")
        );
        let b = LeaseBook::load(&store).expect("load");
        assert_eq!(
            b.by_ip(Ipv4Addr::new(10, 0, 2, 5)).map(|l| l.mac.as_str()),
            Some("aa")
        );
        assert_eq!(
            b.by_ip(Ipv4Addr::new(10, 0, 2, 6)).map(|l| l.mac.as_str()),
            Some("cc")
        );
        // A RELEASE from a stale book does not free another client's address either.
        let stale = lease([10, 0, 2, 5], "bb", LeaseState::Released, t);
        assert_eq!(write_batch(&store, &[stale], true).expect("write").len(), 1);
        // The holder renews; an expired hold is taken over; a node's lease is its own address.
        assert!(write_batch(&store, &[mine], true)
            .expect("write")
            .is_empty());
        let expired = lease([10, 0, 2, 6], "cc", LeaseState::Active, 1);
        assert!(write_batch(&store, &[expired], true)
            .expect("write")
            .is_empty());
        assert!(write_batch(
            &store,
            &[lease([10, 0, 2, 6], "dd", LeaseState::Active, t + 9)],
            true
        )
        .expect("write")
        .is_empty());
        let mut node = lease([10, 0, 2, 5], "ee", LeaseState::Active, t + 600);
        node.node = Some("n5".into());
        assert!(write_batch(&store, &[node], true)
            .expect("write")
            .is_empty());
    }

    #[test]
    fn appliances_start_their_searches_apart() {
        let range = [(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 209))];
        let (mut a, mut b) = (LeaseBook::default(), LeaseBook::default());
        a.spread("sn1");
        b.spread("sn2");
        let pa = a.pick("aa", &range, &|_| false, 0);
        let pb = b.pick("bb", &range, &|_| false, 0);
        assert!(pa.is_some() && pb.is_some());
        assert_ne!(pa, pb);
    }

    #[test]
    fn an_offer_is_withdrawn_when_the_client_chooses_another_server() {
        let mut b = LeaseBook::default();
        let range = [(Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 10))];
        b.insert(lease([10, 0, 0, 10], "aa", LeaseState::Offered, 1000));
        assert_eq!(
            b.pick("bb", &range, &|_| false, 10),
            None,
            "held by the offer"
        );
        assert!(b.withdraw_offer("aa"));
        assert_eq!(
            b.pick("bb", &range, &|_| false, 10),
            Some(Ipv4Addr::new(10, 0, 0, 10))
        );
        // An active lease is not an offer.
        b.insert(lease([10, 0, 0, 10], "cc", LeaseState::Active, 1000));
        assert!(!b.withdraw_offer("cc"));
        assert!(b.by_mac("cc").is_some());
    }
}
