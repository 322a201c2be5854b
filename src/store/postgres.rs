//! The PostgreSQL backend: the same tables, change log and audit as SQLite, in a database that
//! several appliances can share.
//!
//! Client: `tokio-postgres` (the rust-postgres project), driven by a private one-thread runtime
//! owned by the backend. The store API is synchronous and is called from plain threads, tokio's
//! blocking pool and tokio worker threads alike; the connections' I/O runs on the private runtime
//! and callers wait on the client's channel-based futures with `futures_executor::block_on`, so no
//! caller ever starts a runtime inside another (what the synchronous `postgres` crate would do).
//!
//! Ordering of the change log: every write transaction takes one transaction-scoped advisory
//! lock first ([`WRITE_LOCK`]), so writers are serialised as SQLite's `BEGIN IMMEDIATE` serialises
//! them. Each transaction numbers its change-log entries `max(seq)+1…` under that lock and the lock
//! is released only after the commit became visible, so a reader's snapshot always holds a prefix
//! of the log: no reader can see seq n+1 without n, and positions have no gaps (no sequence is
//! used, so a rolled-back transaction leaves no hole). Reads run in `REPEATABLE READ READ ONLY`
//! snapshots and never wait for writers.
//!
//! Change notification: each commit sends `NOTIFY bootherd_changes` (delivered at commit); a
//! listener connection wakes [`Backend::change_notifier`] so the daemon reads the log within
//! milliseconds. Correctness never depends on it: [`Backend::commit_position`] asks the database.
//!
//! Connection loss: a broken connection is replaced before the next transaction, with backoff and
//! one log line when it is lost and one when it is back. A transaction that was cut off is rolled
//! back by the server; a commit whose answer was lost is settled by asking `txid_status` on a new
//! connection, so a command is reported as applied exactly when it was.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use super::backend::{Backend, BackendTx, Change, ChangeOp, Row};
use super::schema::{TableSpec, TABLES};
use super::StoreError;

/// The advisory lock every write transaction holds (any number, the same in every bootherd).
const WRITE_LOCK: i64 = 0x626f_6f74_6865_7264; // "bootherd"
/// How long a writer waits for another writer's transaction before giving up.
const LOCK_TIMEOUT: &str = "30s";
/// The change log keeps this many entries (as SQLite's).
const CHANGELOG_KEEP: i64 = 1_000_000;
/// The NOTIFY channel.
pub const CHANNEL: &str = "bootherd_changes";
/// How long commands wait for a lost server to come back before failing.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long the per-request commit-position probe waits for it (requests must not hang).
const PROBE_RECONNECT_FOR: Duration = Duration::from_secs(2);
/// The hidden column that keeps rows in insertion order (SQLite's rowid).
const POS: &str = "bootherd_pos";

/// Schema migrations (PostgreSQL dialect), applied in order under the write lock;
/// `schema_version` in `bootherd_meta` records the last one applied. xCAT's tables come from
/// [`sync_tables`] (the schema is data); only data moves need a numbered step.
const MIGRATIONS: &[&str] = &[
    // 1: bookkeeping tables.
    "CREATE TABLE IF NOT EXISTS bootherd_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT);
     CREATE TABLE IF NOT EXISTS bootherd_changelog (
         seq BIGINT PRIMARY KEY,
         tab TEXT NOT NULL,
         rowkey TEXT NOT NULL,
         op TEXT NOT NULL,
         at BIGINT NOT NULL);",
];

struct Conn {
    client: Client,
    stmts: HashMap<String, Statement>,
}

impl Conn {
    fn stmt(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = block_on(self.client.prepare(sql))?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let st = self.stmt(sql)?;
        block_on(self.client.query(&st, params))
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let st = self.stmt(sql)?;
        block_on(self.client.execute(&st, params))
    }

    fn batch(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        block_on(self.client.batch_execute(sql))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

pub struct PgBackend {
    /// The URL without its password, for messages.
    shown: String,
    cfg: Config,
    tls: Tls,
    rt: Option<tokio::runtime::Runtime>,
    conn: Mutex<Option<Conn>>,
    /// Change-log reads and the commit position, on a connection of their own (as SQLite's probe).
    probe: Mutex<Option<Conn>>,
    changed: Arc<tokio::sync::Notify>,
    listening: AtomicBool,
    /// Set after a connection was lost, until one is made again (one log line each way).
    lost: Arc<AtomicBool>,
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another runtime; this never does.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// True for a `postgres://` or `postgresql://` URL.
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.find('@') {
        Some(i) if !rest[..i].contains('/') => (&rest[..i], &rest[i..]),
        _ => ("", rest),
    };
    let auth = match auth.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => auth.to_string(),
    };
    let tail = match tail.find("password=") {
        Some(i) => {
            let end = tail[i..].find('&').map(|e| i + e).unwrap_or(tail.len());
            format!("{}password=***{}", &tail[..i], &tail[end..])
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{auth}{tail}")
}

/// Describes a client error with the server's message when there is one.
fn pg_err_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

fn db_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        return StoreError::Busy(format!(
            "another writer held the store for over {LOCK_TIMEOUT}"
        ));
    }
    StoreError::Backend(pg_err_text(&e))
}

/// An error that a new connection may cure: the connection is gone or the server is restarting.
fn transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_DOES_NOT_EXIST,
        ]
        .contains(c),
        // No server error: I/O, closed socket, timeouts.
        None => e.as_db_error().is_none(),
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
enum ConnectFail {
    Pg(tokio_postgres::Error),
    /// The backend's runtime stopped (the process is exiting).
    Stopped,
}

