//! xcatd's request port (TCP `site.xcatdport`, 3001, TLS): one connection, one request (xCAT's
//! client sends one and reads to `serverdone`). The client is who its certificate says (CN), or
//! who `<becomeuser>`/a token proves; policy decides; the request is audited; the command runs on
//! the blocking pool, through the same code as the local CLI, and its output streams back as
//! `<xcatresponse>` documents while it runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::auth;
use super::pki::{self, Pki};
use super::policy::{self, Asked, Peer};
use super::wire::{self, Response, XcatRequest};
use crate::cli::request::{Request, Sink};
use crate::limits::{PerSource, Throttle};
use crate::store::resolver::Resolver;
use crate::store::{RequestAudit, Store};

const MAX_CONNECTIONS: usize = 128;
/// Connections one client address may hold (`site.xcatdperclient`).
pub const PER_CLIENT: usize = 16;
/// The TLS handshake must finish in this time (xcatd: 10 s).
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Silence allowed while the request arrives (xcatd: 15 s), and the whole request's deadline.
const READ_IDLE: Duration = Duration::from_secs(15);
const READ_TOTAL: Duration = Duration::from_secs(300);
/// Output chunks queued towards a slow client before the command waits for it.
const QUEUE: usize = 64;

/// What every connection shares.
pub struct Ctx {
    pub store: Arc<Store>,
    pub resolver: Arc<Resolver>,
    pub db_url: String,
    pub pki: Pki,
    callers: crate::boot::callback::Callers,
    tls: Mutex<(Option<SystemTime>, TlsAcceptor)>,
}

impl Ctx {
    pub fn new(
        store: Arc<Store>,
        resolver: Arc<Resolver>,
        db_url: String,
        pki: Pki,
    ) -> anyhow::Result<Ctx> {
        let acceptor = TlsAcceptor::from(Arc::new(pki.server_config()?));
        let stamp = pki.crl_stamp();
        Ok(Ctx {
            callers: crate::boot::callback::Callers::new(resolver.clone()),
            store,
            resolver,
            db_url,
            pki,
            tls: Mutex::new((stamp, acceptor)),
        })
    }

    /// The TLS settings, rebuilt when the CRL changed (`bootherd cert revoke`).
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut g = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.pki.crl_stamp();
        if now != g.0 {
            match self.pki.server_config() {
                Ok(c) => {
                    info!("xcatd: the certificate revocation list changed; reloaded");
                    *g = (now, TlsAcceptor::from(Arc::new(c)));
                }
                Err(e) => warn!("xcatd: cannot reload the TLS settings: {e:#}"),
            }
        }
        g.1.clone()
    }
}

/// Binds the request port.
pub async fn bind(resolver: &Resolver) -> anyhow::Result<TcpListener> {
    let port: u16 = match resolver.site("xcatdport")? {
        Some(p) => p
            .trim()
            .parse()
            .with_context(|| format!("site.xcatdport '{p}' is not a port number"))?,
        None => 3001,
    };
    let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .with_context(|| {
            format!("cannot listen on TCP port {port} (site.xcatdport; is xCAT's xcatd running here? `serve --no-xcatd` turns the request port off)")
        })?;
    info!(port, "xcatd request port listening (TLS)");
    Ok(l)
}

/// The names the server certificate carries: the host name and, when the store knows it, the
/// site master.
pub fn server_names(resolver: &Resolver) -> Vec<String> {
    let mut v = vec![crate::store::local_host()];
    if let Ok(Some(m)) = resolver.site("master") {
        if !m.trim().is_empty() && !v.contains(&m) {
            v.push(m.trim().to_string());
        }
    }
    v.retain(|n| !n.is_empty());
    v
}

/// Opens (or creates) the CA directory.
pub fn open_pki(dir: &std::path::Path, resolver: &Resolver) -> anyhow::Result<Pki> {
    let (pki, created) = Pki::open_or_create(dir, &server_names(resolver))?;
    if created {
        info!(dir = %dir.display(), "created the appliance's certificate authority and server certificate");
    }
    Ok(pki)
}

pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let s2 = ctx.store.clone();
    let per_client = tokio::task::spawn_blocking(move || {
        crate::limits::site_limit(&s2, "xcatdperclient", PER_CLIENT)
    })
    .await
    .unwrap_or(PER_CLIENT);
    let sources = PerSource::new(per_client);
    static OVER: Throttle = Throttle::new();
    static FULL: Throttle = Throttle::new();
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("xcatd accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = sources.try_acquire(peer.ip()) else {
            if let Some(suppressed) = OVER.check() {
                warn!(suppressed, "xcatd: {} holds its {per_client} connections (site.xcatdperclient); refusing more", peer.ip());
            }
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            if let Some(suppressed) = FULL.check() {
                warn!(
                    suppressed,
                    "xcatd: {MAX_CONNECTIONS} connections open; refusing {peer}"
                );
            }
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(sock, peer, ctx).await {
                static FAILED: Throttle = Throttle::new();
                if let Some(suppressed) = FAILED.check() {
                    warn!(peer = %peer, suppressed, "xcatd: {e:#}");
                }
            }
            drop(permit);
            drop(slot);
        });
    }
}

/// The client's host name as policy sees it: the node whose address it is, else the address.
pub fn peer_host(ctx: &Ctx, ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ctx.callers.node(ip).unwrap_or_else(|| ip.to_string())
}

async fn connection(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
) -> anyhow::Result<()> {
    let _ = sock.set_nodelay(true);
    let acceptor = ctx.acceptor();
    let mut tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(sock)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => anyhow::bail!("TLS handshake refused: {e}"),
        Err(_) => anyhow::bail!("no TLS handshake within {} s", HANDSHAKE.as_secs()),
    };
    let cn = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(pki::common_name);

    // The request: up to `</xcatrequest>`, bounded in size and time.
    let started = Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 * 1024];
    // Where to look for the end tag next (only new bytes, and the tag's length before them).
    let mut scanned = 0usize;
    let mut checked_start = false;
    let end = loop {
        if let Some(e) = wire::request_end(&buf[scanned..]) {
            break scanned + e;
        }
        scanned = buf.len().saturating_sub(b"</xcatrequest>".len());
        if buf.len() > wire::MAX_REQUEST {
            return reply_error(&mut tls, "the request is too large").await;
        }
        if !checked_start && buf.len() > 15 {
            checked_start = true;
            if !buf.windows(13).any(|w| w == b"<xcatrequest>") {
                // xcatd: "Close an invalid connection."
                anyhow::bail!("not an xCAT request; closed");
            }
        }
        let left = READ_TOTAL.saturating_sub(started.elapsed());
        let n = match tokio::time::timeout(READ_IDLE.min(left), tls.read(&mut chunk)).await {
            Ok(Ok(0)) => anyhow::bail!("the client closed before its request was complete"),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => anyhow::bail!("reading the request: {e}"),
            Err(_) => anyhow::bail!("no complete request in time; closed"),
        };
        buf.extend_from_slice(&chunk[..n]);
    };
    let xreq = match wire::parse_request(&buf[..end]) {
        Ok(r) => r,
        Err(e) => return reply_error(&mut tls, &format!("malformed request: {e}")).await,
    };
    drop(buf);

    // Who asks: the certificate, or what <becomeuser>/<tokens> prove; <gettoken> answers here.
    let (c2, r2) = (ctx.clone(), xreq.clone());
    let ip = peer.ip();
    let decided = tokio::task::spawn_blocking(move || decide(&c2, r2, cn, ip)).await?;
    let (request, outcome) = match decided {
        Decided::Reply(resp) => {
            tls.write_all(resp.encode().as_bytes()).await?;
            tls.shutdown().await.ok();
            return Ok(());
        }
        Decided::Run(req, outcome) => (req, outcome),
    };
    if let Some(denied) = outcome {
        tls.write_all(denied.encode().as_bytes()).await?;
        tls.shutdown().await.ok();
        return Ok(());
    }

    // Run the command; its output streams back while it runs.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(QUEUE);
    let db_url = ctx.db_url.clone();
    let resolver = ctx.resolver.clone();
    let command = request.command.clone();
    let user = request.user.clone();
    let job = tokio::task::spawn_blocking(move || {
        // Read your writes: the command opens the store itself and sees every commit.
        let _ = resolver.catch_up();
        let code = crate::cli::handle_remote(*request, &db_url, Box::new(ChannelSink(tx)));
        exit_value(code)
    });
    let mut out = Pending::default();
    let mut err_pending = String::new();
    let mut client_gone = false;
    // The command may write from inside a runtime of its own (rpower's IPMI): a plain bounded
    // channel, read here from the blocking pool.
    let mut rx = Some(rx);
    loop {
        let Some(r) = rx.take() else { break };
        let Ok((r, first)) = tokio::task::spawn_blocking(move || {
            let c = r.recv();
            (r, c)
        })
        .await
        else {
            break;
        };
        let Ok(first) = first else { break };
        let mut batch = vec![first];
        while let Ok(c) = r.try_recv() {
            batch.push(c);
        }
        rx = Some(r);
        for c in batch {
            match c {
                Chunk::Out(b) => out.push(&b),
                Chunk::Err(b) => err_pending.push_str(&String::from_utf8_lossy(&b)),
            }
        }
        if client_gone {
            continue;
        }
        let mut text = String::new();
        if let Some(d) = out.take_lines() {
            text.push_str(
                &Response {
                    data: vec![d],
                    ..Default::default()
                }
                .encode(),
            );
        }
        // Complete error lines go out as they come.
        while let Some(i) = err_pending.find('\n') {
            let line: String = err_pending.drain(..=i).collect();
            text.push_str(&error_response(line.trim_end_matches('\n')).encode());
        }
        if !text.is_empty() && tls.write_all(text.as_bytes()).await.is_err() {
            client_gone = true;
            warn!(peer = %peer, command = %command, "xcatd: the client went away; the command runs to its end");
        }
    }
    let code = job.await.unwrap_or(1);
    let mut text = String::new();
    if let Some(d) = out.take_all() {
        text.push_str(
            &Response {
                data: vec![d],
                ..Default::default()
            }
            .encode(),
        );
    }
    if !err_pending.is_empty() {
        text.push_str(&error_response(&err_pending).encode());
    }
    text.push_str(
        &Response {
            errorcode: (code != 0).then_some(code),
            serverdone: true,
            ..Default::default()
        }
        .encode(),
    );
    if !client_gone {
        tls.write_all(text.as_bytes()).await?;
        tls.shutdown().await.ok();
    }
    info!(peer = %peer, user = %user, command = %command, code, "xcatd request served");
    Ok(())
}

