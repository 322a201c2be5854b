//! Directory listings kept between READDIR/READDIRPLUS calls.
//!
//! A client lists a directory in slices (libnfs asks for 8 KiB, about 40 entries, per call), and
//! each slice used to cost a fresh `open` + `getdents64` from the cookie — which on ext4 rebuilds
//! the directory's whole hash-ordered tree in the kernel — plus a `name_to_handle_at` and an
//! HMAC per entry. A [`Listing`] is the whole directory read once: every entry's inode number,
//! cookie, name and NFS handle, in `getdents64` order. Later slices, and later listings of the
//! same directory, are served from it.
//!
//! **Attributes.** READDIRPLUS also returns each entry's attributes, and after the above the
//! `fstatat` per entry is most of what a listing costs (the path walk in the kernel). In exports
//! that are read-only to clients (image roots, which change only when the administrator changes
//! the image), a listing also keeps each entry's encoded attributes for at most [`ATTR_TTL`]
//! after they were read — a client's own attribute cache holds them for 3 to 60 s anyway (and
//! nfs-ganesha's for 60 s). Nothing the server decides uses them: every call stats its own
//! object afresh for permission checks and replies, so GETATTR, LOOKUP, ACCESS and READ are
//! always current. In read-write exports (node state) attributes are always read during the call.
//!
//! **When a listing is still true.** The names in a directory, and the inodes they lead to,
//! change only by a change of the directory itself (create, unlink, rename, link, mkdir, rmdir),
//! and every such change sets the directory's ctime (and mtime) to the current time. So a
//! listing carries the directory's [`Stamp`] (device, inode, mtime, ctime, size, link count) as
//! `fstat` saw it *before* the listing was read, and is used only while a fresh `fstat` (every
//! call resolves its handle and stats it) shows the same stamp. Timestamps have a granularity
//! (the kernel's coarse clock tick), so a change made in the same tick as an earlier one could
//! leave the stamp unchanged: a listing is therefore kept only if the directory's ctime was at
//! least [`SETTLE`] old when the reading began ([`Stamp::settled`]) — any later change then
//! carries a later ctime. A directory that is still changing is listed fresh on every call,
//! exactly as without the cache. The one thing that defeats this is the system clock stepping
//! back by more than [`SETTLE`]; the mtime, size and link count in the stamp are a second line.
//!
//! **What a listing may be used for.** The cache is keyed by the directory's verified NFS handle,
//! which names its export; its entries' handles were signed for that export. A call only reaches
//! the cache after its handle verified, its export allowed the caller's address, the directory
//! passed the inside-the-export check and the caller's read permission on it was checked — the
//! same checks as without the cache. Handles handed out from it are ordinary handles: each is
//! verified again when a client uses it.
//!
//! **Bounds.** At most [`MAX_DIRS`] listings and [`MAX_BYTES`] of them in all (names, handles
//! and per-entry bookkeeping counted), least recently used first out. A directory found to have
//! more than [`MAX_ENTRIES`] entries is remembered as too big (until it changes) and served slice
//! by slice from the cookie, as without the cache. The whole cache is dropped when the export
//! table changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::stat::FileStat;

/// How old a directory's last change must be for its listing to be kept.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Largest directory read whole.
pub const MAX_ENTRIES: usize = 100_000;
/// Listings kept at most.
pub const MAX_DIRS: usize = 8192;
/// Memory the listings may take in all.
pub const MAX_BYTES: usize = 64 << 20;
/// How long an entry's attributes may be reused in a read-only export (see the module comment).
pub const ATTR_TTL: Duration = Duration::from_secs(1);

/// An entry's attributes as encoded on the wire (fattr3: 84 bytes).
pub type Fattr = [u8; 84];
/// Attributes kept for one entry and when they were read.
pub type KeptAttr = Option<(Instant, Fattr)>;

/// What must not have changed for a listing to still describe its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    size: i64,
    nlink: u64,
}

impl Stamp {
    pub fn of(st: &FileStat) -> Stamp {
        Stamp {
            dev: st.st_dev,
            ino: st.st_ino,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            size: st.st_size,
            nlink: st.st_nlink,
        }
    }

