//! NFS version 3 (RFC 1813, program 100003): argument decoding (pure, fuzzed), reply encoding,
//! and the 22 procedures over [`vfs::Fs`]. Procedures run on a thread that may block (the NFS
//! runtime's workers or the blocking pool, see `server`); each takes the peer address (for the
//! export's access rule) and the AUTH_SYS credential (for permission checks and the owner of
//! what it creates).
//!
//! Read-only exports answer every mutating procedure with NFS3ERR_ROFS once the handle checked
//! out; read-write exports create objects owned by the caller's uid/gid (no root squash, as
//! xCAT's statelite exports).

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};

use super::dircache::{Fattr, Listing};
use super::rpc::{Accept, Cred};
use super::sys;
use super::vfs::{kind, Fs, Obj};
use super::xdr::{Reader, Writer, XdrError};

pub const PROGRAM: u32 = 100_003;
pub const VERSION: u32 = 3;
/// Largest READ/WRITE transfer (advertised as rtmax/wtmax; the record cap allows one WRITE).
pub const MAX_IO: u32 = 1 << 20;
/// Largest READDIR/READDIRPLUS reply we build, whatever the client asks.
pub const MAX_DIR_REPLY: u32 = 256 * 1024;
pub const NAME_MAX: usize = 255;
pub const PATH_MAX: u32 = 1024;

/// nfsstat3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Perm = 1,
    NoEnt = 2,
    Io = 5,
    NxIo = 6,
    Acces = 13,
    Exist = 17,
    XDev = 18,
    NoDev = 19,
    NotDir = 20,
    IsDir = 21,
    Inval = 22,
    FBig = 27,
    NoSpc = 28,
    RoFs = 30,
    MLink = 31,
    NameTooLong = 63,
    NotEmpty = 66,
    DQuot = 69,
    Stale = 70,
    BadHandle = 10001,
    NotSync = 10002,
    BadCookie = 10003,
    NotSupp = 10004,
    TooSmall = 10005,
    ServerFault = 10006,
    BadType = 10007,
    Jukebox = 10008,
}

impl Status {
    pub fn from_errno(e: i32) -> Status {
        match e {
            libc::EPERM => Status::Perm,
            libc::ENOENT => Status::NoEnt,
            libc::ENXIO => Status::NxIo,
            libc::EACCES => Status::Acces,
            libc::EEXIST => Status::Exist,
            libc::EXDEV => Status::XDev,
            libc::ENODEV => Status::NoDev,
            libc::ENOTDIR => Status::NotDir,
            libc::EISDIR => Status::IsDir,
            libc::EINVAL | libc::ELOOP => Status::Inval,
            libc::EFBIG => Status::FBig,
            libc::ENOSPC => Status::NoSpc,
            libc::EROFS => Status::RoFs,
            libc::EMLINK => Status::MLink,
            libc::ENAMETOOLONG => Status::NameTooLong,
            libc::ENOTEMPTY => Status::NotEmpty,
            libc::EDQUOT => Status::DQuot,
            libc::ESTALE | libc::EBADF => Status::Stale,
            libc::EOPNOTSUPP => Status::NotSupp,
            libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE => Status::Jukebox,
            _ => Status::Io,
        }
    }

    pub fn from_io(e: &std::io::Error) -> Status {
        e.raw_os_error()
            .map(Status::from_errno)
            .unwrap_or(Status::Io)
    }

