//! The file trees: [`StaticTree`] serves a directory (`site.installdir` under `/install/`) and
//! [`TftpTree`] the TFTP root under `/tftpboot/`, rendered boot files first (the same
//! [`RenderedSource`] the TFTP service asks), then the files on disk. Both answer GET and HEAD
//! with `Last-Modified`/`ETag`, conditional requests and single byte ranges ([`respond`]), and
//! list directories as HTML that `wget -r -np` follows.
//!
//! Path safety, as in the TFTP [`DirSource`](crate::tftp::source::DirSource): the request path
//! already passed the path rules ([`super::proto::parse_target`]: no `..`, no encoded `/`), and
//! every open is `openat2(2)` with `RESOLVE_BENEATH` from the root, so the kernel refuses any
//! resolution that leaves it (a symbolic link out, absolute or relative, a magic link). Without
//! `openat2` the path is walked one component at a time with `O_NOFOLLOW`, refusing every link.
//! Only world-readable regular files and directories are served or listed, as Apache running as
//! its own user would: the daemon runs as root, and a file an admin left private stays private.
//! A listing shows exactly the entries that can be fetched, so `wget -r` meets no refusal.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use tracing::{debug, warn};

use super::handler::{Body, Handler, Inline, RequestInfo, Response};
use super::proto::{self, RangeReq};
use crate::store::resolver::Resolver;
use crate::tftp::rendered::RenderedSource;
use crate::tftp::source::{Content, DirSource, FileSource, OpenError, PathError, TftpPath};

/// The methods the trees answer.
const ALLOW: &str = "GET, HEAD";

/// A directory served under one URL prefix (`/install/` → `site.installdir`).
#[derive(Debug, Clone)]
pub struct StaticTree {
    prefix: String,
    root: PathBuf,
}

/// Why a path gives no file.
#[derive(Debug)]
enum Refusal {
    NotFound,
    Denied(&'static str),
    Io(String),
}

/// What a path names, opened.
enum Opened {
    File(File, FileStat),
    Dir(OwnedFd, FileStat),
}

const FILE_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    // A FIFO under the root must not block the open (and a blocking-pool thread with it).
    .union(OFlag::O_NONBLOCK);
/// For looking at listing entries: no open of the content, no FIFO to block on.
const PATH_FLAGS: OFlag = OFlag::O_PATH.union(OFlag::O_CLOEXEC);

fn map_errno(e: Errno) -> Refusal {
    match e {
        Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG => Refusal::NotFound,
        Errno::EXDEV => Refusal::Denied("resolves outside the root"),
        Errno::ELOOP => Refusal::Denied("symbolic link refused"),
        Errno::EACCES | Errno::EPERM => Refusal::Denied("permission denied"),
        e => Refusal::Io(e.desc().to_string()),
    }
}

/// Opens `rel` (segments) below the directory `dir` without leaving it: `openat2` with
/// `RESOLVE_BENEATH`, or where that is missing a walk that refuses every symbolic link.
fn open_beneath(dir: &OwnedFd, rel: &[String], flags: OFlag) -> Result<OwnedFd, Errno> {
    use nix::fcntl::{openat2, OpenHow};
    let joined = if rel.is_empty() {
        ".".to_string()
    } else {
        rel.join("/")
    };
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir.as_fd(), joined.as_str(), how) {
        Err(Errno::ENOSYS) => open_walk(dir, rel, flags),
        other => other,
    }
}