/// A line the command wrote to its error stream, as xCAT's client prints it back: `Error: x` as
/// `<error>x</error>`, `Warning: x` as `<warning>`, anything else verbatim (`NoErrorPrefix`).
fn error_response(line: &str) -> Response {
    if let Some(e) = line.strip_prefix("Error: ") {
        Response {
            error: vec![e.to_string()],
            ..Default::default()
        }
    } else if let Some(w) = line.strip_prefix("Warning: ") {
        Response {
            warning: vec![w.to_string()],
            ..Default::default()
        }
    } else {
        Response {
            error: vec![line.to_string()],
            no_error_prefix: true,
            ..Default::default()
        }
    }
}

async fn reply_error<S: AsyncWriteExt + Unpin>(tls: &mut S, msg: &str) -> anyhow::Result<()> {
    let r = Response {
        error: vec![msg.to_string()],
        errorcode: Some(1),
        serverdone: true,
        ..Default::default()
    };
    tls.write_all(r.encode().as_bytes()).await?;
    tls.shutdown().await.ok();
    anyhow::bail!("{msg}")
}

/// Standard output waiting to be sent: only whole lines go out, and a run of blank lines waits
/// for text after it (xCAT's client drops a `<data>` that is only whitespace).
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
}

impl Pending {
    fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn take_lines(&mut self) -> Option<String> {
        let end = self.buf.iter().rposition(|&c| c == b'\n')?;
        if self.buf[..end].iter().all(|c| c.is_ascii_whitespace()) {
            return None;
        }
        let rest = self.buf.split_off(end + 1);
        let lines = std::mem::replace(&mut self.buf, rest);
        Some(String::from_utf8_lossy(&lines[..end]).into_owned())
    }

