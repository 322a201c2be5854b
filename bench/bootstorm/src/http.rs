//! HTTP/1.1 GETs on one keep-alive connection from the node's own address, as iPXE fetches its
//! script, kernel and initrd.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

pub struct Conn {
    local: Ipv4Addr,
    server: SocketAddrV4,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Bytes in `buf` not consumed yet.
    have: usize,
    /// Connections opened (1 when keep-alive held).
    pub connects: u32,
}

/// iPXE's TCP gives up on a silent peer after about 15 s per step; bounded the same here.
const IO_TIMEOUT: Duration = Duration::from_secs(15);

impl Conn {
    pub fn new(local: Ipv4Addr, server: SocketAddrV4) -> Conn {
        Conn {
            local,
            server,
            stream: None,
            buf: vec![0u8; 256 * 1024],
            have: 0,
            connects: 0,
        }
    }

    fn connect(&mut self) -> io::Result<()> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.bind(&SocketAddr::V4(SocketAddrV4::new(self.local, 0)).into())?;
        s.connect_timeout(&SocketAddr::V4(self.server).into(), IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_tcp_nodelay(true)?;
        self.stream = Some(s.into());
        self.have = 0;
        self.connects += 1;
        Ok(())
    }

    fn fill(&mut self) -> io::Result<usize> {
        let Some(s) = self.stream.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no connection"));
        };
        if self.have == self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "header too long",
            ));
        }
        let n = s.read(&mut self.buf[self.have..])?;
        self.have += n;
        Ok(n)
    }

    /// GET `path`; returns (status, body length, body when `keep`). A connection the server closed
    /// between requests is reopened once, as iPXE does.
    pub fn get(&mut self, path: &str, keep: bool) -> Result<(u16, u64, Vec<u8>), String> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                self.connect().map_err(|e| format!("connect: {e}"))?;
            }
            match self.exchange(path, keep) {
                Ok(r) => return Ok(r),
                Err((e, sent_nothing)) => {
                    self.stream = None;
                    if attempt == 1 || !sent_nothing {
                        return Err(format!("GET {path}: {e}"));
                    }
                }
            }
        }
        Err(format!("GET {path}: failed"))
    }

    /// Err's bool: the failure came before any response byte (retrying is safe).
    fn exchange(&mut self, path: &str, keep: bool) -> Result<(u16, u64, Vec<u8>), (String, bool)> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nConnection: keep-alive\r\nUser-Agent: iPXE/1.21.1+ (g988d2)\r\nHost: {}\r\n\r\n",
            self.server.ip()
        );
        let s = self
            .stream
            .as_mut()
            .ok_or(("no connection".to_string(), true))?;
        s.write_all(req.as_bytes())
            .map_err(|e| (e.to_string(), true))?;
        // the head
        let head_end = loop {
            if let Some(p) = self.buf[..self.have]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break p + 4;
            }
            let before = self.have;
            match self.fill() {
                Ok(0) => return Err(("closed before a response".into(), before == 0)),
                Ok(_) => {}
                Err(e) => return Err((e.to_string(), before == 0)),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(("no status".to_string(), false))?;
        let mut len: Option<u64> = None;
        let mut close = false;
        for l in head.lines().skip(1) {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                if k == "content-length" {
                    len = v.parse().ok();
                } else if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                } else if k == "transfer-encoding" && !v.eq_ignore_ascii_case("identity") {
                    return Err(("chunked bodies are not read here".into(), false));
                }
            }
        }
        let len = len.ok_or(("no Content-Length".to_string(), false))?;
        // the body: what is already buffered, then the rest
        let mut body = Vec::new();
        let in_buf = ((self.have - head_end) as u64).min(len) as usize;
        if keep {
            body.extend_from_slice(&self.buf[head_end..head_end + in_buf]);
        }
        let used = head_end + in_buf;
        self.buf.copy_within(used..self.have, 0);
        self.have -= used;
        let mut left = len - in_buf as u64;
        while left > 0 {
            let s = self
                .stream
                .as_mut()
                .ok_or(("no connection".to_string(), false))?;
            let want = (self.buf.len() as u64).min(left) as usize;
            let n = s
                .read(&mut self.buf[..want])
                .map_err(|e| (e.to_string(), false))?;
            if n == 0 {
                return Err((
                    format!("closed with {left} bytes of the body missing"),
                    false,
                ));
            }
            if keep {
                body.extend_from_slice(&self.buf[..n]);
            }
            left -= n as u64;
        }
        if close {
            self.stream = None;
        }
        Ok((status, len, body))
    }
}
