//! The embedded SQLite backend (the default): one file, WAL, a busy timeout so that admin commands
//! and the daemon can write from different processes, and numbered schema migrations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, OptionalExtension};

use super::backend::{Backend, BackendTx, Change, ChangeOp, Row};
use super::schema::{TableSpec, TABLES};
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
}

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
            commits: &self.commits,
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
            commits: &self.commits,
        }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
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
        self.on_follower(|c| {
            let mut st = c.prepare_cached("PRAGMA data_version").map_err(db_err)?;
            let v: i64 = st.query_row([], |r| r.get(0)).map_err(db_err)?;
            Ok(u64::try_from(v).unwrap_or(0))
        })
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
    commits: &'a AtomicU64,
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
            self.commits.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}