    fn take_all(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let mut b = std::mem::take(&mut self.buf);
        if b.last() == Some(&b'\n') {
            b.pop();
        }
        Some(String::from_utf8_lossy(&b).into_owned())
    }
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

/// The sink of a remote request: chunks into the connection's queue (a full queue makes the
/// command wait for the client; a gone client makes writes fail).
struct ChannelSink(std::sync::mpsc::SyncSender<Chunk>);

impl Sink for ChannelSink {
    fn out_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0
            .send(Chunk::Out(bytes.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
    fn err_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0
            .send(Chunk::Err(bytes.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// An `ExitCode`'s number (the type keeps it private).
pub fn exit_value(code: ExitCode) -> i32 {
    (0..=255u8)
        .find(|n| ExitCode::from(*n) == code)
        .map(i32::from)
        .unwrap_or(1)
}

enum Decided {
    /// Answer without running anything (authentication failed, a token was asked for).
    Reply(Response),
    /// Run the request, or, with a response, refuse it (policy).
    Run(Box<Request>, Option<Response>),
}

/// Authentication, policy and audit (blocking: reads the store).
fn decide(ctx: &Ctx, x: XcatRequest, cn: Option<String>, ip: IpAddr) -> Decided {
    let fail = || {
        Decided::Reply(Response {
            error: vec!["Authentication failure".into()],
            errorcode: Some(1),
            serverdone: true,
            ..Default::default()
        })
    };
    let _ = ctx.resolver.catch_up();
    let host = peer_host(ctx, ip);
    let mut peername = cn;
    if let Some((u, p)) = &x.becomeuser {
        match auth::check_password(&ctx.store, u, p) {
            true => peername = Some(u.clone()),
            false => {
                warn!(host = %host, user = %u, "xcatd: authentication failure");
                return fail();
            }
        }
    }
    if let Some((u, p)) = &x.gettoken {
        if !auth::check_password(&ctx.store, u, p) {
            warn!(host = %host, user = %u, "xcatd: authentication failure (token request)");
            return fail();
        }
        return match auth::new_token(&ctx.store, u) {
            // xcatd: data => [{token => [{id, expire}]}].
            Ok((id, expire)) => Decided::Reply(Response {
                raw: format!(
                    "  <data>\n    <token>\n      <expire>{}</expire>\n      <id>{}</id>\n    </token>\n  </data>\n",
                    wire::escape(&expire),
                    wire::escape(&id)
                ),
                serverdone: true,
                ..Default::default()
            }),
            Err(e) => Decided::Reply(Response {
                error: vec![format!("cannot create a token: {e}")],
                errorcode: Some(1),
                serverdone: true,
                ..Default::default()
            }),
        };
    }
    if let Some(t) = &x.tokenid {
        match auth::verify_token(&ctx.store, t) {
            Some(u) => peername = Some(u),
            None => return fail(),
        }
    }
    let rules = policy_rules(&ctx.store);
    // Only a trusted peer may say whom it acts for.
    let user = match (&x.username, policy::trusted(&rules, peername.as_deref())) {
        (Some(u), true) if !u.is_empty() => u.clone(),
        _ => peername.clone().unwrap_or_default(),
    };
    // xcatclient's split: options before the noderange, the noderange, the rest.
    let args = match &x.noderange {
        Some(nr) => {
            let lead = x.args.iter().take_while(|a| a.starts_with('-')).count();
            let mut v: Vec<String> = x.args[..lead].to_vec();
            v.push(nr.clone());
            v.extend_from_slice(&x.args[lead..]);
            v
        }
        None => x.args.clone(),
    };
    let asked = Asking {
        peername: peername.as_deref(),
        user: &user,
        host: &host,
        command: &x.command,
        wire_args: &x.args,
        args,
        noderange: x.noderange.clone(),
        clienttype: x.clienttype.clone().unwrap_or_else(|| "other".into()),
    };
    match authorize(&ctx.store, &ctx.resolver, &rules, asked) {
        Ok(mut request) => {
            request.cwd = x.cwd.as_ref().map(PathBuf::from);
            request.stdin = x.stdin.clone();
            request.files = x
                .files
                .iter()
                .map(|(k, v)| (PathBuf::from(k), v.clone()))
                .collect();
            Decided::Run(Box::new(request), None)
        }
        Err(denied) => Decided::Run(
            Box::default(),
            Some(Response {
                error: vec![denied],
                errorcode: Some(1),
                serverdone: true,
                ..Default::default()
            }),
        ),
    }
}

/// A request to decide on.
pub struct Asking<'a> {
    /// Who authenticated (certificate, login, token), if anyone.
    pub peername: Option<&'a str>,
    /// Whom the request acts for (the peername, or whom a trusted peer names).
    pub user: &'a str,
    pub host: &'a str,
    pub command: &'a str,
    /// The arguments as the client sent them (what policy's `parameters` match).
    pub wire_args: &'a [String],
    /// The command line to run.
    pub args: Vec<String>,
    pub noderange: Option<String>,
    pub clienttype: String,
}

/// Policy for one request: the request to run, or xcatd's refusal (audited and logged).
pub fn authorize(
    store: &Store,
    resolver: &Resolver,
    rules: &[policy::Rule],
    a: Asking<'_>,
) -> Result<Request, String> {
    let noderange = a
        .noderange
        .clone()
        .or_else(|| crate::cli::request_noderange(a.command, &a.args));
    let nodes = noderange.as_ref().map(|nr| {
        resolver
            .noderange(nr, false)
            .map(|e| e.nodes)
            .unwrap_or_else(|_| vec![nr.clone()])
    });
    let expand = |nr: &str| -> Vec<String> {
        resolver
            .noderange(nr, false)
            .map(|e| e.nodes)
            .unwrap_or_default()
    };
    let peer = Peer {
        name: a.peername,
        host: Some(a.host),
    };
    let decision = policy::validate(
        rules,
        &peer,
        &Asked {
            command: a.command,
            args: a.wire_args,
            nodes,
        },
        &expand,
    );
    if !decision.allowed() {
        let audit = RequestAudit {
            user: a.user.to_string(),
            client: a.host.to_string(),
            clienttype: a.clienttype.clone(),
            command: a.command.to_string(),
            noderange: noderange.clone().unwrap_or_default(),
            args: a.args.join(" "),
            status: "Denied".into(),
        };
        if let Err(e) = store.audit_request(&audit) {
            warn!("xcatd: cannot write the audit log: {e}");
        }
        static DENIED: Throttle = Throttle::burst(20, Duration::from_secs(1));
        if let Some(suppressed) = DENIED.check() {
            warn!(
                suppressed,
                "Permission denied for request: peername={}, peerhost={}, command={}",
                a.peername.unwrap_or(""),
                a.host,
                a.command
            );
        }
        return Err("Permission denied for request".into());
    }
    // Secrets are shown to whom policy allows the pseudo-command `showsecrets` (root, by the
    // default rows).
    let show_secrets = policy::validate(
        rules,
        &peer,
        &Asked {
            command: "showsecrets",
            args: &[],
            nodes: None,
        },
        &expand,
    )
    .allowed();
    // Allowed: the command's own run writes the audit row (as a local command does).
    Ok(Request {
        command: a.command.to_string(),
        args: a.args,
        user: a.user.to_string(),
        peer: a.host.to_string(),
        clienttype: a.clienttype,
        noderange,
        remote: true,
        mask_secrets: !show_secrets,
        ..Default::default()
    })
}

/// The policy table's enabled rows (from the store, for an admin request).
pub fn policy_rules(store: &Store) -> Vec<policy::Rule> {
    let Ok(spec) = crate::store::table_spec("policy") else {
        return Vec::new();
    };
    let rows = store.rows("policy").unwrap_or_default();
    rules_of(
        spec,
        rows.iter().filter(|r| !crate::store::is_disabled(spec, r)),
    )
}

fn rules_of<'a>(
    spec: &crate::store::TableSpec,
    rows: impl Iterator<Item = &'a crate::store::Row>,
) -> Vec<policy::Rule> {
    let col = |row: &crate::store::Row, name: &str| -> String {
        spec.col_index(name)
            .and_then(|i| row.get(i).cloned().flatten())
            .unwrap_or_default()
    };
    rows.map(|r| policy::Rule {
        priority: col(r, "priority"),
        name: col(r, "name"),
        host: col(r, "host"),
        commands: col(r, "commands"),
        noderange: col(r, "noderange"),
        parameters: col(r, "parameters"),
        rule: col(r, "rule"),
    })
    .collect()
}

/// The policy rules from the resolver's cached table.
pub fn rules_from(resolver: &Resolver) -> Vec<policy::Rule> {
    match resolver.table("policy") {
        Ok(t) => rules_of(t.spec, t.rows.iter()),
        Err(_) => Vec::new(),
    }
}

/// Whether policy lets `user` (from `host`) run `command args` on `noderange`, without
/// auditing or logging (for what a page polls).
pub fn permits(
    resolver: &Resolver,
    user: &str,
    host: &str,
    command: &str,
    args: &[String],
    noderange: Option<&str>,
) -> bool {
    let rules = rules_from(resolver);
    let expand = |nr: &str| -> Vec<String> {
        resolver
            .noderange(nr, false)
            .map(|e| e.nodes)
            .unwrap_or_default()
    };
    policy::validate(
        &rules,
        &Peer {
            name: Some(user),
            host: Some(host),
        },
        &Asked {
            command,
            args,
            nodes: noderange.map(&expand),
        },
        &expand,
    )
    .allowed()
}

/// Whether policy lets `node` make the node request `command` (`getpostscript`, `getdestiny`,
/// `nextdestiny`, `litefile`, `litetree`): nodes ask without a certificate, from their own
/// address, as they ask xcatd; the default rows allow these to anyone. Read from the resolver's
/// cached table (the callers have caught it up).
pub fn node_request_allowed(resolver: &Resolver, command: &str, node: &str) -> bool {
    let Ok(t) = resolver.table("policy") else {
        return false;
    };
    let rules = rules_of(t.spec, t.rows.iter());
    let expand = |nr: &str| -> Vec<String> {
        resolver
            .noderange(nr, false)
            .map(|e| e.nodes)
            .unwrap_or_default()
    };
    let ok = policy::validate(
        &rules,
        &Peer {
            name: None,
            host: Some(node),
        },
        &Asked {
            command,
            args: &[],
            nodes: None,
        },
        &expand,
    )
    .allowed();
    if !ok {
        static DENIED: Throttle = Throttle::burst(20, Duration::from_secs(1));
        if let Some(suppressed) = DENIED.check() {
            warn!(
                suppressed,
                "Permission denied for request: peerhost={node}, command={command}"
            );
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_out_in_whole_lines_and_blank_lines_wait_for_text() {
        let mut p = Pending::default();
        p.push(b"a\nb");
        assert_eq!(p.take_lines().as_deref(), Some("a"));
        p.push(b"\n\n");
        assert_eq!(p.take_lines().as_deref(), Some("b\n"));
        p.push(b"c\n");
        assert_eq!(p.take_lines().as_deref(), Some("c"));
        p.push(b"\n");
        assert_eq!(p.take_lines(), None);
        assert_eq!(p.take_all().as_deref(), Some(""));
    }

    #[test]
    fn error_lines_keep_their_text_for_xcats_client() {
        assert_eq!(error_response("Error: x").error, ["x"]);
        assert!(!error_response("Error: x").no_error_prefix);
        assert_eq!(error_response("Warning: w").warning, ["w"]);
        let r = error_response("n1: Error: down");
        assert!(r.no_error_prefix && r.error == ["n1: Error: down"]);
    }

    #[test]
    fn exit_codes_are_numbers_again() {
        assert_eq!(exit_value(ExitCode::SUCCESS), 0);
        assert_eq!(exit_value(ExitCode::from(2)), 2);
    }
}
