//! The exported filesystems at run time: each export's root opened once, handles turned into open
//! objects (MAC → export → peer → kernel handle → "is it inside the export root"), directory
//! listings (read whole once and kept while the directory is unchanged, see [`dircache`]), and
//! the reload that swaps in a new export table when the store changes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use nix::fcntl::{OFlag, AT_FDCWD};
use nix::sys::stat::{FileStat, Mode, SFlag};
use tracing::{debug, info, warn};

use super::dircache::{self, DirCache, Listing, Stamp};
use super::exports::{Access, ExportSpec, Plan};
use super::fh::{self, FhError, HandleKey};
use super::nfs3::Status;
use super::sys;

/// One export, its root held open for the daemon's life or until the export goes away.
#[derive(Debug)]
pub struct Export {
    pub spec: ExportSpec,
    pub id: u32,
    pub root: OwnedFd,
    pub root_dev: u64,
    pub root_ino: u64,
    pub mount_id: i32,
    /// The root's NFS handle (what MOUNT returns).
    pub root_fh: Vec<u8>,
    /// The root's canonical path, for the "inside the export" check of non-directories.
    pub root_path: PathBuf,
}

impl Export {
    pub fn read_only(&self) -> bool {
        self.spec.read_only()
    }

    pub fn is_root(&self, st: &FileStat) -> bool {
        st.st_dev == self.root_dev && st.st_ino == self.root_ino
    }
}

/// The export table in force.
#[derive(Debug, Default)]
pub struct Table {
    pub plan: Plan,
    pub by_id: HashMap<u32, Arc<Export>>,
}

impl Table {
    /// The open export for a MOUNT path and the path inside it; `Err(above)` as in
    /// [`Plan::find_mount`].
    pub fn mount(&self, path: &str) -> Result<(Arc<Export>, String), bool> {
        let (spec, rest) = self.plan.find_mount(path)?;
        let e = self.by_id.get(&spec.id()).cloned().ok_or(false)?;
        Ok((e, rest))
    }
}

/// An object a handle named, open with O_PATH.
#[derive(Debug)]
pub struct Obj {
    pub export: Arc<Export>,
    pub fd: OwnedFd,
    pub st: FileStat,
    pub htype: i32,
    pub kernel: Vec<u8>,
}

impl Obj {
    pub fn is_dir(&self) -> bool {
        kind(&self.st) == SFlag::S_IFDIR
    }
}

pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Everything the procedures share.
pub struct Fs {
    key: HandleKey,
    table: RwLock<Arc<Table>>,
    /// Handles already shown to lie inside their export (bounded; cleared when full, and when
    /// an export is opened anew or dropped).
    verified: Mutex<HashSet<Vec<u8>>>,
    /// Directory listings by directory handle (bounded; cleared with `verified`).
    dirs: DirCache,
    /// Per-process random: changes when the server restarts, telling clients to resend
    /// uncommitted writes (RFC 1813 WRITE/COMMIT verifier).
    pub write_verf: [u8; 8],
}

const VERIFIED_MAX: usize = 65_536;

impl Fs {
    pub fn new(key: HandleKey, write_verf: [u8; 8]) -> Fs {
        Fs {
            key,
            table: RwLock::new(Arc::new(Table::default())),
            verified: Mutex::new(HashSet::new()),
            dirs: DirCache::default(),
            write_verf,
        }
    }

    pub fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn key(&self) -> &HandleKey {
        &self.key
    }

    /// The NFS handle of `name` in directory `dir` (which is inside `export`).
    pub fn handle_of(
        &self,
        export: &Export,
        dir: &OwnedFd,
        name: &[u8],
    ) -> Result<Vec<u8>, Status> {
        let k = sys::name_to_handle(dir.as_fd(), name).map_err(|e| Status::from_io(&e))?;
        if k.mount_id != export.mount_id {
            // Another filesystem mounted inside the export: not served (its handles would not
            // open relative to the export's mount).
            return Err(Status::Acces);
        }
        Ok(fh::encode(&self.key, export.id, &k))
    }

