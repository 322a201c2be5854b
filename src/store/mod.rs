//! The table store: every fact about the cluster, in xCAT's tables, behind one API.
//!
//! This room owns the schema ([`schema`], [`defspec`]), the backends ([`sqlite`], [`postgres`],
//! behind [`backend::Backend`]), the change log that every write appends to in the same transaction,
//! node-attribute resolution with xCAT's inheritance and regex rules ([`resolver`], [`regexattr`]),
//! noderange expansion ([`noderange`]) and the xCAT CSV format ([`csv`]).
//!
//! Architecture invariant: only this module knows SQL. Everything else reads through [`Store`] /
//! [`resolver::Resolver`] and writes through [`Txn`], so the change log can never be bypassed.

pub mod backend;
pub mod csv;
pub mod defspec;
pub mod noderange;
pub mod postgres;
pub mod regexattr;
pub mod resolver;
pub mod schema;
pub mod sqlite;
pub mod validate;
pub mod walindex;
pub mod watch;

use std::path::PathBuf;

use backend::{Backend, BackendTx};
pub use backend::{Change, ChangeOp, Row};
pub use schema::TableSpec;

/// How [`Store::open_existing`]'s error for a missing store begins.
pub const NO_STORE: &str = "there is no store there yet";

/// The database used when neither `--db` nor `BOOTHERD_DB` says otherwise.
pub const DEFAULT_DB_URL: &str = "sqlite:/var/lib/bootherd/bootherd.db";

/// Everything that can go wrong in the store, phrased for the admin who has to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the table store {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("unsupported database URL '{0}' (expected sqlite:/path/to/file.db or postgres://user:password@host:port/dbname)")]
    BadUrl(String),
    #[error("the table store is busy: {0}")]
    Busy(String),
    /// The database server did not answer (down, restarting, unreachable): trying later may work.
    #[error("cannot reach the table store {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("database error: {0}")]
    Backend(String),
    #[error("no such table: {0}")]
    UnknownTable(String),
    #[error("no column '{column}' in table '{table}'")]
    UnknownColumn { table: String, column: String },
    #[error("table '{table}': key column '{column}' must not be empty")]
    MissingKey { table: String, column: String },
    #[error("{0}")]
    Invalid(String),
}

/// Resolves a table name to its spec.
pub fn table_spec(name: &str) -> Result<&'static TableSpec, StoreError> {
    schema::table(name).ok_or_else(|| StoreError::UnknownTable(name.to_string()))
}

/// Index of `column` in `table`.
pub fn column_index(table: &TableSpec, column: &str) -> Result<usize, StoreError> {
    table
        .col_index(column)
        .ok_or_else(|| StoreError::UnknownColumn {
            table: table.name.to_string(),
            column: column.to_string(),
        })
}

/// True when a row's `disable` column says the row is commented out. xCAT treats every value other
/// than NULL, `0` and `no` as disabled; an empty string is treated as not disabled here, since CSV
/// editors write `""` for "nothing".
pub fn is_disabled(table: &TableSpec, row: &Row) -> bool {
    let Some(i) = table.col_index("disable") else {
        return false;
    };
    match row.get(i).and_then(|v| v.as_deref()) {
        None => false,
        Some(v) => {
            let v = v.trim();
            !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("no"))
        }
    }
}

/// Who is writing, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub command: String,
    pub noderange: String,
    pub args: String,
}

/// One admin request as the audit log records it (xcatd's `validate`): who, from where, what,
/// and whether the policy allowed it.
#[derive(Debug, Clone, Default)]
pub struct RequestAudit {
    pub user: String,
    pub client: String,
    pub clienttype: String,
    pub command: String,
    pub noderange: String,
    pub args: String,
    /// `Allowed` or `Denied`.
    pub status: String,
}

