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
//! the image), a listing also keeps the encoded attributes of its non-directory entries, valid
//! until the kernel reports a change in that directory:
//!
//! - When such a listing is kept, the cache adds an inotify watch on its directory (one inotify
//!   descriptor for the whole cache, created on first use; the same directory always gets the
//!   same watch, shared by every listing of it) for [`WATCH_MASK`]: a child's attributes or data
//!   changed (chmod, chown, utimes, write, truncate, close after writing) or a name was created,
//!   removed or renamed in it, or the directory itself was removed or moved. The watch is added
//!   (under the cache's lock) before any of the listing's attributes are read.
//! - Before kept attributes are used (every READDIRPLUS served from a listing), [`DirCache::drain`]
//!   reads the inotify descriptor without blocking and forgets the kept attributes of every
//!   listing whose watch had an event (each listing carries an epoch; an attribute is used only
//!   under the epoch it was read in, and the epoch is read before the `fstatat`, so a change
//!   racing with a read is never kept). A queue overflow forgets all of them; a watch the kernel
//!   dropped (directory deleted, filesystem unmounted) leaves its listings unwatched. The kernel
//!   queues the event inside the changing syscall, after the change is made, and the queue is
//!   read under the cache's lock: every change that completed before a request arrived is seen
//!   by it (read your writes, for the administrator changing an image too).
//! - Directories' own attributes are never kept: a subdirectory's mtime, ctime, size and link
//!   count change when something is created in *it*, which its parent's watch does not report.
//!   They are read during every call (one `fstatat` per subdirectory; image directories hold
//!   mostly files).
//! - What inotify cannot see — a write through a hard link in another directory, a link count
//!   changed from elsewhere, a write through a shared mmap, an atime updated by a read — is
//!   bounded by age: kept attributes are at most [`ATTR_TTL_WATCHED`] (60 s) old, as
//!   nfs-ganesha's `Attr_Expiration_Time` and a Linux client's `acregmax`.
//! - Without a watch (inotify unavailable, `inotify_add_watch` failed — ENOSPC past
//!   `fs.inotify.max_user_watches` — or the cache's own budget of [`MAX_WATCHES`] is used up) a
//!   listing keeps attributes for at most [`ATTR_TTL`] (1 s). Failures are logged, at most once
//!   every 10 minutes.
//! - A watch is removed when its last listing leaves the cache (LRU eviction, a listing found
//!   stale, the export table changed).
//!
//! Nothing the server decides uses kept attributes: every call stats its own object afresh for
//! permission checks and replies, so GETATTR, LOOKUP, ACCESS and READ are always current. In
//! read-write exports (node state) attributes are always read during the call, and no watch is
//! added.
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
//! and per-entry bookkeeping counted), least recently used first out, and at most [`MAX_WATCHES`]
//! inotify watches (one per directory listed). A directory found to have
//! more than [`MAX_ENTRIES`] entries is remembered as too big (until it changes) and served slice
//! by slice from the cookie, as without the cache. The whole cache is dropped when the export
//! table changes.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::stat::FileStat;
use tracing::warn;

/// How old a directory's last change must be for its listing to be kept.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Largest directory read whole.
pub const MAX_ENTRIES: usize = 100_000;
/// Listings kept at most.
pub const MAX_DIRS: usize = 8192;
/// Memory the listings may take in all.
pub const MAX_BYTES: usize = 64 << 20;
/// How long an entry's attributes may be reused in a read-only export when its directory has no
/// inotify watch (see the module comment).
pub const ATTR_TTL: Duration = Duration::from_secs(1);
/// How long an entry's attributes may be reused at most when its directory is watched: the
/// backstop for changes inotify does not report.
pub const ATTR_TTL_WATCHED: Duration = Duration::from_secs(60);
/// Watches the cache adds at most (one per directory listed).
pub const MAX_WATCHES: usize = MAX_DIRS;
/// The events that make a directory's kept attributes void (children's events are reported on
/// their directory's watch).
pub const WATCH_MASK: AddWatchFlags = AddWatchFlags::IN_ATTRIB
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// An entry's attributes as encoded on the wire (fattr3: 84 bytes).
pub type Fattr = [u8; 84];
/// Attributes kept for one entry: when they were read, the listing's epoch they were read in
/// ([`Listing::epoch`]), and the attributes.
pub type KeptAttr = Option<(Instant, u32, Fattr)>;

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
    /// Bumped whenever the kept attributes become void (an inotify event on the directory).
    epoch: AtomicU32,
    /// Whether the directory has an inotify watch (attributes kept up to [`ATTR_TTL_WATCHED`]
    /// rather than [`ATTR_TTL`]).
    watched: AtomicBool,
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
            epoch: AtomicU32::new(0),
            watched: AtomicBool::new(false),
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

    /// The epoch kept attributes must carry to be used (read it before reading attributes).
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Acquire)
    }

    /// How long kept attributes may be used: [`ATTR_TTL_WATCHED`] while the directory is
    /// watched, else [`ATTR_TTL`].
    pub fn attr_ttl(&self) -> Duration {
        if self.watched.load(Ordering::Acquire) {
            ATTR_TTL_WATCHED
        } else {
            ATTR_TTL
        }
    }

    pub fn watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }

    /// Voids every kept attribute (they are checked against the epoch when used).
    fn forget_attrs(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Memory this listing accounts for.
    pub fn cost(&self) -> usize {
        self.arena.len() + self.entries.len() * ENTRY_COST + 128
    }
}

