//! MOUNT version 3 (RFC 1813 appendix I, program 100005): hands out an export's root handle to a
//! client the export allows: an export root or a directory inside it (see
//! `exports::Plan::find_mount`); never a directory above a node's export.

use std::net::IpAddr;

use tracing::info;

use super::rpc::Accept;
use super::vfs::Fs;
use super::xdr::{Reader, Writer};

pub const PROGRAM: u32 = 100_005;
pub const VERSION: u32 = 3;
const MNTPATHLEN: u32 = 1024;

const MNT3_OK: u32 = 0;
const MNT3ERR_NOENT: u32 = 2;
const MNT3ERR_ACCES: u32 = 13;
const MNT3ERR_NOTDIR: u32 = 20;
const MNT3ERR_NAMETOOLONG: u32 = 63;

#[derive(Debug, PartialEq, Eq)]
pub enum Args<'a> {
    Null,
    Mnt(&'a [u8]),
    Dump,
    Umnt(&'a [u8]),
    UmntAll,
    Export,
}

/// Pure decoding. Paths up to 4 KiB decode (longer ones get NAMETOOLONG, not GARBAGE_ARGS).
pub fn decode_args(proc_: u32, buf: &[u8]) -> Result<Args<'_>, Accept> {
    let mut r = Reader::new(buf);
    let mut path = || {
        r.opaque(4 * MNTPATHLEN, "dirpath")
            .map_err(|_| Accept::GarbageArgs)
    };
    Ok(match proc_ {
        0 => Args::Null,
        1 => Args::Mnt(path()?),
        2 => Args::Dump,
        3 => Args::Umnt(path()?),
        4 => Args::UmntAll,
        5 => Args::Export,
        _ => return Err(Accept::ProcUnavail),
    })
}

pub fn dispatch(
    fs: &Fs,
    peer: IpAddr,
    proc_: u32,
    args: &[u8],
    w: &mut Writer,
) -> Result<(), Accept> {
    match decode_args(proc_, args)? {
        Args::Null | Args::Umnt(_) | Args::UmntAll => {}
        Args::Dump => {
            w.bool(false);
        }
        Args::Mnt(path) => {
            let shown = String::from_utf8_lossy(path);
            if path.len() > MNTPATHLEN as usize {
                w.u32(MNT3ERR_NAMETOOLONG);
                return Ok(());
            }
            let Ok(p) = std::str::from_utf8(path) else {
                w.u32(MNT3ERR_NOENT);
                return Ok(());
            };
            match fs.table().mount(p) {
                Ok((e, rest)) if e.spec.allows(peer) => match fs.mount_handle(&e, &rest) {
                    Ok(fh) => {
                        info!("nfs: {peer} mounted {shown}");
                        crate::timeline::record_with(|| {
                            crate::timeline::Event::now(
                                crate::timeline::Who::Ip(peer),
                                crate::timeline::Kind::NfsMount,
                                shown.to_string(),
                            )
                            .peer(peer)
                        });
                        w.u32(MNT3_OK).opaque(&fh);
                        w.u32(1).u32(super::rpc::AUTH_SYS);
                    }
                    Err(st) => {
                        info!("nfs: refused mount of {shown} by {peer} ({st:?})");
                        w.u32(match st {
                            super::nfs3::Status::NotDir => MNT3ERR_NOTDIR,
                            super::nfs3::Status::Acces => MNT3ERR_ACCES,
                            _ => MNT3ERR_NOENT,
                        });
                    }
                },
                Ok((e, _)) => {
                    info!(
                        "nfs: refused mount of {shown} by {peer} (exported to {} only)",
                        e.spec.what
                    );
                    w.u32(MNT3ERR_ACCES);
                }
                Err(true) => {
                    info!("nfs: refused mount of {shown} by {peer} (it holds other nodes' state)");
                    w.u32(MNT3ERR_ACCES);
                }
                Err(false) => {
                    info!("nfs: refused mount of {shown} by {peer} (not exported)");
                    w.u32(MNT3ERR_NOENT);
                }
            }
        }
        Args::Export => {
            for e in fs.table().by_id.values() {
                w.bool(true).opaque(e.spec.path.as_bytes());
                match &e.spec.access {
                    super::exports::Access::ReadWrite { addr: Some(a), .. } => {
                        w.bool(true).opaque(a.to_string().as_bytes()).bool(false);
                    }
                    super::exports::Access::ReadWrite { addr: None, .. } => {
                        w.bool(true).opaque(b"-").bool(false);
                    }
                    super::exports::Access::ReadOnly => {
                        w.bool(true).opaque(b"*").bool(false);
                    }
                }
            }
            w.bool(false);
        }
    }
    Ok(())
}