impl ConnectFail {
    fn code(&self) -> Option<&SqlState> {
        match self {
            ConnectFail::Pg(e) => e.code(),
            ConnectFail::Stopped => None,
        }
    }
    fn transient(&self) -> bool {
        match self {
            ConnectFail::Pg(e) => transient(e),
            ConnectFail::Stopped => false,
        }
    }
    fn text(&self) -> String {
        match self {
            ConnectFail::Pg(e) => pg_err_text(e),
            ConnectFail::Stopped => "the PostgreSQL client stopped".into(),
        }
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn lock(m: &Mutex<Option<Conn>>) -> MutexGuard<'_, Option<Conn>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PgBackend {
    /// Connects to the database at `url`. With `create`, a missing database is created (through
    /// the server's `postgres` database) and the schema is brought up to date; without it, a
    /// database without bootherd's tables is reported with [`super::NO_STORE`]. Returns the
    /// backend and whether the store was new.
    pub fn open(url: &str, create: bool) -> Result<(PgBackend, bool), StoreError> {
        let shown = redact(url);
        let open_err = |reason: String| StoreError::Open {
            url: shown.clone(),
            reason,
        };
        let (plain, rootcert) = split_rootcert(url);
        let mut cfg: Config = plain
            .parse()
            .map_err(|e: tokio_postgres::Error| open_err(pg_err_text(&e)))?;
        if rootcert.is_some() {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        let tls = if cfg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            if cfg
                .get_hosts()
                .iter()
                .any(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)))
            {
                return Err(open_err(
                    "sslmode=require needs a TCP host (PostgreSQL has no TLS on unix sockets)"
                        .into(),
                ));
            }
            tls_config(rootcert.as_deref()).map_err(open_err)?
        } else {
            Tls::Off
        };
        if cfg.get_dbname().is_none() {
            return Err(open_err(
                "the URL names no database (postgres://user:password@host:port/dbname)".into(),
            ));
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("bootherd");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        // A dead server behind a live route must not hang a request for the kernel's default.
        cfg.keepalives_idle(Duration::from_secs(30));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bootherd-pg")
            .enable_all()
            .build()
            .map_err(|e| open_err(format!("cannot start the client runtime: {e}")))?;
        let b = PgBackend {
            shown: shown.clone(),
            cfg,
            tls,
            rt: Some(rt),
            conn: Mutex::new(None),
            probe: Mutex::new(None),
            changed: Arc::new(tokio::sync::Notify::new()),
            listening: AtomicBool::new(false),
            lost: Arc::new(AtomicBool::new(false)),
        };
        let first = match b.connect_once(&b.cfg) {
            Ok(c) => c,
            Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) && create => {
                b.create_database()?;
                b.connect_once(&b.cfg).map_err(|e| open_err(e.text()))?
            }
            Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
                return Err(open_err(format!(
                    "{} (the database does not exist; `bootherd serve` or an admin command that \
                     writes creates it; set BOOTHERD_DB or --db to use another)",
                    super::NO_STORE
                )))
            }
            Err(e) if e.transient() => {
                return Err(StoreError::Unreachable {
                    url: shown.clone(),
                    reason: e.text(),
                })
            }
            Err(e) => return Err(open_err(e.text())),
        };
        let mut first = first;
        let created = if create {
            migrate(&mut first).map_err(|e| open_err(e.to_string()))?
        } else {
            let has = first
                .query("SELECT to_regclass('bootherd_meta') IS NOT NULL", &[])
                .map_err(|e| open_err(pg_err_text(&e)))?;
            let has: bool = has.first().and_then(|r| r.try_get(0).ok()).unwrap_or(false);
            if !has {
                return Err(open_err(format!(
                    "{} (the database has no bootherd tables; `bootherd serve` or an admin \
                     command that writes creates them; set BOOTHERD_DB or --db to use another)",
                    super::NO_STORE
                )));
            }
            // Tables a newer schema added (as SQLite's open does).
            migrate(&mut first).map_err(|e| open_err(e.to_string()))?
        };
        *lock(&b.conn) = Some(first);
        Ok((b, created))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        // `rt` is only taken in Drop.
        self.rt
            .as_ref()
            .map(|r| r.handle())
            .expect("runtime present until drop")
    }

    /// One connection attempt; its I/O is driven by the private runtime.
    fn connect_once(&self, cfg: &Config) -> Result<Conn, ConnectFail> {
        let cfg = cfg.clone();
        let tls = self.tls.clone();
        let lost = self.lost.clone();
        let task = self.handle().spawn(async move {
            let (client, ended) = open_conn(&cfg, &tls, None).await.map_err(ConnectFail::Pg)?;
            tokio::spawn(async move {
                if let Ok(Some(why)) = ended.await {
                    if !lost.swap(true, Ordering::SeqCst) {
                        tracing::warn!("lost the connection to PostgreSQL: {why}");
                    }
                }
            });
            Ok::<_, ConnectFail>(client)
        });
        match block_on(task) {
            Ok(r) => r.map(|client| Conn {
                client,
                stmts: HashMap::new(),
            }),
            // The runtime is shutting down (process exit).
            Err(_) => Err(ConnectFail::Stopped),
        }
    }

    /// Connects again after a loss, retrying with backoff for up to `patience`.
    fn reconnect(&self, patience: Duration) -> Result<Conn, StoreError> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut said = false;
        loop {
            match self.connect_once(&self.cfg) {
                Ok(c) => {
                    if self.lost.swap(false, Ordering::SeqCst) || said {
                        tracing::info!(store = %self.shown, "reconnected to PostgreSQL");
                    }
                    return Ok(c);
                }
                Err(e) if e.transient() && start.elapsed() + wait <= patience => {
                    if !said {
                        tracing::warn!(
                            store = %self.shown,
                            "PostgreSQL unreachable ({}); retrying for up to {} s",
                            e.text(),
                            patience.as_secs()
                        );
                        said = true;
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot reach PostgreSQL at {}: {}",
                        self.shown,
                        e.text()
                    )))
                }
            }
        }
    }

    /// The connection in `slot`, replaced first when it was closed.
    fn session<'a>(
        &self,
        slot: &'a Mutex<Option<Conn>>,
        patience: Duration,
    ) -> Result<MutexGuard<'a, Option<Conn>>, StoreError> {
        let mut g = lock(slot);
        if g.as_ref().is_none_or(|c| c.client.is_closed()) {
            *g = None;
            *g = Some(self.reconnect(patience)?);
        }
        Ok(g)
    }

    /// Runs `f` on `slot`'s connection; a transient failure (the server restarted since the
    /// connection's last use) gets one more try on a new connection. `f` must be safe to repeat:
    /// a statement outside a transaction, or the `BEGIN` of one.
    fn retrying<'a, T>(
        &self,
        slot: &'a Mutex<Option<Conn>>,
        patience: Duration,
        mut f: impl FnMut(&mut Conn) -> Result<T, tokio_postgres::Error>,
    ) -> Result<(MutexGuard<'a, Option<Conn>>, T), StoreError> {
        let mut g = self.session(slot, patience)?;
        let conn = g
            .as_mut()
            .ok_or_else(|| StoreError::Backend("no connection".into()))?;
        match f(conn) {
            Ok(v) => Ok((g, v)),
            Err(e) if transient(&e) => {
                if !self.lost.swap(true, Ordering::SeqCst) {
                    tracing::warn!(store = %self.shown, "lost the connection to PostgreSQL: {}", pg_err_text(&e));
                }
                *g = None;
                *g = Some(self.reconnect(patience)?);
                let conn = g
                    .as_mut()
                    .ok_or_else(|| StoreError::Backend("no connection".into()))?;
                let v = f(conn).map_err(db_err)?;
                Ok((g, v))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    fn create_database(&self) -> Result<(), StoreError> {
        let name = self.cfg.get_dbname().unwrap_or_default().to_string();
        let mut admin = self.cfg.clone();
        admin.dbname("postgres");
        let conn = self.connect_once(&admin).map_err(|e| StoreError::Open {
            url: self.shown.clone(),
            reason: format!(
                "the database '{name}' does not exist and cannot be created ({}); create it with \
                 `createdb {name}`",
                e.text()
            ),
        })?;
        match conn.batch(&format!("CREATE DATABASE {}", quote(&name))) {
            Ok(()) => {
                tracing::info!(store = %self.shown, "created the database");
                Ok(())
            }
            // Another process created it at the same moment.
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
            Err(e) => Err(StoreError::Open {
                url: self.shown.clone(),
                reason: format!(
                    "the database '{name}' does not exist and cannot be created ({}); create it \
                     with `createdb {name}`",
                    pg_err_text(&e)
                ),
            }),
        }
    }

    /// Starts the listener connection that wakes [`PgBackend::changed`] on every NOTIFY.
    fn start_listener(&self) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let cfg = self.cfg.clone();
        let shown = self.shown.clone();
        let changed = self.changed.clone();
        self.handle()
            .spawn(listen(cfg, self.tls.clone(), shown, changed));
    }
}

/// The listener: LISTEN on its own connection, wake the follower on each notification, and
/// after a loss reconnect with backoff and wake it once (it re-reads the log from its position).
async fn listen(cfg: Config, tls: Tls, shown: String, changed: Arc<tokio::sync::Notify>) {
    let mut wait = Duration::from_millis(100);
    let mut down_since: Option<Instant> = None;
    loop {
        let (client, ended) = match open_conn(&cfg, &tls, Some(changed.clone())).await {
            Ok(c) => c,
            Err(e) => {
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    tracing::warn!(store = %shown, "cannot listen for PostgreSQL change notifications ({}); retrying", pg_err_text(&e));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            if down_since.is_none() {
                down_since = Some(Instant::now());
                tracing::warn!(store = %shown, "cannot listen for PostgreSQL change notifications ({}); retrying", pg_err_text(&e));
            }
            drop(client);
            let _ = ended.await;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            continue;
        }
        wait = Duration::from_millis(100);
        if let Some(t) = down_since.take() {
            tracing::info!(
                store = %shown,
                down_ms = t.elapsed().as_millis() as u64,
                "PostgreSQL is back; following its change notifications again and catching up from the last change read"
            );
        }
        // Whatever was committed while nobody listened is read from the log now.
        changed.notify_one();
        let why = ended
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| "the server closed the connection".into());
        drop(client);
        down_since = Some(Instant::now());
        tracing::warn!(
            store = %shown,
            "lost the PostgreSQL connection that listens for changes ({why}); reconnecting (requests still read the change log directly)"
        );
    }
}

/// How connections are made: plain, or TLS with the server's certificate verified.
#[derive(Clone)]
enum Tls {
    Off,
    On(tokio_postgres_rustls::MakeRustlsConnect),
}

/// Connects and spawns the task that drives the connection on the current runtime; `wake` is
/// woken on each notification. The receiver says why the connection ended (`None`: closed
/// cleanly, as when the client is dropped).
async fn open_conn(
    cfg: &Config,
    tls: &Tls,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> Result<(Client, tokio::sync::oneshot::Receiver<Option<String>>), tokio_postgres::Error> {
    Ok(match tls {
        Tls::Off => {
            let (c, conn) = cfg.connect(NoTls).await?;
            (c, drive(conn, wake))
        }
        Tls::On(m) => {
            let (c, conn) = cfg.connect(m.clone()).await?;
            (c, drive(conn, wake))
        }
    })
}

fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> tokio::sync::oneshot::Receiver<Option<String>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let why = loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if let Some(w) = &wake {
                        w.notify_one();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(pg_err_text(&e)),
                None => break None,
            }
        };
        let _ = tx.send(why);
    });
    rx
}