struct Slot {
    listing: Arc<Listing>,
    used: u64,
    /// The directory's inotify watch, if it has one.
    wd: Option<WatchDescriptor>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Vec<u8>, Slot>,
    bytes: usize,
    clock: u64,
    /// Watch → the keys of the listings it serves (a multiset: one entry per slot).
    watches: HashMap<WatchDescriptor, Vec<Vec<u8>>>,
}

/// What the cache did with attributes, for tests and diagnosis.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttrStats {
    /// Entry attributes read (`fstatat`, `.` and `..` not counted) for READDIRPLUS from a
    /// listing.
    pub read: u64,
    /// Entries sent with attributes from a listing's kept ones.
    pub reused: u64,
    /// inotify events that voided a listing's kept attributes.
    pub voided: u64,
}

/// Listings by directory handle, bounded (see the module comment).
pub struct DirCache {
    inner: Mutex<Inner>,
    max_dirs: usize,
    max_bytes: usize,
    max_watches: AtomicU64,
    /// The cache's inotify descriptor, made on the first watch (`None`: inotify unavailable).
    inotify: OnceLock<Option<Inotify>>,
    read: AtomicU64,
    reused: AtomicU64,
    voided: AtomicU64,
    /// When a failure to watch was last logged (seconds since the epoch; 0 = never).
    warned: AtomicU64,
}

impl Default for DirCache {
    fn default() -> DirCache {
        DirCache::new(MAX_DIRS, MAX_BYTES)
    }
}

/// Removes slot `key` from the bookkeeping: its bytes, and its share of its watch (the watch
/// itself when it was the last listing using it).
fn unlink(inotify: Option<&Inotify>, inner: &mut Inner, key: &[u8], slot: &Slot) {
    inner.bytes -= slot.listing.cost();
    let Some(wd) = slot.wd else {
        return;
    };
    let Some(keys) = inner.watches.get_mut(&wd) else {
        return;
    };
    if let Some(i) = keys.iter().position(|k| k == key) {
        keys.swap_remove(i);
    }
    if keys.is_empty() {
        inner.watches.remove(&wd);
        if let Some(ino) = inotify {
            // EINVAL: the kernel dropped it already (the directory is gone); its IN_IGNORED
            // finds no listings.
            let _ = ino.rm_watch(wd);
        }
    }
}

impl DirCache {
    pub fn new(max_dirs: usize, max_bytes: usize) -> DirCache {
        DirCache {
            inner: Mutex::new(Inner::default()),
            max_dirs: max_dirs.max(1),
            max_bytes,
            max_watches: AtomicU64::new(MAX_WATCHES as u64),
            inotify: OnceLock::new(),
            read: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            voided: AtomicU64::new(0),
            warned: AtomicU64::new(0),
        }
    }

