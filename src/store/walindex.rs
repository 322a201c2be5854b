//! The header of an SQLite database's WAL index (the `<db>-shm` file of a database in WAL mode),
//! read to learn whether anything was committed, without starting a read transaction.
//!
//! Why: the daemon checks before every DHCP round (and every request) that it has seen every
//! commit made before the request arrived ([`super::resolver::Resolver::catch_up`]). Asking
//! SQLite (`PRAGMA data_version`) begins and ends a read transaction: locks in the shared
//! memory, a look at the WAL, the page cache checked; at 5,000 DHCP exchanges/s that was about
//! 6 % of the server's CPU. Every commit in WAL mode publishes a new header in the WAL index
//! before it returns, and a reader learns of commits from nothing else, so comparing the header
//! with the one seen last answers the same question with one `pread(2)` of 96 bytes.
//!
//! Layout (SQLite's `wal.c`, "WAL-INDEX FORMAT", unchanged since 3.7.0): the file starts with
//! two copies of a 48-byte header in native byte order. A writer fills the second copy, then
//! the first; a reader takes the header only when both copies are equal. Of the fields:
//! `iVersion` (offset 0, 3007000), `iChange` (8: incremented by every commit), `isInit`
//! (12: 1 once set up), `mxFrame` (16: the last committed frame of the WAL), the salts (32:
//! changed when the WAL starts over after a checkpoint) and a checksum (40). A header is never
//! published twice: `iChange` only grows (a 32-bit counter: it would take 2³² commits to come
//! back), and a WAL started over has new salts.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes in one copy of the header.
pub const HEADER_LEN: usize = 48;
/// `WALINDEX_MAX_VERSION` of SQLite 3.7.0 and later.
const VERSION: u32 = 3_007_000;

/// One published WAL-index header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header([u8; HEADER_LEN]);

impl Header {
    /// The header in the first `2 × HEADER_LEN` bytes of a WAL index: `None` when the two
    /// copies differ (a writer is between them: read again), or the index is not (yet) set up.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let first = b.get(..HEADER_LEN)?;
        if b.get(HEADER_LEN..2 * HEADER_LEN)? != first {
            return None;
        }
        let h = Header(first.try_into().ok()?);
        (h.word(0) == VERSION && h.0[12] == 1).then_some(h)
    }

    fn word(&self, at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.0[at..at + 4]);
        u32::from_ne_bytes(w)
    }

    /// The commit counter (`iChange`).
    pub fn commits(&self) -> u32 {
        self.word(8)
    }

    /// Whether `self` is what exactly one commit made of `before`: the commit counter moved by
    /// one. (A commit of another connection in between would have moved it by two.)
    pub fn one_commit_after(&self, before: &Header) -> bool {
        self.commits() == before.commits().wrapping_add(1)
    }
}

/// An open WAL index, read-only.
#[derive(Debug)]
pub struct WalIndex {
    file: File,
}

impl WalIndex {
    /// The WAL index of the database at `db` (SQLite names it after the database's real path,
    /// symbolic links resolved). `None` when there is none (not in WAL mode, or not opened yet).
    pub fn open(db: &Path) -> Option<WalIndex> {
        let real = std::fs::canonicalize(db).ok()?;
        let mut name = real.into_os_string();
        name.push("-shm");
        File::open(name).ok().map(|file| WalIndex { file })
    }

    /// The header as published now; `None` when it could not be read whole and consistent in a
    /// few tries (the caller then asks SQLite).
    pub fn header(&self) -> Option<Header> {
        let mut b = [0u8; 2 * HEADER_LEN];
        for _ in 0..4 {
            if self.file.read_exact_at(&mut b, 0).is_ok() {
                if let Some(h) = Header::parse(&b) {
                    return Some(h);
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(commits: u32, frame: u32) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[..4].copy_from_slice(&VERSION.to_ne_bytes());
        h[8..12].copy_from_slice(&commits.to_ne_bytes());
        h[12] = 1;
        h[16..20].copy_from_slice(&frame.to_ne_bytes());
        h
    }

    #[test]
    fn a_header_is_taken_only_when_both_copies_agree() {
        let h = [copy(7, 3), copy(7, 3)].concat();
        let parsed = Header::parse(&h).expect("header");
        assert_eq!(parsed.commits(), 7);
        // A writer between the two copies.
        assert_eq!(Header::parse(&[copy(8, 5), copy(7, 3)].concat()), None);
        // Not set up, short, another version.
        let mut unset = h.clone();
        unset[12] = 0;
        unset[HEADER_LEN + 12] = 0;
        assert_eq!(Header::parse(&unset), None);
        assert_eq!(Header::parse(&h[..HEADER_LEN + 10]), None);
        let mut other = h.clone();
        other[0] ^= 1;
        other[HEADER_LEN] ^= 1;
        assert_eq!(Header::parse(&other), None);
        let next = Header::parse(&[copy(8, 5), copy(8, 5)].concat()).expect("header");
        assert!(next.one_commit_after(&parsed));
        let later = Header::parse(&[copy(9, 6), copy(9, 6)].concat()).expect("header");
        assert!(!later.one_commit_after(&parsed));
    }

    /// Against SQLite itself: each commit, by either of two connections, publishes a new header
    /// that moves the counter by one, with reads in between.
    #[test]
    fn sqlite_publishes_a_new_header_at_every_commit_and_only_then() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        let a = rusqlite::Connection::open(&db).expect("open");
        let mode: String = a
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        a.execute_batch("CREATE TABLE t (v INTEGER)")
            .expect("create");
        let b = rusqlite::Connection::open(&db).expect("open again");
        let idx = WalIndex::open(&db).expect("the -shm file");
        let mut seen = vec![idx.header().expect("header")];
        for i in 0..50 {
            let c = if i % 2 == 0 { &a } else { &b };
            c.execute("INSERT INTO t VALUES (?1)", [i]).expect("insert");
            let _: i64 = b
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .expect("read");
            let h = idx.header().expect("header");
            assert!(!seen.contains(&h), "commit {i} published a new header");
            assert!(h.one_commit_after(seen.last().expect("one")));
            seen.push(h);
        }
        // A checkpoint that lets the WAL start over, then a commit: still a new header.
        a.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        let _: i64 = a
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("read");
        a.execute("INSERT INTO t VALUES (1)", []).expect("insert");
        let h = idx.header().expect("header");
        assert!(
            !seen.contains(&h),
            "a new header after the WAL started over"
        );
    }
}