/// The client TLS settings for `sslmode=require`: the server's certificate must chain to a CA in
/// `rootcert` (a PEM file) or, without one, to the public web roots, and name the host.
fn tls_config(rootcert: Option<&str>) -> Result<Tls, String> {
    let mut roots = rustls::RootCertStore::empty();
    match rootcert {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("sslrootcert {path} holds no certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // ring: pure Rust and assembly, no cmake (aws-lc-rs needs it); it lacks only the
    // post-quantum key exchange, for which rustls marks it deprecated.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::On(tokio_postgres_rustls::MakeRustlsConnect::new(
        config,
    )))
}

/// Takes bootherd's own `sslrootcert=` out of the URL's query (tokio-postgres does not know it).
fn split_rootcert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(v) => {
                root = Some(v.replace("%2F", "/").replace("%2f", "/"));
                false
            }
            None => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_string(), root)
    } else {
        (format!("{base}?{}", kept.join("&")), root)
    }
}

/// Applies pending migrations and creates missing tables/columns, under the write lock (two
/// processes opening a new database at once do not race). Returns true for a new store.
fn migrate(conn: &mut Conn) -> Result<bool, StoreError> {
    // The usual case, a store already up to date: settled by reads, no lock and no commit.
    if schema_version(conn)? == Some(MIGRATIONS.len()) && missing_ddl(conn)?.is_empty() {
        return Ok(false);
    }
    conn.batch(&format!(
        "BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
    ))
    .map_err(db_err)?;
    let r = migrate_locked(conn);
    match r {
        Ok(created) => {
            conn.batch("COMMIT").map_err(db_err)?;
            Ok(created)
        }
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The recorded schema version; `None` when the database has no bootherd tables.
fn schema_version(conn: &mut Conn) -> Result<Option<usize>, StoreError> {
    let has_meta = conn
        .query("SELECT to_regclass('bootherd_meta') IS NOT NULL", &[])
        .map_err(db_err)?
        .first()
        .and_then(|r| r.try_get(0).ok())
        .unwrap_or(false);
    if !has_meta {
        return Ok(None);
    }
    Ok(Some(
        conn.query(
            "SELECT value FROM bootherd_meta WHERE key = 'schema_version'",
            &[],
        )
        .map_err(db_err)?
        .first()
        .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0),
    ))
}

fn migrate_locked(conn: &mut Conn) -> Result<bool, StoreError> {
    let found = schema_version(conn)?;
    let has_meta = found.is_some();
    let version = found.unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "database schema version {version} is newer than this bootherd understands ({}); upgrade bootherd",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        conn.batch(sql).map_err(db_err)?;
    }
    let v = MIGRATIONS.len().to_string();
    conn.execute(
        "INSERT INTO bootherd_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&v],
    )
    .map_err(db_err)?;
    sync_tables(conn)?;
    Ok(!has_meta)
}