    /// The handle of directory `rest` (relative, normalised) inside `export`, walked one
    /// component at a time without following symlinks.
    pub fn mount_handle(&self, export: &Export, rest: &str) -> Result<Vec<u8>, Status> {
        if rest.is_empty() {
            return Ok(export.root_fh.clone());
        }
        let mut cur: Option<OwnedFd> = None;
        for comp in rest.split('/') {
            let next = nix::fcntl::openat(
                cur.as_ref()
                    .map(|f| f.as_fd())
                    .unwrap_or(export.root.as_fd()),
                comp,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(super::nfs3::Status::from_nix)?;
            cur = Some(next);
        }
        match cur {
            Some(fd) => self.handle_of(export, &fd, b""),
            None => Ok(export.root_fh.clone()),
        }
    }

    /// Turns a handle from `peer` into an open object, or the status to answer.
    pub fn resolve(&self, fh_bytes: &[u8], peer: IpAddr) -> Result<Obj, Status> {
        let d = fh::decode(&self.key, fh_bytes).map_err(|e| match e {
            FhError::Malformed => Status::BadHandle,
            FhError::BadMac => Status::Stale,
        })?;
        let export = self
            .table()
            .by_id
            .get(&d.export_id)
            .cloned()
            .ok_or(Status::Stale)?;
        if !export.spec.allows(peer) {
            return Err(Status::Acces);
        }
        let fd = sys::open_by_handle(export.root.as_fd(), d.htype, d.kernel, libc::O_PATH)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOMEM) | Some(libc::EMFILE) | Some(libc::ENFILE) => Status::Jukebox,
                _ => {
                    debug!(export = %export.spec.path, "nfs: handle does not open: {e}");
                    Status::Stale
                }
            })?;
        let st = nix::sys::stat::fstat(&fd).map_err(|_| Status::Stale)?;
        let obj = Obj {
            export,
            fd,
            st,
            htype: d.htype,
            kernel: d.kernel.to_vec(),
        };
        if !self.is_verified(fh_bytes) {
            if !inside(&obj) {
                warn!(export = %obj.export.spec.path, "nfs: refused a handle whose object lies outside its export");
                return Err(Status::Stale);
            }
            self.mark_verified(fh_bytes);
        }
        Ok(obj)
    }

    fn is_verified(&self, fh: &[u8]) -> bool {
        self.verified
            .lock()
            .map(|v| v.contains(fh))
            .unwrap_or(false)
    }

    fn mark_verified(&self, fh: &[u8]) {
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= VERIFIED_MAX {
                v.clear();
            }
            v.insert(fh.to_vec());
        }
    }

    /// The whole listing of directory `dir` (resolved from its handle `fh`, so it is inside its
    /// export and the caller was let in): kept from an earlier call while the directory's stamp
    /// is unchanged, else read now with every entry's handle, and kept. `None` when the caller
    /// must read the directory slice by slice from the cookie instead: the directory changed
    /// less than [`dircache::SETTLE`] ago (a listing read now could not be trusted later, and a
    /// changing directory re-read whole on every call would cost O(n²)), or it has more than
    /// [`dircache::MAX_ENTRIES`] entries.
    pub fn listing(&self, dir: &Obj, fh: &[u8]) -> Result<Option<Arc<Listing>>, Status> {
        let stamp = Stamp::of(&dir.st);
        if let Some(l) = self.dirs.get(fh, &stamp) {
            return Ok(l.whole().then_some(l));
        }
        if !stamp.settled(SystemTime::now()) {
            return Ok(None);
        }
        let fd = nix::fcntl::openat(
            &dir.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Status::from_nix)?;
        // `.` (and `..` at the export root, which is the root itself) carry the directory's own
        // handle; `..` elsewhere none: clients look it up when they need it, and handing out the
        // parent's handle here would cost a walk.
        let dot = self.handle_of(&dir.export, &fd, b"").ok();
        let dotdot = if dir.export.is_root(&dir.st) {
            dot.clone()
        } else {
            None
        };
        let mut l = Listing::new(stamp);
        let mut buf = Vec::with_capacity(64 * 1024);
        'read: while sys::getdents(fd.as_fd(), &mut buf).map_err(|e| Status::from_io(&e))? {
            for (ino, next, name) in sys::dirents(&buf) {
                if l.len() >= dircache::MAX_ENTRIES {
                    // Remembered (under this stamp) as "too big", so the next slice does not
                    // read it all again.
                    l = Listing::too_big(stamp);
                    break 'read;
                }
                let h = match name {
                    b"." => dot.clone(),
                    b".." => dotdot.clone(),
                    _ => self.handle_of(&dir.export, &fd, name).ok(),
                };
                l.push(ino, next, name, h.as_deref());
            }
        }
        let l = Arc::new(l);
        // Kept only if the directory did not change while it was read.
        // In read-only exports its entries' attributes are kept too, while an inotify watch on
        // the directory reports no change (see `dircache`).
        if nix::sys::stat::fstat(&fd).is_ok_and(|st| Stamp::of(&st) == stamp) {
            let watch = dir.export.read_only().then(|| fd.as_fd());
            self.dirs.put(fh, l.clone(), watch);
        }
        Ok(l.whole().then_some(l))
    }

    /// (directories, bytes) of listings kept now.
    pub fn listings(&self) -> (usize, usize) {
        self.dirs.usage()
    }

    /// The directory cache (kept attributes: draining inotify events, counters, watches).
    pub fn dirs(&self) -> &DirCache {
        &self.dirs
    }

    /// Opens the object for reading or writing file data: regular files only, so a device node
    /// or FIFO in a node's tree is never opened on the server.
    pub fn open_data(&self, obj: &Obj, write: bool) -> Result<std::fs::File, Status> {
        match kind(&obj.st) {
            SFlag::S_IFREG => {}
            SFlag::S_IFDIR => return Err(Status::IsDir),
            _ => return Err(Status::Inval),
        }
        let flags = if write {
            libc::O_WRONLY
        } else {
            libc::O_RDONLY
        } | libc::O_NOCTTY
            | libc::O_NONBLOCK;
        let fd = sys::open_by_handle(obj.export.root.as_fd(), obj.htype, &obj.kernel, flags)
            .map_err(|e| Status::from_io(&e))?;
        Ok(std::fs::File::from(fd))
    }

    /// Replaces the export table by `plan`: reuses open exports that did not change, opens new
    /// ones (creating node directories), logs what was added and removed.
    pub fn apply(&self, plan: Plan) -> Vec<String> {
        let old = self.table();
        let mut failures = Vec::new();
        let mut by_id = HashMap::new();
        let mut changed = false;
        for spec in &plan.exports {
            let id = spec.id();
            // Reuse an open export unless its directory was replaced (liteimg/genimage rebuilt it).
            let same_dir = |e: &Export| {
                nix::sys::stat::stat(spec.path.as_str())
                    .is_ok_and(|st| st.st_dev == e.root_dev && st.st_ino == e.root_ino)
            };
            if let Some(e) = old
                .by_id
                .get(&id)
                .filter(|e| e.spec == *spec && same_dir(e))
            {
                by_id.insert(id, e.clone());
                continue;
            }
            changed = true;
            match self.open_export(spec) {
                Ok(e) => {
                    match &spec.access {
                        Access::ReadOnly => {
                            info!("nfs: exporting {} read-only (osimage {})", spec.path, spec.what)
                        }
                        Access::ReadWrite { node, addr: Some(a) } => {
                            info!("nfs: exporting {} read-write to {node} ({a})", spec.path)
                        }
                        Access::ReadWrite { node, addr: None } => info!(
                            "nfs: exporting {} read-write to {node} (no hosts.ip: nobody can mount it yet)",
                            spec.path
                        ),
                    }
                    by_id.insert(id, Arc::new(e));
                }
                Err(e) => {
                    let line = format!("cannot export {}: {e}", spec.path);
                    warn!("nfs: {line}");
                    failures.push(line);
                }
            }
        }
        for (id, e) in &old.by_id {
            if !by_id.contains_key(id) {
                info!("nfs: no longer exporting {}", e.spec.path);
                changed = true;
            }
        }
        let t = Arc::new(Table { plan, by_id });
        match self.table.write() {
            Ok(mut w) => *w = t,
            Err(p) => *p.into_inner() = t,
        }
        if changed {
            // An export whose directory was replaced (an image rebuilt) has new contents under
            // the same id: what was shown to lie inside it, and what was listed in it, must be
            // found again.
            if let Ok(mut v) = self.verified.lock() {
                v.clear();
            }
            self.dirs.clear();
        }
        failures
    }

    fn open_export(&self, spec: &ExportSpec) -> Result<Export, String> {
        let path = Path::new(&spec.path);
        if !spec.read_only() && !path.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path)
                .map_err(|e| format!("cannot create the node directory: {e}"))?;
            // DirBuilder's mode is filtered by the umask; the issue asks for 0755 exactly.
            let _ =
                std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
        let root = nix::fcntl::openat(
            AT_FDCWD,
            path,
            // Not O_PATH: open_by_handle_at refuses O_PATH descriptors as its mount_fd.
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot open it ({e}); is it a directory?"))?;
        let st = nix::sys::stat::fstat(&root).map_err(|e| e.to_string())?;
        let k = sys::name_to_handle(root.as_fd(), b"")
            .map_err(|e| format!("its filesystem has no file handles ({e})"))?;
        let root_path = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
        let id = spec.id();
        Ok(Export {
            root_fh: fh::encode(&self.key, id, &k),
            spec: spec.clone(),
            id,
            root,
            root_dev: st.st_dev,
            root_ino: st.st_ino,
            mount_id: k.mount_id,
            root_path,
        })
    }
}

