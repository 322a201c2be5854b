//! `bootherd serve`: the appliance daemon.
//!
//! It opens the store, follows its change log (the only channel from admin commands to the
//! daemon), and runs the DHCP, TFTP, HTTP, NFS, DNS and status-port services, all on one tokio runtime
//! with one shutdown design: SIGTERM or Ctrl-C cancels, services get a bounded time to drain, then
//! the process exits. The xcatmon monitoring plug-in (`xcatmon.rs`) runs here too, when the
//! `monitoring` table enables it. Each service calls [`Resolver::catch_up`] before answering a request (read
//! your writes); the periodic catch-up here only brings changes to the log and to the services'
//! own state when no request does.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use crate::cli::DbOpt;
use crate::store::resolver::Listener;
use crate::store::resolver::Resolver;
use crate::store::watch::ChangeBatch;
use crate::store::Store;

pub mod appliances;
pub mod dhcp;
pub mod notify;
pub mod ra;
pub mod statusport;
pub mod tablenotif;
pub mod xcatmon;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// How often to look for changes made by admin commands, in milliseconds
    #[arg(long, default_value_t = 200, value_name = "MS")]
    poll_ms: u64,
    /// Do not run the DHCP service nor its OMAPI port (another DHCP server answers on this network)
    #[arg(long)]
    no_dhcp: bool,
    /// Do not run the TFTP service (another TFTP server answers on this machine)
    #[arg(long)]
    no_tftp: bool,
    /// Do not run the HTTP service (another web server serves /install and /tftpboot)
    #[arg(long)]
    no_http: bool,
    /// Do not run the NFS service (statelite image roots and node state directories)
    #[arg(long)]
    no_nfs: bool,
    /// Do not answer portmapper queries on port 111 (rpcbind runs here, or clients name the ports)
    #[arg(long)]
    no_portmapper: bool,
    /// Do not listen on xCAT's node status port (site.xcatiport, 3002)
    #[arg(long)]
    no_status_port: bool,
    /// Do not take xCAT genesis's findme packets on UDP site.xcatdport (3001)
    #[arg(long)]
    no_findme_udp: bool,
    /// Do not serve admin requests (xCAT's client protocol) on TCP site.xcatdport (3001)
    #[arg(long)]
    no_xcatd: bool,
    /// Do not serve xCAT's REST API (HTTPS site.xcatwsport, 443, /xcatws)
    #[arg(long)]
    no_rest: bool,
    #[command(flatten)]
    pki: crate::cli::PkiOpt,
    /// Do not serve DNS (another name server answers on this machine)
    #[arg(long)]
    no_dns: bool,
    /// The DNS port (UDP and TCP)
    #[arg(long, default_value_t = crate::dns::PORT, value_name = "PORT")]
    dns_port: u16,
    /// This appliance's name among those sharing the store (env BOOTHERD_NAME; default: the
    /// node whose hosts.ip is one of this machine's addresses, else the node named like the host)
    #[arg(long, value_name = "NODE")]
    name: Option<String>,
    /// Seconds between this appliance's heartbeats in the appliances table
    #[arg(long, default_value_t = crate::appliance::DEFAULT_INTERVAL, value_name = "SECS")]
    heartbeat: u64,
}

/// How long services get to finish in-flight work after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(3);
/// More changes than this in one poll are logged as one summary line.
const LOG_EACH_UP_TO: usize = 20;

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd (JOURNAL_STREAM set) log to the journal with structured fields.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(j) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(j)
                .try_init();
            return;
        }
    }
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

pub fn run(db: &DbOpt, a: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(db.clone(), a))?;
    Ok(ExitCode::SUCCESS)
}