/// Creates every table of the schema that is missing and adds columns that a newer schema has.
fn sync_tables(conn: &mut Conn) -> Result<(), StoreError> {
    let ddl = missing_ddl(conn)?;
    if !ddl.is_empty() {
        conn.batch(&ddl).map_err(db_err)?;
    }
    Ok(())
}

/// The statements that would bring the tables up to the schema (empty when they are).
fn missing_ddl(conn: &mut Conn) -> Result<String, StoreError> {
    let rows = conn
        .query(
            // pg_catalog directly: information_schema.columns costs tens of milliseconds.
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a
             JOIN pg_class c ON a.attrelid = c.oid
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
               AND a.attnum > 0 AND NOT a.attisdropped",
            &[],
        )
        .map_err(db_err)?;
    let mut existing: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows {
        let (t, c): (String, String) =
            (r.try_get(0).map_err(db_err)?, r.try_get(1).map_err(db_err)?);
        existing.entry(t).or_default().push(c);
    }
    let mut ddl = String::new();
    for t in TABLES {
        match existing.get(t.name) {
            None => {
                let mut cols: Vec<String> = t
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
                cols.push(format!("{POS} BIGINT GENERATED BY DEFAULT AS IDENTITY"));
                let keys: Vec<String> = t.keys.iter().map(|k| quote(k)).collect();
                ddl.push_str(&format!(
                    "CREATE TABLE {} ({}, PRIMARY KEY ({}));\nCREATE INDEX ON {} ({POS});\n",
                    quote(t.name),
                    cols.join(", "),
                    keys.join(", "),
                    quote(t.name),
                ));
            }
            Some(have) => {
                for c in t.cols {
                    if !have.iter().any(|e| e == c) {
                        ddl.push_str(&format!(
                            "ALTER TABLE {} ADD COLUMN {} TEXT;\n",
                            quote(t.name),
                            quote(c)
                        ));
                    }
                }
            }
        }
    }
    Ok(ddl)
}

