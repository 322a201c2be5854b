//! Where TFTP file content comes from: the [`FileSource`] trait, the path rules every request
//! passes ([`TftpPath`]), files under a root directory ([`DirSource`]), files held in memory
//! ([`MemSource`], and later per-node rendered boot files) and a stack of sources ([`Layered`]).
//!
//! Path safety is enforced twice. [`TftpPath::parse`] refuses `..` and normalises the name (both
//! `/` and `\` separate, leading separators mean "the root", `.` and empty components vanish), so
//! no source ever sees a name that climbs. [`DirSource`] then opens with `openat2(2)` and
//! `RESOLVE_BENEATH` relative to the root, so the kernel refuses any resolution that leaves the root
//! — a symbolic link pointing out (absolute or `../..`), a magic link — with no window between a
//! check and the open. On kernels without `openat2` (before 5.6, or a seccomp filter that hides it)
//! the file is opened one component at a time with `O_NOFOLLOW`, which refuses every symbolic link.

use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// A requested file name after the path rules: relative to the source's root, never climbing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpPath {
    raw: String,
    parts: Vec<String>,
    absolute: bool,
}

/// Why a requested name is refused before any source sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty file name")]
    Empty,
    #[error("'..' is not allowed in a TFTP file name")]
    Parent,
    #[error("NUL in a TFTP file name")]
    Nul,
}

impl TftpPath {
    /// Applies the path rules to a name as the client sent it.
    pub fn parse(raw: &str) -> Result<TftpPath, PathError> {
        if raw.contains('\0') {
            return Err(PathError::Nul);
        }
        // PXE ROMs and Windows-built configs send `\`; both separate components.
        let normal = raw.replace('\\', "/");
        let absolute = normal.starts_with('/');
        let mut parts = Vec::new();
        for c in normal.split('/') {
            match c {
                "" | "." => {}
                ".." => return Err(PathError::Parent),
                c => parts.push(c.to_string()),
            }
        }
        if parts.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(TftpPath {
            raw: raw.to_string(),
            parts,
            absolute,
        })
    }

    /// The name exactly as the client sent it (for logs; quote it, it may hold anything).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The components, each a plain name (no separators, never `.`, `..` or empty).
    pub fn components(&self) -> &[String] {
        &self.parts
    }

    /// Whether the client sent a leading separator.
    pub fn is_absolute(&self) -> bool {
        self.absolute
    }

    /// The components joined with `/`, relative (`pxelinux.cfg/default`).
    pub fn relative(&self) -> String {
        self.parts.join("/")
    }
}

impl fmt::Display for TftpPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.relative())
    }
}

/// A file to send: open on disk (read as the transfer goes, never whole) or already in memory.
#[derive(Debug)]
pub enum Content {
    File { file: File, size: u64 },
    Bytes(Arc<[u8]>),
}

impl Content {
    /// Size in bytes (what `tsize` announces).
    pub fn size(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            Content::Bytes(b) => b.len() as u64,
        }
    }
}

/// Why a source does not give content for a name. The server answers TFTP ERROR 1 for
/// [`OpenError::NotFound`], 2 for [`OpenError::Denied`] and 0 for [`OpenError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("file not found")]
    NotFound,
    #[error("access violation: {0}")]
    Denied(String),
    #[error("{0}")]
    Io(String),
}

/// Something the TFTP server can read files from. `open` runs on the blocking pool, so it may do
/// file I/O or render a file; `client` lets the answer depend on the asking node.
pub trait FileSource: Send + Sync {
    fn open(&self, path: &TftpPath, client: SocketAddr) -> Result<Content, OpenError>;
}

/// Files under a directory (`site.tftpdir`), read-only, never resolving outside it.
///
/// Only regular, world-readable files are served (as tftpd-hpa does): the daemon runs as root, and
/// a file an admin left private in the TFTP root should stay private.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
    /// The root's own components: xCAT's `tftpmapfile4xcat.conf` maps `/tftpboot/x` to `x`, and
    /// boot configs written for it name files that way, so an absolute name that starts with the
    /// root's path is taken relative to the root.
    root_parts: Vec<String>,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> DirSource {
        let root = root.into();
        let root_parts = if root.is_absolute() {
            root.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => s.to_str().map(str::to_string),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        DirSource { root, root_parts }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The components to open below the root.
    fn below_root<'p>(&self, path: &'p TftpPath) -> &'p [String] {
        let parts = path.components();
        if path.is_absolute()
            && !self.root_parts.is_empty()
            && parts.len() > self.root_parts.len()
            && parts.starts_with(&self.root_parts)
        {
            return &parts[self.root_parts.len()..];
        }
        parts
    }
}

