//! The OMAPI control port: ISC dhcpd's TCP protocol for host and lease objects, on top of the
//! [`super::wire`] codec. Host objects live in the `omapihosts` table (so they survive restarts and
//! reach the DHCP service through the change log, taking effect on its next packet); lease objects
//! are read from `dhcpleases`.
//!
//! Security: a key is required (passwd key=omapi, username = site.dhcpomapikeyname or xcat_key,
//! algorithm site.dhcpomapialgorithm, hmac-md5 by default). Unsigned requests get NOKEYS, a bad
//! signature gets INVALIDKEY and the connection is closed, a message with another session's authid
//! closes the connection — as dhcpd does, except that dhcpd also answers a signed-session message
//! carrying no signature, which we refuse.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::statements::Statements;
use super::wire::{self, names, status, Algorithm, Authenticator, Dict, Message, Opcode, Startup};
use crate::dhcp::config::normalize_mac;
use crate::limits::{PerSource, Throttle};
use crate::store::{Audit, Store, StoreError};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(300);
/// A connection that has not logged in (a signed session) within this long is closed: an
/// OMAPI client (omshell, makedhcp, xCAT) logs in at once.
const LOGIN_WITHIN: Duration = Duration::from_secs(10);
/// Connections one client address may hold (`site.omapiperclient`).
pub const PER_CLIENT: usize = 8;

/// The configured key, read from the store for every new connection (so `makedhcp -n` needs no restart).
pub fn load_key(store: &Store) -> Result<Option<Authenticator>, String> {
    let name = store
        .site("dhcpomapikeyname")
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "xcat_key".into());
    let alg_name = store
        .site("dhcpomapialgorithm")
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "hmac-md5".into());
    let alg = Algorithm::from_config_name(&alg_name)
        .ok_or_else(|| format!("site.dhcpomapialgorithm '{alg_name}' is not an algorithm bootherd knows (hmac-md5, hmac-sha256, …)"))?;
    let Some(row) = store
        .get("passwd", &["omapi", &name])
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let Some(secret) = row.get(2).cloned().flatten() else {
        return Ok(None);
    };
    Authenticator::from_base64(&name, alg, &secret)
        .map(Some)
        .map_err(|e| format!("OMAPI key '{name}': {e}"))
}

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, store: Arc<Store>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let s2 = store.clone();
    let per_client = tokio::task::spawn_blocking(move || {
        crate::limits::site_limit(&s2, "omapiperclient", PER_CLIENT)
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
                    warn!("OMAPI accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = sources.try_acquire(peer.ip()) else {
            if let Some(suppressed) = OVER.check() {
                warn!(suppressed, "OMAPI: {} holds its {per_client} connections (site.omapiperclient); refusing more", peer.ip());
            }
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            if let Some(suppressed) = FULL.check() {
                warn!(
                    suppressed,
                    "OMAPI: {MAX_CONNECTIONS} connections open; refusing {peer}"
                );
            }
            continue;
        };
        let store = store.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(sock, store, stop).await {
                debug!("OMAPI connection from {peer} ended: {e}");
            }
            drop(permit);
            drop(slot);
        });
    }
}

/// What a handle given to the client stands for.
#[derive(Debug, Clone)]
enum Handle {
    Host(String),
    Lease(Ipv4Addr),
}

struct Session {
    store: Arc<Store>,
    key: Option<Authenticator>,
    authid: Option<u32>,
    handles: HashMap<u32, Handle>,
    next_handle: u32,
    next_tid: u32,
}

