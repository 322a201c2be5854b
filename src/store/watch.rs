//! Following the change log from another process: the daemon's view of admin writes.
//!
//! Admin commands write the store directly; the daemon learns of it here and nowhere else
//! (DESIGN.md principle 1). [`ChangeFollower::poll`] is cheap when nothing changed: it asks the
//! backend's data-version probe first and reads the log only when another connection committed.

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
}