/// The fallback without `openat2` (before Linux 5.6, or hidden by a seccomp filter).
fn open_walk(dir: &OwnedFd, rel: &[String], flags: OFlag) -> Result<OwnedFd, Errno> {
    use nix::fcntl::openat;
    let mut cur: Option<OwnedFd> = None;
    let (last, dirs) = match rel.split_last() {
        Some((l, d)) => (l.as_str(), d),
        None => (".", rel),
    };
    for d in dirs {
        let at = cur.as_ref().unwrap_or(dir);
        let next = openat(
            at.as_fd(),
            d.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        cur = Some(next);
    }
    let at = cur.as_ref().unwrap_or(dir);
    openat(at.as_fd(), last, flags | OFlag::O_NOFOLLOW, Mode::empty())
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn is_file(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

fn world_readable(st: &FileStat) -> bool {
    st.st_mode & 0o004 != 0
}

impl StaticTree {
    /// `prefix` is the first path segment (`install`); `root` the directory it names.
    pub fn new(prefix: &str, root: impl Into<PathBuf>) -> StaticTree {
        StaticTree {
            prefix: prefix.to_string(),
            root: root.into(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root, opened per request: it may be created, replaced or mounted after the daemon starts.
    fn open_root(&self) -> Result<OwnedFd, Refusal> {
        nix::fcntl::open(
            &self.root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            warn!(root = %self.root.display(), "HTTP root unusable: {}", e.desc());
            Refusal::NotFound
        })
    }

    fn open(&self, root: &OwnedFd, rel: &[String]) -> Result<Opened, Refusal> {
        let fd = open_beneath(root, rel, FILE_FLAGS).map_err(map_errno)?;
        let parents = rel.split_last().map(|(_, d)| d).unwrap_or_default();
        if !crate::tftp::source::others_may_search(root, parents).map_err(map_errno)? {
            return Err(Refusal::Denied("inside a directory others may not search"));
        }
        let st = nix::sys::stat::fstat(&fd).map_err(|e| Refusal::Io(format!("stat: {e}")))?;
        if is_dir(&st) {
            return Ok(Opened::Dir(fd, st));
        }
        if !is_file(&st) {
            return Err(Refusal::Denied("not a regular file"));
        }
        if !world_readable(&st) {
            return Err(Refusal::Denied("not world-readable"));
        }
        Ok(Opened::File(File::from(fd), st))
    }

    /// Answers a GET or HEAD for `rel` (segments below the root).
    pub fn serve(&self, req: &RequestInfo, rel: &[String]) -> Response {
        self.answer(req, rel, true)
            .unwrap_or_else(|| Response::error(500))
    }

    /// [`StaticTree::serve`], except that without `list` a directory listing is not made (it
    /// reads and resolves every entry: too long for a runtime worker) and `None` says so.
    fn answer(&self, req: &RequestInfo, rel: &[String], list: bool) -> Option<Response> {
        let opened = self
            .open_root()
            .and_then(|root| self.open(&root, rel).map(|o| (root, o)));
        Some(match opened {
            Ok((_, Opened::File(file, st))) => {
                if req.path.trailing_slash {
                    // `file/` names a directory that is not there.
                    return Some(Response::error(404));
                }
                let name = rel.last().map(String::as_str).unwrap_or_default();
                file_response(req, file, &st, content_type(name))
            }
            Ok((root, Opened::Dir(fd, st))) => {
                if !req.path.trailing_slash {
                    return Some(Response::redirect(301, &slash_location(req)));
                }
                if !world_readable(&st) {
                    return Some(refused(req, "directory not world-readable"));
                }
                if !list {
                    return None;
                }
                match self.listing(req, &root, rel, fd) {
                    Ok(r) => r,
                    Err(e) => failed(req, &e),
                }
            }
            Err(Refusal::NotFound) => {
                debug!(client = %req.peer, target = ?req.target, "HTTP not found");
                Response::error(404)
            }
            Err(Refusal::Denied(why)) => refused(req, why),
            Err(Refusal::Io(e)) => failed(req, &e),
        })
    }

    /// The HTML index of a directory: one relative link per entry that can be fetched.
    fn listing(
        &self,
        req: &RequestInfo,
        root: &OwnedFd,
        rel: &[String],
        dir: OwnedFd,
    ) -> Result<Response, String> {
        let mut d = nix::dir::Dir::from_fd(dir).map_err(|e| format!("opendir: {e}"))?;
        let mut entries = Vec::new();
        let mut path: Vec<String> = rel.to_vec();
        for e in d.iter() {
            let e = e.map_err(|e| format!("readdir: {e}"))?;
            // A name that is not UTF-8 cannot be asked for (targets are UTF-8): not listed.
            let Ok(name) = e.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            // Each entry is resolved from the root as a request for it would be, so a link out
            // or a private file is not offered.
            path.push(name.to_string());
            let st = open_beneath(root, &path, PATH_FLAGS)
                .ok()
                .and_then(|fd| nix::sys::stat::fstat(&fd).ok());
            path.pop();
            let Some(st) = st else { continue };
            if !world_readable(&st) || (is_dir(&st) && st.st_mode & 0o001 == 0) {
                continue;
            }
            if is_dir(&st) {
                entries.push((name.to_string(), None, st.st_mtime));
            } else if is_file(&st) {
                entries.push((
                    name.to_string(),
                    Some(st.st_size.max(0) as u64),
                    st.st_mtime,
                ));
            }
        }
        entries.sort();
        let title = html_escape(&req.decoded_path());
        let mut html = format!(
            "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body>\n<h1>Index of {title}</h1>\n<hr><pre>\n"
        );
        if !rel.is_empty() {
            html.push_str("<a href=\"../\">../</a>\n");
        }
        for (name, size, mtime) in &entries {
            let mut href = proto::percent_encode_segment(name);
            // `a:b` would read as a URL scheme; `./a:b` is the same relative path.
            if href.contains(':') {
                href.insert_str(0, "./");
            }
            let slash = if size.is_none() { "/" } else { "" };
            let shown = format!("{name}{slash}");
            let pad = 50usize.saturating_sub(shown.chars().count()).max(1);
            let size = size.map_or_else(|| "-".to_string(), |s| s.to_string());
            html.push_str(&format!(
                "<a href=\"{href}{slash}\">{}</a>{:pad$}{} {size:>20}\n",
                html_escape(&shown),
                "",
                proto::listing_date(*mtime),
            ));
        }
        html.push_str("</pre><hr>\n</body>\n</html>\n");
        Ok(Response::bytes(200, "text/html; charset=utf-8", html)
            .header("Cache-Control", "no-cache"))
    }
}

impl Handler for StaticTree {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let rel = req.under(&[self.prefix.as_str()])?;
        if !req.is_read() {
            return Some(Response::method_not_allowed(ALLOW));
        }
        Some(self.serve(req, rel))
    }

    /// Files, redirects and refusals on the connection's task: an `openat2` and an `fstat` of a
    /// cached path take microseconds, the trip to the blocking pool about 17 µs (measured with
    /// wrk on 1 KiB files: 39 → 22 µs of CPU per request; nginx: 17). Listings go to the pool.
    fn inline(&self, req: &RequestInfo) -> Inline {
        let Some(rel) = req.under(&[self.prefix.as_str()]) else {
            return Inline::Pass;
        };
        if !req.is_read() {
            return Inline::Done(Response::method_not_allowed(ALLOW));
        }
        match self.answer(req, rel, false) {
            Some(r) => Inline::Done(r),
            None => Inline::Defer,
        }
    }
}

/// The TFTP root under `/tftpboot/`: per-node and discovery boot files rendered from the store
/// (found by node name, MAC or hex IP in the path, exactly as TFTP finds them), then the disk.
/// Names follow the TFTP path rules too (`\` separates), so a path means the same file in both.
pub struct TftpTree {
    rendered: RenderedSource,
    disk: StaticTree,
}

impl TftpTree {
    pub fn new(resolver: Arc<Resolver>, root: impl Into<PathBuf>) -> TftpTree {
        let root = root.into();
        TftpTree {
            // Routes catch the store up before asking (see `Routes::catch_up_with`).
            rendered: RenderedSource::new(resolver, DirSource::new(root.clone()))
                .caught_up_by_caller(),
            disk: StaticTree::new("tftpboot", root),
        }
    }
}

impl Handler for TftpTree {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let rel = req.under(&["tftpboot"])?;
        if !req.is_read() {
            return Some(Response::method_not_allowed(ALLOW));
        }
        if rel.is_empty() {
            return Some(self.disk.serve(req, rel));
        }
        let path = match TftpPath::parse(&rel.join("/")) {
            Ok(p) => p,
            Err(PathError::Parent) => return Some(refused(req, "'..' in the path")),
            Err(_) => return Some(Response::error(404)),
        };
        if req.path.trailing_slash {
            // A directory is meant: nothing rendered is one.
            return Some(self.disk.serve(req, path.components()));
        }
        Some(match self.rendered.open(&path, req.peer) {
            Ok(Content::Bytes(b)) => {
                let v = Validators::default();
                respond(
                    req,
                    "text/plain; charset=utf-8",
                    b.len() as u64,
                    &v,
                    |o, n| Body::Bytes(b[o as usize..(o + n) as usize].to_vec()),
                )
                // Rendered from the store on each request: nodeset changes it at any moment.
                .header("Cache-Control", "no-cache")
            }
            Ok(Content::File { file, .. }) => match nix::sys::stat::fstat(file.as_fd()) {
                Ok(st) => file_response(req, file, &st, content_type(&path.relative())),
                Err(e) => failed(req, &format!("stat: {e}")),
            },
            Err(OpenError::NotFound) => self.disk.serve(req, path.components()),
            Err(OpenError::Denied(why)) => refused(req, &why),
            Err(OpenError::Io(e)) => failed(req, &e),
        })
    }
}

/// The `Location` of a directory asked for without its `/`: rebuilt from the decoded segments, so
/// a target like `//host/x` can never turn into a redirect to another host.
fn slash_location(req: &RequestInfo) -> String {
    let mut loc = String::new();
    for s in &req.path.segments {
        loc.push('/');
        loc.push_str(&proto::percent_encode_segment(s));
    }
    loc.push('/');
    if let Some(q) = &req.path.query {
        loc.push('?');
        loc.push_str(q);
    }
    loc
}

/// 403, logged (one line per refused request, with who asked for what; beyond a burst of 64,
/// one per 2 s with the count held back).
pub fn refused(req: &RequestInfo, why: &str) -> Response {
    static REFUSED: crate::limits::Throttle =
        crate::limits::Throttle::burst(64, std::time::Duration::from_secs(2));
    if let Some(suppressed) = REFUSED.check() {
        warn!(client = %req.peer, target = ?req.target, suppressed, "HTTP refused: {why}");
    }
    Response::error(403)
}

/// 500, logged.
fn failed(req: &RequestInfo, why: &str) -> Response {
    warn!(client = %req.peer, target = ?req.target, "HTTP failed: {why}");
    Response::error(500)
}

/// What identifies a version of a representation, for conditional requests.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    /// Modification time, seconds since the epoch (sent as `Last-Modified`).
    pub mtime: Option<i64>,
    /// Sent as `ETag`.
    pub etag: Option<String>,
}

/// The response for an open regular file: type by name, validators from its status.
pub fn file_response(req: &RequestInfo, file: File, st: &FileStat, ctype: &str) -> Response {
    let size = st.st_size.max(0) as u64;
    let v = Validators {
        mtime: Some(st.st_mtime),
        etag: Some(proto::etag(st.st_mtime, size)),
    };
    respond(req, ctype, size, &v, |offset, len| Body::File {
        file,
        offset,
        len,
    })
}

/// A representation of `size` bytes answered with conditionals and ranges applied: 304 when the
/// client's copy is current (`If-None-Match`, else `If-Modified-Since`), 206 for one satisfiable
/// range (GET only; `If-Range` must match or the whole is sent), 416 when no byte of it exists,
/// else 200. `body(offset, len)` makes the body for what is sent.
pub fn respond(
    req: &RequestInfo,
    ctype: &str,
    size: u64,
    v: &Validators,
    body: impl FnOnce(u64, u64) -> Body,
) -> Response {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(5);
    if let Some(m) = v.mtime {
        headers.push(("Last-Modified".into(), proto::http_date(m)));
    }
    if let Some(e) = &v.etag {
        headers.push(("ETag".into(), e.clone()));
    }
    let not_modified = match req.header("if-none-match") {
        Some(inm) => v.etag.as_deref().is_some_and(|e| proto::none_match(inm, e)),
        None => match (v.mtime, req.header("if-modified-since")) {
            (Some(m), Some(ims)) => proto::parse_http_date(ims).is_some_and(|t| m <= t),
            _ => false,
        },
    };
    if not_modified {
        return Response {
            status: 304,
            headers,
            body: Body::Empty,
        };
    }
    headers.push(("Content-Type".into(), ctype.to_string()));
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    let range = match req.header("range") {
        // RFC 9110 §14.2: Range is defined for GET only.
        Some(r) if req.method == "GET" && if_range_holds(req, v) => proto::parse_range(r, size),
        _ => RangeReq::Whole,
    };
    match range {
        RangeReq::Whole => Response {
            status: 200,
            headers,
            body: body(0, size),
        },
        RangeReq::Part { start, end } => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{end}/{size}"),
            ));
            Response {
                status: 206,
                headers,
                body: body(start, end - start + 1),
            }
        }
        RangeReq::Unsatisfiable => {
            let mut r = Response::error(416);
            r.headers
                .push(("Content-Range".into(), format!("bytes */{size}")));
            r
        }
    }
}

