//! A minimal NFSv3 reader over TCP (RFC 1813, RFC 5531 ONC RPC, AUTH_UNIX): MOUNT, LOOKUP one
//! component at a time (caching directories, as a node's kernel does), GETATTR and READ — what a
//! statelite node does to its NFS root while it boots.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

const MOUNT_PROG: u32 = 100005;
const NFS_PROG: u32 = 100003;

pub struct Rpc {
    s: TcpStream,
    xid: u32,
    pub calls: u64,
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_opaque(b: &mut Vec<u8>, v: &[u8]) {
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
    b.resize(b.len() + (4 - v.len() % 4) % 4, 0);
}

struct Rd<'a>(&'a [u8], usize);

impl Rd<'_> {
    fn u32(&mut self) -> Result<u32, String> {
        let v = self.0.get(self.1..self.1 + 4).ok_or("short reply")?;
        self.1 += 4;
        Ok(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        if self.1 + n > self.0.len() {
            return Err("short reply".into());
        }
        self.1 += n;
        Ok(())
    }
    fn opaque(&mut self) -> Result<&[u8], String> {
        let n = self.u32()? as usize;
        let v = self.0.get(self.1..self.1 + n).ok_or("short reply")?;
        self.1 += n + (4 - n % 4) % 4;
        Ok(v)
    }
    /// post_op_attr: a bool, then fattr3 (84 bytes) when set.
    fn post_op_attr(&mut self) -> Result<Option<u64>, String> {
        if self.u32()? == 0 {
            return Ok(None);
        }
        let at = self.1;
        self.skip(84)?;
        let size = &self.0[at + 20..at + 28];
        Ok(Some(u64::from_be_bytes(
            size.try_into().map_err(|_| "attr")?,
        )))
    }
}

