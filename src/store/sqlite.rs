//! The embedded SQLite backend (the default): one file, WAL, a busy timeout so that admin commands
//! and the daemon can write from different processes, and numbered schema migrations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::backend::{Backend, BackendTx, Change, ChangeOp, Row};
use super::schema::{TableSpec, TABLES};
use super::walindex::{Header, WalIndex};
use super::StoreError;

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The change log keeps this many entries; a follower that falls further behind reloads everything.
const CHANGELOG_KEEP: i64 = 1_000_000;

/// Schema migrations, applied in order; `schema_version` in `bootherd_meta` records the last one applied.
/// Tables and columns added to `schema.rs` later are created by [`sync_tables`] without a numbered step;
/// only changes that move or transform data need an entry here.
const MIGRATIONS: &[&str] = &[
    // 1: bookkeeping tables. The xCAT tables themselves come from `sync_tables`.
    "CREATE TABLE IF NOT EXISTS bootherd_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT);
     CREATE TABLE IF NOT EXISTS bootherd_changelog (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         tab TEXT NOT NULL,
         rowkey TEXT NOT NULL,
         op TEXT NOT NULL,
         at INTEGER NOT NULL);",
];

pub struct SqliteBackend {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// A second connection for following the change log ([`Backend::commit_position`],
    /// [`Backend::changes_since`], [`Backend::change_bounds`]), so that catching up never waits
    /// behind a long read or a commit (with its fsync) on `conn`. Opened on first use; unused for
    /// an in-memory database, which has no second connection and nobody else can write.
    probe: Mutex<Option<Connection>>,
    /// Commits through `conn`: the commit position of an in-memory database.
    commits: AtomicU64,
    /// The commit position of a database file ([`Backend::commit_position`]).
    position: Mutex<Position>,
    /// This process's latest commits with the change-log entries they wrote, handed to
    /// [`Backend::changes_since`] so that catching up on its own commits reads nothing back.
    own: Mutex<std::collections::VecDeque<OwnCommit>>,
    /// Times [`Backend::changes_since`] read the log (tests).
    log_reads: AtomicU64,
}

/// What [`Backend::commit_position`] last saw. The position is a counter moved whenever what it
/// saw differs from the last time: the WAL index's header (one `pread`, see [`super::walindex`])
/// or, where that cannot be read, `PRAGMA data_version`. Both change at every commit of
/// another connection, and the header at this connection's commits too. Switching from one to
/// the other counts as a change (never a missed one, at most an extra catch-up).
#[derive(Default)]
struct Position {
    /// Opened on first use; `None` with `tried` set: no WAL index (ask SQLite).
    index: Option<WalIndex>,
    tried: bool,
    header: Option<Header>,
    version: Option<i64>,
    counter: u64,
}

/// One commit of this process, as [`SqliteTx::commit`] recorded it.
struct OwnCommit {
    /// The change-log entries it wrote, oldest first (sequence numbers `first..=last`).
    changes: Vec<Change>,
    /// The header its commit published: while the WAL index still shows it, the log holds
    /// exactly the entries before `first` and these.
    header: Header,
}