/// Defence in depth behind the MAC: is the object inside its export's root?
/// Directories: walk `..` up to the root (open_by_handle_at reconnects directories, so `..` is
/// the real parent). Other files: the kernel's path for the descriptor must lie under the root;
/// a descriptor whose path is not resolvable (a disconnected dentry after a server reboot) is
/// accepted on the MAC and the filesystem alone.
fn inside(obj: &Obj) -> bool {
    let e = &obj.export;
    if obj.st.st_dev != e.root_dev {
        return false;
    }
    if e.is_root(&obj.st) {
        return true;
    }
    if obj.is_dir() {
        let mut cur = match nix::fcntl::openat(
            &obj.fd,
            "..",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(_) => return false,
        };
        let mut prev = (obj.st.st_dev, obj.st.st_ino);
        for _ in 0..4096 {
            let Ok(st) = nix::sys::stat::fstat(&cur) else {
                return false;
            };
            if e.is_root(&st) {
                return true;
            }
            if (st.st_dev, st.st_ino) == prev {
                return false; // reached the filesystem's top
            }
            prev = (st.st_dev, st.st_ino);
            cur = match nix::fcntl::openat(
                &cur,
                "..",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(_) => return false,
            };
        }
        return false;
    }
    let link = format!("/proc/self/fd/{}", obj.fd.as_raw_fd());
    let Ok(p) = std::fs::read_link(&link) else {
        return false;
    };
    if p.starts_with(&e.root_path) {
        return true;
    }
    // Not under the root by name: only acceptable if that name is not really this file.
    match nix::sys::stat::lstat(&p) {
        Ok(st) => !(st.st_dev == obj.st.st_dev && st.st_ino == obj.st.st_ino),
        Err(_) => true,
    }
}