    /// Whether the directory's last change lies at least [`SETTLE`] before `now` (see the module
    /// comment: only then can no later change share its ctime).
    pub fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let (s, ns) = self.ctime;
        if s < 0 {
            return false;
        }
        let ctime = Duration::new(s as u64, ns.clamp(0, 999_999_999) as u32);
        now.checked_sub(SETTLE).is_some_and(|limit| ctime < limit)
    }
}

/// One directory entry of a listing. Name and handle live in the listing's arena.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub ino: u64,
    /// The position after this entry: its NFS cookie.
    pub next: u64,
    name_at: u32,
    name_len: u16,
    /// Handle length; 0 = no handle (`..` below the export root, another filesystem, or an entry
    /// that vanished while the listing was read).
    fh_len: u8,
}

/// Bookkeeping counted per entry on top of its name and handle (the entry and its attribute slot).
const ENTRY_COST: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<KeptAttr>();

/// A whole directory, as `getdents64` returned it, with each entry's NFS handle.
#[derive(Debug)]
pub struct Listing {
    pub stamp: Stamp,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Cookies strictly increase along the listing (ext4, xfs, btrfs do): resuming at a cookie is
    /// a binary search; otherwise a scan.
    increasing: bool,
    /// False for the marker of a directory too big to read whole (it has no entries).
    whole: bool,
    /// Attributes kept per entry (read-only exports; sized to the entries on first use).
    attrs: Mutex<Vec<KeptAttr>>,
}

impl Listing {
    pub fn new(stamp: Stamp) -> Listing {
        Listing {
            stamp,
            entries: Vec::new(),
            arena: Vec::new(),
            increasing: true,
            whole: true,
            attrs: Mutex::new(Vec::new()),
        }
    }

    /// The marker kept for a directory of more than [`MAX_ENTRIES`] entries.
    pub fn too_big(stamp: Stamp) -> Listing {
        Listing {
            whole: false,
            ..Listing::new(stamp)
        }
    }

    pub fn whole(&self) -> bool {
        self.whole
    }