thread_local! {
    /// Set while a thread serves an admin request whose audit row is already written.
    static REQUEST_AUDITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` for an admin request already recorded by [`Store::audit_request`]: the writes it
/// makes add no audit rows of their own (one request, one row, as xcatd keeps it).
pub fn with_request_audited<T>(f: impl FnOnce() -> T) -> T {
    let prev = REQUEST_AUDITED.with(|c| c.replace(true));
    let r = f();
    REQUEST_AUDITED.with(|c| c.set(prev));
    r
}

/// Where a store URL points.
enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

/// A handle on the table store. Cheap to share behind an `Arc`; every method is synchronous
/// (the daemon calls it from a blocking pool).
pub struct Store {
    backend: Box<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.describe())
            .finish()
    }
}

impl Store {
    /// Opens the store named by `url` (`sqlite:/path`, or a bare path), creating and seeding it with
    /// xCAT's site defaults on first use.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_reporting(url).map(|(s, _)| s)
    }

    /// Opens the store at `url`, creating (and seeding) it when it does not exist yet; also says
    /// whether it was created just now.
    pub fn open_reporting(url: &str) -> Result<(Store, bool), StoreError> {
        let (store, created) = Self::open_unseeded(url)?;
        if created {
            store.seed_defaults()?;
        }
        Ok((store, created))
    }

    /// Opens (creating when needed) without seeding a new store: `db copy`'s target.
    fn open_unseeded(url: &str) -> Result<(Store, bool), StoreError> {
        let (backend, created): (Box<dyn Backend>, bool) = match Self::locate(url)? {
            Location::Sqlite(path) => {
                let (b, c) = sqlite::SqliteBackend::open(&path)?;
                (Box::new(b), c)
            }
            Location::Postgres(u) => {
                let (b, c) = postgres::PgBackend::open(&u, true)?;
                (Box::new(b), c)
            }
        };
        Ok((Store { backend }, created))
    }

    /// Opens the store at `url` only if it exists: what read-only commands use, so a mistyped
    /// or forgotten `--db` is reported instead of answered from an empty new store.
    pub fn open_existing(url: &str) -> Result<Store, StoreError> {
        match Self::locate(url)? {
            Location::Sqlite(path) => {
                if !path.exists() {
                    return Err(StoreError::Open {
                        url: url.to_string(),
                        reason: format!(
                            "{NO_STORE} (`bootherd serve` or an admin command that writes creates it; \
                             set BOOTHERD_DB or --db to use another)"
                        ),
                    });
                }
                Self::open(url)
            }
            Location::Postgres(u) => {
                let (b, _) = postgres::PgBackend::open(&u, false)?;
                Ok(Store {
                    backend: Box::new(b),
                })
            }
        }
    }

    /// The SQLite file a store URL names (`None` for another backend).
    pub fn sqlite_file(url: &str) -> Option<PathBuf> {
        match Self::locate(url) {
            Ok(Location::Sqlite(p)) => Some(p),
            _ => None,
        }
    }

    /// Which backend a store URL names.
    fn locate(url: &str) -> Result<Location, StoreError> {
        let path = if let Some(p) = url.strip_prefix("sqlite://") {
            PathBuf::from(p)
        } else if let Some(p) = url.strip_prefix("sqlite:") {
            PathBuf::from(p)
        } else if url.starts_with('/') || url.starts_with('.') {
            PathBuf::from(url)
        } else if postgres::is_url(url) {
            return Ok(Location::Postgres(url.to_string()));
        } else {
            return Err(StoreError::BadUrl(postgres::redact(url)));
        };
        if path.as_os_str().is_empty() {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        Ok(Location::Sqlite(path))
    }

    /// A fresh in-memory store with site defaults (tests and benchmarks).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let (backend, _) = sqlite::SqliteBackend::open_in_memory()?;
        let store = Store {
            backend: Box::new(backend),
        };
        store.seed_defaults()?;
        Ok(store)
    }

    /// For tests: a new store's URL in `dir` — SQLite there, or a new database on the PostgreSQL
    /// server that `BOOTHERD_TEST_PG` names (`postgres://user@host:port`; tests/run.sh's
    /// PostgreSQL pass sets it).
    #[doc(hidden)]
    pub fn test_url(dir: &std::path::Path, name: &str) -> String {
        match std::env::var("BOOTHERD_TEST_PG") {
            Ok(base) if !base.is_empty() => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                format!(
                    "{}/ut_{}_{n}_{}",
                    base.trim_end_matches('/'),
                    std::process::id(),
                    name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                )
            }
            _ => format!("sqlite:{}", dir.join(format!("{name}.db")).display()),
        }
    }

    /// For tests: [`Store::open_in_memory`], or under `BOOTHERD_TEST_PG` a new PostgreSQL
    /// database with the same defaults.
    #[doc(hidden)]
    pub fn open_test() -> Result<Store, StoreError> {
        if std::env::var("BOOTHERD_TEST_PG").is_ok_and(|v| !v.is_empty()) {
            return Self::open(&Self::test_url(std::path::Path::new("/nonexistent"), "mem"));
        }
        Self::open_in_memory()
    }

    /// Where the data lives, for messages.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Whether several appliances may write this store (see [`backend::Backend::shared`]).
    pub fn shared(&self) -> bool {
        self.backend.shared()
    }

    /// xCAT's `initDB` site defaults (xcatconfig), for a store created just now.
    fn seed_defaults(&self) -> Result<(), StoreError> {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let domain = host
            .split_once('.')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "cluster".into());
        let defaults: &[(&str, &str)] = &[
            ("blademaxp", "64"),
            ("consoleondemand", "no"),
            ("databaseloc", "/var/lib"),
            ("dhcplease", "43200"),
            ("dnshandler", "ddns"),
            ("domain", &domain),
            ("fsptimeout", "0"),
            ("installdir", "/install"),
            ("ipmimaxp", "64"),
            ("ipmiretries", "3"),
            ("ipmitimeout", "2"),
            ("maxssh", "8"),
            ("nodesyncfiledir", "/var/xcat/node/syncfiles"),
            ("powerinterval", "0"),
            ("ppcmaxp", "64"),
            ("ppcretry", "3"),
            ("ppctimeout", "0"),
            ("sharedtftp", "1"),
            ("sshbetweennodes", "ALLGROUPS"),
            ("syspowerinterval", "0"),
            ("tftpdir", "/tftpboot"),
            ("useNmapfromMN", "no"),
            ("xcatconfdir", "/etc/xcat"),
            ("xcatdport", "3001"),
            ("xcatiport", "3002"),
            ("httpport", "80"),
            ("dhcpomapikeyname", "xcat_key"),
            ("omapiport", "7911"),
            ("nfsport", "2049"),
            // The rest of xcatconfig's initDB keys.
            ("SNsyncfiledir", "/var/xcat/syncfiles"),
            ("enableASMI", "no"),
            ("db2installloc", "/mntdb2"),
            ("vsftp", "n"),
            ("cleanupxcatpost", "no"),
            ("cleanupdiskfullxcatpost", "no"),
            ("auditnosyslog", "0"),
            ("xcatsslversion", ""),
            ("xcattlspolicy", "modern"),
        ];
        // xcatconfig's default policy rows (Linux), priority → (commands, name); 1.2 names the
        // management node (its certificate's CN, the host name) as trusted.
        let policy: &[(&str, Option<&str>, Option<&str>)] = &[
            ("1", None, Some("root")),
            ("1.2", None, Some(host.as_str())),
            ("2", Some("getbmcconfig"), None),
            ("2.1", Some("remoteimmsetup"), None),
            ("2.3", Some("lsxcatd"), None),
            ("3", Some("nextdestiny"), None),
            ("4", Some("getdestiny"), None),
            ("4.4", Some("getpostscript"), None),
            ("4.5", Some("getcredentials"), None),
            ("4.6", Some("syncfiles"), None),
            ("4.7", Some("litefile"), None),
            ("4.8", Some("litetree"), None),
            ("4.9", Some("getadapter"), None),
        ];
        self.write(None, |tx| {
            for (k, v) in defaults {
                tx.set("site", &[k], &[("value", Some(v))])?;
            }
            for (prio, commands, name) in policy {
                // Without a host name there is no management node to trust (an empty name
                // would match everyone).
                if name.is_some_and(str::is_empty) {
                    continue;
                }
                tx.set(
                    "policy",
                    &[prio],
                    &[
                        ("name", *name),
                        ("commands", *commands),
                        (
                            "rule",
                            Some(if *prio == "1.2" { "trusted" } else { "allow" }),
                        ),
                    ],
                )?;
            }
            // xcatconfig's xcatdefaults row: every node runs these first (bootherd ships them,
            // and `bootherd serve` puts them in <installdir>/postscripts).
            tx.set(
                "postscripts",
                &["xcatdefaults"],
                &[
                    ("postscripts", Some("syslog,remoteshell,syncfiles")),
                    ("postbootscripts", Some("otherpkgs")),
                ],
            )?;
            Ok(())
        })
    }

    /// Every row of `table`, in insertion order, disabled rows included.
    pub fn rows(&self, table: &str) -> Result<Vec<Row>, StoreError> {
        let spec = table_spec(table)?;
        let mut tx = self.backend.read()?;
        tx.select_all(spec)
    }

    /// Reads several tables from one consistent snapshot.
    pub fn read_tables(&self, tables: &[&'static TableSpec]) -> Result<Vec<Vec<Row>>, StoreError> {
        let mut tx = self.backend.read()?;
        tables.iter().map(|t| tx.select_all(t)).collect()
    }

    /// One row by key.
    pub fn get(&self, table: &str, key: &[&str]) -> Result<Option<Row>, StoreError> {
        let spec = table_spec(table)?;
        let mut tx = self.backend.read()?;
        tx.select_key(spec, key)
    }

    /// A site value (enabled rows only).
    pub fn site(&self, key: &str) -> Result<Option<String>, StoreError> {
        let spec = table_spec("site")?;
        let row = self.get("site", &[key])?;
        Ok(row
            .filter(|r| !is_disabled(spec, r))
            .and_then(|r| r.get(1).cloned().flatten()))
    }

    /// Runs `f` in one write transaction: either everything it did is committed (with its change-log
    /// entries and, when `audit` is given, one auditlog row), or nothing is.
    pub fn write<T>(
        &self,
        audit: Option<&Audit>,
        f: impl FnOnce(&mut Txn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let began = std::time::Instant::now();
        let mut txn = Txn {
            tx: self.backend.write()?,
        };
        let out = f(&mut txn)?;
        if let Some(a) = audit {
            if !REQUEST_AUDITED.with(|c| c.get()) {
                txn.audit(a)?;
            }
        }
        txn.tx.commit()?;
        crate::metrics::STORE_COMMIT.observe(began.elapsed());
        Ok(out)
    }

    /// Appends one auditlog row for an admin request, unless `site.auditskipcmds` names its
    /// command, `clienttype:<type>`, or `ALL`.
    pub fn audit_request(&self, a: &RequestAudit) -> Result<(), StoreError> {
        self.write(None, |tx| {
            let skip = tx
                .get("site", &["auditskipcmds"])?
                .and_then(|r| r.get(1).cloned().flatten())
                .unwrap_or_default();
            let client = format!("clienttype:{}", a.clienttype);
            if skip
                .split(',')
                .map(str::trim)
                .any(|s| s.eq_ignore_ascii_case("ALL") || s == a.command || s == client)
            {
                return Ok(());
            }
            let spec = table_spec("auditlog")?;
            let mut row: Row = vec![None; spec.cols.len()];
            let mut put = |col: &str, v: &str| {
                if let Some(i) = spec.col_index(col) {
                    row[i] = (!v.is_empty()).then(|| v.to_string());
                }
            };
            put("audittime", &now_xcat());
            put("userid", &a.user);
            put("clientname", &a.client);
            put("clienttype", &a.clienttype);
            put("command", &a.command);
            put("noderange", &a.noderange);
            put("args", &a.args);
            put("status", &a.status);
            tx.put("auditlog", row)
        })
    }

    /// Change-log entries after `seq`.
    pub fn changes_since(&self, seq: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.backend.changes_since(seq, limit)
    }

    /// `(oldest, newest)` change-log sequence numbers.
    pub fn change_bounds(&self) -> Result<(u64, u64), StoreError> {
        self.backend.change_bounds()
    }

    /// Cheap probe that moves when another connection commits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.backend.data_version()
    }

    /// Woken soon after a commit by another process, where the backend can tell (PostgreSQL's
    /// NOTIFY); see [`backend::Backend::change_notifier`].
    pub fn change_notifier(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.backend.change_notifier()
    }

    /// Copies the whole store at `from` into the store at `to` verbatim: every table's rows in
    /// their order (the audit log too) and the change log with its positions, in one transaction
    /// on the target. The target must be empty (no rows, no change log; a store that does not
    /// exist yet is created empty) unless `force`, which replaces what it holds.
    pub fn copy(from: &str, to: &str, force: bool) -> Result<CopyReport, StoreError> {
        let src = Self::open_existing(from)?;
        let (dst, _) = Self::open_unseeded(to)?;
        let mut rtx = src.backend.read()?;
        let mut tables = Vec::with_capacity(schema::TABLES.len());
        for t in schema::TABLES {
            tables.push((t, rtx.select_all(t)?));
        }
        let log = rtx.changelog()?;
        drop(rtx);
        let mut wtx = dst.backend.write()?;
        let mut held = Vec::new();
        for t in schema::TABLES {
            let n = wtx.select_all(t)?.len();
            if n > 0 {
                held.push(format!("{} ({n})", t.name));
            }
        }
        let had_log = !wtx.changelog()?.is_empty();
        if (!held.is_empty() || had_log) && !force {
            let what = if held.is_empty() {
                "a change log".to_string()
            } else {
                format!("rows in {}", held.join(", "))
            };
            return Err(StoreError::Invalid(format!(
                "the target store {} is not empty (it holds {what}); copy into an empty one, or \
                 give --force to replace its contents",
                dst.describe()
            )));
        }
        let mut report = CopyReport {
            rows: 0,
            tables: 0,
            changes: log.len(),
            position: log.last().map(|(c, _)| c.seq).unwrap_or(0),
        };
        for (t, rows) in &tables {
            wtx.delete_all(t)?;
            if !rows.is_empty() {
                report.tables += 1;
            }
            for r in rows {
                wtx.upsert(t, r)?;
                report.rows += 1;
            }
        }
        wtx.clear_changelog()?;
        wtx.put_changelog(&log)?;
        wtx.commit()?;
        Ok(report)
    }

    /// Where the store's commits are: moves once any commit (this process's included) has returned;
    /// never decreases. See [`backend::Backend::commit_position`].
    pub fn commit_position(&self) -> Result<u64, StoreError> {
        self.backend.commit_position()
    }
}