/// The store URL `bootherd serve` was given (with its credentials, unlike `Store::describe`),
/// for the commands it runs on an administrator's behalf (the dashboard's power buttons).
pub static DB_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn serve(db: DbOpt, a: ServeArgs) -> anyhow::Result<()> {
    let _ = DB_URL.set(db.db.clone());
    let store = Arc::new(open_store(&db.db).await?);
    let resolver = Arc::new(Resolver::new(store.clone()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Who this appliance is among those sharing the store (the nodes it answers follow).
    let me = Arc::new(appliances::start(&store, &resolver, &a).await?);
    // Every batch of changed table names goes to each service that cares.
    let (changes_tx, _) = broadcast::channel::<Arc<ChangeBatch>>(64);

    // xCAT's default postscripts (the xcatdefaults row) where the install tree lacks them.
    let r = resolver.clone();
    match tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<std::path::PathBuf>> {
        let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
        Ok(crate::boot::postscripts::install_shipped(
            std::path::Path::new(&installdir),
        )?)
    })
    .await?
    {
        Ok(w) if !w.is_empty() => {
            tracing::info!(files = ?w, "shipped postscripts installed where missing")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot install the shipped postscripts: {e:#}"),
    }

    // Boot timelines: the services hand events to one recorder thread, which writes them in
    // batches (bootevents table).
    let timeline_off = std::env::var("BOOTHERD_TIMELINE").is_ok_and(|v| v == "off");
    match crate::timeline::Recorder::install(resolver.clone()).map(|r| r.filter(|_| !timeline_off))
    {
        Ok(Some(rec)) => {
            if let Err(e) = std::thread::Builder::new()
                .name("timeline".into())
                .spawn(move || rec.run())
            {
                warn!("cannot start the boot timeline recorder: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => warn!("boot timelines are not recorded: cannot read bootevents: {e}"),
    }

    let mut services = tokio::task::JoinSet::new();
    if !a.no_dhcp {
        let dhcp = dhcp::start(
            store.clone(),
            resolver.clone(),
            me.clone(),
            changes_tx.subscribe(),
            shutdown_rx.clone(),
        )
        .await
        .context("cannot start the DHCP service")?;
        if let Some((task, interfaces)) = dhcp {
            services.spawn(task);
            // Router advertisements on the same interfaces (site.routeradvertisements=no: off).
            let ra = ra::start(
                interfaces,
                resolver.clone(),
                changes_tx.subscribe(),
                shutdown_rx.clone(),
            )
            .await
            .context("cannot start router advertisements")?;
            if let Some(task) = ra {
                services.spawn(task);
            }
        }
    }
    if !a.no_tftp {
        let tftp = crate::tftp::start(store.clone(), resolver.clone(), shutdown_rx.clone())
            .await
            .context("cannot start the TFTP service")?;
        if let Some(task) = tftp {
            services.spawn(task);
        }
    }
    if !a.no_http {
        let http = crate::http::start(store.clone(), resolver.clone(), shutdown_rx.clone())
            .await
            .context("cannot start the HTTP service")?;
        if let Some(task) = http {
            services.spawn(task);
        }
    }
    if !a.no_nfs {
        let nfs = crate::nfs::start(
            store.clone(),
            resolver.clone(),
            changes_tx.subscribe(),
            shutdown_rx.clone(),
            !a.no_portmapper,
        )
        .await
        .context("cannot start the NFS service")?;
        if let Some(task) = nfs {
            services.spawn(task);
        }
    }
    if !a.no_findme_udp {
        let port = resolver
            .site("xcatdport")
            .ok()
            .flatten()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(3001);
        if let Some(sock) = crate::discovery::udp::bind(port).await {
            services.spawn(crate::discovery::udp::serve(
                sock,
                store.clone(),
                resolver.clone(),
                Arc::new(crate::discovery::ports::SnmpPorts::new(
                    store.clone(),
                    tokio::runtime::Handle::current(),
                )),
                shutdown_rx.clone(),
            ));
        }
    }
    if !a.no_xcatd {
        let dir = a.pki.dir(&db);
        let r = resolver.clone();
        let pki = tokio::task::spawn_blocking(move || crate::xcatd::server::open_pki(&dir, &r))
            .await?
            .context("cannot set up the certificate authority of the request port")?;
        let ctx =
            crate::xcatd::server::Ctx::new(store.clone(), resolver.clone(), db.db.clone(), pki)?;
        let ctx = Arc::new(ctx);
        let l = crate::xcatd::server::bind(&resolver).await?;
        services.spawn(crate::xcatd::server::serve(
            l,
            ctx.clone(),
            shutdown_rx.clone(),
        ));
        if !a.no_rest {
            let port: u16 = match resolver.site("xcatwsport")? {
                Some(p) => p
                    .trim()
                    .parse()
                    .with_context(|| format!("site.xcatwsport '{p}' is not a port number"))?,
                None => 443,
            };
            let l = crate::xcatd::rest::bind(port).await?;
            services.spawn(crate::xcatd::rest::serve(l, ctx, shutdown_rx.clone()));
        }
    }
    if !a.no_dns {
        let dns = crate::dns::start(resolver.clone(), a.dns_port, shutdown_rx.clone())
            .await
            .context("cannot start the DNS service (bootherd serve --no-dns leaves DNS to another server)")?;
        services.spawn(dns);
    }
    if !a.no_status_port {
        let l = statusport::bind(&resolver).await?;
        services.spawn(statusport::serve(l, resolver.clone(), shutdown_rx.clone()));
    }
    // regnotif registrations: their commands run for each matching change.
    services.spawn(tablenotif::run(
        store.clone(),
        changes_tx.subscribe(),
        shutdown_rx.clone(),
    ));
    // xcatmon: node liveness into nodelist.status while the monitoring table says so.
    services.spawn(xcatmon::run(
        resolver.clone(),
        changes_tx.subscribe(),
        shutdown_rx.clone(),
    ));
    // What the services wrote while starting (the NFS handle key) is caught up quietly; from
    // here on every change is logged and broadcast.
    let r = resolver.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || r.catch_up()).await {
        warn!("cannot read the change log: {e}");
    }
    resolver.on_change(announce(changes_tx));
    services.spawn(appliances::beat(
        store.clone(),
        me.name.clone(),
        a.heartbeat,
        shutdown_rx.clone(),
    ));
    services.spawn(follow_changes(
        resolver.clone(),
        Duration::from_millis(a.poll_ms.max(10)),
        store.change_notifier(),
        shutdown_rx.clone(),
    ));

    info!(store = %store.describe(), "bootherd ready");
    notify::ready();

    wait_for_signal().await;
    info!("shutting down");
    notify::stopping();
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while services.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("services did not stop within {:?}; exiting anyway", DRAIN);
    }
    let (s, name) = (store.clone(), me.name.clone());
    if let Ok(Err(e)) =
        tokio::task::spawn_blocking(move || crate::appliance::stopped(&s, &name)).await
    {
        warn!("cannot record this appliance as stopped: {e}");
    }
    info!("stopped");
    Ok(())
}

/// How long `serve` waits at start for a database server that does not answer (systemd's
/// default start timeout is 90 s).
const STORE_WAIT: Duration = Duration::from_secs(60);

/// Opens the store; a server that is down or restarting (PostgreSQL) is waited for, with backoff
/// and one log line each way, instead of failing the start.
async fn open_store(url: &str) -> anyhow::Result<Store> {
    let start = std::time::Instant::now();
    let mut wait = Duration::from_millis(200);
    let mut said = false;
    loop {
        let u = url.to_string();
        match tokio::task::spawn_blocking(move || Store::open(&u)).await? {
            Ok(s) => {
                if said {
                    info!(store = %s.describe(), "the store answers; starting");
                }
                return Ok(s);
            }
            Err(e @ crate::store::StoreError::Unreachable { .. })
                if start.elapsed() + wait < STORE_WAIT =>
            {
                if !said {
                    warn!("{e}; waiting up to {} s for it", STORE_WAIT.as_secs());
                    said = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Logs each batch of changes and passes it on to the services that listen.
fn announce(notify: broadcast::Sender<Arc<ChangeBatch>>) -> Listener {
    Box::new(move |batch: &Arc<ChangeBatch>| {
        // The boot timeline, heartbeats and DHCP lease commits are the daemons' own record, not
        // admin changes: debug only (a busy DHCP server commits leases hundreds of times a
        // second). Leases an admin drops (makedhcp -d) are deletions, still logged.
        let quiet = |c: &crate::store::Change| {
            matches!(c.table.as_str(), "bootevents" | "appliances")
                || (c.table == "dhcpleases"
                    && !matches!(
                        c.op,
                        crate::store::ChangeOp::Delete | crate::store::ChangeOp::Clear
                    ))
        };
        if batch.reset {
            info!("change log moved past us; reloading everything");
        } else if batch.changes.iter().all(quiet) {
            debug!(
                count = batch.changes.len(),
                "boot timeline, heartbeat or lease rows written"
            );
        } else if batch.changes.len() <= LOG_EACH_UP_TO {
            for c in batch.changes.iter().filter(|c| !quiet(c)) {
                // Every admin request appends an audit row: those are not news.
                if c.table == "auditlog" {
                    debug!(seq = c.seq, table = %c.table, key = %c.key, op = c.op.as_str(), "store change");
                } else {
                    info!(seq = c.seq, table = %c.table, key = %c.key, op = c.op.as_str(), "store change");
                }
            }
        } else {
            let last = batch.changes.last().map(|c| c.seq).unwrap_or(0);
            info!(count = batch.changes.len(), tables = %batch.tables.join(","), last_seq = last, "store changes");
            for c in &batch.changes {
                debug!(seq = c.seq, table = %c.table, key = %c.key, op = c.op.as_str(), "store change");
            }
        }
        let _ = notify.send(batch.clone());
    })
}

/// Catches the resolver up every `every`, and at once when the store signals a commit (PostgreSQL's
/// NOTIFY), so that changes reach the services that keep state of their own (the DHCP view, NFS
/// exports) and the log even when no request asks. Requests do not wait for this: each catches
/// up itself before it is answered.
async fn follow_changes(
    resolver: Arc<Resolver>,
    every: Duration,
    notified: Option<Arc<tokio::sync::Notify>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let signal = async {
            match &notified {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {},
            _ = signal => {},
            _ = shutdown.changed() => return,
        }
        let r = resolver.clone();
        match tokio::task::spawn_blocking(move || r.catch_up()).await {
            Ok(Ok(())) => {
                if failing {
                    info!("reading the change log again");
                    failing = false;
                }
            }
            // Once per outage (the store's own lines say what is wrong and when it is back).
            Ok(Err(e)) if !failing => {
                warn!("cannot read the change log: {e}");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => {
                warn!("change follower task failed: {e}");
                return;
            }
        }
    }
}