impl Backend for PgBackend {
    fn read(&self) -> Result<Box<dyn BackendTx + '_>, StoreError> {
        let (conn, ()) = self.retrying(&self.conn, RECONNECT_FOR, |c| {
            c.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        })?;
        Ok(Box::new(PgTx {
            conn,
            open: true,
            write: false,
            pending: Vec::new(),
            rows: Vec::new(),
            backend: self,
        }))
    }

    fn write(&self) -> Result<Box<dyn BackendTx + '_>, StoreError> {
        let sql = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; \
             SELECT pg_advisory_xact_lock({WRITE_LOCK})"
        );
        let (conn, ()) = self.retrying(&self.conn, RECONNECT_FOR, |c| c.batch(&sql))?;
        Ok(Box::new(PgTx {
            conn,
            open: true,
            write: true,
            pending: Vec::new(),
            rows: Vec::new(),
            backend: self,
        }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (_g, rows) = self.retrying(&self.probe, RECONNECT_FOR, |c| {
            c.query(
                "SELECT seq, tab, rowkey, op FROM bootherd_changelog WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )
        })?;
        rows.iter().map(change_of).collect()
    }

    fn change_bounds(&self) -> Result<(u64, u64), StoreError> {
        let (_g, rows) = self.retrying(&self.probe, RECONNECT_FOR, |c| {
            c.query(
                "SELECT (SELECT min(seq) FROM bootherd_changelog), (SELECT max(seq) FROM bootherd_changelog)",
                &[],
            )
        })?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Backend("no answer".into()))?;
        let conv = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        Ok((
            conv(r.try_get(0).map_err(db_err)?),
            conv(r.try_get(1).map_err(db_err)?),
        ))
    }

    fn data_version(&self) -> Result<i64, StoreError> {
        self.commit_position()
            .map(|p| i64::try_from(p).unwrap_or(i64::MAX))
    }

    fn commit_position(&self) -> Result<u64, StoreError> {
        // Writers are serialised and number the log in commit order, so the newest seq moves
        // with every commit and a snapshot that shows it shows everything before it.
        let (_g, rows) = self.retrying(&self.probe, PROBE_RECONNECT_FOR, |c| {
            c.query("SELECT max(seq) FROM bootherd_changelog", &[])
        })?;
        let v: Option<i64> = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err)?
            .flatten();
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    fn change_notifier(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.start_listener();
        Some(self.changed.clone())
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn shared(&self) -> bool {
        true
    }
}

fn change_of(r: &tokio_postgres::Row) -> Result<Change, StoreError> {
    let seq: i64 = r.try_get(0).map_err(db_err)?;
    let op: String = r.try_get(3).map_err(db_err)?;
    Ok(Change {
        seq: u64::try_from(seq).unwrap_or(0),
        table: r.try_get(1).map_err(db_err)?,
        key: r.try_get(2).map_err(db_err)?,
        // An op we do not know (written by a newer version) still invalidates the table.
        op: ChangeOp::parse(&op).unwrap_or(ChangeOp::Update),
    })
}

struct PgTx<'a> {
    conn: MutexGuard<'a, Option<Conn>>,
    open: bool,
    write: bool,
    /// Change-log entries, numbered and written at commit (one statement).
    pending: Vec<(Option<u64>, String, String, String, i64)>,
    /// Rows upserted but not sent yet: sent as one statement per table (and per [`ROWS_PER_STATEMENT`])
    /// before the next statement of any other kind, so loading many rows costs few round trips.
    rows: Vec<PendingRows>,
    backend: &'a PgBackend,
}

/// Upserted rows of one table waiting to be sent.
struct PendingRows {
    table: &'static TableSpec,
    rows: Vec<Row>,
    /// Key values → index in `rows` (a key upserted twice keeps its first place, as in SQL).
    index: HashMap<Vec<Option<String>>, usize>,
}