    pub fn from_nix(e: nix::errno::Errno) -> Status {
        Status::from_errno(e as i32)
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTime {
    #[default]
    Dont,
    Server,
    Client(u32, u32),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sattr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: SetTime,
    pub mtime: SetTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirOp<'a> {
    pub dir: &'a [u8],
    pub name: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    Unchecked(Sattr),
    Guarded(Sattr),
    Exclusive([u8; 8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args<'a> {
    Null,
    GetAttr(&'a [u8]),
    SetAttr {
        fh: &'a [u8],
        attr: Sattr,
        guard: Option<(u32, u32)>,
    },
    Lookup(DirOp<'a>),
    Access {
        fh: &'a [u8],
        mask: u32,
    },
    ReadLink(&'a [u8]),
    Read {
        fh: &'a [u8],
        offset: u64,
        count: u32,
    },
    Write {
        fh: &'a [u8],
        offset: u64,
        stable: u32,
        data: &'a [u8],
    },
    Create {
        at: DirOp<'a>,
        how: How,
    },
    MkDir {
        at: DirOp<'a>,
        attr: Sattr,
    },
    SymLink {
        at: DirOp<'a>,
        attr: Sattr,
        target: &'a [u8],
    },
    MkNod {
        at: DirOp<'a>,
        ftype: u32,
        attr: Sattr,
        rdev: (u32, u32),
    },
    Remove(DirOp<'a>),
    RmDir(DirOp<'a>),
    Rename {
        from: DirOp<'a>,
        to: DirOp<'a>,
    },
    Link {
        fh: &'a [u8],
        to: DirOp<'a>,
    },
    ReadDir {
        fh: &'a [u8],
        cookie: u64,
        count: u32,
    },
    ReadDirPlus {
        fh: &'a [u8],
        cookie: u64,
        dircount: u32,
        maxcount: u32,
    },
    FsStat(&'a [u8]),
    FsInfo(&'a [u8]),
    PathConf(&'a [u8]),
    Commit {
        fh: &'a [u8],
        offset: u64,
        count: u32,
    },
}

/// Decode failures that are not XDR errors: the procedure number itself.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    NoSuchProc,
    Xdr(XdrError),
}

impl From<XdrError> for ArgError {
    fn from(e: XdrError) -> ArgError {
        ArgError::Xdr(e)
    }
}

fn fh<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], XdrError> {
    r.opaque(64, "nfs_fh3")
}

/// Names are decoded up to PATH_MAX so that a long one gets NFS3ERR_NAMETOOLONG, not GARBAGE_ARGS.
fn dirop<'a>(r: &mut Reader<'a>) -> Result<DirOp<'a>, XdrError> {
    Ok(DirOp {
        dir: fh(r)?,
        name: r.opaque(PATH_MAX, "filename3")?,
    })
}

fn set_time(r: &mut Reader<'_>) -> Result<SetTime, XdrError> {
    match r.u32("time_how")? {
        0 => Ok(SetTime::Dont),
        1 => Ok(SetTime::Server),
        2 => Ok(SetTime::Client(r.u32("seconds")?, r.u32("nseconds")?)),
        value => Err(XdrError::Bad {
            what: "time_how",
            value,
        }),
    }
}

fn sattr(r: &mut Reader<'_>) -> Result<Sattr, XdrError> {
    let mut a = Sattr::default();
    if r.bool("set_mode")? {
        a.mode = Some(r.u32("mode")?);
    }
    if r.bool("set_uid")? {
        a.uid = Some(r.u32("uid")?);
    }
    if r.bool("set_gid")? {
        a.gid = Some(r.u32("gid")?);
    }
    if r.bool("set_size")? {
        a.size = Some(r.u64("size")?);
    }
    a.atime = set_time(r)?;
    a.mtime = set_time(r)?;
    Ok(a)
}

pub fn decode_args(proc_: u32, buf: &[u8]) -> Result<Args<'_>, ArgError> {
    let mut r = Reader::new(buf);
    let r = &mut r;
    Ok(match proc_ {
        0 => Args::Null,
        1 => Args::GetAttr(fh(r)?),
        2 => {
            let fh = fh(r)?;
            let attr = sattr(r)?;
            let guard = if r.bool("guard")? {
                Some((r.u32("ctime")?, r.u32("ctime")?))
            } else {
                None
            };
            Args::SetAttr { fh, attr, guard }
        }
        3 => Args::Lookup(dirop(r)?),
        4 => Args::Access {
            fh: fh(r)?,
            mask: r.u32("access")?,
        },
        5 => Args::ReadLink(fh(r)?),
        6 => Args::Read {
            fh: fh(r)?,
            offset: r.u64("offset")?,
            count: r.u32("count")?,
        },
        7 => {
            let fh = fh(r)?;
            let offset = r.u64("offset")?;
            let count = r.u32("count")?;
            let stable = r.u32("stable")?;
            if stable > 2 {
                return Err(XdrError::Bad {
                    what: "stable_how",
                    value: stable,
                }
                .into());
            }
            let data = r.opaque(MAX_IO, "data")?;
            let n = (count as usize).min(data.len());
            Args::Write {
                fh,
                offset,
                stable,
                data: &data[..n],
            }
        }
        8 => {
            let at = dirop(r)?;
            let how = match r.u32("createmode")? {
                0 => How::Unchecked(sattr(r)?),
                1 => How::Guarded(sattr(r)?),
                2 => {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(r.fixed(8, "createverf")?);
                    How::Exclusive(v)
                }
                value => {
                    return Err(XdrError::Bad {
                        what: "createmode",
                        value,
                    }
                    .into())
                }
            };
            Args::Create { at, how }
        }
        9 => Args::MkDir {
            at: dirop(r)?,
            attr: sattr(r)?,
        },
        10 => Args::SymLink {
            at: dirop(r)?,
            attr: sattr(r)?,
            target: r.opaque(PATH_MAX, "nfspath3")?,
        },
        11 => {
            let at = dirop(r)?;
            let ftype = r.u32("ftype")?;
            let (attr, rdev) = match ftype {
                3 | 4 => (sattr(r)?, (r.u32("major")?, r.u32("minor")?)),
                6 | 7 => (sattr(r)?, (0, 0)),
                _ => (Sattr::default(), (0, 0)),
            };
            Args::MkNod {
                at,
                ftype,
                attr,
                rdev,
            }
        }
        12 => Args::Remove(dirop(r)?),
        13 => Args::RmDir(dirop(r)?),
        14 => Args::Rename {
            from: dirop(r)?,
            to: dirop(r)?,
        },
        15 => Args::Link {
            fh: fh(r)?,
            to: dirop(r)?,
        },
        16 => {
            let fh = fh(r)?;
            let cookie = r.u64("cookie")?;
            r.fixed(8, "cookieverf")?;
            Args::ReadDir {
                fh,
                cookie,
                count: r.u32("count")?,
            }
        }
        17 => {
            let fh = fh(r)?;
            let cookie = r.u64("cookie")?;
            r.fixed(8, "cookieverf")?;
            Args::ReadDirPlus {
                fh,
                cookie,
                dircount: r.u32("dircount")?,
                maxcount: r.u32("maxcount")?,
            }
        }
        18 => Args::FsStat(fh(r)?),
        19 => Args::FsInfo(fh(r)?),
        20 => Args::PathConf(fh(r)?),
        21 => Args::Commit {
            fh: fh(r)?,
            offset: r.u64("offset")?,
            count: r.u32("count")?,
        },
        _ => return Err(ArgError::NoSuchProc),
    })
}

// ---------------------------------------------------------------------------------------------
// Reply pieces

fn ftype(st: &FileStat) -> u32 {
    match kind(st) {
        SFlag::S_IFREG => 1,
        SFlag::S_IFDIR => 2,
        SFlag::S_IFBLK => 3,
        SFlag::S_IFCHR => 4,
        SFlag::S_IFLNK => 5,
        SFlag::S_IFSOCK => 6,
        SFlag::S_IFIFO => 7,
        _ => 1,
    }
}

/// fattr3. The fsid is the export's device, so a client sees one filesystem per export.
pub fn fattr(w: &mut Writer, st: &FileStat) {
    w.buf.extend_from_slice(&fattr_bytes(st));
}

/// fattr3 as its 84 bytes on the wire.
pub fn fattr_bytes(st: &FileStat) -> Fattr {
    let mut b = [0u8; 84];
    let mut at = 0;
    let mut put = |v: &[u8]| {
        b[at..at + v.len()].copy_from_slice(v);
        at += v.len();
    };
    put(&ftype(st).to_be_bytes());
    put(&(st.st_mode & 0o7777).to_be_bytes());
    put(&(st.st_nlink as u32).to_be_bytes());
    put(&st.st_uid.to_be_bytes());
    put(&st.st_gid.to_be_bytes());
    put(&(st.st_size as u64).to_be_bytes());
    put(&(st.st_blocks as u64).saturating_mul(512).to_be_bytes());
    put(&libc::major(st.st_rdev).to_be_bytes());
    put(&libc::minor(st.st_rdev).to_be_bytes());
    put(&st.st_dev.to_be_bytes());
    put(&st.st_ino.to_be_bytes());
    put(&(st.st_atime as u32).to_be_bytes());
    put(&(st.st_atime_nsec as u32).to_be_bytes());
    put(&(st.st_mtime as u32).to_be_bytes());
    put(&(st.st_mtime_nsec as u32).to_be_bytes());
    put(&(st.st_ctime as u32).to_be_bytes());
    put(&(st.st_ctime_nsec as u32).to_be_bytes());
    b
}

fn post_op(w: &mut Writer, st: Option<&FileStat>) {
    match st {
        Some(st) => {
            w.bool(true);
            fattr(w, st);
        }
        None => {
            w.bool(false);
        }
    }
}

fn pre_op(w: &mut Writer, st: &FileStat) {
    w.bool(true)
        .u64(st.st_size as u64)
        .u32(st.st_mtime as u32)
        .u32(st.st_mtime_nsec as u32)
        .u32(st.st_ctime as u32)
        .u32(st.st_ctime_nsec as u32);
}

fn fstat(fd: &OwnedFd) -> Option<FileStat> {
    nix::sys::stat::fstat(fd).ok()
}

/// wcc_data: before (what resolve saw) and after (a fresh fstat).
fn wcc(w: &mut Writer, before: &FileStat, fd: &OwnedFd) {
    pre_op(w, before);
    post_op(w, fstat(fd).as_ref());
}

/// How many "absent" words (post_op_attr = FALSE, wcc_data = FALSE FALSE) follow the status
/// in a failure reply of each procedure.
fn fail_words(proc_: u32) -> usize {
    match proc_ {
        1 => 0,
        3..=6 | 16..=20 => 1,
        2 | 7..=13 | 21 => 2,
        15 => 3,
        14 => 4,
        _ => 0,
    }
}

fn fail(w: &mut Writer, proc_: u32, st: Status) {
    w.u32(st as u32);
    for _ in 0..fail_words(proc_) {
        w.u32(0);
    }
}

// ---------------------------------------------------------------------------------------------
// Permission checks (the daemon runs as root, so it checks on the caller's behalf)

const R: u32 = 4;
const W: u32 = 2;
const X: u32 = 1;

fn may(cred: &Cred, st: &FileStat, want: u32) -> bool {
    let mode = st.st_mode;
    if cred.uid == 0 {
        // root may do anything but execute a file nobody may execute.
        return want & X == 0 || kind(st) == SFlag::S_IFDIR || mode & 0o111 != 0;
    }
    let bits = if cred.uid == st.st_uid {
        mode >> 6
    } else if cred.in_group(st.st_gid) {
        mode >> 3
    } else {
        mode
    } & 7;
    bits & want == want
}

fn is_owner(cred: &Cred, st: &FileStat) -> bool {
    cred.uid == 0 || cred.uid == st.st_uid
}

/// A name the client may create or remove: one path component, not `.` or `..`.
fn check_name(name: &[u8]) -> Result<(), Status> {
    if name.len() > NAME_MAX {
        return Err(Status::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Status::Inval);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Procedures

/// Per-call context.
pub struct Ctx<'a> {
    pub fs: &'a Fs,
    pub peer: IpAddr,
    pub cred: &'a Cred,
}

/// Runs one call; appends the result (status and body) to `out`, which already holds the
/// accepted-reply header. `Err` asks the caller for an RPC-level error reply instead.
pub fn dispatch(c: &Ctx<'_>, proc_: u32, args: &[u8], out: &mut Writer) -> Result<(), Accept> {
    let a = match decode_args(proc_, args) {
        Ok(a) => a,
        Err(ArgError::NoSuchProc) => return Err(Accept::ProcUnavail),
        Err(ArgError::Xdr(_)) => return Err(Accept::GarbageArgs),
    };
    let mark = out.len();
    if let Err(st) = run(c, a, out) {
        out.buf.truncate(mark);
        fail(out, proc_, st);
    }
    Ok(())
}

fn rw(o: &Obj) -> Result<(), Status> {
    if o.export.read_only() {
        Err(Status::RoFs)
    } else {
        Ok(())
    }
}

/// Resolves a directory handle for a change in it: must be a directory, writable export,
/// and the caller needs write+search permission.
fn dir_for_change(c: &Ctx<'_>, fh: &[u8]) -> Result<Obj, Status> {
    let d = c.fs.resolve(fh, c.peer)?;
    if !d.is_dir() {
        return Err(Status::NotDir);
    }
    rw(&d)?;
    if !may(c.cred, &d.st, W | X) {
        return Err(Status::Acces);
    }
    Ok(d)
}

fn run(c: &Ctx<'_>, a: Args<'_>, w: &mut Writer) -> Result<(), Status> {
    match a {
        Args::Null => Ok(()),
        Args::GetAttr(fh) => {
            let o = c.fs.resolve(fh, c.peer)?;
            w.u32(0);
            fattr(w, &o.st);
            Ok(())
        }
        Args::SetAttr { fh, attr, guard } => setattr(c, fh, attr, guard, w),
        Args::Lookup(at) => lookup(c, at, w),
        Args::Access { fh, mask } => {
            let o = c.fs.resolve(fh, c.peer)?;
            let mut ok = 0;
            let is_dir = o.is_dir();
            if may(c.cred, &o.st, R) {
                ok |= 0x01; // READ
            }
            if is_dir && may(c.cred, &o.st, X) {
                ok |= 0x02; // LOOKUP
            }
            if !o.export.read_only() && may(c.cred, &o.st, W) {
                ok |= 0x04 | 0x08 | if is_dir { 0x10 } else { 0 }; // MODIFY EXTEND DELETE
            }
            if !is_dir && may(c.cred, &o.st, X) {
                ok |= 0x20; // EXECUTE
            }
            w.u32(0);
            post_op(w, Some(&o.st));
            w.u32(ok & mask);
            Ok(())
        }
        Args::ReadLink(fh) => {
            let o = c.fs.resolve(fh, c.peer)?;
            if kind(&o.st) != SFlag::S_IFLNK {
                return Err(Status::Inval);
            }
            let t = nix::fcntl::readlinkat(&o.fd, "").map_err(Status::from_nix)?;
            w.u32(0);
            post_op(w, Some(&o.st));
            w.opaque(std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()));
            Ok(())
        }
        Args::Read { fh, offset, count } => read(c, fh, offset, count, w),
        Args::Write {
            fh,
            offset,
            stable,
            data,
        } => write(c, fh, offset, stable, data, w),
        Args::Create { at, how } => create(c, at, how, w),
        Args::MkDir { at, attr } => make(c, at, &attr, Make::Dir, w),
        Args::SymLink { at, attr, target } => make(c, at, &attr, Make::Link(target), w),
        Args::MkNod {
            at,
            ftype,
            attr,
            rdev,
        } => {
            let d = c.fs.resolve(at.dir, c.peer)?;
            rw(&d)?;
            let k = match ftype {
                3 => SFlag::S_IFBLK,
                4 => SFlag::S_IFCHR,
                6 => SFlag::S_IFSOCK,
                7 => SFlag::S_IFIFO,
                _ => return Err(Status::BadType),
            };
            drop(d);
            make(c, at, &attr, Make::Node(k, rdev), w)
        }
        Args::Remove(at) | Args::RmDir(at) => {
            let is_rmdir = matches!(a, Args::RmDir(_));
            let d = dir_for_change(c, at.dir)?;
            check_name(at.name)?;
            let flag = if is_rmdir {
                nix::unistd::UnlinkatFlags::RemoveDir
            } else {
                nix::unistd::UnlinkatFlags::NoRemoveDir
            };
            nix::unistd::unlinkat(&d.fd, at.name, flag).map_err(|e| match e {
                // Linux says EISDIR for unlink of a directory; RFC 1813 wants the same.
                nix::errno::Errno::EEXIST => Status::NotEmpty,
                e => Status::from_nix(e),
            })?;
            w.u32(0);
            wcc(w, &d.st, &d.fd);
            Ok(())
        }
        Args::Rename { from, to } => {
            let fd_ = dir_for_change(c, from.dir)?;
            let td = dir_for_change(c, to.dir)?;
            if fd_.export.id != td.export.id {
                return Err(Status::XDev);
            }
            check_name(from.name)?;
            check_name(to.name)?;
            nix::fcntl::renameat(&fd_.fd, from.name, &td.fd, to.name).map_err(Status::from_nix)?;
            w.u32(0);
            wcc(w, &fd_.st, &fd_.fd);
            wcc(w, &td.st, &td.fd);
            Ok(())
        }
        Args::Link { fh, to } => {
            let f = c.fs.resolve(fh, c.peer)?;
            let d = c.fs.resolve(to.dir, c.peer)?;
            rw(&f)?;
            rw(&d)?;
            if !d.is_dir() {
                return Err(Status::NotDir);
            }
            if f.export.id != d.export.id {
                return Err(Status::XDev);
            }
            if !may(c.cred, &d.st, W | X) {
                return Err(Status::Acces);
            }
            check_name(to.name)?;
            if f.is_dir() {
                return Err(Status::IsDir);
            }
            nix::unistd::linkat(
                &f.fd,
                "",
                &d.fd,
                to.name,
                nix::fcntl::AtFlags::AT_EMPTY_PATH,
            )
            .map_err(Status::from_nix)?;
            w.u32(0);
            post_op(w, fstat(&f.fd).as_ref());
            wcc(w, &d.st, &d.fd);
            Ok(())
        }
        Args::ReadDir { fh, cookie, count } => readdir(c, fh, cookie, count, None, w),
        Args::ReadDirPlus {
            fh,
            cookie,
            dircount,
            maxcount,
        } => readdir(c, fh, cookie, maxcount, Some(dircount), w),
        Args::FsStat(fh) => {
            let o = c.fs.resolve(fh, c.peer)?;
            let s = nix::sys::statvfs::fstatvfs(&o.fd).map_err(Status::from_nix)?;
            let fr = s.fragment_size() as u64;
            w.u32(0);
            post_op(w, Some(&o.st));
            w.u64(s.blocks() as u64 * fr)
                .u64(s.blocks_free() as u64 * fr)
                .u64(s.blocks_available() as u64 * fr)
                .u64(s.files() as u64)
                .u64(s.files_free() as u64)
                .u64(s.files_available() as u64)
                .u32(0);
            Ok(())
        }
        Args::FsInfo(fh) => {
            let o = c.fs.resolve(fh, c.peer)?;
            w.u32(0);
            post_op(w, Some(&o.st));
            w.u32(MAX_IO) // rtmax
                .u32(MAX_IO) // rtpref
                .u32(4096) // rtmult
                .u32(MAX_IO) // wtmax
                .u32(MAX_IO) // wtpref
                .u32(4096) // wtmult
                .u32(64 * 1024) // dtpref
                .u64(i64::MAX as u64) // maxfilesize
                .u32(0)
                .u32(1) // time_delta: 1 ns
                .u32(0x1 | 0x2 | 0x8 | 0x10); // LINK SYMLINK HOMOGENEOUS CANSETTIME
            Ok(())
        }
        Args::PathConf(fh) => {
            let o = c.fs.resolve(fh, c.peer)?;
            w.u32(0);
            post_op(w, Some(&o.st));
            w.u32(65_000)
                .u32(NAME_MAX as u32)
                .bool(true)
                .bool(true)
                .bool(false)
                .bool(true);
            Ok(())
        }
        Args::Commit { fh, .. } => {
            let o = c.fs.resolve(fh, c.peer)?;
            rw(&o)?;
            let f = c.fs.open_data(&o, false)?;
            f.sync_all().map_err(|e| Status::from_io(&e))?;
            w.u32(0);
            wcc(w, &o.st, &o.fd);
            w.fixed(&c.fs.write_verf);
            Ok(())
        }
    }
}

fn lookup(c: &Ctx<'_>, at: DirOp<'_>, w: &mut Writer) -> Result<(), Status> {
    let d = c.fs.resolve(at.dir, c.peer)?;
    if !d.is_dir() {
        return Err(Status::NotDir);
    }
    if at.name.len() > NAME_MAX {
        return Err(Status::NameTooLong);
    }
    if at.name.is_empty() || at.name.contains(&b'/') || at.name.contains(&0) {
        return Err(Status::NoEnt);
    }
    if !may(c.cred, &d.st, X) {
        return Err(Status::Acces);
    }
    // `..` of the export root is the root itself: a client cannot climb out of its export.
    let (fh, st) = if at.name == b"." || (at.name == b".." && d.export.is_root(&d.st)) {
        (c.fs.handle_of(&d.export, &d.fd, b"")?, d.st)
    } else if at.name == b".." {
        let p = nix::fcntl::openat(
            &d.fd,
            "..",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Status::from_nix)?;
        let st = nix::sys::stat::fstat(&p).map_err(Status::from_nix)?;
        (c.fs.handle_of(&d.export, &p, b"")?, st)
    } else {
        let st = nix::sys::stat::fstatat(&d.fd, at.name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(Status::from_nix)?;
        (c.fs.handle_of(&d.export, &d.fd, at.name)?, st)
    };
    w.u32(0).opaque(&fh);
    post_op(w, Some(&st));
    post_op(w, Some(&d.st));
    Ok(())
}

fn read(c: &Ctx<'_>, fh: &[u8], offset: u64, count: u32, w: &mut Writer) -> Result<(), Status> {
    let o = c.fs.resolve(fh, c.peer)?;
    if !o.is_dir() && !may(c.cred, &o.st, R) && !is_owner(c.cred, &o.st) {
        return Err(Status::Acces);
    }
    let f = c.fs.open_data(&o, false)?;
    let count = count.min(MAX_IO) as usize;
    let size = o.st.st_size as u64;
    w.u32(0);
    post_op(w, Some(&o.st));
    let len_at = w.len();
    w.u32(0).u32(0); // count, eof: filled in below
    let got = w
        .opaque_append(count, |buf| {
            sys::pread_append(f.as_fd(), buf, count, offset).map(|_| ())
        })
        .map_err(|e| Status::from_io(&e))?;
    let eof = offset.saturating_add(got as u64) >= size;
    w.buf[len_at..len_at + 4].copy_from_slice(&(got as u32).to_be_bytes());
    w.buf[len_at + 4..len_at + 8].copy_from_slice(&(eof as u32).to_be_bytes());
    Ok(())
}

fn write(
    c: &Ctx<'_>,
    fh: &[u8],
    offset: u64,
    stable: u32,
    data: &[u8],
    w: &mut Writer,
) -> Result<(), Status> {
    let o = c.fs.resolve(fh, c.peer)?;
    rw(&o)?;
    if !may(c.cred, &o.st, W) && !is_owner(c.cred, &o.st) {
        return Err(Status::Acces);
    }
    let f = c.fs.open_data(&o, true)?;
    f.write_all_at(data, offset)
        .map_err(|e| Status::from_io(&e))?;
    match stable {
        0 => {}
        1 => f.sync_data().map_err(|e| Status::from_io(&e))?,
        _ => f.sync_all().map_err(|e| Status::from_io(&e))?,
    }
    w.u32(0);
    wcc(w, &o.st, &o.fd);
    w.u32(data.len() as u32).u32(stable).fixed(&c.fs.write_verf);
    Ok(())
}

/// Applies the settable attributes to an object (open with O_PATH, or any descriptor).
fn apply_sattr(fd: &OwnedFd, st: &FileStat, a: &Sattr) -> Result<(), Status> {
    let is_link = kind(st) == SFlag::S_IFLNK;
    if let Some(size) = a.size {
        match kind(st) {
            SFlag::S_IFREG => {}
            SFlag::S_IFDIR => return Err(Status::IsDir),
            _ => return Err(Status::Inval),
        }
        let p = sys::proc_path(fd.as_fd());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&p)
            .map_err(|e| Status::from_io(&e))?;
        f.set_len(size).map_err(|e| Status::from_io(&e))?;
    }
    if a.uid.is_some() || a.gid.is_some() {
        nix::unistd::fchownat(
            fd,
            "",
            a.uid.map(nix::unistd::Uid::from_raw),
            a.gid.map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(Status::from_nix)?;
    }
    if let (Some(mode), false) = (a.mode, is_link) {
        sys::chmod_fd(fd.as_fd(), mode & 0o7777).map_err(|e| Status::from_io(&e))?;
    }
    // Times go through /proc/self/fd, which would follow a symlink: links keep theirs.
    if (a.atime != SetTime::Dont || a.mtime != SetTime::Dont) && !is_link {
        let ts = |t: SetTime| match t {
            SetTime::Dont => (0, libc::UTIME_OMIT),
            SetTime::Server => (0, libc::UTIME_NOW),
            SetTime::Client(s, ns) => (s as i64, ns as i64),
        };
        sys::set_times(fd.as_fd(), ts(a.atime), ts(a.mtime)).map_err(|e| Status::from_io(&e))?;
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

fn setattr(
    c: &Ctx<'_>,
    fh: &[u8],
    a: Sattr,
    guard: Option<(u32, u32)>,
    w: &mut Writer,
) -> Result<(), Status> {
    let o = c.fs.resolve(fh, c.peer)?;
    rw(&o)?;
    if let Some((s, ns)) = guard {
        if (o.st.st_ctime as u32, o.st.st_ctime_nsec as u32) != (s, ns) {
            return Err(Status::NotSync);
        }
    }
    let owner = is_owner(c.cred, &o.st);
    if a.size.is_some() && !may(c.cred, &o.st, W) && !owner {
        return Err(Status::Acces);
    }
    if (a.mode.is_some() || a.gid.is_some()) && !owner {
        return Err(Status::Perm);
    }
    if a.uid.is_some_and(|u| u != o.st.st_uid) && c.cred.uid != 0 {
        return Err(Status::Perm);
    }
    let times_client =
        matches!(a.atime, SetTime::Client(..)) || matches!(a.mtime, SetTime::Client(..));
    let times_now = a.atime == SetTime::Server || a.mtime == SetTime::Server;
    if (times_client && !owner) || (times_now && !owner && !may(c.cred, &o.st, W)) {
        return Err(Status::Perm);
    }
    apply_sattr(&o.fd, &o.st, &a)?;
    w.u32(0);
    wcc(w, &o.st, &o.fd);
    Ok(())
}

/// The reply tail shared by CREATE, MKDIR, SYMLINK and MKNOD.
fn created(c: &Ctx<'_>, d: &Obj, name: &[u8], w: &mut Writer) -> Result<(), Status> {
    let fh = c.fs.handle_of(&d.export, &d.fd, name).ok();
    let st = nix::sys::stat::fstatat(&d.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    w.u32(0);
    match &fh {
        Some(h) => {
            w.bool(true).opaque(h);
        }
        None => {
            w.bool(false);
        }
    }
    post_op(w, st.as_ref());
    wcc(w, &d.st, &d.fd);
    Ok(())
}

/// Owner of a new object: what the client asked for, else the caller.
fn owner_attrs(c: &Ctx<'_>, a: &Sattr) -> Sattr {
    Sattr {
        uid: Some(a.uid.unwrap_or(c.cred.uid)),
        gid: Some(a.gid.unwrap_or(c.cred.gid)),
        ..Sattr::default()
    }
}

fn create(c: &Ctx<'_>, at: DirOp<'_>, how: How, w: &mut Writer) -> Result<(), Status> {
    let d = dir_for_change(c, at.dir)?;
    check_name(at.name)?;
    let (attr, excl, verf) = match &how {
        How::Unchecked(a) => (a.clone(), false, None),
        How::Guarded(a) => (a.clone(), true, None),
        How::Exclusive(v) => (Sattr::default(), true, Some(*v)),
    };
    let mode = attr.mode.unwrap_or(0o644) & 0o7777;
    let flags = OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY;
    let (fd, fresh) =
        match nix::fcntl::openat(&d.fd, at.name, flags, Mode::from_bits_truncate(mode)) {
            Ok(fd) => (fd, true),
            Err(nix::errno::Errno::EEXIST) if verf.is_some() => {
                // A retransmitted EXCLUSIVE create finds its own file: the verifier is in the times.
                let v = verf.unwrap_or_default();
                let st = nix::sys::stat::fstatat(
                    &d.fd,
                    at.name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(Status::from_nix)?;
                let (a, m) = verf_times(&v);
                if st.st_atime as u32 == a && st.st_mtime as u32 == m {
                    return created(c, &d, at.name, w);
                }
                return Err(Status::Exist);
            }
            Err(nix::errno::Errno::EEXIST) if !excl => {
                // UNCHECKED on an existing object: keep it (O_PATH: never open a device or FIFO).
                let fd = nix::fcntl::openat(
                    &d.fd,
                    at.name,
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Status::from_nix)?;
                (fd, false)
            }
            Err(e) => return Err(Status::from_nix(e)),
        };
    let st = nix::sys::stat::fstat(&fd).map_err(Status::from_nix)?;
    // A new file is the caller's, with exactly the mode asked (openat's is filtered by the umask);
    // an existing one keeps its owner and mode.
    if fresh {
        let mut own = owner_attrs(c, &attr);
        own.mode = Some(mode);
        apply_sattr(&fd, &st, &own)?;
    }
    if let Some(v) = verf {
        let (a, m) = verf_times(&v);
        sys::set_times(fd.as_fd(), (a as i64, 0), (m as i64, 0))
            .map_err(|e| Status::from_io(&e))?;
    } else {
        let rest = Sattr {
            size: attr.size,
            atime: attr.atime,
            mtime: attr.mtime,
            ..Sattr::default()
        };
        apply_sattr(&fd, &st, &rest)?;
    }
    drop(fd);
    created(c, &d, at.name, w)
}

fn verf_times(v: &[u8; 8]) -> (u32, u32) {
    (
        u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
        u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
    )
}

enum Make<'a> {
    Dir,
    Link(&'a [u8]),
    Node(SFlag, (u32, u32)),
}

fn make(
    c: &Ctx<'_>,
    at: DirOp<'_>,
    attr: &Sattr,
    what: Make<'_>,
    w: &mut Writer,
) -> Result<(), Status> {
    let d = dir_for_change(c, at.dir)?;
    check_name(at.name)?;
    let mode = Mode::from_bits_truncate(attr.mode.unwrap_or(0o755) & 0o7777);
    match what {
        Make::Dir => nix::sys::stat::mkdirat(&d.fd, at.name, mode).map_err(Status::from_nix)?,
        Make::Link(target) => {
            if target.is_empty() || target.contains(&0) {
                return Err(Status::Inval);
            }
            nix::unistd::symlinkat(target, &d.fd, at.name).map_err(Status::from_nix)?
        }
        Make::Node(k, (ma, mi)) => {
            nix::sys::stat::mknodat(&d.fd, at.name, k, mode, libc::makedev(ma, mi))
                .map_err(Status::from_nix)?
        }
    }
    // Own it and set the exact mode (mkdirat's is filtered by the umask).
    let fd = nix::fcntl::openat(
        &d.fd,
        at.name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Status::from_nix)?;
    let st = nix::sys::stat::fstat(&fd).map_err(Status::from_nix)?;
    let mut own = owner_attrs(c, attr);
    own.mode = attr.mode.or(Some(mode.bits()));
    own.atime = attr.atime;
    own.mtime = attr.mtime;
    apply_sattr(&fd, &st, &own)?;
    drop(fd);
    created(c, &d, at.name, w)
}

/// READDIR (`plus` = None) and READDIRPLUS (`plus` = Some(dircount)). Cookies are the
/// filesystem's own directory positions (ext4: name hashes), so they survive restarts and
/// concurrent changes; the cookie verifier is always zero. Names, inode numbers, cookies and
/// handles come from the directory's listing when one can be kept (read whole once per change
/// of the directory, see `dircache`), else straight from getdents64 at the cookie. READDIRPLUS
/// attributes are read during the call, except files' in a read-only export's kept listing,
/// reused until an inotify event in the directory voids them (see `dircache`).
fn readdir(
    c: &Ctx<'_>,
    fh: &[u8],
    cookie: u64,
    count: u32,
    plus: Option<u32>,
    w: &mut Writer,
) -> Result<(), Status> {
    let d = c.fs.resolve(fh, c.peer)?;
    if !d.is_dir() {
        return Err(Status::NotDir);
    }
    if !may(c.cred, &d.st, R) {
        return Err(Status::Acces);
    }
    let mut fill = DirFill {
        budget: count.min(MAX_DIR_REPLY) as usize,
        dir_budget: plus.map(|n| n.min(MAX_DIR_REPLY) as usize),
        // status + dir attrs + verifier + list end + eof
        used: 4 + 88 + 8 + 8,
        used_names: 0,
        n: 0,
    };
    w.u32(0);
    post_op(w, Some(&d.st));
    w.fixed(&[0u8; 8]);
    let listing = c.fs.listing(&d, fh)?;
    let eof = match listing.as_ref().and_then(|l| Some((l, l.start(cookie)?))) {
        Some((l, at)) => from_listing(c, &d, l, at, &mut fill, w)?,
        None => from_disk(c, &d, cookie, &mut fill, w)?,
    };
    w.bool(false).bool(eof);
    Ok(())
}

/// A READDIR/READDIRPLUS reply being filled, against the client's two limits.
struct DirFill {
    /// count (READDIR) or maxcount (READDIRPLUS): the whole reply.
    budget: usize,
    /// dircount (READDIRPLUS): the entries without their attributes and handles.
    dir_budget: Option<usize>,
    used: usize,
    used_names: usize,
    n: usize,
}

/// An entry's READDIRPLUS part: attributes (encoded) and handle, each possibly absent.
type Plus<'a> = Option<(Option<&'a Fattr>, Option<&'a [u8]>)>;

impl DirFill {
    /// Appends one entry (`plus`: READDIRPLUS's part) if it fits: `Ok(false)` when the reply is
    /// full, `TooSmall` when not even the first entry fits.
    fn push(
        &mut self,
        w: &mut Writer,
        ino: u64,
        name: &[u8],
        next: u64,
        plus: Plus<'_>,
    ) -> Result<bool, Status> {
        use crate::nfs::xdr::padded;
        let base = 4 + 8 + 4 + padded(name.len()) + 8;
        let extra = match plus {
            None => 0,
            Some((st, h)) => 4 + st.map_or(0, |_| 84) + 4 + h.map_or(0, |h| 4 + padded(h.len())),
        };
        if self.used + base + extra > self.budget
            || self.dir_budget.is_some_and(|b| self.used_names + base > b)
        {
            if self.n == 0 {
                return Err(Status::TooSmall);
            }
            return Ok(false);
        }
        let mark = w.len();
        w.bool(true).u64(ino).opaque(name).u64(next);
        if let Some((a, h)) = plus {
            match a {
                Some(a) => {
                    w.bool(true);
                    w.buf.extend_from_slice(a);
                }
                None => {
                    w.bool(false);
                }
            }
            match h {
                Some(h) => {
                    w.bool(true).opaque(h);
                }
                None => {
                    w.bool(false);
                }
            }
        }
        debug_assert_eq!(w.len() - mark, base + extra, "entry size");
        self.used += base + extra;
        self.used_names += base;
        self.n += 1;
        Ok(true)
    }
}

/// An entry's attributes for READDIRPLUS: the directory's own for `.` (and for `..` at the
/// export root, which is the root), none for `..` elsewhere (clients look it up when they need
/// it), else a fresh `fstatat` (none when the entry vanished meanwhile).
fn entry_attrs(d: &Obj, name: &[u8]) -> Option<Fattr> {
    match name {
        b"." => Some(fattr_bytes(&d.st)),
        b".." if d.export.is_root(&d.st) => Some(fattr_bytes(&d.st)),
        b".." => None,
        _ => nix::sys::stat::fstatat(&d.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| fattr_bytes(&st)),
    }
}

/// Entries from the kept listing, from index `at`; returns eof. In a read-only export the
/// attributes of non-directory entries are kept in the listing and reused while no inotify
/// event voided them and they are younger than the listing's `attr_ttl` (see `dircache`).
fn from_listing(
    c: &Ctx<'_>,
    d: &Obj,
    l: &Listing,
    at: usize,
    fill: &mut DirFill,
    w: &mut Writer,
) -> Result<bool, Status> {
    if fill.dir_budget.is_none() {
        for e in &l.entries()[at..] {
            if !fill.push(w, e.ino, l.name(e), e.next, None)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let keep = d.export.read_only();
    let dirs = c.fs.dirs();
    if keep {
        // Every change the kernel reported so far voids what it touched, before anything kept
        // is used; the epoch is read after that and before any attribute is read.
        dirs.drain();
    }
    let epoch = l.epoch();
    let ttl = l.attr_ttl();
    let now = std::time::Instant::now();
    let mut kept = l.attrs();
    let (mut read, mut reused) = (0u64, 0u64);
    let mut eof = true;
    for (i, e) in l.entries().iter().enumerate().skip(at) {
        let name = l.name(e);
        let (a, from_kept) = match (name, kept[i]) {
            (b"." | b"..", _) => (entry_attrs(d, name), false),
            (_, Some((t, ep, a))) if keep && ep == epoch && now.duration_since(t) < ttl => {
                (Some(a), true)
            }
            _ => {
                read += 1;
                let a = entry_attrs(d, name);
                if keep {
                    // A directory's own attributes change with its contents, which this
                    // directory's watch does not see: never kept.
                    kept[i] = a.filter(|a| !fattr_is_dir(a)).map(|a| (now, epoch, a));
                }
                (a, false)
            }
        };
        if !fill.push(w, e.ino, name, e.next, Some((a.as_ref(), l.fh(e))))? {
            eof = false;
            break;
        }
        // Counted when sent (an entry that did not fit is sent again by the next slice).
        reused += u64::from(from_kept);
    }
    drop(kept);
    dirs.count(read, reused);
    Ok(eof)
}

/// Whether encoded attributes are a directory's (fattr3 starts with ftype3; NF3DIR = 2).
fn fattr_is_dir(a: &Fattr) -> bool {
    a[..4] == 2u32.to_be_bytes()
}

/// Entries read from the directory at `cookie` (no listing kept, or the cookie is not one of
/// its positions); returns eof.
fn from_disk(
    c: &Ctx<'_>,
    d: &Obj,
    cookie: u64,
    fill: &mut DirFill,
    w: &mut Writer,
) -> Result<bool, Status> {
    let dir = nix::fcntl::openat(
        &d.fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Status::from_nix)?;
    let plus = fill.dir_budget.is_some();
    let mut pos = cookie;
    let mut buf = Vec::with_capacity(32 * 1024);
    loop {
        let batch =
            sys::read_dir(dir.as_fd(), pos, &mut buf).map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => Status::BadCookie,
                _ => Status::from_io(&e),
            })?;
        if batch.is_empty() {
            return Ok(true);
        }
        for e in batch {
            let (a, h) = if plus {
                let h = match e.name.as_slice() {
                    b"." => c.fs.handle_of(&d.export, &d.fd, b"").ok(),
                    b".." if d.export.is_root(&d.st) => c.fs.handle_of(&d.export, &d.fd, b"").ok(),
                    b".." => None,
                    name => c.fs.handle_of(&d.export, &d.fd, name).ok(),
                };
                (entry_attrs(d, &e.name), h)
            } else {
                (None, None)
            };
            let p = plus.then_some((a.as_ref(), h.as_deref()));
            if !fill.push(w, e.ino, &e.name, e.next, p)? {
                return Ok(false);
            }
            pos = e.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_procedure_shape() {
        let mut w = Writer::new();
        w.opaque(&[1; 30]).opaque(b"name");
        assert!(matches!(
            decode_args(3, &w.buf),
            Ok(Args::Lookup(DirOp { name: b"name", .. }))
        ));
        let mut w = Writer::new();
        w.opaque(&[1; 30]).u64(5).u32(10).u32(2).opaque(b"hello");
        match decode_args(7, &w.buf) {
            Ok(Args::Write {
                data,
                offset,
                stable,
                ..
            }) => {
                assert_eq!((data, offset, stable), (&b"hello"[..], 5, 2))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode_args(22, &[]), Err(ArgError::NoSuchProc));
        assert!(matches!(decode_args(1, &[0, 0]), Err(ArgError::Xdr(_))));
        // A handle longer than 64 bytes is garbage, not an allocation.
        let mut w = Writer::new();
        w.u32(0x7fff_ffff);
        assert!(matches!(
            decode_args(1, &w.buf),
            Err(ArgError::Xdr(XdrError::TooLong { .. }))
        ));
        // sattr3 with every field set, then a guard.
        let mut w = Writer::new();
        w.opaque(&[1; 30]);
        w.u32(1)
            .u32(0o600)
            .u32(1)
            .u32(5)
            .u32(1)
            .u32(6)
            .u32(1)
            .u64(0)
            .u32(2)
            .u32(1)
            .u32(2)
            .u32(1);
        w.u32(1).u32(9).u32(9);
        match decode_args(2, &w.buf) {
            Ok(Args::SetAttr { attr, guard, .. }) => {
                assert_eq!(attr.mode, Some(0o600));
                assert_eq!(attr.atime, SetTime::Client(1, 2));
                assert_eq!(attr.mtime, SetTime::Server);
                assert_eq!(guard, Some((9, 9)));
            }
            other => panic!("{other:?}"),
        }
    }

    /// One READDIRPLUS entry as a client sees it: name, cookie, fileid, attributes, handle.
    type Seen = (Vec<u8>, u64, u64, Option<Vec<u8>>, Option<Vec<u8>>);

    /// Lists a directory with READDIRPLUS slices of `maxcount` bytes from cookie 0 to eof.
    fn list_all(c: &Ctx<'_>, fh: &[u8], maxcount: u32) -> (Vec<Seen>, usize) {
        let mut out = Vec::new();
        let mut cookie = 0u64;
        let mut calls = 0;
        loop {
            calls += 1;
            let mut a = Writer::new();
            a.opaque(fh)
                .u64(cookie)
                .fixed(&[0; 8])
                .u32(maxcount)
                .u32(maxcount);
            let mut w = Writer::new();
            dispatch(c, 17, &a.buf, &mut w).unwrap();
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.u32("status").unwrap(), 0, "READDIRPLUS failed");
            assert!(r.bool("dir attrs").unwrap());
            r.fixed(84, "fattr").unwrap();
            r.fixed(8, "verf").unwrap();
            let mut n = 0;
            while r.bool("follows").unwrap() {
                let ino = r.u64("fileid").unwrap();
                let name = r.opaque(255, "name").unwrap().to_vec();
                cookie = r.u64("cookie").unwrap();
                let attrs = r
                    .bool("attrs")
                    .unwrap()
                    .then(|| r.fixed(84, "fattr").unwrap().to_vec());
                let h = r
                    .bool("fh")
                    .unwrap()
                    .then(|| r.opaque(64, "fh").unwrap().to_vec());
                out.push((name, cookie, ino, attrs, h));
                n += 1;
            }
            assert!(n > 0, "a slice without entries");
            if r.bool("eof").unwrap() {
                assert_eq!(r.remaining(), 0);
                return (out, calls);
            }
            assert!(w.len() <= maxcount as usize, "reply larger than maxcount");
        }
    }

    fn size_of(attrs: &[u8]) -> u64 {
        u64::from_be_bytes(attrs[20..28].try_into().unwrap())
    }

    /// An export of a fresh directory. open_by_handle_at needs root: without it the test fails
    /// (tests/run.sh runs as root), it never passes by skipping.
    fn export_dir(access: crate::nfs::exports::Access) -> (tempfile::TempDir, Fs) {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (open_by_handle_at); run it through tests/run.sh"
        );
        let d = tempfile::tempdir().unwrap();
        let fs = Fs::new(crate::nfs::fh::HandleKey::new([5; 32]), [0; 8]);
        let spec = crate::nfs::exports::ExportSpec {
            path: d.path().to_str().unwrap().to_string(),
            access,
            what: "test".into(),
        };
        let plan = crate::nfs::exports::Plan {
            exports: vec![spec],
            ..Default::default()
        };
        assert!(fs.apply(plan).is_empty(), "export not opened");
        (d, fs)
    }

    #[test]
    fn readdirplus_from_the_kept_listing_matches_the_directory() {
        let (d, fs) = export_dir(crate::nfs::exports::Access::ReadOnly);
        let dir = d.path().join("many");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..300 {
            std::fs::write(dir.join(format!("file{i:05}")), vec![b'x'; i]).unwrap();
        }
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("file00001", dir.join("link")).unwrap();
        let root = Cred {
            uid: 0,
            gid: 0,
            gids: vec![],
        };
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let c = Ctx {
            fs: &fs,
            peer,
            cred: &root,
        };
        let t = fs.table();
        let export = t.by_id.values().next().unwrap().clone();
        let fh = fs.mount_handle(&export, "many").unwrap();
        // Just changed: read from the disk at each cookie, nothing kept.
        let (fresh, calls) = list_all(&c, &fh, 4096);
        assert!(
            calls > 5,
            "the listing should take several slices ({calls})"
        );
        assert_eq!(fs.listings().0, 0, "a directory that just changed was kept");
        let mut names: Vec<_> = fresh.iter().map(|e| e.0.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 300 + 4, "every entry exactly once");
        // Settled: the first call reads and keeps the listing, the rest are served from it, and
        // the client sees the same entries, cookies, handles and attributes.
        std::thread::sleep(crate::nfs::dircache::SETTLE + std::time::Duration::from_millis(100));
        let (kept, _) = list_all(&c, &fh, 4096);
        assert_eq!(fs.listings().0, 1, "the settled directory was not kept");
        let strip = |v: &[Seen]| -> Vec<Seen> {
            v.iter()
                .map(|(n, c, i, a, h)| {
                    // `.`'s attributes are the directory's, whose atime a listing may update.
                    let a = if n == b"." { None } else { a.clone() };
                    (n.clone(), *c, *i, a, h.clone())
                })
                .collect()
        };
        assert_eq!(strip(&kept), strip(&fresh));
        // Every handle handed out resolves to its entry.
        for (name, _, ino, _, h) in &kept {
            if let Some(h) = h {
                let o = fs.resolve(h, peer).unwrap();
                assert_eq!(o.st.st_ino, *ino, "{}", String::from_utf8_lossy(name));
            } else {
                assert_eq!(
                    name, b"..",
                    "only `..` below the root goes without a handle"
                );
            }
        }
        // A change of the directory is seen at once: the kept listing no longer matches.
        std::fs::remove_file(dir.join("file00007")).unwrap();
        std::fs::write(dir.join("new"), b"n").unwrap();
        let (after, _) = list_all(&c, &fh, 4096);
        let has = |v: &[Seen], n: &[u8]| v.iter().any(|e| e.0 == n);
        assert!(has(&after, b"new") && !has(&after, b"file00007"));
        assert_eq!(after.len(), kept.len());
        // Attributes kept in a read-only export follow a write at once (inotify).
        std::thread::sleep(crate::nfs::dircache::SETTLE + std::time::Duration::from_millis(100));
        let size = |v: &[Seen]| {
            v.iter()
                .find(|e| e.0 == b"file00003")
                .and_then(|e| e.3.as_deref().map(size_of))
        };
        assert_eq!(size(&list_all(&c, &fh, 4096).0), Some(3));
        assert_eq!(size(&list_all(&c, &fh, 4096).0), Some(3));
        std::fs::write(dir.join("file00003"), b"0123456789").unwrap();
        assert_eq!(size(&list_all(&c, &fh, 4096).0), Some(10));
        // A new export table forgets every listing.
        fs.apply(crate::nfs::exports::Plan::default());
        assert_eq!(fs.listings(), (0, 0));
    }

    /// The attributes of entry `name` in a listing.
    fn attrs_of(v: &[Seen], name: &str) -> Vec<u8> {
        v.iter()
            .find(|e| e.0 == name.as_bytes())
            .and_then(|e| e.3.clone())
            .unwrap_or_else(|| panic!("{name}: not listed, or without attributes"))
    }

    fn word_at(a: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(a[at..at + 4].try_into().unwrap())
    }

    /// A read-only export with `img/` of 50 files `fNN` (NN bytes each) and a subdirectory
    /// `sub/`, settled; the handle of `img`.
    fn settled_image(fs: &Fs, root: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
        let dir = root.join("img");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..50 {
            std::fs::write(dir.join(format!("f{i:02}")), vec![b'x'; i]).unwrap();
        }
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::thread::sleep(crate::nfs::dircache::SETTLE + std::time::Duration::from_millis(100));
        let t = fs.table();
        let export = t.by_id.values().next().unwrap().clone();
        (dir, fs.mount_handle(&export, "img").unwrap())
    }

    /// A reply size that holds all of `img/` in one READDIRPLUS (so no entry is read at the end
    /// of one slice and served at the start of the next, which would muddle the counts).
    const ONE_SLICE: u32 = 65536;

    const ROOT: Cred = Cred {
        uid: 0,
        gid: 0,
        gids: vec![],
    };

    #[test]
    fn readdirplus_attributes_are_kept_until_the_kernel_reports_a_change() {
        let (d, fs) = export_dir(crate::nfs::exports::Access::ReadOnly);
        let (dir, fh) = settled_image(&fs, d.path());
        let c = Ctx {
            fs: &fs,
            peer: "10.0.0.9".parse().unwrap(),
            cred: &ROOT,
        };
        let stats = || fs.dirs().attr_stats();
        let s0 = stats();
        let (first, _) = list_all(&c, &fh, ONE_SLICE);
        let s1 = stats();
        assert_eq!((s1.read - s0.read, s1.reused - s0.reused), (51, 0));
        assert_eq!(fs.dirs().kernel_watches().unwrap(), 1, "no watch on img/");
        // Nothing changed, later than the 1 s of an unwatched listing: every file's attributes
        // are reused, only the subdirectory's are read again.
        std::thread::sleep(crate::nfs::dircache::ATTR_TTL + std::time::Duration::from_millis(100));
        let (again, _) = list_all(&c, &fh, ONE_SLICE);
        let s2 = stats();
        assert_eq!((s2.read - s1.read, s2.reused - s1.reused), (1, 50));
        let no_dot =
            |v: &[Seen]| -> Vec<Seen> { v.iter().filter(|e| e.0 != b".").cloned().collect() };
        assert_eq!(no_dot(&again), no_dot(&first));
        // Each change is in the very next listing, without waiting.
        let f = |n: &str| dir.join(n);
        std::fs::set_permissions(
            f("f01"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_eq!(word_at(&attrs_of(&v, "f01"), 4), 0o600, "chmod not seen");
        {
            use std::io::Write;
            let mut o = std::fs::OpenOptions::new()
                .append(true)
                .open(f("f02"))
                .unwrap();
            o.write_all(b"appended").unwrap();
        }
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_eq!(size_of(&attrs_of(&v, "f02")), 2 + 8, "write not seen");
        std::fs::OpenOptions::new()
            .write(true)
            .open(f("f03"))
            .unwrap()
            .set_len(0)
            .unwrap();
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_eq!(size_of(&attrs_of(&v, "f03")), 0, "truncate not seen");
        let t = nix::sys::time::TimeSpec::new(1_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &f("f04"),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_eq!(
            word_at(&attrs_of(&v, "f04"), 68),
            1_000_000,
            "touch not seen"
        );
        // A subdirectory's attributes follow its own contents.
        let sub_mtime = word_at(&attrs_of(&v, "sub"), 68);
        std::fs::write(f("sub/inside"), b"").unwrap();
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_ne!(word_at(&attrs_of(&v, "sub"), 68), sub_mtime, "sub/ stale");
        // Unchanged files are still reused after all that.
        let s3 = stats();
        list_all(&c, &fh, ONE_SLICE);
        assert_eq!(stats().read - s3.read, 1, "only sub/ read again");
        // Names: rename, create, delete.
        std::fs::rename(f("f05"), f("g05")).unwrap();
        std::fs::write(f("new"), b"new").unwrap();
        std::fs::remove_file(f("f06")).unwrap();
        let v = list_all(&c, &fh, ONE_SLICE).0;
        let has = |n: &[u8]| v.iter().any(|e| e.0 == n);
        assert!(has(b"g05") && has(b"new") && !has(b"f05") && !has(b"f06"));
        assert_eq!(size_of(&attrs_of(&v, "new")), 3);
        // A new export table drops the watch with the listings.
        fs.apply(crate::nfs::exports::Plan::default());
        assert_eq!(fs.dirs().kernel_watches().unwrap(), 0);
    }

    #[test]
    fn readdirplus_attributes_without_a_watch_are_kept_one_second() {
        let (d, fs) = export_dir(crate::nfs::exports::Access::ReadOnly);
        // As when the kernel refuses a watch (ENOSPC) or inotify is unavailable.
        fs.dirs().set_max_watches(0);
        let (dir, fh) = settled_image(&fs, d.path());
        let c = Ctx {
            fs: &fs,
            peer: "10.0.0.9".parse().unwrap(),
            cred: &ROOT,
        };
        let stats = || fs.dirs().attr_stats();
        list_all(&c, &fh, ONE_SLICE);
        assert_eq!(fs.listings().0, 1);
        assert_eq!(fs.dirs().kernel_watches().unwrap(), 0);
        let s1 = stats();
        let t0 = std::time::Instant::now();
        list_all(&c, &fh, ONE_SLICE);
        let s2 = stats();
        if t0.elapsed() < std::time::Duration::from_millis(500) {
            assert_eq!(s2.reused - s1.reused, 50, "not reused within the second");
        }
        std::fs::write(dir.join("f07"), b"0123456789abc").unwrap();
        std::thread::sleep(crate::nfs::dircache::ATTR_TTL + std::time::Duration::from_millis(50));
        let v = list_all(&c, &fh, ONE_SLICE).0;
        assert_eq!(stats().read - s2.read, 51, "kept longer than ATTR_TTL");
        assert_eq!(size_of(&attrs_of(&v, "f07")), 13);
    }

    #[test]
    fn readdirplus_attributes_of_writable_exports_are_always_fresh() {
        let (d, fs) = export_dir(crate::nfs::exports::Access::ReadWrite {
            node: "n1".into(),
            addr: Some("10.0.0.9".parse().unwrap()),
        });
        std::fs::write(d.path().join("f"), b"1").unwrap();
        std::thread::sleep(crate::nfs::dircache::SETTLE + std::time::Duration::from_millis(100));
        let root = Cred {
            uid: 0,
            gid: 0,
            gids: vec![],
        };
        let c = Ctx {
            fs: &fs,
            peer: "10.0.0.9".parse().unwrap(),
            cred: &root,
        };
        let t = fs.table();
        let fh = t.by_id.values().next().unwrap().root_fh.clone();
        let size = |v: &[Seen]| {
            v.iter()
                .find(|e| e.0 == b"f")
                .and_then(|e| e.3.as_deref().map(size_of))
        };
        assert_eq!(size(&list_all(&c, &fh, 8192).0), Some(1));
        assert_eq!(fs.listings().0, 1);
        std::fs::write(d.path().join("f"), b"12345").unwrap();
        assert_eq!(
            size(&list_all(&c, &fh, 8192).0),
            Some(5),
            "stale attributes"
        );
        // Another address gets nothing, listing kept or not.
        let other = Ctx {
            peer: "10.0.0.10".parse().unwrap(),
            ..c
        };
        let mut a = Writer::new();
        a.opaque(&fh).u64(0).fixed(&[0; 8]).u32(8192).u32(8192);
        let mut w = Writer::new();
        dispatch(&other, 17, &a.buf, &mut w).unwrap();
        assert_eq!(
            Reader::new(&w.buf).u32("status").unwrap(),
            Status::Acces as u32
        );
    }

    #[test]
    fn failure_bodies_have_the_right_shape() {
        let mut w = Writer::new();
        fail(&mut w, 14, Status::RoFs);
        assert_eq!(w.len(), 4 + 16);
        let mut w = Writer::new();
        fail(&mut w, 1, Status::Stale);
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn permissions() {
        let mut st = nix::sys::stat::stat("/").unwrap();
        st.st_mode = libc::S_IFREG | 0o640;
        st.st_uid = 10;
        st.st_gid = 20;
        let user = Cred {
            uid: 10,
            gid: 1,
            gids: vec![],
        };
        let group = Cred {
            uid: 11,
            gid: 20,
            gids: vec![],
        };
        let other = Cred {
            uid: 12,
            gid: 1,
            gids: vec![],
        };
        assert!(may(&user, &st, R | W));
        assert!(may(&group, &st, R) && !may(&group, &st, W));
        assert!(!may(&other, &st, R));
        assert!(!may(
            &Cred {
                uid: 0,
                gid: 0,
                gids: vec![]
            },
            &st,
            X
        ));
        assert_eq!(check_name(b".."), Err(Status::Inval));
        assert_eq!(check_name(&[b'a'; 256]), Err(Status::NameTooLong));
    }
}