const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    // A FIFO in the root must not block the open (and with it a blocking-pool thread).
    .union(OFlag::O_NONBLOCK);

fn map_errno(e: Errno, what: &str) -> OpenError {
    match e {
        Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG => OpenError::NotFound,
        Errno::EXDEV => OpenError::Denied("resolves outside the TFTP root".into()),
        Errno::ELOOP => OpenError::Denied("symbolic link refused".into()),
        Errno::EACCES | Errno::EPERM => OpenError::Denied("permission denied".into()),
        e => OpenError::Io(format!("{what}: {}", e.desc())),
    }
}

/// Opens `rel` below `dir` with the kernel keeping resolution beneath `dir`.
fn open_beneath(dir: &OwnedFd, rel: &str) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{openat2, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(FILE_FLAGS)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(dir.as_fd(), rel, how)
}

/// Fallback without `openat2`: one component at a time, refusing every symbolic link.
fn open_walk(dir: &OwnedFd, parts: &[String]) -> Result<OwnedFd, Errno> {
    use nix::fcntl::openat;
    let Some((last, dirs)) = parts.split_last() else {
        return Err(Errno::ENOENT);
    };
    let mut cur: Option<OwnedFd> = None;
    for d in dirs {
        let at = cur.as_ref().unwrap_or(dir);
        let next = openat(
            at.as_fd(),
            d.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        cur = Some(next);
    }
    let at = cur.as_ref().unwrap_or(dir);
    openat(
        at.as_fd(),
        last.as_str(),
        FILE_FLAGS | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
}

/// Whether a server running as an unprivileged user could reach what lies below `dirs` (path
/// components relative to `root`, resolved beneath it as the open is): every one of them must be
/// a directory others may search (`o+x`). The root itself is the administrator's choice and is
/// not checked. A world-readable file inside a `0700` directory is private, as Apache or
/// tftpd-hpa running as nobody would find; serving it as root would leak it. Shared by TFTP and
/// HTTP.
pub fn others_may_search(root: &OwnedFd, dirs: &[String]) -> Result<bool, Errno> {
    use nix::fcntl::{openat2, OpenHow, ResolveFlag};
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    for i in 1..=dirs.len() {
        let prefix = dirs[..i].join("/");
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = match openat2(root.as_fd(), prefix.as_str(), how) {
            Err(Errno::ENOSYS) => open_dirs_walk(root, &dirs[..i])?,
            other => other?,
        };
        let st = nix::sys::stat::fstat(&fd)?;
        if st.st_mode & 0o001 == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// [`others_may_search`]'s open without `openat2`: one component at a time, no links.
fn open_dirs_walk(root: &OwnedFd, dirs: &[String]) -> Result<OwnedFd, Errno> {
    use nix::fcntl::openat;
    let mut cur: Option<OwnedFd> = None;
    for d in dirs {
        let at = cur.as_ref().unwrap_or(root);
        cur = Some(openat(
            at.as_fd(),
            d.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
    }
    cur.ok_or(Errno::ENOENT)
}

/// The checks every opened file passes: regular, world-readable; its size for `tsize`.
fn checked(fd: OwnedFd) -> Result<Content, OpenError> {
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| OpenError::Io(format!("stat: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(OpenError::Denied("not a regular file".into()));
    }
    if meta.mode() & 0o004 == 0 {
        return Err(OpenError::Denied("not world-readable".into()));
    }
    Ok(Content::File {
        size: meta.len(),
        file,
    })
}

impl FileSource for DirSource {
    fn open(&self, path: &TftpPath, _client: SocketAddr) -> Result<Content, OpenError> {
        let parts = self.below_root(path);
        // Opened per request: the root may be created, replaced or mounted after the daemon starts.
        let dir = nix::fcntl::open(
            &self.root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| OpenError::Io(format!("TFTP root {}: {}", self.root.display(), e.desc())))?;
        let fd = match open_beneath(&dir, &parts.join("/")) {
            Ok(fd) => fd,
            Err(Errno::ENOSYS) => open_walk(&dir, parts).map_err(|e| map_errno(e, "open"))?,
            Err(e) => return Err(map_errno(e, "open")),
        };
        let dirs = parts.split_last().map(|(_, d)| d).unwrap_or_default();
        if !others_may_search(&dir, dirs).map_err(|e| map_errno(e, "open"))? {
            return Err(OpenError::Denied(
                "inside a directory others may not search".into(),
            ));
        }
        checked(fd)
    }
}

/// Files held in memory, by relative path (`pxelinux.cfg/default`): rendered boot files, tests.
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    files: std::collections::HashMap<String, Arc<[u8]>>,
}

impl MemSource {
    pub fn new() -> MemSource {
        MemSource::default()
    }

    /// Adds (or replaces) a file; `path` is normalised by the same rules as requests.
    pub fn insert(&mut self, path: &str, content: impl Into<Arc<[u8]>>) -> Result<(), PathError> {
        let p = TftpPath::parse(path)?;
        self.files.insert(p.relative(), content.into());
        Ok(())
    }
}

impl FileSource for MemSource {
    fn open(&self, path: &TftpPath, _client: SocketAddr) -> Result<Content, OpenError> {
        self.files
            .get(&path.relative())
            .map(|b| Content::Bytes(b.clone()))
            .ok_or(OpenError::NotFound)
    }
}

/// Sources tried in order: the first that does not answer [`OpenError::NotFound`] decides (so a
/// rendered per-node file can shadow a file on disk, and a refusal is never bypassed).
pub struct Layered {
    layers: Vec<Box<dyn FileSource>>,
}

impl Layered {
    pub fn new(layers: Vec<Box<dyn FileSource>>) -> Layered {
        Layered { layers }
    }
}

impl FileSource for Layered {
    fn open(&self, path: &TftpPath, client: SocketAddr) -> Result<Content, OpenError> {
        for layer in &self.layers {
            match layer.open(path, client) {
                Err(OpenError::NotFound) => continue,
                other => return other,
            }
        }
        Err(OpenError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn client() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 9], 2070))
    }

    fn read(c: Content) -> Vec<u8> {
        match c {
            Content::File { mut file, size } => {
                let mut v = Vec::new();
                file.read_to_end(&mut v).expect("read");
                assert_eq!(v.len() as u64, size);
                v
            }
            Content::Bytes(b) => b.to_vec(),
        }
    }

    #[test]
    fn names_are_normalised_and_never_climb() {
        let p = TftpPath::parse("\\pxelinux.cfg\\01-52-54-00-00-00-01").expect("ok");
        assert_eq!(p.relative(), "pxelinux.cfg/01-52-54-00-00-00-01");
        assert!(p.is_absolute());
        assert_eq!(
            TftpPath::parse("//a/./b//c/").expect("ok").relative(),
            "a/b/c"
        );
        assert!(!TftpPath::parse("a").expect("ok").is_absolute());
        for bad in ["..", "../x", "a/../b", "\\..\\etc\\passwd", "a\\..", "/.."] {
            assert_eq!(TftpPath::parse(bad), Err(PathError::Parent), "{bad}");
        }
        for empty in ["", "/", "\\", "./.", "//"] {
            assert_eq!(TftpPath::parse(empty), Err(PathError::Empty), "{empty:?}");
        }
        // Names that merely contain dots are fine.
        assert_eq!(
            TftpPath::parse("a..b/...").expect("ok").relative(),
            "a..b/..."
        );
    }

    /// A root with a file, a subdirectory, links inside and out, and things not to serve.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("tftpboot");
        std::fs::create_dir_all(root.join("xcat/sub")).expect("mkdir");
        std::fs::write(root.join("pxelinux.0"), b"pxe").expect("write");
        std::fs::write(root.join("xcat/sub/vmlinuz"), b"kernel").expect("write");
        std::fs::write(t.path().join("secret"), b"outside").expect("write");
        let private = root.join("private");
        std::fs::write(&private, b"p").expect("write");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        symlink("sub/vmlinuz", root.join("xcat/inside")).expect("symlink");
        symlink("../pxelinux.0", root.join("xcat/up-inside")).expect("symlink");
        symlink("../secret", root.join("out-relative")).expect("symlink");
        symlink(t.path().join("secret"), root.join("out-absolute")).expect("symlink");
        symlink(t.path(), root.join("outdir")).expect("symlink");
        symlink("/etc/passwd", root.join("passwd")).expect("symlink");
        symlink("/proc/self/root/etc/passwd", root.join("magic")).expect("symlink");
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o644)).expect("mkfifo");
        (t, root)
    }

    fn open(s: &dyn FileSource, name: &str) -> Result<Content, OpenError> {
        let p = TftpPath::parse(name).map_err(|e| OpenError::Denied(e.to_string()))?;
        s.open(&p, client())
    }

    #[test]
    fn dir_source_serves_inside_and_refuses_outside() {
        let (_t, root) = tree();
        let s = DirSource::new(&root);
        // A world-readable file in a directory others may not search: refused, also through
        // a link to it from a public directory.
        std::fs::create_dir_all(root.join("xcat/closed/deeper")).expect("mkdir");
        std::fs::write(root.join("xcat/closed/deeper/f"), b"private").expect("write");
        std::fs::set_permissions(
            root.join("xcat/closed/deeper/f"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        std::fs::set_permissions(
            root.join("xcat/closed"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        match open(&s, "xcat/closed/deeper/f") {
            Err(OpenError::Denied(why)) => assert!(why.contains("may not search"), "{why}"),
            other => panic!("served from a 0700 directory: {:?}", other.map(read)),
        }
        assert_eq!(read(open(&s, "pxelinux.0").expect("open")), b"pxe");
        assert_eq!(read(open(&s, "/pxelinux.0").expect("open")), b"pxe");
        assert_eq!(
            read(open(&s, "\\xcat\\sub\\vmlinuz").expect("open")),
            b"kernel"
        );
        assert_eq!(read(open(&s, "xcat/inside").expect("open")), b"kernel");
        assert_eq!(read(open(&s, "xcat/up-inside").expect("open")), b"pxe");
        // xCAT's mapping: the root's own absolute path names the root.
        let abs = format!("{}/xcat/sub/vmlinuz", root.display());
        assert_eq!(read(open(&s, &abs).expect("open")), b"kernel");
        // …but only with a leading separator, as the mapfile does.
        assert!(matches!(open(&s, &abs[1..]), Err(OpenError::NotFound)));
        assert!(matches!(open(&s, "nope"), Err(OpenError::NotFound)));
        assert!(matches!(
            open(&s, "xcat/sub/vmlinuz/x"),
            Err(OpenError::NotFound)
        ));
        // An absolute name is taken below the root, never from the host's /.
        assert!(matches!(open(&s, "/etc/passwd"), Err(OpenError::NotFound)));
        for out in [
            "out-relative",
            "out-absolute",
            "outdir/secret",
            "passwd",
            "magic",
        ] {
            assert!(
                matches!(open(&s, out), Err(OpenError::Denied(_))),
                "{out}: {:?}",
                open(&s, out)
            );
        }
        for not_served in ["private", "fifo", "xcat", "xcat/sub"] {
            assert!(
                matches!(open(&s, not_served), Err(OpenError::Denied(_))),
                "{not_served}: {:?}",
                open(&s, not_served)
            );
        }
        assert!(matches!(
            DirSource::new(root.join("missing")).open(&TftpPath::parse("x").expect("ok"), client()),
            Err(OpenError::Io(_))
        ));
    }

    #[test]
    fn fallback_walk_refuses_every_symbolic_link() {
        let (_t, root) = tree();
        let dir = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open root");
        let walk = |name: &str| {
            let p = TftpPath::parse(name).expect("parse");
            open_walk(&dir, p.components()).map_err(|e| map_errno(e, "open"))
        };
        let c = checked(walk("xcat/sub/vmlinuz").expect("open")).expect("checked");
        assert_eq!(read(c), b"kernel");
        for link in [
            "out-relative",
            "out-absolute",
            "outdir/secret",
            "xcat/inside",
            "magic",
        ] {
            assert!(walk(link).is_err(), "{link}");
        }
        assert!(matches!(walk("nope"), Err(OpenError::NotFound)));
    }

    #[test]
    fn layered_falls_through_only_on_not_found() {
        let (_t, root) = tree();
        let mut mem = MemSource::new();
        mem.insert("/pxelinux.cfg/default", b"DEFAULT x".to_vec())
            .expect("insert");
        mem.insert("pxelinux.0", b"rendered".to_vec())
            .expect("insert");
        let deny: Box<dyn FileSource> = Box::new(Deny);
        let l = Layered::new(vec![Box::new(mem), Box::new(DirSource::new(&root))]);
        assert_eq!(
            read(open(&l, "\\pxelinux.cfg\\default").expect("open")),
            b"DEFAULT x"
        );
        assert_eq!(
            read(open(&l, "pxelinux.0").expect("open")),
            b"rendered",
            "first layer wins"
        );
        assert_eq!(read(open(&l, "xcat/sub/vmlinuz").expect("open")), b"kernel");
        assert!(matches!(open(&l, "nope"), Err(OpenError::NotFound)));
        let l = Layered::new(vec![deny, Box::new(DirSource::new(&root))]);
        assert!(matches!(open(&l, "pxelinux.0"), Err(OpenError::Denied(_))));
    }

    struct Deny;
    impl FileSource for Deny {
        fn open(&self, _: &TftpPath, _: SocketAddr) -> Result<Content, OpenError> {
            Err(OpenError::Denied("no".into()))
        }
    }
}