impl Rpc {
    /// A connection from `local` on a reserved port (as a kernel client), to `server`.
    pub fn connect(local: Ipv4Addr, server: SocketAddrV4) -> Result<Rpc, String> {
        let mut last = String::new();
        for port in (600..1024u16).rev() {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
                .map_err(|e| e.to_string())?;
            let _ = s.set_reuse_address(true);
            if let Err(e) = s.bind(&SocketAddr::V4(SocketAddrV4::new(local, port)).into()) {
                last = e.to_string();
                continue;
            }
            match s.connect_timeout(&SocketAddr::V4(server).into(), Duration::from_secs(15)) {
                Ok(()) => {
                    s.set_read_timeout(Some(Duration::from_secs(30)))
                        .map_err(|e| e.to_string())?;
                    let _ = s.set_tcp_nodelay(true);
                    return Ok(Rpc {
                        s: s.into(),
                        xid: 1,
                        calls: 0,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = e.to_string(),
                Err(e) => return Err(format!("connect {server}: {e}")),
            }
        }
        Err(format!("no reserved port free on {local}: {last}"))
    }

    /// One call; returns the results part of an accepted, successful reply.
    fn call(&mut self, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Result<Vec<u8>, String> {
        self.xid += 1;
        self.calls += 1;
        let mut b = Vec::with_capacity(128 + args.len());
        put_u32(&mut b, 0); // record mark, patched below
        put_u32(&mut b, self.xid);
        put_u32(&mut b, 0); // CALL
        put_u32(&mut b, 2);
        put_u32(&mut b, prog);
        put_u32(&mut b, vers);
        put_u32(&mut b, proc_);
        // AUTH_UNIX: stamp, machine name, uid 0, gid 0, no groups
        let mut cred = Vec::new();
        put_u32(&mut cred, 0);
        put_opaque(&mut cred, b"node");
        put_u32(&mut cred, 0);
        put_u32(&mut cred, 0);
        put_u32(&mut cred, 0);
        put_u32(&mut b, 1);
        put_opaque(&mut b, &cred);
        put_u32(&mut b, 0);
        put_u32(&mut b, 0);
        b.extend_from_slice(args);
        let len = (b.len() - 4) as u32 | 0x8000_0000;
        b[..4].copy_from_slice(&len.to_be_bytes());
        self.s.write_all(&b).map_err(|e| format!("send: {e}"))?;
        // fragments until the last
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 4];
            self.s
                .read_exact(&mut h)
                .map_err(|e| format!("recv: {e}"))?;
            let m = u32::from_be_bytes(h);
            let n = (m & 0x7fff_ffff) as usize;
            let at = msg.len();
            msg.resize(at + n, 0);
            self.s
                .read_exact(&mut msg[at..])
                .map_err(|e| format!("recv: {e}"))?;
            if m & 0x8000_0000 != 0 {
                break;
            }
        }
        let mut r = Rd(&msg, 0);
        let xid = r.u32()?;
        if xid != self.xid || r.u32()? != 1 {
            return Err("reply does not match the call".into());
        }
        if r.u32()? != 0 {
            return Err(format!("call denied (auth error {})", r.u32().unwrap_or(0)));
        }
        r.u32()?; // verifier flavour
        r.opaque()?;
        let st = r.u32()?;
        if st != 0 {
            return Err(format!("call not accepted: {st}"));
        }
        Ok(msg[r.1..].to_vec())
    }

    pub fn mount(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let mut a = Vec::new();
        put_opaque(&mut a, path.as_bytes());
        let res = self.call(MOUNT_PROG, 3, 1, &a)?;
        let mut r = Rd(&res, 0);
        let st = r.u32()?;
        if st != 0 {
            return Err(format!("MOUNT {path}: status {st}"));
        }
        Ok(r.opaque()?.to_vec())
    }
}

pub struct Client {
    pub rpc: Rpc,
    root: Vec<u8>,
    dirs: HashMap<String, Vec<u8>>,
    pub bytes: u64,
}

impl Client {
    pub fn new(rpc: Rpc, root: Vec<u8>) -> Client {
        Client {
            rpc,
            root,
            dirs: HashMap::new(),
            bytes: 0,
        }
    }

    fn lookup(&mut self, dir: &[u8], name: &str) -> Result<Vec<u8>, String> {
        let mut a = Vec::new();
        put_opaque(&mut a, dir);
        put_opaque(&mut a, name.as_bytes());
        let res = self.rpc.call(NFS_PROG, 3, 3, &a)?;
        let mut r = Rd(&res, 0);
        let st = r.u32()?;
        if st != 0 {
            return Err(format!("LOOKUP {name}: NFS3ERR {st}"));
        }
        Ok(r.opaque()?.to_vec())
    }

    /// The handle of `path` (relative to the export), looking up each directory once.
    pub fn resolve(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let mut fh = self.root.clone();
        let mut sofar = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, p) in parts.iter().enumerate() {
            sofar.push('/');
            sofar.push_str(p);
            let last = i + 1 == parts.len();
            if !last {
                if let Some(h) = self.dirs.get(&sofar) {
                    fh = h.clone();
                    continue;
                }
            }
            fh = self.lookup(&fh, p)?;
            if !last {
                self.dirs.insert(sofar.clone(), fh.clone());
            }
        }
        Ok(fh)
    }

    /// GETATTR, then READ in `rsize` pieces to the end; returns the bytes read.
    pub fn read_all(&mut self, fh: &[u8], rsize: u32) -> Result<u64, String> {
        let mut a = Vec::new();
        put_opaque(&mut a, fh);
        let res = self.rpc.call(NFS_PROG, 3, 1, &a)?;
        let mut r = Rd(&res, 0);
        if r.u32()? != 0 {
            return Err("GETATTR failed".into());
        }
        let mut off = 0u64;
        loop {
            let mut a = Vec::new();
            put_opaque(&mut a, fh);
            a.extend_from_slice(&off.to_be_bytes());
            put_u32(&mut a, rsize);
            let res = self.rpc.call(NFS_PROG, 3, 6, &a)?;
            let mut r = Rd(&res, 0);
            let st = r.u32()?;
            if st != 0 {
                return Err(format!("READ: NFS3ERR {st}"));
            }
            r.post_op_attr()?;
            let count = r.u32()?;
            let eof = r.u32()? != 0;
            let data = r.opaque()?;
            if data.len() != count as usize {
                return Err("READ: count and data differ".into());
            }
            off += u64::from(count);
            if eof || count == 0 {
                break;
            }
        }
        self.bytes += off;
        Ok(off)
    }
}