/// What [`Store::copy`] moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows over every table, the audit log included.
    pub rows: usize,
    /// Tables that had rows.
    pub tables: usize,
    /// Change-log entries.
    pub changes: usize,
    /// The newest change-log position (what followers of the target resume from).
    pub position: u64,
}

/// A write transaction. Every mutation validates its input against the schema and appends to the
/// change log; nothing is visible to others until [`Store::write`] commits.
pub struct Txn<'a> {
    tx: Box<dyn BackendTx + 'a>,
}

fn key_string(spec: &TableSpec, key: &[&str]) -> String {
    spec.keys
        .iter()
        .zip(key)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn check_key(spec: &TableSpec, key: &[&str]) -> Result<(), StoreError> {
    if key.len() != spec.keys.len() {
        return Err(StoreError::Invalid(format!(
            "table '{}' is keyed by {} but {} key value(s) were given",
            spec.name,
            spec.keys.join(","),
            key.len()
        )));
    }
    for (k, v) in spec.keys.iter().zip(key) {
        if v.is_empty() {
            return Err(StoreError::MissingKey {
                table: spec.name.into(),
                column: (*k).into(),
            });
        }
    }
    Ok(())
}

impl Txn<'_> {
    /// Every row of `table` as this transaction sees it.
    pub fn rows(&mut self, table: &str) -> Result<Vec<Row>, StoreError> {
        let spec = table_spec(table)?;
        self.tx.select_all(spec)
    }

    /// One row by key.
    pub fn get(&mut self, table: &str, key: &[&str]) -> Result<Option<Row>, StoreError> {
        let spec = table_spec(table)?;
        check_key(spec, key)?;
        self.tx.select_key(spec, key)
    }

    /// The rows of single-key table `table` whose key is one of `keys` (in one statement where
    /// the backend can; missing keys are left out, order not kept).
    pub fn get_many(&mut self, table: &str, keys: &[&str]) -> Result<Vec<Row>, StoreError> {
        let spec = table_spec(table)?;
        if spec.keys.len() != 1 {
            return Err(StoreError::Invalid(format!(
                "table '{}' has {} key columns; get_many takes single-key tables",
                spec.name,
                spec.keys.len()
            )));
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.tx.select_keys(spec, keys)
    }

    /// Inserts or replaces a whole row (one value per column, schema order). An auto-increment
    /// column left empty gets the next number.
    pub fn put(&mut self, table: &str, mut row: Row) -> Result<(), StoreError> {
        let spec = table_spec(table)?;
        if row.len() != spec.cols.len() {
            return Err(StoreError::Invalid(format!(
                "table '{}' has {} columns, row has {}",
                spec.name,
                spec.cols.len(),
                row.len()
            )));
        }
        if let Some(ai) = spec.autoinc.and_then(|c| spec.col_index(c)) {
            if row
                .get(ai)
                .is_none_or(|v| v.as_deref().is_none_or(str::is_empty))
            {
                row[ai] = Some(self.tx.next_int(spec, ai)?.to_string());
            }
        }
        let key: Vec<&str> = spec
            .keys
            .iter()
            .map(|k| {
                spec.col_index(k)
                    .and_then(|i| row.get(i))
                    .and_then(|v| v.as_deref())
                    .unwrap_or("")
            })
            .collect();
        check_key(spec, &key)?;
        for (c, v) in spec.cols.iter().zip(&row) {
            if let Some(v) = v {
                validate::value(spec, &key, c, v).map_err(StoreError::Invalid)?;
            }
        }
        let ks = key_string(spec, &key);
        self.tx.upsert(spec, &row)?;
        self.tx.append_change(spec.name, &ks, ChangeOp::Upsert)
    }

    /// Sets columns of the row with `key`, creating the row when it does not exist.
    /// A `None` value clears the column.
    pub fn set(
        &mut self,
        table: &str,
        key: &[&str],
        values: &[(&str, Option<&str>)],
    ) -> Result<(), StoreError> {
        let spec = table_spec(table)?;
        check_key(spec, key)?;
        for (k, v) in spec.keys.iter().zip(key) {
            validate::value(spec, key, k, v).map_err(StoreError::Invalid)?;
        }
        let mut cols = Vec::with_capacity(values.len());
        for (c, v) in values {
            if let Some(v) = v {
                validate::value(spec, key, c, v).map_err(StoreError::Invalid)?;
            }
            let i = column_index(spec, c)?;
            if spec.keys.contains(c) {
                return Err(StoreError::Invalid(format!(
                    "'{}.{}' is a key column; it cannot be changed, only the row it names",
                    spec.name, c
                )));
            }
            cols.push((i, v.map(str::to_string)));
        }
        let ks = key_string(spec, key);
        if self.tx.update(spec, key, &cols)? {
            return self.tx.append_change(spec.name, &ks, ChangeOp::Update);
        }
        let mut row: Row = vec![None; spec.cols.len()];
        for (k, v) in spec.keys.iter().zip(key) {
            let i = column_index(spec, k)?;
            row[i] = Some((*v).to_string());
        }
        for (i, v) in cols {
            row[i] = v;
        }
        self.tx.upsert(spec, &row)?;
        self.tx.append_change(spec.name, &ks, ChangeOp::Upsert)
    }

    /// Deletes the row with `key`; false when there was none.
    pub fn delete(&mut self, table: &str, key: &[&str]) -> Result<bool, StoreError> {
        let spec = table_spec(table)?;
        check_key(spec, key)?;
        let gone = self.tx.delete_key(spec, key)?;
        if gone {
            self.tx
                .append_change(spec.name, &key_string(spec, key), ChangeOp::Delete)?;
        }
        Ok(gone)
    }

    /// Deletes every row of `table` whose `column` equals `value` (for example every `switch` row of a node).
    pub fn delete_where(
        &mut self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<usize, StoreError> {
        let spec = table_spec(table)?;
        let i = column_index(spec, column)?;
        let n = self.tx.delete_where(spec, i, value)?;
        if n > 0 {
            self.tx
                .append_change(spec.name, &format!("{column}={value}"), ChangeOp::Delete)?;
        }
        Ok(n)
    }

    /// Removes every row of `table`.
    pub fn clear(&mut self, table: &str) -> Result<(), StoreError> {
        let spec = table_spec(table)?;
        self.tx.delete_all(spec)?;
        self.tx.append_change(spec.name, "*", ChangeOp::Clear)
    }

    /// Appends one auditlog row, unless `site.auditskipcmds` names the command (or `ALL`).
    fn audit(&mut self, a: &Audit) -> Result<(), StoreError> {
        let skip = self
            .get("site", &["auditskipcmds"])?
            .and_then(|r| r.get(1).cloned().flatten())
            .unwrap_or_default();
        if skip
            .split(',')
            .map(str::trim)
            .any(|s| s.eq_ignore_ascii_case("ALL") || s == a.command)
        {
            return Ok(());
        }
        let spec = table_spec("auditlog")?;
        let user = local_user();
        let host = local_host();
        let mut row: Row = vec![None; spec.cols.len()];
        let mut put = |col: &str, v: String| {
            if let Some(i) = spec.col_index(col) {
                row[i] = Some(v);
            }
        };
        put("audittime", now_xcat());
        put("userid", user);
        put("clientname", host);
        put("clienttype", "cli".into());
        put("command", a.command.clone());
        put("noderange", a.noderange.clone());
        put("args", a.args.clone());
        put("status", "Allowed".into());
        self.put("auditlog", row)
    }
}

/// Who runs this process, for the audit log: the user behind `sudo`, else the uid's name.
pub fn local_user() -> String {
    std::env::var("SUDO_USER")
        .ok()
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

/// This machine's host name.
pub fn local_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The current local time in xCAT's table format (`MM-DD-YYYY HH:MM:SS`).
pub fn now_xcat() -> String {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .map(|t| t.tv_sec())
        .unwrap_or(0);
    xcat_time(t)
}

/// A time (seconds since the epoch) as local `(MM/DD/YYYY, HH:MM:SS)` (reventlog's format).
pub fn local_date_time(epoch: i64) -> (String, String) {
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let tt: libc::time_t = epoch;
    // SAFETY: localtime_r writes into our own tm and reads only tt.
    unsafe { libc::localtime_r(&tt, &mut tm) };
    (
        format!(
            "{:02}/{:02}/{:04}",
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_year + 1900
        ),
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec),
    )
}

/// A time (seconds since the epoch) in xCAT's table format, local time.
pub fn xcat_time(epoch: i64) -> String {
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let tt: libc::time_t = epoch;
    // SAFETY: localtime_r writes into our own tm and reads only tt.
    unsafe { libc::localtime_r(&tt, &mut tm) };
    format!(
        "{:02}-{:02}-{:04} {:02}:{:02}:{:02}",
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_moves_every_table_and_the_log_verbatim_into_an_empty_store_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = Store::test_url(dir.path(), "from");
        let to = Store::test_url(dir.path(), "to");
        let src = Store::open(&from).expect("open");
        let audit = Audit {
            command: "nodeadd".into(),
            noderange: "c1".into(),
            args: "groups=all".into(),
        };
        src.write(Some(&audit), |tx| {
            for n in ["c3", "c1", "c2"] {
                tx.set("nodelist", &[n], &[("groups", Some("all"))])?;
            }
            tx.set("hosts", &["c1"], &[("ip", Some("10.9.0.1"))])
        })
        .expect("write");
        src.write(None, |tx| tx.delete("nodelist", &["c2"]))
            .expect("delete");
        let r = Store::copy(&from, &to, false).expect("copy");
        let dst = Store::open_existing(&to).expect("open copy");
        for t in schema::TABLES {
            assert_eq!(
                dst.rows(t.name).expect("rows"),
                src.rows(t.name).expect("rows"),
                "{}",
                t.name
            );
        }
        // Rows keep their order (c3 was written first), the audit row is there.
        let nodes: Vec<Option<String>> = dst
            .rows("nodelist")
            .expect("rows")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(nodes, [Some("c3".to_string()), Some("c1".to_string())]);
        assert_eq!(dst.rows("auditlog").expect("rows").len(), 1);
        assert_eq!(
            dst.change_bounds().expect("bounds"),
            src.change_bounds().expect("bounds")
        );
        assert_eq!(r.position, src.change_bounds().expect("bounds").1);
        assert_eq!(
            dst.changes_since(0, 1_000_000).expect("log"),
            src.changes_since(0, 1_000_000).expect("log")
        );
        // A second copy into the now non-empty target is refused, and changes nothing.
        let e = Store::copy(&from, &to, false).expect_err("refused");
        assert!(e.to_string().contains("is not empty"), "{e}");
        assert_eq!(dst.rows("nodelist").expect("rows").len(), 2);
        // The copy's next change follows the copied log without a gap.
        let newest = dst.change_bounds().expect("bounds").1;
        dst.write(None, |tx| {
            tx.set("nodelist", &["c9"], &[("groups", Some("all"))])
        })
        .expect("write");
        assert_eq!(dst.change_bounds().expect("bounds").1, newest + 1);
    }
}