/// Rows per multi-row upsert statement.
const ROWS_PER_STATEMENT: usize = 5_000;

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Some(c) = self.conn.as_ref() {
                if c.batch("ROLLBACK").is_err() {
                    // The connection is unusable; the next transaction makes a new one.
                    *self.conn = None;
                }
            }
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
        .map(|(i, k)| format!("{} = ${}", quote(k), i + first_param))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn read_row(r: &tokio_postgres::Row, n: usize) -> Result<Row, StoreError> {
    (0..n)
        .map(|i| r.try_get::<_, Option<String>>(i).map_err(db_err))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl PgTx<'_> {
    fn c(&mut self) -> Result<&mut Conn, StoreError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Backend("the connection to PostgreSQL was lost".into()))
    }

    fn q(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.flush_rows()?;
        let r = self.c()?.query(sql, params);
        r.map_err(|e| self.failed(e))
    }

    fn x(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.flush_rows()?;
        self.x_now(sql, params)
    }

    fn x_now(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let r = self.c()?.execute(sql, params);
        r.map_err(|e| self.failed(e))
    }

    /// Sends the upserted rows still held back.
    fn flush_rows(&mut self) -> Result<(), StoreError> {
        for p in std::mem::take(&mut self.rows) {
            let t = p.table;
            let updates: Vec<String> = t
                .cols
                .iter()
                .filter(|c| !t.keys.contains(c))
                .map(|c| format!("{0} = excluded.{0}", quote(c)))
                .collect();
            let keys: Vec<String> = t.keys.iter().map(|k| quote(k)).collect();
            let on_conflict = if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            };
            let arrays: Vec<String> = (1..=t.cols.len())
                .map(|i| format!("${i}::text[]"))
                .collect();
            // WITH ORDINALITY + ORDER BY: rows take their positions in the order given.
            let sql = format!(
                "INSERT INTO {} ({}) SELECT {} FROM unnest({}) WITH ORDINALITY AS u({}, bootherd_ord) \
                 ORDER BY bootherd_ord ON CONFLICT ({}) {}",
                quote(t.name),
                col_list(t),
                (1..=t.cols.len())
                    .map(|i| format!("c{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                arrays.join(", "),
                (1..=t.cols.len())
                    .map(|i| format!("c{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                keys.join(", "),
                on_conflict
            );
            for chunk in p.rows.chunks(ROWS_PER_STATEMENT) {
                let cols: Vec<Vec<Option<String>>> = (0..t.cols.len())
                    .map(|i| chunk.iter().map(|r| r.get(i).cloned().flatten()).collect())
                    .collect();
                let params: Vec<&(dyn ToSql + Sync)> =
                    cols.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
                self.x_now(&sql, &params)?;
            }
        }
        Ok(())
    }

    /// The error of a statement inside the transaction: after a lost connection the whole
    /// transaction is gone (the server rolled it back), and the caller's command fails.
    fn failed(&mut self, e: tokio_postgres::Error) -> StoreError {
        if transient(&e) {
            if !self.backend.lost.swap(true, Ordering::SeqCst) {
                tracing::warn!(store = %self.backend.shown, "lost the connection to PostgreSQL: {}", pg_err_text(&e));
            }
            *self.conn = None;
            self.open = false;
            return StoreError::Backend(format!(
                "the connection to PostgreSQL was lost ({}); nothing of this command was applied",
                pg_err_text(&e)
            ));
        }
        db_err(e)
    }

    fn flush_changes(&mut self) -> Result<i64, StoreError> {
        let max = self.q("SELECT coalesce(max(seq), 0) FROM bootherd_changelog", &[])?;
        let mut next: i64 = max
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err)?
            .unwrap_or(0);
        let mut seqs = Vec::with_capacity(self.pending.len());
        let mut tabs = Vec::with_capacity(self.pending.len());
        let mut keys = Vec::with_capacity(self.pending.len());
        let mut ops = Vec::with_capacity(self.pending.len());
        let mut ats = Vec::with_capacity(self.pending.len());
        for (seq, t, k, o, at) in std::mem::take(&mut self.pending) {
            // Verbatim entries (db copy) keep their numbers; new ones follow the newest.
            let s = match seq {
                Some(s) => i64::try_from(s).unwrap_or(i64::MAX),
                None => next + 1,
            };
            next = next.max(s);
            seqs.push(s);
            tabs.push(t);
            keys.push(k);
            ops.push(o);
            ats.push(at);
        }
        self.x(
            "INSERT INTO bootherd_changelog (seq, tab, rowkey, op, at)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
            &[&seqs, &tabs, &keys, &ops, &ats],
        )?;
        Ok(next)
    }
}

impl BackendTx for PgTx<'_> {
    fn select_all(&mut self, t: &TableSpec) -> Result<Vec<Row>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {POS}",
            col_list(t),
            quote(t.name)
        );
        let n = t.cols.len();
        self.q(&sql, &[])?.iter().map(|r| read_row(r, n)).collect()
    }

    fn select_keys(&mut self, t: &TableSpec, keys: &[&str]) -> Result<Vec<Row>, StoreError> {
        let n = t.cols.len();
        let [key] = t.keys else {
            let mut out = Vec::new();
            for k in keys {
                if let Some(r) = self.select_key(t, &[k])? {
                    out.push(r);
                }
            }
            return Ok(out);
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ANY($1)",
            col_list(t),
            quote(t.name),
            quote(key)
        );
        let arr: Vec<&str> = keys.to_vec();
        self.q(&sql, &[&arr])?
            .iter()
            .map(|r| read_row(r, n))
            .collect()
    }

    fn select_key(&mut self, t: &TableSpec, key: &[&str]) -> Result<Option<Row>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            col_list(t),
            quote(t.name),
            key_where(t, 1)
        );
        let params: Vec<&(dyn ToSql + Sync)> =
            key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
        let n = t.cols.len();
        self.q(&sql, &params)?
            .first()
            .map(|r| read_row(r, n))
            .transpose()
    }

    fn upsert(&mut self, t: &TableSpec, row: &Row) -> Result<(), StoreError> {
        let table =
            super::schema::table(t.name).ok_or_else(|| StoreError::UnknownTable(t.name.into()))?;
        if row.len() != table.cols.len() {
            return Err(StoreError::Backend(format!(
                "table '{}' has {} columns, row has {}",
                t.name,
                table.cols.len(),
                row.len()
            )));
        }
        let key: Vec<Option<String>> = table
            .keys
            .iter()
            .map(|k| table.col_index(k).and_then(|i| row[i].clone()))
            .collect();
        let slot = match self.rows.iter().position(|p| p.table.name == table.name) {
            Some(i) => i,
            None => {
                self.rows.push(PendingRows {
                    table,
                    rows: Vec::new(),
                    index: HashMap::new(),
                });
                self.rows.len() - 1
            }
        };
        let p = &mut self.rows[slot];
        match p.index.get(&key) {
            Some(&i) => p.rows[i] = row.clone(),
            None => {
                p.index.insert(key, p.rows.len());
                p.rows.push(row.clone());
            }
        }
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
        let mut sets = Vec::new();
        for (i, (c, _)) in cols.iter().enumerate() {
            let name = t
                .cols
                .get(*c)
                .ok_or_else(|| StoreError::Backend(format!("column index {c} out of range")))?;
            sets.push(format!("{} = ${}", quote(name), i + 1));
        }
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            quote(t.name),
            sets.join(", "),
            key_where(t, cols.len() + 1)
        );
        let mut params: Vec<&(dyn ToSql + Sync)> =
            cols.iter().map(|(_, v)| v as &(dyn ToSql + Sync)).collect();
        params.extend(key.iter().map(|k| k as &(dyn ToSql + Sync)));
        Ok(self.x(&sql, &params)? > 0)
    }

    fn delete_key(&mut self, t: &TableSpec, key: &[&str]) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE {}", quote(t.name), key_where(t, 1));
        let params: Vec<&(dyn ToSql + Sync)> =
            key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
        Ok(self.x(&sql, &params)? > 0)
    }

    fn delete_where(
        &mut self,
        t: &TableSpec,
        col: usize,
        value: &str,
    ) -> Result<usize, StoreError> {
        let name = t
            .cols
            .get(col)
            .ok_or_else(|| StoreError::Backend(format!("column index {col} out of range")))?;
        let sql = format!("DELETE FROM {} WHERE {} = $1", quote(t.name), quote(name));
        Ok(self.x(&sql, &[&value])? as usize)
    }

    fn delete_all(&mut self, t: &TableSpec) -> Result<usize, StoreError> {
        Ok(self.x(&format!("DELETE FROM {}", quote(t.name)), &[])? as usize)
    }

    fn next_int(&mut self, t: &TableSpec, col: usize) -> Result<i64, StoreError> {
        let name = t
            .cols
            .get(col)
            .ok_or_else(|| StoreError::Backend(format!("column index {col} out of range")))?;
        // SQLite's CAST reads the leading integer of any text; here only integers count.
        let sql = format!(
            "SELECT max(CASE WHEN btrim({0}) ~ '^-?[0-9]{{1,18}}$' THEN btrim({0})::bigint END) FROM {1}",
            quote(name),
            quote(t.name)
        );
        let max: Option<i64> = self
            .q(&sql, &[])?
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db_err)?
            .flatten();
        Ok(max.unwrap_or(0).saturating_add(1))
    }

    fn append_change(&mut self, table: &str, key: &str, op: ChangeOp) -> Result<(), StoreError> {
        self.pending.push((
            None,
            table.to_string(),
            key.to_string(),
            op.as_str().to_string(),
            now_secs(),
        ));
        Ok(())
    }

    fn changelog(&mut self) -> Result<Vec<(Change, i64)>, StoreError> {
        let rows = self.q(
            "SELECT seq, tab, rowkey, op, at FROM bootherd_changelog ORDER BY seq",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((change_of(r)?, r.try_get(4).map_err(db_err)?)))
            .collect()
    }

    fn put_changelog(&mut self, entries: &[(Change, i64)]) -> Result<(), StoreError> {
        for (c, at) in entries {
            self.pending.push((
                Some(c.seq),
                c.table.clone(),
                c.key.clone(),
                c.op.as_str().to_string(),
                *at,
            ));
        }
        Ok(())
    }

    fn clear_changelog(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.x("DELETE FROM bootherd_changelog", &[])?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if !self.open {
            return Err(StoreError::Backend(
                "the connection to PostgreSQL was lost; nothing of this command was applied".into(),
            ));
        }
        if !self.write {
            self.open = false;
            let r = self.c()?.batch("COMMIT");
            return r.map_err(|e| self.failed(e));
        }
        self.flush_rows()?;
        let mut xid: Option<i64> = None;
        if !self.pending.is_empty() {
            let newest = self.flush_changes()?;
            self.x(
                "DELETE FROM bootherd_changelog WHERE seq <= $1",
                &[&(newest - CHANGELOG_KEEP)],
            )?;
            let payload = newest.to_string();
            self.x("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
            xid = self
                .q("SELECT txid_current()", &[])?
                .first()
                .and_then(|r| r.try_get(0).ok());
        }
        self.open = false;
        let fail = take_failpoint(self.backend.cfg.get_dbname().unwrap_or_default());
        if fail == CUT_BEFORE_COMMIT {
            self.cut_own_session();
        }
        let r = self.c()?.batch("COMMIT");
        match r {
            Ok(()) if fail == LOSE_COMMIT_ANSWER => match xid {
                Some(xid) => {
                    self.settle(xid, "the answer to COMMIT was lost (test failpoint)".into())
                }
                None => Ok(()),
            },
            Ok(()) => Ok(()),
            Err(e) if transient(&e) => {
                *self.conn = None;
                match xid {
                    Some(xid) => self.settle(xid, pg_err_text(&e)),
                    None => Err(self.failed(e)),
                }
            }
            Err(e) => Err(db_err(e)),
        }
    }
}