/// How many of its own commits the backend keeps for [`Backend::changes_since`]; a follower
/// further behind reads the log.
const OWN_COMMITS: usize = 64;
/// Entries a commit may write and still be handed over (a bigger one is read back).
const OWN_ENTRIES: usize = 10_000;

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`. Returns the backend and whether the
    /// database was newly created (so the caller can seed defaults).
    pub fn open(path: &Path) -> Result<(SqliteBackend, bool), StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                    url: path.display().to_string(),
                    reason: format!("cannot create directory {}: {e}", dir.display()),
                })?;
            }
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            url: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_connection(conn, path.to_path_buf())
    }

    /// An in-memory database (unit tests).
    pub fn open_in_memory() -> Result<(SqliteBackend, bool), StoreError> {
        let conn = Connection::open_in_memory().map_err(db_err)?;
        Self::from_connection(conn, PathBuf::from(":memory:"))
    }

    fn from_connection(
        mut conn: Connection,
        path: PathBuf,
    ) -> Result<(SqliteBackend, bool), StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        // Every table has a handful of statements; the default 16 would keep re-parsing them.
        conn.set_prepared_statement_cache_capacity(256);
        // WAL lets the daemon read while an admin command writes; FULL makes a commit survive power loss,
        // which leases will depend on (group commit keeps that affordable).
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
            .map_err(db_err)?;
        let created = migrate(&mut conn)?;
        Ok((
            SqliteBackend {
                path,
                conn: Mutex::new(conn),
                probe: Mutex::new(None),
                commits: AtomicU64::new(0),
                position: Mutex::new(Position::default()),
                own: Mutex::new(std::collections::VecDeque::new()),
                log_reads: AtomicU64::new(0),
            },
            created,
        ))
    }

    fn in_memory(&self) -> bool {
        self.path.as_os_str() == ":memory:"
    }

    /// Runs `f` on the change-log connection (the main one for an in-memory database).
    fn on_follower<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_memory() {
            return f(&self.lock());
        }
        let mut slot = self.probe.lock().unwrap_or_else(|p| p.into_inner());
        let c = match slot.take() {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(db_err)?;
                c.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
                c
            }
        };
        let r = f(&c);
        *slot = Some(c);
        r
    }

    /// The WAL index's header now, opening the index on first use.
    fn header(&self, p: &mut Position) -> Option<Header> {
        if !p.tried && !self.in_memory() {
            p.tried = true;
            p.index = WalIndex::open(&self.path);
        }
        p.index.as_ref()?.header()
    }

    /// The WAL index's header now (for a commit to record).
    fn header_now(&self) -> Option<Header> {
        let mut p = self.position.lock().unwrap_or_else(|p| p.into_inner());
        self.header(&mut p)
    }

    /// The entries of this process's own commits that follow `after`, when nothing else was
    /// committed after them (the WAL index still shows the last one's header); `None` when the
    /// log must be read.
    fn own_changes_after(&self, after: u64, limit: usize) -> Option<Vec<Change>> {
        let own = self.own.lock().ok()?;
        let mut at = own.iter().position(|c| {
            c.changes
                .first()
                .is_some_and(|f| f.seq == after.saturating_add(1))
        })?;
        let now = self.header_now()?;
        let mut out = Vec::new();
        loop {
            let c = own.get(at)?;
            out.extend(c.changes.iter().cloned());
            if out.len() > limit {
                return None;
            }
            if c.header == now {
                return Some(out);
            }
            let next = out.last()?.seq.saturating_add(1);
            at = own
                .iter()
                .position(|c| c.changes.first().is_some_and(|f| f.seq == next))?;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (the transaction rolls back),
        // so a poisoned mutex is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Applies pending migrations and creates missing tables/columns. Returns true for a new database.
fn migrate(conn: &mut Connection) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let has_meta: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='bootherd_meta'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
        > 0;
    let version: usize = if has_meta {
        tx.query_row(
            "SELECT value FROM bootherd_meta WHERE key='schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(db_err)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
    } else {
        0
    };
    if version > MIGRATIONS.len() {
        return Err(StoreError::Open {
            url: String::new(),
            reason: format!(
                "database schema version {version} is newer than this bootherd understands ({}); upgrade bootherd",
                MIGRATIONS.len()
            ),
        });
    }
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    tx.execute(
        "INSERT INTO bootherd_meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [MIGRATIONS.len().to_string()],
    )
    .map_err(db_err)?;
    sync_tables(&tx)?;
    tx.commit().map_err(db_err)?;
    Ok(!has_meta)
}

/// Creates every table of the schema that is missing and adds columns that a newer schema has.
fn sync_tables(conn: &Connection) -> Result<(), StoreError> {
    for t in TABLES {
        let existing: Vec<String> = {
            let mut st = conn
                .prepare(&format!("PRAGMA table_info({})", quote(t.name)))
                .map_err(db_err)?;
            let cols = st
                .query_map([], |r| r.get::<_, String>(1))
                .map_err(db_err)?;
            cols.collect::<Result<_, _>>().map_err(db_err)?
        };
        if existing.is_empty() {
            let cols: Vec<String> = t
                .cols
                .iter()
                .map(|c| {
                    if t.keys.contains(c) {
                        format!("{} TEXT NOT NULL", quote(c))
                    } else {
                        format!("{} TEXT", quote(c))
                    }
                })
                .collect();
            let keys: Vec<String> = t.keys.iter().map(|k| quote(k)).collect();
            conn.execute_batch(&format!(
                "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
                quote(t.name),
                cols.join(", "),
                keys.join(", ")
            ))
            .map_err(db_err)?;
        } else {
            for c in t.cols {
                if !existing.iter().any(|e| e == c) {
                    conn.execute_batch(&format!(
                        "ALTER TABLE {} ADD COLUMN {} TEXT",
                        quote(t.name),
                        quote(c)
                    ))
                    .map_err(db_err)?;
                }
            }
        }
    }
    Ok(())
}

impl Backend for SqliteBackend {
    fn read(&self) -> Result<Box<dyn BackendTx + '_>, StoreError> {
        let conn = self.lock();
        conn.execute_batch("BEGIN DEFERRED").map_err(db_err)?;
        Ok(Box::new(SqliteTx {
            conn,
            open: true,
            wrote: false,
            backend: self,
            appended: None,
            handover: true,
        }))
    }

    fn write(&self) -> Result<Box<dyn BackendTx + '_>, StoreError> {
        let conn = self.lock();
        // Prepared once per connection (transaction control is the same statement every time).
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]));
        begun.map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
                StoreError::Busy(format!(
                    "{} is locked by another writer for over {:?}",
                    self.path.display(),
                    BUSY_TIMEOUT
                ))
            }
            e => db_err(e),
        })?;
        Ok(Box::new(SqliteTx {
            conn,
            open: true,
            wrote: false,
            backend: self,
            appended: None,
            handover: true,
        }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        if let Some(own) = self.own_changes_after(after, limit) {
            return Ok(own);
        }
        self.log_reads.fetch_add(1, Ordering::Relaxed);
        self.on_follower(|conn| changes_since(conn, after, limit))
    }

    fn change_bounds(&self) -> Result<(u64, u64), StoreError> {
        self.on_follower(change_bounds)
    }

    fn data_version(&self) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(db_err)
    }

    fn commit_position(&self) -> Result<u64, StoreError> {
        if self.in_memory() {
            return Ok(self.commits.load(Ordering::SeqCst));
        }
        // Held while reading, so that what is compared is what was last read.
        let mut p = self.position.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = self.header(&mut p) {
            if p.header != Some(h) {
                p.header = Some(h);
                p.version = None;
                p.counter += 1;
            }
            return Ok(p.counter);
        }
        let v = self.on_follower(|c| {
            let mut st = c.prepare_cached("PRAGMA data_version").map_err(db_err)?;
            st.query_row([], |r| r.get::<_, i64>(0)).map_err(db_err)
        })?;
        if p.version != Some(v) {
            p.version = Some(v);
            p.header = None;
            p.counter += 1;
        }
        Ok(p.counter)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

fn changes_since(conn: &Connection, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT seq, tab, rowkey, op FROM bootherd_changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(db_err)?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = st
        .query_map(rusqlite::params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, table, key, op) = row.map_err(db_err)?;
        out.push(Change {
            seq: u64::try_from(seq).unwrap_or(0),
            table,
            key,
            // An op we do not know (written by a newer version) still invalidates the table.
            op: ChangeOp::parse(&op).unwrap_or(ChangeOp::Update),
        });
    }
    Ok(out)
}

fn change_bounds(conn: &Connection) -> Result<(u64, u64), StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        // Two subqueries: SQLite answers a lone min() or max() of the key from the b-tree's
        // ends, but min() and max() together would scan the whole log.
        .query_row(
            "SELECT (SELECT min(seq) FROM bootherd_changelog), (SELECT max(seq) FROM bootherd_changelog)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db_err)?;
    let conv = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok((conv(lo), conv(hi)))
}

struct SqliteTx<'a> {
    conn: MutexGuard<'a, Connection>,
    open: bool,
    wrote: bool,
    backend: &'a SqliteBackend,
    /// The change-log entries this transaction appended, and the WAL index's header when it
    /// appended the first (it holds the write lock: nobody else commits until it ends). `None`:
    /// not to be handed over (the log was written otherwise, or too much).
    appended: Option<(Header, Vec<Change>)>,
    /// Whether this transaction still qualifies for handing its entries over.
    handover: bool,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing useful can be done if the rollback itself fails; the connection is reset on next BEGIN.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn col_list(t: &TableSpec) -> String {
    t.cols
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key_where(t: &TableSpec, first_param: usize) -> String {
    t.keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ?{}", quote(k), i + first_param))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Which statement of a table [`sql`] makes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Stmt {
    SelectAll,
    SelectKey,
    Upsert,
    DeleteKey,
    /// UPDATE of the columns whose indexes are the set bits (tables have fewer than 128).
    Update(u128),
}

/// The SQL text of a statement, made once per (table, statement) and kept: writing it costs more
/// than running a cached prepared statement (the lease writer's commits spent a third of their
/// time formatting the same INSERT). Tables are static, so the cache is bounded by the schema
/// (UPDATEs by the column sets the code uses).
fn sql(t: &TableSpec, stmt: Stmt) -> std::sync::Arc<str> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(&'static str, Stmt), Arc<str>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(s) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&(t.name, stmt)).cloned())
    {
        return s;
    }
    let text: Arc<str> = match stmt {
        Stmt::SelectAll => format!(
            "SELECT {} FROM {} ORDER BY rowid",
            col_list(t),
            quote(t.name)
        ),
        Stmt::SelectKey => format!(
            "SELECT {} FROM {} WHERE {}",
            col_list(t),
            quote(t.name),
            key_where(t, 1)
        ),
        Stmt::Upsert => {
            let placeholders: Vec<String> = (1..=t.cols.len()).map(|i| format!("?{i}")).collect();
            let updates: Vec<String> = t
                .cols
                .iter()
                .filter(|c| !t.keys.contains(c))
                .map(|c| format!("{0} = excluded.{0}", quote(c)))
                .collect();
            let keys: Vec<String> = t.keys.iter().map(|k| quote(k)).collect();
            format!(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
                quote(t.name),
                col_list(t),
                placeholders.join(", "),
                keys.join(", "),
                updates.join(", ")
            )
        }
        Stmt::DeleteKey => format!("DELETE FROM {} WHERE {}", quote(t.name), key_where(t, 1)),
        Stmt::Update(mask) => {
            let sets: Vec<String> = (0..t.cols.len().min(128))
                .filter(|i| mask & (1u128 << i) != 0)
                .enumerate()
                .map(|(n, i)| format!("{} = ?{}", quote(t.cols[i]), n + 1))
                .collect();
            format!(
                "UPDATE {} SET {} WHERE {}",
                quote(t.name),
                sets.join(", "),
                key_where(t, sets.len() + 1)
            )
        }
    }
    .into();
    if let Ok(mut c) = cache.lock() {
        c.insert((t.name, stmt), text.clone());
    }
    text
}

fn read_row(r: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    (0..n).map(|i| r.get::<_, Option<String>>(i)).collect()
}

impl BackendTx for SqliteTx<'_> {
    fn select_all(&mut self, t: &TableSpec) -> Result<Vec<Row>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&sql(t, Stmt::SelectAll))
            .map_err(db_err)?;
        let n = t.cols.len();
        let rows = st.query_map([], |r| read_row(r, n)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn select_key(&mut self, t: &TableSpec, key: &[&str]) -> Result<Option<Row>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(&sql(t, Stmt::SelectKey))
            .map_err(db_err)?;
        let n = t.cols.len();
        st.query_row(params_from_iter(key.iter()), |r| read_row(r, n))
            .optional()
            .map_err(db_err)
    }

    fn upsert(&mut self, t: &TableSpec, row: &Row) -> Result<(), StoreError> {
        self.wrote = true;
        let mut st = self
            .conn
            .prepare_cached(&sql(t, Stmt::Upsert))
            .map_err(db_err)?;
        st.execute(params_from_iter(row.iter())).map_err(db_err)?;
        Ok(())
    }

    fn update(
        &mut self,
        t: &TableSpec,
        key: &[&str],
        cols: &[(usize, Option<String>)],
    ) -> Result<bool, StoreError> {
        if cols.is_empty() {
            return Ok(self.select_key(t, key)?.is_some());
        }
        self.wrote = true;
        // The statement sets the columns in index order: parameters follow that order.
        let mut mask = 0u128;
        for (c, _) in cols {
            if *c >= t.cols.len() || *c >= 128 {
                return Err(StoreError::Backend(format!(
                    "column index {c} out of range"
                )));
            }
            mask |= 1u128 << c;
        }
        // A column named twice takes its last value, as in SQL's own SET list.
        let mut by_col: Vec<Option<Option<&str>>> = vec![None; t.cols.len()];
        for (c, v) in cols {
            by_col[*c] = Some(v.as_deref());
        }
        let mut params: Vec<Option<&str>> = by_col.into_iter().flatten().collect();
        params.extend(key.iter().map(|k| Some(*k)));
        let mut st = self
            .conn
            .prepare_cached(&sql(t, Stmt::Update(mask)))
            .map_err(db_err)?;
        let n = st
            .execute(params_from_iter(params.iter()))
            .map_err(db_err)?;
        Ok(n > 0)
    }

    fn delete_key(&mut self, t: &TableSpec, key: &[&str]) -> Result<bool, StoreError> {
        self.wrote = true;
        let mut st = self
            .conn
            .prepare_cached(&sql(t, Stmt::DeleteKey))
            .map_err(db_err)?;
        Ok(st.execute(params_from_iter(key.iter())).map_err(db_err)? > 0)
    }

    fn delete_where(
        &mut self,
        t: &TableSpec,
        col: usize,
        value: &str,
    ) -> Result<usize, StoreError> {
        self.wrote = true;
        let name = t
            .cols
            .get(col)
            .ok_or_else(|| StoreError::Backend(format!("column index {col} out of range")))?;
        let sql = format!("DELETE FROM {} WHERE {} = ?1", quote(t.name), quote(name));
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        st.execute([value]).map_err(db_err)
    }

    fn delete_all(&mut self, t: &TableSpec) -> Result<usize, StoreError> {
        self.wrote = true;
        self.conn
            .execute(&format!("DELETE FROM {}", quote(t.name)), [])
            .map_err(db_err)
    }

    fn next_int(&mut self, t: &TableSpec, col: usize) -> Result<i64, StoreError> {
        let name = t
            .cols
            .get(col)
            .ok_or_else(|| StoreError::Backend(format!("column index {col} out of range")))?;
        let sql = format!(
            "SELECT max(CAST({0} AS INTEGER)) FROM {1}",
            quote(name),
            quote(t.name)
        );
        let max: Option<i64> = self
            .conn
            .query_row(&sql, [], |r| r.get(0))
            .map_err(db_err)?;
        Ok(max.unwrap_or(0).saturating_add(1))
    }

    fn append_change(&mut self, table: &str, key: &str, op: ChangeOp) -> Result<(), StoreError> {
        self.wrote = true;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO bootherd_changelog (tab, rowkey, op, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db_err)?;
        st.execute(rusqlite::params![table, key, op.as_str(), now])
            .map_err(db_err)?;
        if self.handover {
            let seq = u64::try_from(self.conn.last_insert_rowid()).unwrap_or(0);
            if self.appended.is_none() {
                match self.backend.header_now() {
                    Some(h) => self.appended = Some((h, Vec::new())),
                    None => self.handover = false,
                }
            }
            if let Some((_, v)) = self.appended.as_mut() {
                v.push(Change {
                    seq,
                    table: table.to_string(),
                    key: key.to_string(),
                    op,
                });
                if v.len() > OWN_ENTRIES {
                    self.handover = false;
                    self.appended = None;
                }
            }
        }
        Ok(())
    }

    fn changelog(&mut self) -> Result<Vec<(Change, i64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT seq, tab, rowkey, op, at FROM bootherd_changelog ORDER BY seq")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, table, key, op, at) = row.map_err(db_err)?;
            out.push((
                Change {
                    seq: u64::try_from(seq).unwrap_or(0),
                    table,
                    key,
                    op: ChangeOp::parse(&op).unwrap_or(ChangeOp::Update),
                },
                at,
            ));
        }
        Ok(out)
    }

    fn put_changelog(&mut self, entries: &[(Change, i64)]) -> Result<(), StoreError> {
        self.wrote = true;
        self.handover = false;
        self.appended = None;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO bootherd_changelog (seq, tab, rowkey, op, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?;
        for (c, at) in entries {
            let seq = i64::try_from(c.seq).unwrap_or(i64::MAX);
            st.execute(rusqlite::params![seq, c.table, c.key, c.op.as_str(), at])
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn clear_changelog(&mut self) -> Result<(), StoreError> {
        self.wrote = true;
        self.handover = false;
        self.appended = None;
        self.conn
            .execute("DELETE FROM bootherd_changelog", [])
            .map_err(db_err)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.wrote {
            self.conn
                .prepare_cached(
                    "DELETE FROM bootherd_changelog WHERE seq <= (SELECT max(seq) FROM bootherd_changelog) - ?1",
                )
                .and_then(|mut st| st.execute([CHANGELOG_KEEP]))
                .map_err(db_err)?;
        }
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut st| st.execute([]))
            .map_err(db_err)?;
        self.open = false;
        if self.wrote {
            self.backend.commits.fetch_add(1, Ordering::SeqCst);
        }
        if let (true, Some((before, changes))) = (self.handover, self.appended.take()) {
            // Exactly this commit since `before` (another connection's would have moved the
            // counter further): the header now says "the log up to these entries".
            if let Some(header) = self
                .backend
                .header_now()
                .filter(|h| h.one_commit_after(&before))
            {
                if let Ok(mut own) = self.backend.own.lock() {
                    if own.len() >= OWN_COMMITS {
                        own.pop_front();
                    }
                    own.push_back(OwnCommit { changes, header });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(b: &SqliteBackend, keys: &[&str]) {
        let mut tx = b.write().expect("write");
        for k in keys {
            tx.append_change("nodelist", k, ChangeOp::Upsert)
                .expect("append");
        }
        tx.commit().expect("commit");
    }

    fn keys(c: &[Change]) -> Vec<&str> {
        c.iter().map(|c| c.key.as_str()).collect()
    }

    /// The daemon's own commits are handed to its change follower without reading the log
    /// back, and only while nothing else was committed after them; the commit position moves
    /// at every commit, its own and another process's, and only then.
    #[test]
    fn own_commits_are_handed_over_and_every_commit_moves_the_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let (own, _) = SqliteBackend::open(&path).expect("open");
        let (other, _) = SqliteBackend::open(&path).expect("open again");
        let p0 = own.commit_position().expect("position");
        assert_eq!(
            own.commit_position().expect("position"),
            p0,
            "nothing committed"
        );
        let (_, start) = own.change_bounds().expect("bounds");

        append(&own, &["node=a", "node=b"]);
        let p1 = own.commit_position().expect("position");
        assert!(p1 > p0, "its own commit moves the position");
        let reads = own.log_reads.load(Ordering::Relaxed);
        let got = own.changes_since(start, 100).expect("changes");
        assert_eq!(keys(&got), ["node=a", "node=b"]);
        assert_eq!(got[0].seq, start + 1);
        assert_eq!(
            own.log_reads.load(Ordering::Relaxed),
            reads,
            "not read back"
        );
        // Its next commit follows on.
        append(&own, &["node=c"]);
        let got = own.changes_since(start, 100).expect("changes");
        assert_eq!(keys(&got), ["node=a", "node=b", "node=c"]);
        assert_eq!(
            own.log_reads.load(Ordering::Relaxed),
            reads,
            "not read back"
        );

        // Another connection's commit: the position moves, and the log is read, with it.
        append(&other, &["node=x"]);
        let p2 = own.commit_position().expect("position");
        assert!(p2 > p1);
        let got = own.changes_since(start, 100).expect("changes");
        assert_eq!(keys(&got), ["node=a", "node=b", "node=c", "node=x"]);
        assert!(
            own.log_reads.load(Ordering::Relaxed) > reads,
            "read from the log"
        );

        // Its own commit with another's after it: not handed over alone.
        let last = got.last().expect("x").seq;
        append(&own, &["node=d"]);
        append(&other, &["node=y"]);
        let got = own.changes_since(last, 100).expect("changes");
        assert_eq!(keys(&got), ["node=d", "node=y"]);
        // Another's commit before its own: the own commit is not handed over either (the
        // follower's position is not right before it).
        let last = got.last().expect("y").seq;
        append(&other, &["node=z"]);
        append(&own, &["node=e"]);
        let got = own.changes_since(last, 100).expect("changes");
        assert_eq!(keys(&got), ["node=z", "node=e"]);
        assert!(own.commit_position().expect("position") > p2);
        // More than the limit: read from the log, the limit kept.
        let got = own.changes_since(start, 2).expect("changes");
        assert_eq!(keys(&got), ["node=a", "node=b"]);
    }
}
