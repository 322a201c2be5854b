//! XDR (RFC 4506) as used by ONC RPC, NFSv3 and MOUNT: a bounds-checked reader over a received
//! record and an appending writer. Pure: no I/O, no allocation driven by a length the peer sent
//! (variable-length items are borrowed from the record after their length was checked against
//! both the caller's limit and the bytes actually present).

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum XdrError {
    #[error("truncated XDR: {0} needs more bytes than the record holds")]
    Short(&'static str),
    #[error("XDR {what} of {len} bytes exceeds the limit of {max}")]
    TooLong {
        what: &'static str,
        len: u32,
        max: u32,
    },
    #[error("XDR {what} has the invalid value {value}")]
    Bad { what: &'static str, value: u32 },
}

/// Items are padded to a multiple of four bytes.
pub fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads XDR items from one record, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], XdrError> {
        if self.remaining() < n {
            return Err(XdrError::Short(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, XdrError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, XdrError> {
        let hi = self.u32(what)? as u64;
        let lo = self.u32(what)? as u64;
        Ok(hi << 32 | lo)
    }

    /// XDR booleans are 0 or 1; anything else is malformed, not "true".
    pub fn bool(&mut self, what: &'static str) -> Result<bool, XdrError> {
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(XdrError::Bad { what, value }),
        }
    }

    /// Fixed-length opaque data of `n` bytes (plus padding).
    pub fn fixed(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], XdrError> {
        let s = self.take(n, what)?;
        self.take(padded(n) - n, what)?;
        Ok(s)
    }

    /// Variable-length opaque data (`opaque<max>`, also `string<max>`): the length is checked
    /// against `max` before anything else, so a hostile length costs nothing.
    pub fn opaque(&mut self, max: u32, what: &'static str) -> Result<&'a [u8], XdrError> {
        let len = self.u32(what)?;
        if len > max {
            return Err(XdrError::TooLong { what, len, max });
        }
        self.fixed(len as usize, what)
    }

    /// An array count, checked against `max` and against what the rest of the record could hold
    /// (each element takes at least `min_elem` bytes), so callers may size a Vec by it.
    pub fn count(
        &mut self,
        max: u32,
        min_elem: usize,
        what: &'static str,
    ) -> Result<u32, XdrError> {
        let n = self.u32(what)?;
        if n > max {
            return Err(XdrError::TooLong { what, len: n, max });
        }
        if (n as usize).saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(XdrError::Short(what));
        }
        Ok(n)
    }

    /// The unread rest (procedure arguments after the call header).
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// Builds an XDR message by appending.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn u32(&mut self, v: u32) -> &mut Writer {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Writer {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Writer {
        self.u32(v as u32)
    }

    pub fn fixed(&mut self, b: &[u8]) -> &mut Writer {
        self.buf.extend_from_slice(b);
        self.pad(b.len())
    }

    fn pad(&mut self, len: usize) -> &mut Writer {
        let n = padded(len) - len;
        self.buf.extend_from_slice(&[0u8; 3][..n]);
        self
    }

    /// `opaque<>`/`string<>`: length, bytes, padding.
    pub fn opaque(&mut self, b: &[u8]) -> &mut Writer {
        self.u32(b.len() as u32);
        self.fixed(b)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends `n` bytes produced by `fill` (which returns how many it wrote, ≤ n) as `opaque<>`,
    /// without an intermediate buffer: READ replies read file data straight into the reply.
    pub fn opaque_with<E>(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let len_at = self.buf.len();
        self.u32(0);
        let start = self.buf.len();
        self.buf.resize(start + n, 0);
        let got = match fill(&mut self.buf[start..]) {
            Ok(g) => g.min(n),
            Err(e) => {
                self.buf.truncate(len_at);
                return Err(e);
            }
        };
        self.buf.truncate(start + got);
        self.buf[len_at..len_at + 4].copy_from_slice(&(got as u32).to_be_bytes());
        self.pad(got);
        Ok(got)
    }

    /// Like [`Writer::opaque_with`], but `fill` appends the bytes to the buffer itself (at most
    /// `n`; more are cut), so they need not be zeroed first.
    pub fn opaque_append<E>(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let len_at = self.buf.len();
        self.u32(0);
        let start = self.buf.len();
        if let Err(e) = fill(&mut self.buf) {
            self.buf.truncate(len_at);
            return Err(e);
        }
        self.buf.truncate(start + n);
        let got = self.buf.len() - start;
        self.buf[len_at..len_at + 4].copy_from_slice(&(got as u32).to_be_bytes());
        self.pad(got);
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let mut w = Writer::new();
        w.u32(7)
            .u64(1 << 40)
            .bool(true)
            .opaque(b"abcde")
            .fixed(b"xy");
        assert_eq!(w.len(), 4 + 8 + 4 + 4 + 8 + 4);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u32("a"), Ok(7));
        assert_eq!(r.u64("b"), Ok(1 << 40));
        assert_eq!(r.bool("c"), Ok(true));
        assert_eq!(r.opaque(16, "d"), Ok(&b"abcde"[..]));
        assert_eq!(r.fixed(2, "e"), Ok(&b"xy"[..]));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn hostile_lengths_are_refused_before_reading() {
        let mut w = Writer::new();
        w.u32(0x7fff_ffff);
        assert!(matches!(
            Reader::new(&w.buf).opaque(255, "name"),
            Err(XdrError::TooLong { .. })
        ));
        assert!(matches!(
            Reader::new(&w.buf).opaque(u32::MAX, "name"),
            Err(XdrError::Short(_))
        ));
        assert!(matches!(
            Reader::new(&w.buf).count(16, 4, "gids"),
            Err(XdrError::TooLong { .. })
        ));
        let mut w = Writer::new();
        w.u32(10);
        assert!(matches!(
            Reader::new(&w.buf).count(16, 4, "gids"),
            Err(XdrError::Short(_))
        ));
        let mut w = Writer::new();
        w.u32(2);
        assert!(matches!(
            Reader::new(&w.buf).bool("b"),
            Err(XdrError::Bad { .. })
        ));
    }

    #[test]
    fn opaque_with_fills_in_place() {
        let mut w = Writer::new();
        let n = w
            .opaque_with(10, |b| {
                b[..3].copy_from_slice(b"abc");
                Ok::<usize, ()>(3)
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(w.buf, [0, 0, 0, 3, b'a', b'b', b'c', 0]);
        let mut w = Writer::new();
        let n = w
            .opaque_append(4, |b| {
                b.extend_from_slice(b"abcdef");
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(n, 4, "more than asked is cut");
        assert_eq!(w.buf, [0, 0, 0, 4, b'a', b'b', b'c', b'd']);
        let mut w = Writer::new();
        w.u32(9);
        assert!(w
            .opaque_append(4, |b| {
                b.push(1);
                Err(())
            })
            .is_err());
        assert_eq!(w.buf, [0, 0, 0, 9], "a failed fill leaves nothing behind");
    }
}
