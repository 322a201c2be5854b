//! Portmapper version 2 (RFC 1833, program 100000): enough for clients that do not name the NFS
//! and MOUNT ports to find them. Answered on the NFS port itself and, when it is free, on port
//! 111 (TCP and UDP). Registrations (SET/UNSET) are refused, CALLIT is not offered, and DUMP is
//! answered on TCP only (a UDP DUMP reply is larger than its request: no reflection amplifier).

use super::rpc::Accept;
use super::xdr::{Reader, Writer};

pub const PROGRAM: u32 = 100_000;
pub const VERSION: u32 = 2;
pub const PORT: u16 = 111;
const IPPROTO_TCP: u32 = 6;

#[derive(Debug, PartialEq, Eq)]
pub enum Args {
    Null,
    Set,
    Unset,
    GetPort { prog: u32, vers: u32, prot: u32 },
    Dump,
}

pub fn decode_args(proc_: u32, buf: &[u8]) -> Result<Args, Accept> {
    let mut r = Reader::new(buf);
    let mut mapping = || -> Result<(u32, u32, u32, u32), Accept> {
        let g = |r: &mut Reader<'_>| r.u32("mapping").map_err(|_| Accept::GarbageArgs);
        Ok((g(&mut r)?, g(&mut r)?, g(&mut r)?, g(&mut r)?))
    };
    Ok(match proc_ {
        0 => Args::Null,
        1 => {
            mapping()?;
            Args::Set
        }
        2 => {
            mapping()?;
            Args::Unset
        }
        3 => {
            let (prog, vers, prot, _) = mapping()?;
            Args::GetPort { prog, vers, prot }
        }
        4 => Args::Dump,
        _ => return Err(Accept::ProcUnavail),
    })
}

/// What we serve, as (program, version, port) over TCP.
fn mappings(nfs_port: u16, pmap_port: Option<u16>) -> Vec<(u32, u32, u16)> {
    let mut v = vec![
        (super::nfs3::PROGRAM, super::nfs3::VERSION, nfs_port),
        (super::mount::PROGRAM, super::mount::VERSION, nfs_port),
        (PROGRAM, VERSION, nfs_port),
    ];
    if let Some(p) = pmap_port {
        v.push((PROGRAM, VERSION, p));
    }
    v
}

pub fn dispatch(
    nfs_port: u16,
    pmap_port: Option<u16>,
    udp: bool,
    proc_: u32,
    args: &[u8],
    w: &mut Writer,
) -> Result<(), Accept> {
    match decode_args(proc_, args)? {
        Args::Null => {}
        Args::Set | Args::Unset => {
            w.bool(false);
        }
        Args::GetPort { prog, vers, prot } => {
            let port = mappings(nfs_port, pmap_port)
                .into_iter()
                .find(|(p, v, _)| *p == prog && *v == vers && prot == IPPROTO_TCP)
                .map(|(_, _, port)| port)
                .unwrap_or(0);
            w.u32(port as u32);
        }
        Args::Dump if udp => return Err(Accept::ProcUnavail),
        Args::Dump => {
            for (p, v, port) in mappings(nfs_port, pmap_port) {
                w.bool(true).u32(p).u32(v).u32(IPPROTO_TCP).u32(port as u32);
            }
            w.bool(false);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getport_answers_nfs_and_mount_on_tcp_only() {
        let ask = |prog: u32, vers: u32, prot: u32| {
            let mut a = Writer::new();
            a.u32(prog).u32(vers).u32(prot).u32(0);
            let mut w = Writer::new();
            dispatch(2049, Some(111), false, 3, &a.buf, &mut w).unwrap();
            u32::from_be_bytes([w.buf[0], w.buf[1], w.buf[2], w.buf[3]])
        };
        assert_eq!(ask(100003, 3, 6), 2049);
        assert_eq!(ask(100005, 3, 6), 2049);
        assert_eq!(ask(100005, 3, 17), 0);
        assert_eq!(ask(100003, 4, 6), 0);
        assert_eq!(ask(100021, 4, 6), 0);
        let mut w = Writer::new();
        assert_eq!(
            dispatch(2049, None, true, 4, &[], &mut w),
            Err(Accept::ProcUnavail)
        );
        assert_eq!(
            dispatch(2049, None, false, 5, &[], &mut w),
            Err(Accept::ProcUnavail)
        );
        assert_eq!(
            dispatch(2049, None, false, 3, &[0, 0], &mut w),
            Err(Accept::GarbageArgs)
        );
    }
}
