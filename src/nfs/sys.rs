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
    getdents(dir, buf)?;
    Ok(dirents(buf)
        .map(|(ino, next, name)| DirEntry {
            ino,
            next,
            name: name.to_vec(),
        })
        .collect())
}

/// One `getdents64` call: the next batch of records of `dir` from its current position, into
/// `buf` (cleared first; its capacity, at least 4 KiB, is the batch size). Returns whether
/// anything was read (false: the end). Parse the batch with [`dirents`].
pub fn getdents(dir: BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<bool> {
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
    Ok(n > 0)
}

/// The `struct linux_dirent64` records (u64 ino, i64 off, u16 reclen, u8 type, name\0) of a
/// [`getdents`] batch, as (ino, next, name), borrowing the names from the batch. A malformed
/// record ends the iteration.
pub fn dirents(b: &[u8]) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let mut p = 0usize;
    std::iter::from_fn(move || {
        if p + 19 > b.len() {
            return None;
        }
        let ino = u64::from_ne_bytes(b[p..p + 8].try_into().unwrap_or([0; 8]));
        let off = u64::from_ne_bytes(b[p + 8..p + 16].try_into().unwrap_or([0; 8]));
        let reclen = u16::from_ne_bytes([b[p + 16], b[p + 17]]) as usize;
        if reclen < 20 || p + reclen > b.len() {
            return None;
        }
        let name = &b[p + 19..p + reclen];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        p += reclen;
        Some((ino, off, &name[..end]))
    })
}

/// Reads up to `n` bytes of `fd` at `offset`, appending them to `buf` straight into its spare
/// capacity (nothing is zero-filled first: READ puts up to 1 MiB of file data in its reply this
/// way). Stops early at the end of the file; returns how many bytes were appended.
pub fn pread_append(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    n: usize,
    offset: u64,
) -> io::Result<usize> {
    buf.reserve(n);
    let start = buf.len();
    let mut got = 0usize;
    while got < n {
        // The spare capacity starts after what was read so far (set_len below moves it on).
        let spare = &mut buf.spare_capacity_mut()[..n - got];
        let at = offset.saturating_add(got as u64).min(i64::MAX as u64);
        // SAFETY: the kernel writes at most `spare.len()` bytes into memory the Vec owns and has
        // not initialised; nothing reads it before set_len below covers exactly what was written.
        let r = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                spare.as_mut_ptr().cast::<libc::c_void>(),
                spare.len(),
                at as libc::off_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            break;
        }
        got += r as usize;
        // SAFETY: the first `start + got` bytes are initialised (the old contents, then what
        // pread wrote), and `got <= n <= capacity - start`.
        unsafe { buf.set_len(start + got) };
    }
    Ok(got)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn pread_append_reads_what_there_is() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        // Exactly the capacity asked for, a read past the end, a read ending at the end, and a
        // start beyond it: always the file's bytes, appended after what the buffer held.
        for (cap, n, off) in [
            (0, 10, 0u64),
            (0, 1 << 20, 0),
            (5, 1 << 20, 99_990),
            (0, 100_000, 0),
            (0, 10, 200_000),
        ] {
            let mut buf = Vec::with_capacity(cap);
            buf.extend_from_slice(b"head");
            let got = pread_append(f.as_fd(), &mut buf, n, off).unwrap();
            let o = (off as usize).min(data.len());
            let want = &data[o..(o + n).min(data.len())];
            assert_eq!(got, want.len(), "n={n} off={off}");
            assert_eq!(&buf[..4], b"head");
            assert_eq!(&buf[4..], want);
        }
    }
}