    /// Appends an entry; names are at most 255 bytes and handles at most 64 (callers pass what
    /// the kernel and `fh::encode` produced, longer is cut, which cannot happen).
    pub fn push(&mut self, ino: u64, next: u64, name: &[u8], fh: Option<&[u8]>) {
        let name = &name[..name.len().min(u16::MAX as usize)];
        let fh = fh
            .map(|h| &h[..h.len().min(u8::MAX as usize)])
            .unwrap_or(&[]);
        if self.entries.last().is_some_and(|l| l.next >= next) {
            self.increasing = false;
        }
        let name_at = self.arena.len() as u32;
        self.arena.extend_from_slice(name);
        self.arena.extend_from_slice(fh);
        self.entries.push(Entry {
            ino,
            next,
            name_at,
            name_len: name.len() as u16,
            fh_len: fh.len() as u8,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn name(&self, e: &Entry) -> &[u8] {
        let a = e.name_at as usize;
        &self.arena[a..a + e.name_len as usize]
    }

    pub fn fh(&self, e: &Entry) -> Option<&[u8]> {
        if e.fh_len == 0 {
            return None;
        }
        let a = e.name_at as usize + e.name_len as usize;
        Some(&self.arena[a..a + e.fh_len as usize])
    }

    /// Where a listing resumes after `cookie` (0 = from the start); `None` when no entry ends at
    /// that cookie (the client holds a cookie from another state of the directory: the caller
    /// reads from the cookie itself, as without a cache).
    pub fn start(&self, cookie: u64) -> Option<usize> {
        if cookie == 0 {
            return Some(0);
        }
        let found = if self.increasing {
            self.entries.binary_search_by_key(&cookie, |e| e.next).ok()
        } else {
            self.entries.iter().position(|e| e.next == cookie)
        };
        found.map(|i| i + 1)
    }

    /// The attribute slots, one per entry (index as in [`Listing::entries`]), locked.
    pub fn attrs(&self) -> MutexGuard<'_, Vec<KeptAttr>> {
        // Slots are plain values written whole: a poisoned lock still guards valid data.
        let mut g = match self.attrs.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.len() != self.entries.len() {
            g.clear();
            g.resize(self.entries.len(), None);
        }
        g
    }

    /// Memory this listing accounts for.
    pub fn cost(&self) -> usize {
        self.arena.len() + self.entries.len() * ENTRY_COST + 128
    }
}

struct Slot {
    listing: Arc<Listing>,
    used: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Vec<u8>, Slot>,
    bytes: usize,
    clock: u64,
}

/// Listings by directory handle, bounded (see the module comment).
pub struct DirCache {
    inner: Mutex<Inner>,
    max_dirs: usize,
    max_bytes: usize,
}

impl Default for DirCache {
    fn default() -> DirCache {
        DirCache::new(MAX_DIRS, MAX_BYTES)
    }
}

impl DirCache {
    pub fn new(max_dirs: usize, max_bytes: usize) -> DirCache {
        DirCache {
            inner: Mutex::new(Inner::default()),
            max_dirs: max_dirs.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map is consistent after every statement that changes it: a panic elsewhere while
        // the lock was held cannot leave it half-changed, so a poisoned lock is still usable.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The listing of the directory with handle `dir`, if one is kept and `now` (the
    /// directory's fresh stat) matches the stamp it was read under. A listing that no longer
    /// matches is dropped.
    pub fn get(&self, dir: &[u8], now: &Stamp) -> Option<Arc<Listing>> {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.clock += 1;
        let slot = inner.map.get_mut(dir)?;
        if slot.listing.stamp == *now {
            slot.used = inner.clock;
            return Some(slot.listing.clone());
        }
        if let Some(old) = inner.map.remove(dir) {
            inner.bytes -= old.listing.cost();
        }
        None
    }

    /// Keeps a listing (replacing any older one of the same directory), evicting the least
    /// recently used ones to stay within the bounds. One too big for a quarter of the budget is
    /// not kept.
    pub fn put(&self, dir: &[u8], listing: Arc<Listing>) {
        let cost = listing.cost();
        if cost > self.max_bytes / 4 {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        inner.clock += 1;
        if let Some(old) = inner.map.remove(dir) {
            inner.bytes -= old.listing.cost();
        }
        if inner.map.len() >= self.max_dirs || inner.bytes + cost > self.max_bytes {
            // Evict down to 7/8 of both bounds at once, so a full cache does not scan on every
            // insertion.
            let dirs_goal = (self.max_dirs - self.max_dirs / 8).min(self.max_dirs - 1);
            let bytes_goal = (self.max_bytes - self.max_bytes / 8).saturating_sub(cost);
            let mut by_age: Vec<(u64, Vec<u8>)> =
                inner.map.iter().map(|(k, s)| (s.used, k.clone())).collect();
            by_age.sort_unstable_by_key(|(used, _)| *used);
            for (_, k) in by_age {
                if inner.map.len() <= dirs_goal && inner.bytes <= bytes_goal {
                    break;
                }
                if let Some(old) = inner.map.remove(&k) {
                    inner.bytes -= old.listing.cost();
                }
            }
        }
        inner.bytes += cost;
        let used = inner.clock;
        inner.map.insert(dir.to_vec(), Slot { listing, used });
    }

    /// Forgets every listing (the export table changed).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.map.clear();
        g.bytes = 0;
    }

    /// (listings, bytes) kept now.
    pub fn usage(&self) -> (usize, usize) {
        let g = self.lock();
        (g.map.len(), g.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(path: &std::path::Path) -> FileStat {
        nix::sys::stat::stat(path).unwrap()
    }

    fn listing(stamp: Stamp, n: usize) -> Arc<Listing> {
        let mut l = Listing::new(stamp);
        for i in 0..n {
            let name = format!("file{i:05}");
            l.push(
                i as u64 + 100,
                (i as u64 + 1) * 10,
                name.as_bytes(),
                Some(&[i as u8; 34]),
            );
        }
        Arc::new(l)
    }

    #[test]
    fn entries_and_cookies() {
        let d = tempfile::tempdir().unwrap();
        let s = Stamp::of(&stat_of(d.path()));
        let mut l = Listing::new(s);
        l.push(1, 10, b".", Some(b"dot-handle"));
        l.push(2, 20, b"..", None);
        l.push(3, 30, b"name", Some(b"h3"));
        assert_eq!(l.len(), 3);
        let e = l.entries()[2];
        assert_eq!(
            (e.ino, e.next, l.name(&e), l.fh(&e)),
            (3, 30, &b"name"[..], Some(&b"h3"[..]))
        );
        assert_eq!(l.fh(&l.entries()[1]), None);
        assert_eq!(l.start(0), Some(0));
        assert_eq!(l.start(10), Some(1));
        assert_eq!(l.start(30), Some(3), "the last cookie resumes at the end");
        assert_eq!(l.start(25), None, "unknown cookie");
        // Cookies out of order (a filesystem without ordered offsets): found by scanning.
        let mut l = Listing::new(s);
        l.push(1, 50, b"a", None);
        l.push(2, 20, b"b", None);
        l.push(3, 70, b"c", None);
        assert_eq!(
            (l.start(20), l.start(70), l.start(60)),
            (Some(2), Some(3), None)
        );
    }

    #[test]
    fn a_change_of_the_directory_invalidates_its_listing() {
        let d = tempfile::tempdir().unwrap();
        let before = Stamp::of(&stat_of(d.path()));
        let c = DirCache::default();
        c.put(b"dir", listing(before, 3));
        assert!(c.get(b"dir", &before).is_some());
        assert!(c.get(b"other", &before).is_none());
        // Creating a file changes the directory's mtime/ctime (or at least its stamp: wait out
        // the timestamp granularity so the test does not depend on it).
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(d.path().join("new"), b"x").unwrap();
        let after = Stamp::of(&stat_of(d.path()));
        assert_ne!(before, after);
        assert!(c.get(b"dir", &after).is_none(), "stale listing served");
        assert_eq!(c.usage(), (0, 0), "a stale listing is dropped");
        // Touching only the mtime (utimensat) is a change too.
        c.put(b"dir", listing(after, 3));
        let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            d.path(),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        assert!(c.get(b"dir", &Stamp::of(&stat_of(d.path()))).is_none());
    }

    #[test]
    fn only_settled_directories_are_trusted() {
        let d = tempfile::tempdir().unwrap();
        let s = Stamp::of(&stat_of(d.path()));
        let now = SystemTime::now();
        assert!(!s.settled(now), "a directory made just now is not settled");
        assert!(s.settled(now + SETTLE + Duration::from_millis(50)));
        assert!(!s.settled(UNIX_EPOCH));
    }

    #[test]
    fn bounds_are_respected() {
        let d = tempfile::tempdir().unwrap();
        let s = Stamp::of(&stat_of(d.path()));
        let one = listing(s, 10).cost();
        // Room for about 20 listings of 10 entries, or 8 directories, whichever is smaller.
        let c = DirCache::new(8, one * 20);
        for i in 0..100u32 {
            c.put(&i.to_be_bytes(), listing(s, 10));
            let (n, bytes) = c.usage();
            assert!(n <= 8 && bytes <= one * 20, "{n} listings, {bytes} bytes");
        }
        // The most recently used survive; a listing kept in use is not evicted.
        assert!(c.get(&99u32.to_be_bytes(), &s).is_some());
        let c = DirCache::new(1000, one * 5);
        c.put(b"hot", listing(s, 10));
        for i in 0..50u32 {
            assert!(c.get(b"hot", &s).is_some(), "hot listing evicted at {i}");
            c.put(&i.to_be_bytes(), listing(s, 10));
            assert!(c.usage().1 <= one * 5);
        }
        // Too big for a quarter of the budget: not kept at all.
        c.put(b"big", listing(s, 100));
        assert!(c.get(b"big", &s).is_none());
        // Replacing a listing does not count it twice.
        let c = DirCache::new(10, one * 10);
        for _ in 0..5 {
            c.put(b"same", listing(s, 10));
        }
        assert_eq!(c.usage(), (1, one));
        c.clear();
        assert_eq!(c.usage(), (0, 0));
    }
}