    /// Caps the watches this cache adds (further listings fall back to [`ATTR_TTL`], as when
    /// the kernel refuses a watch).
    pub fn set_max_watches(&self, n: usize) {
        self.max_watches.store(n as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map is consistent after every statement that changes it: a panic elsewhere while
        // the lock was held cannot leave it half-changed, so a poisoned lock is still usable.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The inotify descriptor, if one exists already (no watch was ever added otherwise).
    fn inotify(&self) -> Option<&Inotify> {
        self.inotify.get().and_then(|i| i.as_ref())
    }

    /// The inotify descriptor, made now if this is the first watch.
    fn inotify_init(&self) -> Option<&Inotify> {
        self.inotify
            .get_or_init(
                || match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
                    Ok(i) => Some(i),
                    Err(e) => {
                        self.warn_watch(&format!(
                            "cannot create an inotify descriptor ({e}): attributes in listings \
                             of read-only exports are kept for {} s",
                            ATTR_TTL.as_secs()
                        ));
                        None
                    }
                },
            )
            .as_ref()
    }

    /// Logs a failure to watch, at most once every 10 minutes.
    fn warn_watch(&self, msg: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
            .max(1);
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 600)
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!("nfs: {msg}");
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
            unlink(self.inotify(), inner, dir, &old);
        }
        None
    }

    /// Keeps a listing (replacing any older one of the same directory), evicting the least
    /// recently used ones to stay within the bounds. One too big for a quarter of the budget is
    /// not kept. `watch`: the directory, open, when the listing's attributes are to be kept
    /// (read-only exports): it gets an inotify watch, and the listing keeps attributes up to
    /// [`ATTR_TTL_WATCHED`]; without one (or when the watch cannot be added) up to [`ATTR_TTL`].
    pub fn put(&self, dir: &[u8], listing: Arc<Listing>, watch: Option<BorrowedFd<'_>>) {
        let cost = listing.cost();
        if cost > self.max_bytes / 4 {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        inner.clock += 1;
        if let Some(old) = inner.map.remove(dir) {
            unlink(self.inotify(), inner, dir, &old);
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
                    unlink(self.inotify(), inner, &k, &old);
                }
            }
        }
        // The watch is added under the lock, after the removals above (so none of them can
        // remove it: the same directory gives the same watch), and before any of the listing's
        // attributes are read (the caller reads them once the listing is kept).
        let wd = match watch {
            Some(fd) => self.add_watch(inner, fd),
            None => None,
        };
        if let Some(wd) = wd {
            inner.watches.entry(wd).or_default().push(dir.to_vec());
            listing.watched.store(true, Ordering::Release);
        }
        inner.bytes += cost;
        let used = inner.clock;
        inner.map.insert(dir.to_vec(), Slot { listing, used, wd });
    }

    /// Adds (or finds: the same directory gives the same descriptor) the watch of directory
    /// `fd`; `None` (logged) when it cannot be had.
    fn add_watch(&self, inner: &Inner, fd: BorrowedFd<'_>) -> Option<WatchDescriptor> {
        let ino = self.inotify_init()?;
        if inner.watches.len() as u64 >= self.max_watches.load(Ordering::Relaxed) {
            self.warn_watch(&format!(
                "{} directories watched already: listings of further ones keep attributes for {} s",
                inner.watches.len(),
                ATTR_TTL.as_secs()
            ));
            return None;
        }
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match ino.add_watch(path.as_str(), WATCH_MASK) {
            Ok(wd) => Some(wd),
            Err(e) => {
                let hint = if e == Errno::ENOSPC {
                    " (sysctl fs.inotify.max_user_watches)"
                } else {
                    ""
                };
                self.warn_watch(&format!(
                    "cannot watch a listed directory ({e}{hint}): listings without a watch keep \
                     attributes for {} s",
                    ATTR_TTL.as_secs()
                ));
                None
            }
        }
    }

    /// Reads every inotify event queued so far (without blocking) and voids the kept attributes
    /// of the listings whose directory had one. Call before using kept attributes.
    pub fn drain(&self) {
        let Some(ino) = self.inotify() else {
            return;
        };
        // Under the lock: a request that finds the queue empty must not overtake another that
        // read events and has yet to apply them.
        let mut g = self.lock();
        let inner = &mut *g;
        loop {
            let events = match ino.read_events() {
                Ok(ev) if !ev.is_empty() => ev,
                Ok(_) | Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // Cannot tell what changed: nothing kept may be trusted.
                    self.warn_watch(&format!("reading inotify events: {e}"));
                    for s in inner.map.values() {
                        s.listing.forget_attrs();
                    }
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    for s in inner.map.values() {
                        s.listing.forget_attrs();
                    }
                    self.voided.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The kernel dropped the watch (directory deleted, filesystem unmounted):
                    // its listings are unwatched from now on.
                    for k in inner.watches.remove(&ev.wd).unwrap_or_default() {
                        if let Some(s) = inner.map.get_mut(&k) {
                            s.wd = None;
                            s.listing.watched.store(false, Ordering::Release);
                            s.listing.forget_attrs();
                        }
                    }
                    continue;
                }
                if let Some(keys) = inner.watches.get(&ev.wd) {
                    for k in keys {
                        if let Some(s) = inner.map.get(k) {
                            s.listing.forget_attrs();
                        }
                    }
                    self.voided.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts attributes read and reused by a READDIRPLUS.
    pub fn count(&self, read: u64, reused: u64) {
        if read > 0 {
            self.read.fetch_add(read, Ordering::Relaxed);
        }
        if reused > 0 {
            self.reused.fetch_add(reused, Ordering::Relaxed);
        }
    }

    pub fn attr_stats(&self) -> AttrStats {
        AttrStats {
            read: self.read.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            voided: self.voided.load(Ordering::Relaxed),
        }
    }

    /// Forgets every listing and removes every watch (the export table changed).
    pub fn clear(&self) {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.map.clear();
        inner.bytes = 0;
        let ino = self.inotify();
        for (wd, _) in inner.watches.drain() {
            if let Some(ino) = ino {
                let _ = ino.rm_watch(wd);
            }
        }
    }

    /// (listings, bytes) kept now.
    pub fn usage(&self) -> (usize, usize) {
        let g = self.lock();
        (g.map.len(), g.bytes)
    }

    /// Directories watched now, by the cache's own count.
    pub fn watches(&self) -> usize {
        self.lock().watches.len()
    }

    /// Watches the kernel holds on the cache's inotify descriptor (its fdinfo lines), for tests.
    pub fn kernel_watches(&self) -> std::io::Result<usize> {
        let Some(ino) = self.inotify() else {
            return Ok(0);
        };
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", ino.as_fd().as_raw_fd()))?;
        Ok(info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count())
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
        c.put(b"dir", listing(before, 3), None);
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
        c.put(b"dir", listing(after, 3), None);
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
            c.put(&i.to_be_bytes(), listing(s, 10), None);
            let (n, bytes) = c.usage();
            assert!(n <= 8 && bytes <= one * 20, "{n} listings, {bytes} bytes");
        }
        // The most recently used survive; a listing kept in use is not evicted.
        assert!(c.get(&99u32.to_be_bytes(), &s).is_some());
        let c = DirCache::new(1000, one * 5);
        c.put(b"hot", listing(s, 10), None);
        for i in 0..50u32 {
            assert!(c.get(b"hot", &s).is_some(), "hot listing evicted at {i}");
            c.put(&i.to_be_bytes(), listing(s, 10), None);
            assert!(c.usage().1 <= one * 5);
        }
        // Too big for a quarter of the budget: not kept at all.
        c.put(b"big", listing(s, 100), None);
        assert!(c.get(b"big", &s).is_none());
        // Replacing a listing does not count it twice.
        let c = DirCache::new(10, one * 10);
        for _ in 0..5 {
            c.put(b"same", listing(s, 10), None);
        }
        assert_eq!(c.usage(), (1, one));
        c.clear();
        assert_eq!(c.usage(), (0, 0));
    }

    fn open_dir(p: &std::path::Path) -> std::os::fd::OwnedFd {
        nix::fcntl::open(
            p,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap()
    }

    /// Puts a fresh listing of `p` under `key`, watched; returns it.
    fn put_watched(c: &DirCache, key: &[u8], p: &std::path::Path) -> Arc<Listing> {
        let l = listing(Stamp::of(&stat_of(p)), 3);
        let fd = open_dir(p);
        c.put(key, l.clone(), Some(fd.as_fd()));
        l
    }

    #[test]
    fn watches_follow_the_listings() {
        let d = tempfile::tempdir().unwrap();
        let dirs: Vec<_> = (0..6)
            .map(|i| {
                let p = d.path().join(format!("d{i}"));
                std::fs::create_dir(&p).unwrap();
                p
            })
            .collect();
        let c = DirCache::new(4, MAX_BYTES);
        // A full cache evicts before it watches: a budget of 4 watches for 4 listings is enough.
        c.set_max_watches(4);
        for (i, p) in dirs.iter().enumerate() {
            let l = put_watched(&c, format!("k{i}").as_bytes(), p);
            assert!(l.watched() && l.attr_ttl() == ATTR_TTL_WATCHED);
            let (n, _) = c.usage();
            // One watch per listing kept, as the kernel counts them: evicted listings took
            // theirs along.
            assert_eq!(c.watches(), n);
            assert_eq!(c.kernel_watches().unwrap(), n, "after {} puts", i + 1);
        }
        assert!(c.usage().0 <= 4);
        // Two handles of one directory share its watch; it goes with the last of them.
        let c = DirCache::default();
        put_watched(&c, b"a", &dirs[0]);
        put_watched(&c, b"b", &dirs[0]);
        put_watched(&c, b"b", &dirs[0]);
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (1, 1));
        let stamp = Stamp::of(&stat_of(&dirs[0]));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dirs[0].join("new"), b"x").unwrap();
        let changed = Stamp::of(&stat_of(&dirs[0]));
        assert_ne!(stamp, changed);
        assert!(c.get(b"a", &changed).is_none(), "stale listing served");
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (1, 1));
        assert!(c.get(b"b", &changed).is_none());
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (0, 0));
        // A new export table removes them all.
        for (i, p) in dirs.iter().enumerate() {
            put_watched(&c, format!("k{i}").as_bytes(), p);
        }
        assert_eq!(c.kernel_watches().unwrap(), 6);
        c.clear();
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (0, 0));
    }

    #[test]
    fn every_change_in_a_watched_directory_voids_its_kept_attributes() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("f"), b"1").unwrap();
        std::fs::write(b.join("g"), b"1").unwrap();
        let c = DirCache::default();
        let la = put_watched(&c, b"a", &a);
        let lb = put_watched(&c, b"b", &b);
        c.drain();
        let f = a.join("f");
        let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
        type Change<'a> = (&'a str, Box<dyn Fn() + 'a>);
        let changes: Vec<Change> = vec![
            (
                "chmod",
                Box::new(|| {
                    std::fs::set_permissions(
                        &f,
                        std::os::unix::fs::PermissionsExt::from_mode(0o600),
                    )
                    .unwrap()
                }),
            ),
            (
                "write",
                Box::new(|| {
                    use std::io::Write;
                    let mut o = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
                    o.write_all(b"more").unwrap();
                }),
            ),
            (
                "truncate",
                Box::new(|| {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&f)
                        .unwrap()
                        .set_len(1)
                        .unwrap()
                }),
            ),
            (
                "touch",
                Box::new(|| {
                    nix::sys::stat::utimensat(
                        nix::fcntl::AT_FDCWD,
                        &f,
                        &t,
                        &t,
                        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                    )
                    .unwrap()
                }),
            ),
            (
                "chown",
                Box::new(|| std::os::unix::fs::chown(&f, Some(1), Some(1)).unwrap()),
            ),
            (
                "create",
                Box::new(|| std::fs::write(a.join("h"), b"").unwrap()),
            ),
            (
                "rename",
                Box::new(|| std::fs::rename(a.join("h"), a.join("i")).unwrap()),
            ),
            (
                "delete",
                Box::new(|| std::fs::remove_file(a.join("i")).unwrap()),
            ),
            (
                "mkdir",
                Box::new(|| std::fs::create_dir(a.join("sub")).unwrap()),
            ),
        ];
        for (what, change) in changes {
            let (ea, eb) = (la.epoch(), lb.epoch());
            c.drain();
            assert_eq!(
                (la.epoch(), lb.epoch()),
                (ea, eb),
                "voided without a change"
            );
            change();
            c.drain();
            assert_ne!(la.epoch(), ea, "{what} in a/ not seen");
            assert_eq!(lb.epoch(), eb, "{what} in a/ voided b/");
        }
        assert!(c.attr_stats().voided >= 9);
        // The directory itself removed: its watch is gone, the listing unwatched (1 s).
        std::fs::remove_dir_all(&b).unwrap();
        c.drain();
        assert!(!lb.watched());
        assert_eq!(lb.attr_ttl(), ATTR_TTL);
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (1, 1));
    }

    #[test]
    fn without_a_watch_attributes_are_kept_one_second() {
        let d = tempfile::tempdir().unwrap();
        let c = DirCache::default();
        // Not asked to watch (a read-write export).
        let l = listing(Stamp::of(&stat_of(d.path())), 3);
        c.put(b"rw", l.clone(), None);
        assert!(!l.watched());
        assert_eq!(l.attr_ttl(), ATTR_TTL);
        // inotify_add_watch fails (here ENOTDIR: IN_ONLYDIR on a file; ENOSPC past
        // max_user_watches takes the same path): kept, unwatched.
        let f = d.path().join("file");
        std::fs::write(&f, b"").unwrap();
        let fd = nix::fcntl::open(
            &f,
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let l = listing(Stamp::of(&stat_of(d.path())), 3);
        c.put(b"failed", l.clone(), Some(fd.as_fd()));
        assert!(c.get(b"failed", &l.stamp).is_some(), "listing not kept");
        assert!(!l.watched() && l.attr_ttl() == ATTR_TTL);
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (0, 0));
        // The cache's own budget used up: the same.
        c.set_max_watches(1);
        let sub = |n: &str| {
            let p = d.path().join(n);
            std::fs::create_dir(&p).unwrap();
            p
        };
        assert!(put_watched(&c, b"one", &sub("one")).watched());
        assert!(!put_watched(&c, b"two", &sub("two")).watched());
        assert_eq!((c.watches(), c.kernel_watches().unwrap()), (1, 1));
    }
}