/// `If-Range`: the range applies only to the version the client names — by strong entity tag
/// or by exactly the `Last-Modified` date (RFC 9110 §13.1.5).
fn if_range_holds(req: &RequestInfo, v: &Validators) -> bool {
    let Some(ir) = req.header("if-range") else {
        return true;
    };
    if ir.starts_with('"') {
        v.etag.as_deref() == Some(ir)
    } else if ir.starts_with("W/") {
        false
    } else {
        matches!((v.mtime, proto::parse_http_date(ir)), (Some(m), Some(t)) if m == t)
    }
}

/// `Content-Type` by file name extension; unknown is `application/octet-stream`.
pub fn content_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, e)) => e.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html",
        "txt" | "log" | "cfg" | "conf" | "ks" | "tmpl" | "repo" | "md" => "text/plain",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "sh" => "application/x-sh",
        "iso" => "application/x-iso9660-image",
        "gz" | "tgz" => "application/gzip",
        "bz2" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        "rpm" => "application/x-rpm",
        "deb" | "udeb" => "application/vnd.debian.binary-package",
        "asc" | "sig" | "gpg" => "application/pgp-signature",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn req(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestInfo {
        RequestInfo {
            method: method.into(),
            target: target.into(),
            path: proto::parse_target(target).expect("target"),
            minor: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            peer: "10.0.0.9:40000".parse().expect("addr"),
            local: "10.0.0.1:80".parse().expect("addr"),
        }
    }

    fn get(t: &StaticTree, target: &str, headers: &[(&str, &str)]) -> Response {
        t.handle(&req("GET", target, headers)).expect("handled")
    }

    fn body(r: Response) -> Vec<u8> {
        match r.body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) => b,
            Body::File {
                mut file,
                offset,
                len,
            } => {
                file.seek(SeekFrom::Start(offset)).expect("seek");
                let mut v = Vec::new();
                file.take(len).read_to_end(&mut v).expect("read");
                v
            }
        }
    }

    fn tree() -> (tempfile::TempDir, StaticTree) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("install");
        std::fs::create_dir_all(root.join("postscripts/_xcat")).expect("mkdir");
        std::fs::create_dir_all(root.join("private-dir")).expect("mkdir");
        std::fs::set_permissions(
            root.join("private-dir"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        std::fs::write(root.join("postscripts/syslog"), b"0123456789").expect("write");
        std::fs::write(root.join("postscripts/_xcat/ca.pem"), b"pem").expect("write");
        std::fs::write(root.join("postscripts/a b&c.sh"), b"x").expect("write");
        std::fs::write(root.join("postscripts/a:b"), b"x").expect("write");
        std::fs::write(t.path().join("secret"), b"outside").expect("write");
        let private = root.join("postscripts/private");
        std::fs::write(&private, b"p").expect("write");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        symlink("syslog", root.join("postscripts/inside")).expect("symlink");
        symlink("../../secret", root.join("postscripts/out")).expect("symlink");
        symlink("/etc", root.join("postscripts/etc")).expect("symlink");
        nix::unistd::mkfifo(
            &root.join("postscripts/fifo"),
            Mode::from_bits_truncate(0o644),
        )
        .expect("mkfifo");
        (t, StaticTree::new("install", root))
    }

    #[test]
    fn a_public_file_in_a_private_directory_is_refused_and_not_listed() {
        let (_t, s) = tree();
        let root = s.root().to_path_buf();
        std::fs::create_dir_all(root.join("open/inner")).expect("mkdir");
        std::fs::write(root.join("open/inner/f"), b"x").expect("write");
        std::fs::set_permissions(
            root.join("open/inner/f"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        std::fs::write(root.join("private-dir/f"), b"x").expect("write");
        std::fs::set_permissions(
            root.join("private-dir/f"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        assert_eq!(get(&s, "/install/open/inner/f", &[]).status, 200);
        assert_eq!(get(&s, "/install/private-dir/f", &[]).status, 403);
        std::fs::set_permissions(
            root.join("open/inner"),
            std::fs::Permissions::from_mode(0o750),
        )
        .expect("chmod");
        assert_eq!(get(&s, "/install/open/inner/f", &[]).status, 403);
        let listing = String::from_utf8_lossy(&body(get(&s, "/install/open/", &[]))).to_string();
        assert!(!listing.contains("inner/"), "{listing}");
    }

    #[test]
    fn files_ranges_and_conditionals() {
        let (_t, s) = tree();
        let r = get(&s, "/install/postscripts/syslog", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(r.get_header("accept-ranges"), Some("bytes"));
        let lm = r.get_header("last-modified").expect("lm").to_string();
        let etag = r.get_header("etag").expect("etag").to_string();
        assert_eq!(body(r), b"0123456789");

        let r = get(&s, "/install/postscripts/syslog", &[("range", "bytes=2-4")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.get_header("content-range"), Some("bytes 2-4/10"));
        assert_eq!(body(r), b"234");
        let r = get(&s, "/install/postscripts/syslog", &[("range", "bytes=-3")]);
        assert_eq!(body(r), b"789");
        let r = get(&s, "/install/postscripts/syslog", &[("range", "bytes=7-")]);
        assert_eq!(body(r), b"789");
        let r = get(&s, "/install/postscripts/syslog", &[("range", "bytes=10-")]);
        assert_eq!(r.status, 416);
        assert_eq!(r.get_header("content-range"), Some("bytes */10"));
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("range", "bytes=0-1,4-5")],
        );
        assert_eq!((r.status, body(r)), (200, b"0123456789".to_vec()));
        let r = s
            .handle(&req(
                "HEAD",
                "/install/postscripts/syslog",
                &[("range", "bytes=0-1")],
            ))
            .expect("handled");
        assert_eq!((r.status, r.body.len()), (200, 10));

        // If-Range: the range only for the same version.
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("range", "bytes=0-1"), ("if-range", &etag)],
        );
        assert_eq!(r.status, 206);
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("range", "bytes=0-1"), ("if-range", &lm)],
        );
        assert_eq!(r.status, 206);
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("range", "bytes=0-1"), ("if-range", "\"other\"")],
        );
        assert_eq!(r.status, 200);

        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("if-modified-since", &lm)],
        );
        assert_eq!((r.status, r.body.len()), (304, 0));
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        );
        assert_eq!(r.status, 200);
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("if-none-match", &etag)],
        );
        assert_eq!(r.status, 304);
        // If-None-Match wins over If-Modified-Since.
        let r = get(
            &s,
            "/install/postscripts/syslog",
            &[("if-none-match", "\"x\""), ("if-modified-since", &lm)],
        );
        assert_eq!(r.status, 200);
    }

    #[test]
    fn refusals_redirects_and_methods() {
        let (_t, s) = tree();
        assert_eq!(get(&s, "/install/postscripts/inside", &[]).status, 200);
        for (target, status) in [
            ("/install/postscripts/out", 403),
            ("/install/postscripts/etc/passwd", 403),
            ("/install/postscripts/private", 403),
            ("/install/postscripts/fifo", 403),
            ("/install/private-dir/", 403),
            ("/install/postscripts/nope", 404),
            ("/install/postscripts/syslog/", 404),
            ("/install/postscripts/syslog/x", 404),
        ] {
            assert_eq!(get(&s, target, &[]).status, status, "{target}");
        }
        let r = get(&s, "/install/postscripts?x=1", &[]);
        assert_eq!(r.status, 301);
        assert_eq!(r.get_header("location"), Some("/install/postscripts/?x=1"));
        let r = s
            .handle(&req("GET", "http://evil//install", &[]))
            .expect("handled");
        assert_eq!(r.get_header("location"), Some("/install/"));
        let r = s
            .handle(&req("POST", "/install/postscripts/syslog", &[]))
            .expect("handled");
        assert_eq!(r.status, 405);
        assert_eq!(r.get_header("allow"), Some("GET, HEAD"));
        assert!(s.handle(&req("GET", "/installx/a", &[])).is_none());
        assert!(s.handle(&req("GET", "/tftpboot/a", &[])).is_none());
        let missing = StaticTree::new("install", "/nonexistent/root");
        assert_eq!(get(&missing, "/install/x", &[]).status, 404);
    }

    #[test]
    fn listings_offer_exactly_what_can_be_fetched() {
        let (_t, s) = tree();
        let r = get(&s, "/install/postscripts/", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.get_header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let html = String::from_utf8(body(r)).expect("utf8");
        let hrefs: Vec<&str> = html
            .split("<a href=\"")
            .skip(1)
            .filter_map(|x| x.split('"').next())
            .collect();
        assert_eq!(
            hrefs,
            ["../", "_xcat/", "a%20b%26c.sh", "./a:b", "inside", "syslog"],
            "{html}"
        );
        assert!(html.contains(">a b&amp;c.sh</a>"), "{html}");
        assert!(html.contains("<title>Index of /install/postscripts/</title>"));
        let root = String::from_utf8(body(get(&s, "/install/", &[]))).expect("utf8");
        assert!(!root.contains("../"), "no parent link at the root: {root}");
        assert!(root.contains("<a href=\"postscripts/\">"), "{root}");
        assert!(!root.contains("private-dir"), "{root}");
        // Every link resolves to something served.
        for h in hrefs.iter().filter(|h| **h != "../") {
            let h = h.trim_start_matches("./");
            assert_eq!(
                get(&s, &format!("/install/postscripts/{h}"), &[]).status,
                200,
                "{h}"
            );
        }
    }

    #[test]
    fn fast_path_answers_files_and_defers_listings() {
        let (_t, s) = tree();
        let inline = |target: &str| s.inline(&req("GET", target, &[]));
        assert!(
            matches!(inline("/install/postscripts/syslog"), Inline::Done(r) if r.status == 200)
        );
        assert!(matches!(inline("/install/postscripts"), Inline::Done(r) if r.status == 301));
        assert!(matches!(inline("/install/postscripts/out"), Inline::Done(r) if r.status == 403));
        assert!(matches!(inline("/install/nope"), Inline::Done(r) if r.status == 404));
        assert!(matches!(inline("/install/postscripts/"), Inline::Defer));
        assert!(matches!(inline("/tftpboot/x"), Inline::Pass));
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("x.HTML"), "text/html");
        assert_eq!(content_type("repodata/repomd.xml"), "application/xml");
        assert_eq!(content_type("vmlinuz"), "application/octet-stream");
        assert_eq!(content_type("initrd.img"), "application/octet-stream");
        assert_eq!(content_type("a.rpm"), "application/x-rpm");
    }
}