/// Test hook: the database whose next write commit (in this process) suffers a failure
/// ([`LOSE_COMMIT_ANSWER`], [`CUT_BEFORE_COMMIT`]); taken by the commit that uses it.
static COMMIT_FAILPOINT: Mutex<Option<(String, u8)>> = Mutex::new(None);

#[doc(hidden)]
pub fn set_commit_failpoint(dbname: &str, what: u8) {
    *COMMIT_FAILPOINT.lock().unwrap_or_else(|p| p.into_inner()) = Some((dbname.to_string(), what));
}

fn take_failpoint(dbname: &str) -> u8 {
    let mut g = COMMIT_FAILPOINT.lock().unwrap_or_else(|p| p.into_inner());
    match g.as_ref() {
        Some((db, what)) if db == dbname => {
            let w = *what;
            *g = None;
            w
        }
        _ => 0,
    }
}
/// The COMMIT is carried out but its answer is treated as lost with the connection.
#[doc(hidden)]
pub const LOSE_COMMIT_ANSWER: u8 = 1;
/// The server ends the session just before COMMIT is sent.
#[doc(hidden)]
pub const CUT_BEFORE_COMMIT: u8 = 2;

impl PgTx<'_> {
    /// The commit's answer was lost with the connection (`lost` says how): asks the server on a
    /// new connection what became of transaction `xid`, waiting while it is still in progress.
    fn settle(&mut self, xid: i64, lost: String) -> Result<(), StoreError> {
        let b = self.backend;
        let deadline = Instant::now() + Duration::from_secs(10);
        let settle = b.reconnect(RECONNECT_FOR).and_then(|mut c| {
            let status = loop {
                let rows = c.query("SELECT txid_status($1)", &[&xid]).map_err(db_err)?;
                let status: Option<String> = rows
                    .first()
                    .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten());
                if status.as_deref() != Some("in progress") || Instant::now() > deadline {
                    break status;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            *self.conn = Some(c);
            Ok(status)
        });
        match settle {
            Ok(Some(s)) if s == "committed" => {
                tracing::warn!(store = %b.shown, "the connection was lost while committing ({lost}); the server confirms the commit");
                Ok(())
            }
            Ok(Some(s)) if s == "aborted" => Err(StoreError::Backend(format!(
                "the connection to PostgreSQL was lost while committing ({lost}); the server \
                 rolled the transaction back, nothing of this command was applied"
            ))),
            Ok(other) => Err(StoreError::Backend(format!(
                "the connection to PostgreSQL was lost while committing ({lost}) and the server \
                 cannot tell whether the commit happened ({}); check with tabdump (transaction id {xid})",
                other.unwrap_or_else(|| "no status".into())
            ))),
            Err(e2) => Err(StoreError::Backend(format!(
                "the connection to PostgreSQL was lost while committing ({lost}) and whether \
                 the commit happened cannot be learnt ({e2}); check with tabdump (transaction id {xid})"
            ))),
        }
    }

    /// Test hook: has the server end this transaction's session (from another connection).
    fn cut_own_session(&mut self) {
        let pid: Option<i32> = self
            .c()
            .ok()
            .and_then(|c| c.query("SELECT pg_backend_pid()", &[]).ok())
            .and_then(|rows| rows.first().and_then(|r| r.try_get(0).ok()));
        if let (Some(pid), Ok(mut other)) = (pid, self.backend.connect_once(&self.backend.cfg)) {
            let _ = other.query("SELECT pg_terminate_backend($1)", &[&pid]);
            // The session is gone once its socket closes.
            let until = Instant::now() + Duration::from_secs(5);
            while self.conn.as_ref().is_some_and(|c| !c.client.is_closed())
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_it_cannot_serve_are_refused_with_the_reason() {
        let e = |u: &str| match PgBackend::open(u, true) {
            Ok(_) => panic!("{u} opened"),
            Err(e) => e.to_string(),
        };
        let m = e("postgres://bh@%2Frun%2Fpostgresql/bootherd?sslmode=require");
        assert!(m.contains("needs a TCP host"), "{m}");
        let m = e("postgres://bh:pw@127.0.0.1:1/bootherd?sslrootcert=/nonexistent/ca.pem");
        assert!(
            m.contains("cannot read sslrootcert /nonexistent/ca.pem"),
            "{m}"
        );
        assert!(!m.contains(":pw@"), "{m}");
        assert_eq!(
            split_rootcert(
                "postgres://h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            (
                "postgres://h/db?sslmode=require&application_name=x".to_string(),
                Some("/etc/ca.pem".to_string())
            )
        );
        let m = e("postgres://bh@127.0.0.1:1");
        assert!(m.contains("names no database"), "{m}");
        // Nothing listens on port 1: the command fails at once, naming the server.
        let m = e("postgres://bh:pw@127.0.0.1:1/bootherd");
        assert!(m.contains("127.0.0.1:1") && m.contains("refused"), "{m}");
        assert!(!m.contains(":pw@"), "{m}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://bh:secret@db.example:5432/bootherd"),
            "postgres://bh:***@db.example:5432/bootherd"
        );
        assert_eq!(
            redact("postgresql://bh@/bootherd?host=/run/pg&password=x&sslmode=disable"),
            "postgresql://bh@/bootherd?host=/run/pg&password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://db.example/bootherd"),
            "postgres://db.example/bootherd"
        );
    }
}
