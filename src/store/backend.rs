//! The storage backend boundary: what a database must provide so that the rest of bootherd never sees SQL.
//!
//! A backend stores xCAT tables as rows of optional strings (one per column of the table's
//! [`TableSpec`], in schema order), keeps them in insertion order (so `tabdump` prints rows in the
//! order `tabrestore` wrote them, as xCAT does), and keeps the change log. SQLite is the embedded
//! default ([`super::sqlite`]); a PostgreSQL backend implements the same two traits.

use super::schema::TableSpec;
use super::StoreError;

/// One row: one optional string per column of its table, in [`TableSpec::cols`] order.
/// `None` is SQL NULL (an empty CSV field); `Some("")` is an empty string (`""` in CSV).
pub type Row = Vec<Option<String>>;

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Monotonic sequence number, assigned at commit order.
    pub seq: u64,
    pub table: String,
    /// The row's key, `col=value` pairs joined by `;`, or `*` for a whole-table operation.
    pub key: String,
    pub op: ChangeOp,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// Row inserted or replaced.
    Upsert,
    /// Some columns of an existing row changed.
    Update,
    Delete,
    /// Every row of the table removed (tabrestore without -a).
    Clear,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
            ChangeOp::Clear => "clear",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeOp> {
        Some(match s {
            "upsert" => ChangeOp::Upsert,
            "update" => ChangeOp::Update,
            "delete" => ChangeOp::Delete,
            "clear" => ChangeOp::Clear,
            _ => return None,
        })
    }
}

/// A database holding the xCAT tables. Implementations are internally synchronised.
pub trait Backend: Send + Sync {
    /// A read-only view; all reads through it see one consistent snapshot.
    fn read(&self) -> Result<Box<dyn BackendTx + '_>, StoreError>;
    /// A write transaction. Dropping it without [`BackendTx::commit`] rolls back.
    fn write(&self) -> Result<Box<dyn BackendTx + '_>, StoreError>;
    /// Change-log entries with `seq > after`, oldest first, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError>;
    /// `(oldest, newest)` sequence numbers still in the change log (`(0, 0)` when empty).
    fn change_bounds(&self) -> Result<(u64, u64), StoreError>;
    /// A cheap probe that changes whenever another connection commits (SQLite `PRAGMA data_version`).
    fn data_version(&self) -> Result<i64, StoreError>;
    /// The store's commit position, for "catch up before answering" ([`super::resolver::Resolver::catch_up`]):
    /// a number that never decreases and has moved once any commit — by another process or by this
    /// one — has returned. It must be cheap (it is asked once per request) and must not wait behind
    /// this process's own reads and writes. SQLite: `PRAGMA data_version` on a connection kept for
    /// nothing else (writers are serialised, so the log's seq order is commit order). A backend
    /// with concurrent writers (PostgreSQL) must make the same promise: for example a counter row
    /// bumped in every write transaction, with its change log read so that an entry committed
    /// after a higher-numbered one is still delivered.
    fn commit_position(&self) -> Result<u64, StoreError>;
    /// Woken soon after another connection commits (PostgreSQL `LISTEN/NOTIFY`), so a follower
    /// can read the log at once instead of at its next poll; also woken after a lost
    /// notification connection is back (the follower re-reads from its own position). `None`
    /// when the backend has no such signal (SQLite: followers poll [`Backend::commit_position`]).
    /// A hint only: correctness never depends on it.
    fn change_notifier(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
    /// A human-readable description of where the data lives (for logs; no secrets).
    fn describe(&self) -> String;
    /// Whether several appliances may share this store (PostgreSQL: service nodes). An SQLite
    /// store serves one appliance, whose memory already knows every lease it gave out.
    fn shared(&self) -> bool {
        false
    }
}

/// Row-level operations inside one transaction. Callers go through [`super::Txn`], which validates
/// input and appends to the change log; backends only execute.
pub trait BackendTx {
    fn select_all(&mut self, table: &TableSpec) -> Result<Vec<Row>, StoreError>;
    /// The row whose key columns equal `key` (values in [`TableSpec::keys`] order).
    fn select_key(&mut self, table: &TableSpec, key: &[&str]) -> Result<Option<Row>, StoreError>;
    /// The rows of a single-key table whose key is one of `keys` (any order, missing ones left
    /// out): one statement where the backend can (PostgreSQL: `= ANY($1)`), else one per key.
    fn select_keys(&mut self, table: &TableSpec, keys: &[&str]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        for k in keys {
            if let Some(r) = self.select_key(table, &[k])? {
                out.push(r);
            }
        }
        Ok(out)
    }
    /// Insert `row`, or replace the row with the same key in place (keeping its position).
    fn upsert(&mut self, table: &TableSpec, row: &Row) -> Result<(), StoreError>;
    /// Set some columns (by index) of the row with `key`; false when there is no such row.
    fn update(
        &mut self,
        table: &TableSpec,
        key: &[&str],
        cols: &[(usize, Option<String>)],
    ) -> Result<bool, StoreError>;
    fn delete_key(&mut self, table: &TableSpec, key: &[&str]) -> Result<bool, StoreError>;
    /// Delete every row whose column `col` (by index) equals `value`; returns how many.
    fn delete_where(
        &mut self,
        table: &TableSpec,
        col: usize,
        value: &str,
    ) -> Result<usize, StoreError>;
    fn delete_all(&mut self, table: &TableSpec) -> Result<usize, StoreError>;
    /// One more than the largest integer in column `col` (1 for an empty table).
    fn next_int(&mut self, table: &TableSpec, col: usize) -> Result<i64, StoreError>;
    fn append_change(&mut self, table: &str, key: &str, op: ChangeOp) -> Result<(), StoreError>;
    /// The whole change log with each entry's time (seconds since the epoch), oldest first
    /// (`db copy`).
    fn changelog(&mut self) -> Result<Vec<(Change, i64)>, StoreError>;
    /// Appends entries verbatim, keeping their sequence numbers (`db copy` into an empty log).
    fn put_changelog(&mut self, entries: &[(Change, i64)]) -> Result<(), StoreError>;
    /// Empties the change log (`db copy --force`).
    fn clear_changelog(&mut self) -> Result<(), StoreError>;
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
