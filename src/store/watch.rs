//! Following the change log: how a long-running process learns of writes, its own and others'.
//!
//! Admin commands write the store directly; the daemon learns of it here and nowhere else
//! (DESIGN.md principle 1). [`ChangeFollower::poll`] is cheap when nothing changed: it asks the
//! backend's data-version probe first and reads the log only when another connection committed.
//! [`ChangeFollower::drain`] reads everything up to the newest entry; the resolver's
//! [`catch_up`](super::resolver::Resolver::catch_up) uses it on the request path, and hands each
//! [`ChangeBatch`] to the listeners that keep derived caches (DHCP view, NFS exports) in step.

#[cfg(test)]
use super::ChangeOp;
use super::{Change, Store, StoreError};

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Nothing new.
    Nothing,
    /// These changes, oldest first.
    Changes(Vec<Change>),
    /// The follower fell behind the log's retention (or the log was reset): reload everything.
    Reset,
}

/// What one catch-up found, as the caches built on the store receive it.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    /// Tables touched, sorted, each once.
    pub tables: Vec<String>,
    /// The entries themselves (empty after a reset).
    pub changes: Vec<Change>,
    /// The log moved past us: treat every table as changed.
    pub reset: bool,
}

impl ChangeBatch {
    /// The batch for these changes (oldest first).
    pub fn of(changes: Vec<Change>) -> ChangeBatch {
        let mut tables: Vec<String> = changes.iter().map(|c| c.table.clone()).collect();
        tables.sort_unstable();
        tables.dedup();
        ChangeBatch {
            tables,
            changes,
            reset: false,
        }
    }

    /// "Everything may have changed".
    pub fn reset() -> ChangeBatch {
        ChangeBatch {
            tables: super::schema::TABLES
                .iter()
                .map(|t| t.name.to_string())
                .collect(),
            changes: Vec::new(),
            reset: true,
        }
    }

    pub fn touches(&self, tables: &[&str]) -> bool {
        self.reset || self.tables.iter().any(|t| tables.contains(&t.as_str()))
    }
}

/// Tracks the last change-log sequence number seen.
#[derive(Debug)]
pub struct ChangeFollower {
    last_seq: u64,
    last_version: Option<i64>,
}

/// How many entries one poll reads; a burst larger than this is delivered over several polls.
const BATCH: usize = 10_000;

impl ChangeFollower {
    /// Starts following at the newest entry: only changes made after this call are reported.
    pub fn from_now(store: &Store) -> Result<ChangeFollower, StoreError> {
        let (_, newest) = store.change_bounds()?;
        Ok(ChangeFollower {
            last_seq: newest,
            last_version: None,
        })
    }

    /// Starts after `seq` (0 for the whole retained log).
    pub fn after(seq: u64) -> ChangeFollower {
        ChangeFollower {
            last_seq: seq,
            last_version: None,
        }
    }

    /// The last sequence number delivered.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Returns what changed since the previous poll.
    pub fn poll(&mut self, store: &Store) -> Result<Followed, StoreError> {
        let version = store.data_version()?;
        let changed_elsewhere = self.last_version != Some(version);
        self.last_version = Some(version);
        // data_version does not move for commits on our own connection, so when nothing moved we
        // still look at the newest seq (one indexed lookup) before concluding nothing happened.
        let (oldest, newest) = store.change_bounds()?;
        if !changed_elsewhere && newest == self.last_seq {
            return Ok(Followed::Nothing);
        }
        if newest < self.last_seq
            || (oldest > self.last_seq.saturating_add(1) && self.last_seq != 0)
        {
            self.last_seq = newest;
            return Ok(Followed::Reset);
        }
        let changes = store.changes_since(self.last_seq, BATCH)?;
        match changes.last() {
            Some(c) => {
                self.last_seq = c.seq;
                Ok(Followed::Changes(changes))
            }
            None => Ok(Followed::Nothing),
        }
    }

    /// Everything after the last entry delivered, up to the newest one committed when this is
    /// called (no data-version shortcut: the caller already knows something was committed).
    /// The log's bounds are read only when what follows our position is not the next entry (a
    /// gap, or nothing): the log was pruned past us or replaced (a reset), or the commit wrote
    /// no entry. Entries that follow on are the common case (a daemon catching up after every
    /// lease commit), and they need the one query.
    pub fn drain(&mut self, store: &Store) -> Result<Followed, StoreError> {
        let mut all = Vec::new();
        loop {
            let changes = store.changes_since(self.last_seq, BATCH)?;
            let follows_on = changes
                .first()
                .is_some_and(|c| c.seq == self.last_seq.saturating_add(1));
            if !follows_on {
                let (oldest, newest) = store.change_bounds()?;
                if newest < self.last_seq
                    || (oldest > self.last_seq.saturating_add(1) && self.last_seq != 0)
                {
                    self.last_seq = newest;
                    return Ok(Followed::Reset);
                }
            }
            let full = changes.len() >= BATCH;
            if let Some(c) = changes.last() {
                self.last_seq = c.seq;
            }
            all.extend(changes);
            if !full {
                break;
            }
        }
        Ok(if all.is_empty() {
            Followed::Nothing
        } else {
            Followed::Changes(all)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_sees_each_write_once_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Store::test_url(dir.path(), "w");
        let writer = Store::open(&url).expect("open");
        let reader = Store::open(&url).expect("open again");
        let mut f = ChangeFollower::from_now(&reader).expect("follower");
        assert_eq!(f.poll(&reader).expect("poll"), Followed::Nothing);
        writer
            .write(None, |tx| {
                tx.set("nodelist", &["n1"], &[("groups", Some("all"))])
            })
            .expect("write");
        writer
            .write(None, |tx| tx.delete("nodelist", &["n1"]))
            .expect("delete");
        let Followed::Changes(c) = f.poll(&reader).expect("poll") else {
            panic!("changes expected")
        };
        let got: Vec<(&str, &str, ChangeOp)> = c
            .iter()
            .map(|c| (c.table.as_str(), c.key.as_str(), c.op))
            .collect();
        assert_eq!(
            got,
            [
                ("nodelist", "node=n1", ChangeOp::Upsert),
                ("nodelist", "node=n1", ChangeOp::Delete)
            ]
        );
        assert_eq!(f.poll(&reader).expect("poll"), Followed::Nothing);
        // A failed transaction leaves no trace in the log.
        let r = writer.write(None, |tx| {
            tx.set("nodelist", &["n2"], &[("groups", Some("all"))])?;
            tx.set("nodelist", &["n2"], &[("bogus", Some("x"))])
        });
        assert!(r.is_err());
        assert_eq!(f.poll(&reader).expect("poll"), Followed::Nothing);
        assert!(reader.get("nodelist", &["n2"]).expect("get").is_none());
    }
}