async fn connection(
    mut sock: TcpStream,
    store: Arc<Store>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let peer = sock.peer_addr().map(|p| p.to_string()).unwrap_or_default();
    let s2 = store.clone();
    let key = tokio::task::spawn_blocking(move || load_key(&s2))
        .await
        .map_err(|e| e.to_string())?;
    let key = match key {
        Ok(k) => k,
        Err(e) => {
            static KEY: Throttle = Throttle::new();
            if let Some(suppressed) = KEY.check() {
                warn!(suppressed, "OMAPI: {e}");
            }
            None
        }
    };
    sock.write_all(&Startup::CURRENT.encode())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut greeted = false;
    let mut session = Session {
        store,
        key,
        authid: None,
        handles: HashMap::new(),
        next_handle: 1,
        next_tid: 1,
    };
    let mut chunk = [0u8; 8192];
    let login_by = tokio::time::Instant::now() + LOGIN_WITHIN;
    loop {
        // Take every complete message already buffered.
        loop {
            if !greeted {
                match Startup::decode(&buf) {
                    Ok(Some(_)) => {
                        buf.drain(..wire::STARTUP_LEN);
                        greeted = true;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad startup from {peer}: {e}")),
                }
                continue;
            }
            let decoded = match wire::decode(&buf) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    static MALFORMED: Throttle = Throttle::new();
                    if let Some(suppressed) = MALFORMED.check() {
                        warn!(
                            suppressed,
                            "OMAPI: malformed message from {peer}: {e}; closing"
                        );
                    }
                    return Err(e.to_string());
                }
            };
            let (reply, close) = session.handle(&decoded, &buf).await;
            buf.drain(..decoded.len);
            if let Some((msg, signed)) = reply {
                let auth = if signed { session.key.as_ref() } else { None };
                let bytes = wire::encode(&msg, auth).map_err(|e| e.to_string())?;
                sock.write_all(&bytes).await.map_err(|e| e.to_string())?;
            }
            if close {
                return Ok(());
            }
        }
        let wait = if session.authid.is_some() {
            tokio::time::Instant::now() + IDLE
        } else {
            login_by
        };
        let n = tokio::select! {
            r = tokio::time::timeout_at(wait, sock.read(&mut chunk)) => match r {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("idle".into()),
            },
            _ = stop.changed() => return Ok(()),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn mac_of(d: &Dict) -> Option<String> {
    d.get(names::HARDWARE_ADDRESS)
        .filter(|m| m.len() == 6)
        .map(|m| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
}

fn mac_bytes(mac: &str) -> Vec<u8> {
    normalize_mac(mac)
        .map(|m| {
            m.split(':')
                .filter_map(|h| u8::from_str_radix(h, 16).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One omapihosts row.
#[derive(Debug, Clone, Default)]
struct HostObj {
    name: String,
    hwaddr: Option<String>,
    hwtype: u32,
    ip: Option<Ipv4Addr>,
    clientid: Option<String>,
    statements: Option<String>,
}

impl HostObj {
    fn to_dict(&self, d: &mut Dict) {
        d.set_str(names::NAME, &self.name);
        if let Some(m) = &self.hwaddr {
            d.set(names::HARDWARE_ADDRESS, mac_bytes(m));
        }
        d.set_u32(names::HARDWARE_TYPE, self.hwtype);
        if let Some(ip) = self.ip {
            d.set_ipv4(names::IP_ADDRESS, ip);
        }
    }
}

fn hosts(store: &Store) -> Result<Vec<HostObj>, StoreError> {
    let spec = crate::store::table_spec("omapihosts")?;
    Ok(store
        .rows("omapihosts")?
        .into_iter()
        .filter(|r| !crate::store::is_disabled(spec, r))
        .filter_map(|r| {
            let g = |i: usize| r.get(i).cloned().flatten().filter(|v| !v.is_empty());
            Some(HostObj {
                name: g(0)?,
                hwaddr: g(1).and_then(|m| normalize_mac(&m)),
                hwtype: g(2).and_then(|t| t.parse().ok()).unwrap_or(1),
                ip: g(3).and_then(|a| a.parse().ok()),
                clientid: g(4),
                statements: g(5),
            })
        })
        .collect())
}

fn save(store: &Store, h: &HostObj, replaces: Option<&str>, what: &str) -> Result<(), StoreError> {
    let audit = Audit {
        command: "omapi".into(),
        noderange: h.name.clone(),
        args: what.into(),
    };
    store.write(Some(&audit), |tx| {
        if let Some(old) = replaces.filter(|o| *o != h.name) {
            tx.delete("omapihosts", &[old])?;
        }
        let ip = h.ip.map(|a| a.to_string());
        let ty = h.hwtype.to_string();
        tx.set(
            "omapihosts",
            &[&h.name],
            &[
                ("hwaddr", h.hwaddr.as_deref()),
                ("hwtype", Some(&ty)),
                ("ip", ip.as_deref()),
                ("clientid", h.clientid.as_deref()),
                ("statements", h.statements.as_deref()),
            ],
        )
    })
}

/// Reads the attributes an OMAPI client may set on a host, validating each.
fn apply_attrs(h: &mut HostObj, obj: &Dict) -> Result<(), (u32, String)> {
    let bad = |e: wire::WireError| (status::INVALIDARG, e.to_string());
    for (name, value) in obj.iter() {
        let name = String::from_utf8_lossy(name).to_string();
        match name.as_str() {
            "name" => {
                h.name = obj
                    .get_str(names::NAME)
                    .map_err(bad)?
                    .unwrap_or_default()
                    .to_string()
            }
            "hardware-address" => {
                if value.len() != 6 {
                    return Err((
                        status::INVALIDARG,
                        format!("hardware-address of {} bytes (6 expected)", value.len()),
                    ));
                }
                h.hwaddr = mac_of(obj);
            }
            "hardware-type" => {
                h.hwtype = obj.get_u32(names::HARDWARE_TYPE).map_err(bad)?.unwrap_or(1)
            }
            "ip-address" => h.ip = obj.get_ipv4(names::IP_ADDRESS).map_err(bad)?,
            "dhcp-client-identifier" => {
                h.clientid = Some(value.iter().map(|b| format!("{b:02x}")).collect())
            }
            "statements" => {
                let text = String::from_utf8_lossy(value).to_string();
                Statements::parse(&text).map_err(|e| {
                    (
                        status::INVALIDARG,
                        format!("statements not understood: {e}"),
                    )
                })?;
                h.statements = Some(text);
            }
            "known" | "group" => {}
            other => {
                return Err((
                    status::UNKNOWNATTRIBUTE,
                    format!("host attribute '{other}' is not supported"),
                ))
            }
        }
    }
    Ok(())
}

/// Finds a host by the keys present in `obj` (name, then hardware-address, then ip-address).
fn find_host<'a>(all: &'a [HostObj], obj: &Dict) -> Option<&'a HostObj> {
    if let Ok(Some(n)) = obj.get_str(names::NAME) {
        return all.iter().find(|h| h.name == n);
    }
    if let Some(m) = mac_of(obj) {
        return all.iter().find(|h| h.hwaddr.as_deref() == Some(m.as_str()));
    }
    if let Ok(Some(ip)) = obj.get_ipv4(names::IP_ADDRESS) {
        return all.iter().find(|h| h.ip == Some(ip));
    }
    None
}

/// ISC's lease binding states, as OMAPI reports them.
fn lease_state(s: &str) -> u32 {
    match s {
        "active" => 2,
        "expired" => 3,
        "released" => 4,
        "declined" => 5,
        _ => 1,
    }
}

impl Session {
    fn tid(&mut self) -> u32 {
        self.next_tid = self.next_tid.wrapping_add(1);
        self.next_tid
    }

    fn reply(&mut self, req: &Message, op: Opcode) -> Message {
        let mut m = Message::reply(req, op);
        m.tid = self.tid();
        m
    }

    fn status(&mut self, req: &Message, code: u32, text: &str) -> Message {
        let mut m = Message::status(req, code, if text.is_empty() { None } else { Some(text) });
        m.tid = self.tid();
        m
    }

    /// Returns the reply (and whether to sign it) and whether to close the connection.
    async fn handle(&mut self, d: &wire::Decoded, buf: &[u8]) -> (Option<(Message, bool)>, bool) {
        let m = &d.message;
        if m.authid == 0 {
            let is_login = m.opcode == Opcode::Open
                && m.message.get(names::TYPE) == Some(names::TYPE_AUTHENTICATOR.as_bytes());
            if !is_login {
                let reply = self.status(
                    m,
                    status::NOKEYS,
                    "no key given: this server requires a signed session",
                );
                return (Some((reply, false)), false);
            }
            let Some(key) = self.key.as_ref() else {
                static NO_KEY: Throttle = Throttle::new();
                if let Some(suppressed) = NO_KEY.check() {
                    warn!(
                        suppressed,
                        "OMAPI login refused: no key configured (run makedhcp -n)"
                    );
                }
                let reply = self.status(m, status::NOTFOUND, "no object matches specification");
                return (Some((reply, false)), false);
            };
            if !key.accepts_login(&m.object) {
                let reply = self.status(m, status::NOTFOUND, "no object matches specification");
                return (Some((reply, false)), false);
            }
            let login = key.login_object();
            let authid = 1;
            self.authid = Some(authid);
            let mut reply = self.reply(m, Opcode::Update);
            reply.authid = 0;
            reply.handle = authid;
            reply.object = login;
            return (Some((reply, false)), false);
        }
        if Some(m.authid) != self.authid {
            return (None, true);
        }
        let verified = self
            .key
            .as_ref()
            .is_some_and(|k| k.verify(d.signed_bytes(buf), &m.signature));
        if !verified {
            static BAD_SIG: Throttle = Throttle::new();
            if let Some(suppressed) = BAD_SIG.check() {
                warn!(suppressed, "OMAPI: message with a bad signature; closing");
            }
            let mut reply = self.status(m, status::INVALIDKEY, "");
            reply.authid = 0;
            return (Some((reply, false)), true);
        }
        let reply = match self.dispatch(m).await {
            Ok(r) => r,
            Err((code, text)) => self.status(m, code, &text),
        };
        (Some((reply, true)), false)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, (u32, String)> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| (status::FAILURE, e.to_string()))?
            .map_err(|e| (status::FAILURE, e.to_string()))
    }

    async fn dispatch(&mut self, m: &Message) -> Result<Message, (u32, String)> {
        match m.opcode {
            Opcode::Open => {
                let ty = m
                    .message
                    .get_str(names::TYPE)
                    .map_err(|e| (status::INVALIDARG, e.to_string()))?
                    .unwrap_or("");
                match ty {
                    "host" => self.open_host(m).await,
                    "lease" => self.open_lease(m).await,
                    other => Err((
                        status::NOTIMPLEMENTED,
                        format!("object type '{other}' is not supported"),
                    )),
                }
            }
            Opcode::Refresh => match self.handles.get(&m.handle).cloned() {
                Some(Handle::Host(name)) => {
                    let all = self.blocking(hosts).await?;
                    let h = all
                        .iter()
                        .find(|h| h.name == name)
                        .ok_or((status::NOTFOUND, "host no longer exists".to_string()))?;
                    let mut r = self.reply(m, Opcode::Update);
                    r.handle = m.handle;
                    h.to_dict(&mut r.object);
                    Ok(r)
                }
                Some(Handle::Lease(ip)) => self.lease_reply(m, ip, m.handle).await,
                None => Err((status::NOTFOUND, "no such handle".into())),
            },
            Opcode::Update => match self.handles.get(&m.handle).cloned() {
                Some(Handle::Host(name)) => {
                    let all = self.blocking(hosts).await?;
                    let mut h = all
                        .into_iter()
                        .find(|h| h.name == name)
                        .ok_or((status::NOTFOUND, "host no longer exists".to_string()))?;
                    apply_attrs(&mut h, &m.object)?;
                    let new_name = h.name.clone();
                    self.blocking(move |s| save(s, &h, Some(&name), "update host"))
                        .await?;
                    self.handles.insert(m.handle, Handle::Host(new_name));
                    Ok(self.status(m, status::SUCCESS, ""))
                }
                Some(Handle::Lease(_)) => Err((
                    status::NOTIMPLEMENTED,
                    "leases cannot be changed over OMAPI".into(),
                )),
                None => Err((status::NOTFOUND, "no such handle".into())),
            },
            Opcode::Delete => match self.handles.get(&m.handle).cloned() {
                Some(Handle::Host(name)) => {
                    let n2 = name.clone();
                    let gone = self
                        .blocking(move |s| {
                            let audit = Audit {
                                command: "omapi".into(),
                                noderange: n2.clone(),
                                args: "remove host".into(),
                            };
                            s.write(Some(&audit), |tx| tx.delete("omapihosts", &[&n2]))
                        })
                        .await?;
                    self.handles.remove(&m.handle);
                    if gone {
                        info!("OMAPI: host {name} removed");
                        Ok(self.status(m, status::SUCCESS, ""))
                    } else {
                        Err((status::NOTFOUND, "host no longer exists".into()))
                    }
                }
                Some(Handle::Lease(_)) => Err((
                    status::NOTIMPLEMENTED,
                    "leases cannot be deleted over OMAPI".into(),
                )),
                None => Err((status::NOTFOUND, "no such handle".into())),
            },
            _ => Err((status::NOTIMPLEMENTED, "operation not supported".into())),
        }
    }

    async fn open_host(&mut self, m: &Message) -> Result<Message, (u32, String)> {
        let flag = |n: &str| {
            m.message
                .get_u32(n)
                .map_err(|e| (status::INVALIDARG, e.to_string()))
                .map(|v| v.unwrap_or(0) != 0)
        };
        let (create, exclusive) = (flag(names::CREATE)?, flag(names::EXCLUSIVE)?);
        let all = self.blocking(hosts).await?;
        let existing = find_host(&all, &m.object).cloned();
        let host = match (existing, create) {
            (Some(_), true) if exclusive => {
                return Err((status::EXISTS, "object already exists".into()))
            }
            (Some(h), _) => {
                if create {
                    // A non-exclusive create of an existing host applies the new values to it.
                    let mut h2 = h.clone();
                    apply_attrs(&mut h2, &m.object)?;
                    let (old, h3) = (h.name.clone(), h2.clone());
                    self.blocking(move |s| save(s, &h3, Some(&old), "create host"))
                        .await?;
                    h2
                } else {
                    h
                }
            }
            (None, false) => return Err((status::NOTFOUND, "not found".into())),
            (None, true) => {
                let mut h = HostObj {
                    hwtype: 1,
                    ..HostObj::default()
                };
                apply_attrs(&mut h, &m.object)?;
                if h.hwaddr.is_none() && h.clientid.is_none() {
                    return Err((
                        status::INVALIDARG,
                        "a host needs a hardware-address or dhcp-client-identifier".into(),
                    ));
                }
                if h.name.is_empty() {
                    // pypureomapi's add_host sends no name; dhcpd keeps such hosts anonymous.
                    h.name = format!(
                        "host-{}",
                        h.hwaddr.as_deref().unwrap_or("").replace(':', "")
                    );
                }
                if let Some(other) = all
                    .iter()
                    .find(|o| o.hwaddr.is_some() && o.hwaddr == h.hwaddr)
                {
                    return Err((
                        status::KEYCONFLICT,
                        format!("hardware-address already belongs to host '{}'", other.name),
                    ));
                }
                if let Some(other) = all.iter().find(|o| o.ip.is_some() && o.ip == h.ip) {
                    return Err((
                        status::KEYCONFLICT,
                        format!("ip-address already belongs to host '{}'", other.name),
                    ));
                }
                let h2 = h.clone();
                self.blocking(move |s| save(s, &h2, None, "create host"))
                    .await?;
                info!(
                    "OMAPI: host {} created ({} → {})",
                    h.name,
                    h.hwaddr.as_deref().unwrap_or("?"),
                    h.ip.map(|a| a.to_string()).unwrap_or_default()
                );
                h
            }
        };
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle::Host(host.name.clone()));
        let mut r = self.reply(m, Opcode::Update);
        r.handle = handle;
        host.to_dict(&mut r.object);
        Ok(r)
    }

    async fn open_lease(&mut self, m: &Message) -> Result<Message, (u32, String)> {
        let ip = m
            .object
            .get_ipv4(names::IP_ADDRESS)
            .map_err(|e| (status::INVALIDARG, e.to_string()))?;
        let mac = mac_of(&m.object);
        let rows = self.blocking(|s| s.rows("dhcpleases")).await?;
        let found = rows.iter().find(|r| {
            let g = |i: usize| r.get(i).and_then(|v| v.as_deref());
            match (ip, &mac) {
                (Some(ip), _) => g(0) == Some(ip.to_string().as_str()),
                (None, Some(mac)) => g(1) == Some(mac.as_str()) && g(7) == Some("active"),
                _ => false,
            }
        });
        let Some(row) = found else {
            return Err((status::NOTFOUND, "not found".into()));
        };
        let Some(addr) = row.first().cloned().flatten().and_then(|a| a.parse().ok()) else {
            return Err((status::NOTFOUND, "not found".into()));
        };
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle::Lease(addr));
        self.lease_reply(m, addr, handle).await
    }

    async fn lease_reply(
        &mut self,
        m: &Message,
        ip: Ipv4Addr,
        handle: u32,
    ) -> Result<Message, (u32, String)> {
        let rows = self.blocking(|s| s.rows("dhcpleases")).await?;
        let key = ip.to_string();
        let row = rows
            .iter()
            .find(|r| r.first().and_then(|v| v.as_deref()) == Some(key.as_str()));
        let Some(row) = row else {
            return Err((status::NOTFOUND, "not found".into()));
        };
        let g = |i: usize| row.get(i).cloned().flatten();
        let mut r = self.reply(m, Opcode::Update);
        r.handle = handle;
        r.object.set_ipv4(names::IP_ADDRESS, ip);
        r.object
            .set_u32("state", lease_state(&g(7).unwrap_or_default()));
        if let Some(mac) = g(1) {
            r.object.set(names::HARDWARE_ADDRESS, mac_bytes(&mac));
            r.object.set_u32(names::HARDWARE_TYPE, 1);
        }
        for (col, name) in [(5usize, "starts"), (6, "ends")] {
            if let Some(t) = g(col).and_then(|v| v.parse::<u64>().ok()) {
                r.object.set_u32(name, u32::try_from(t).unwrap_or(u32::MAX));
            }
        }
        if let Some(h) = g(3) {
            r.object.set_str("client-hostname", &h);
        }
        Ok(r)
    }
}
