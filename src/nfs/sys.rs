//! The few Linux system calls the NFS service needs that `nix` does not wrap: kernel file
//! handles (`name_to_handle_at`, `open_by_handle_at`) and raw directory reads (`getdents64`, for
//! the `d_off` cookies NFS READDIR hands out). All `unsafe` of the NFS service is here.
//!
//! Kernel handles identify an inode by what the filesystem puts in them (ext4: inode number and
//! generation), so they survive a restart of the daemon without any path table, and
//! `open_by_handle_at` needs CAP_DAC_READ_SEARCH — the daemon runs as root.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Largest kernel handle we accept: our NFS handle must stay ≤ 64 bytes with our header and MAC
/// around it (see `fh`). ext4 and xfs handles are 8–20 bytes.
pub const MAX_KERNEL_HANDLE: usize = 36;

/// `struct file_handle` with room for the handle bytes (the C struct ends in a flexible array).
#[repr(C)]
struct RawHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; 128],
}

/// A kernel file handle and the mount it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelHandle {
    pub htype: i32,
    pub bytes: Vec<u8>,
    pub mount_id: i32,
}

/// The handle of `name` in `dir` (or of `dir` itself when `name` is empty). Symlinks are not
/// followed: the handle names the link.
pub fn name_to_handle(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<KernelHandle> {
    let cname =
        std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut h = RawHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: libc::c_int = 0;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `h` is a valid, writable file_handle with 128 bytes of room as handle_bytes says;
    // `cname` is NUL-terminated and outlives the call; `mount_id` is a valid int.
    let rc = unsafe {
        libc::name_to_handle_at(
            dir.as_raw_fd(),
            cname.as_ptr(),
            (&mut h as *mut RawHandle).cast::<libc::file_handle>(),
            &mut mount_id,
            flags,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let n = h.handle_bytes as usize;
    if n > MAX_KERNEL_HANDLE {
        return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
    }
    Ok(KernelHandle {
        htype: h.handle_type,
        bytes: h.f_handle[..n].to_vec(),
        mount_id,
    })
}

/// Opens the inode a kernel handle names, on the filesystem of `mount_fd`. `flags` are open(2)
/// flags; O_CLOEXEC is always added.
pub fn open_by_handle(
    mount_fd: BorrowedFd<'_>,
    htype: i32,
    bytes: &[u8],
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    if bytes.len() > MAX_KERNEL_HANDLE {
        return Err(io::Error::from_raw_os_error(libc::ESTALE));
    }
    let mut h = RawHandle {
        handle_bytes: bytes.len() as libc::c_uint,
        handle_type: htype,
        f_handle: [0; 128],
    };
    h.f_handle[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `h` is a valid file_handle whose handle_bytes matches the bytes copied in.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&mut h as *mut RawHandle).cast::<libc::file_handle>(),
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One directory entry as getdents64 returns it. `next` is the position after this entry (what
/// NFS hands out as the entry's cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub next: u64,
    pub name: Vec<u8>,
}

/// Reads entries of the open directory `dir` starting at position `from` (0 = the beginning, or
/// a `next` value returned before), into `buf` (its capacity is the batch size). An empty result
/// means the end.
pub fn read_dir(dir: BorrowedFd<'_>, from: u64, buf: &mut Vec<u8>) -> io::Result<Vec<DirEntry>> {
    // SAFETY: plain lseek on a descriptor we borrow.
    if unsafe { libc::lseek(dir.as_raw_fd(), from as libc::off_t, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.clear();
    let cap = buf.capacity().max(4096);
    buf.reserve(cap);
    // SAFETY: the kernel writes at most `cap` bytes into the Vec's spare capacity.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            cap as libc::c_uint,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel initialised the first n bytes.
    unsafe { buf.set_len(n as usize) };
    Ok(parse_dirents(buf))
}

/// Parses `struct linux_dirent64` records (u64 ino, i64 off, u16 reclen, u8 type, name\0).
fn parse_dirents(b: &[u8]) -> Vec<DirEntry> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p + 19 <= b.len() {
        let ino = u64::from_ne_bytes(b[p..p + 8].try_into().unwrap_or([0; 8]));
        let off = u64::from_ne_bytes(b[p + 8..p + 16].try_into().unwrap_or([0; 8]));
        let reclen = u16::from_ne_bytes([b[p + 16], b[p + 17]]) as usize;
        if reclen < 20 || p + reclen > b.len() {
            break;
        }
        let name = &b[p + 19..p + reclen];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        out.push(DirEntry {
            ino,
            next: off,
            name: name[..end].to_vec(),
        });
        p += reclen;
    }
    out
}

/// `/proc/self/fd/N`: reaches the inode behind an O_PATH descriptor for the calls that take no
/// descriptor of that kind (chmod, utimensat, reopening for write).
pub fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// chmod of the object behind `fd` (O_PATH descriptors refuse fchmod).
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(proc_path(fd), std::fs::Permissions::from_mode(mode))
}

/// Sets access and modification times: (seconds, nanoseconds) each, nanoseconds may be
/// UTIME_NOW or UTIME_OMIT.
pub fn set_times(fd: BorrowedFd<'_>, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let path = std::ffi::CString::new(proc_path(fd))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0 as libc::time_t,
            tv_nsec: atime.1 as _,
        },
        libc::timespec {
            tv_sec: mtime.0 as libc::time_t,
            tv_nsec: mtime.1 as _,
        },
    ];
    // SAFETY: `path` is NUL-terminated, `ts` holds the two timespecs utimensat reads.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), ts.as_ptr(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
