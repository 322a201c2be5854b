//! The DHCPv4 server: one socket per served interface, a decision per packet from the current
//! [`DhcpView`] and the [`LeaseBook`], and an ACK only after its lease is durable.
//!
//! Reactions to bad input (chosen per stage, as hickory-dns does): a datagram that does not decode,
//! is not a BOOTREQUEST or has no valid message type is dropped and counted; a client we may not
//! serve (unknown MAC with no dynamic range, `*NOIP*`, address outside the subnet) gets no answer
//! and one log line per MAC; a REQUEST for an address that is not the client's gets a NAK.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::bootfile::{self, ClientKind};
use super::config::{DhcpView, Subnet};
use super::leases::{
    now, Lease, LeaseBook, LeaseState, LeaseWriter, DECLINE_HOLD_SECS, OFFER_HOLD_SECS,
};
use super::omapi::statements::RequestFacts;
use super::packet::{opt, MessageType, Packet};
use crate::limits::{Recent, Throttle};

/// Requests handled at once; beyond this, datagrams wait in the kernel's socket buffer.
const MAX_IN_FLIGHT: usize = 1024;
/// MACs remembered as "already logged as not served" at most: a flood of random MACs costs at
/// most this many entries (about 100 bytes each).
pub const LOGGED_CAP: usize = 1024;
/// How long a MAC stays "already logged": a client still refused after this logs again.
pub const LOGGED_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// iPXE's encapsulated options (175) holding only `no-pxedhcp` (176) = 1 (`DHCP_EB_NO_PXEDHCP` in
/// iPXE's `include/ipxe/dhcp.h`): do not wait for ProxyDHCP offers.
pub const IPXE_NO_PXEDHCP: [u8; 3] = [176, 1, 1];

/// An interface the server answers on.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    /// The interface's IPv4 address: server identifier and default next-server for its clients.
    pub addr: Ipv4Addr,
    /// `:noboot` in `site.dhcpinterfaces`.
    pub noboot: bool,
}

/// Counters for the log and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub offers: AtomicU64,
    pub acks: AtomicU64,
    pub naks: AtomicU64,
}

/// Shared state of the DHCP service.
pub struct DhcpServer {
    view: RwLock<Arc<DhcpView>>,
    book: Mutex<LeaseBook>,
    writer: LeaseWriter,
    /// MACs already logged as "not served", so a client retrying every few seconds logs once
    /// (per [`LOGGED_TTL`]); at most [`LOGGED_CAP`] of them, beyond which lines are throttled.
    logged: Mutex<Recent>,
    pub stats: Stats,
    /// Keeps the view as current as the store before each request (read your writes); `None`
    /// for a fixed view (unit tests).
    keeper: Option<Arc<super::keeper::ViewKeeper>>,
    /// UDP port clients listen on (68; tests may move it).
    pub client_port: u16,
    /// UDP port relays listen on (67).
    pub relay_port: u16,
}

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Drop(&'static str),
    /// Reply, persisting `lease` first when given.
    Reply {
        reply: Packet,
        to: SocketAddrV4,
        lease: Option<Lease>,
    },
    /// No reply, but record this lease change (RELEASE, DECLINE).
    Record(Lease),
}

impl DhcpServer {
    pub fn new(view: DhcpView, book: LeaseBook, writer: LeaseWriter) -> DhcpServer {
        DhcpServer {
            view: RwLock::new(Arc::new(view)),
            book: Mutex::new(book),
            writer,
            logged: Mutex::new(Recent::new(LOGGED_CAP, LOGGED_TTL)),
            stats: Stats::default(),
            keeper: None,
            client_port: 68,
            relay_port: 67,
        }
    }

    /// Rebuilds the view before a request whenever the store changed under it.
    pub fn with_keeper(mut self, keeper: Arc<super::keeper::ViewKeeper>) -> DhcpServer {
        self.keeper = Some(keeper);
        self
    }

    /// Brings the view up to date with the store for a request that `arrived` (`None`: now);
    /// see [`super::keeper`].
    pub async fn refresh(&self, arrived: Option<crate::store::resolver::Ticket>) {
        if let Some(k) = &self.keeper {
            k.refresh(arrived, |v| self.set_view(v)).await;
        }
    }

    /// Notes a request's arrival, for [`DhcpServer::refresh`].
    pub fn arrived(&self) -> Option<crate::store::resolver::Ticket> {
        self.keeper.as_ref().map(|k| k.ticket())
    }

    /// Replaces the view (after a store change).
    pub fn set_view(&self, view: DhcpView) {
        if let Ok(mut v) = self.view.write() {
            *v = Arc::new(view);
        }
        if let Ok(mut l) = self.logged.lock() {
            l.clear();
        }
    }

    /// Drops a lease an admin removed from the store (change-log key `ip=…`, or `node=…`/`mac=…`).
    pub fn forget_lease(&self, key: &str) {
        if let Ok(mut b) = self.book.lock() {
            let n = b.forget(key);
            if n > 0 {
                info!("{n} lease(s) dropped from memory ({key})");
            }
        }
    }

    pub fn view(&self) -> Arc<DhcpView> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    fn log_once(&self, mac: &str, msg: std::fmt::Arguments<'_>) {
        static FLOOD: Throttle = Throttle::new();
        let first = self
            .logged
            .lock()
            .map(|mut l| l.first(mac))
            .unwrap_or(Some(true));
        match first {
            Some(true) => info!("{msg}"),
            Some(false) => {}
            // More distinct MACs than we remember: a flood; one line per interval.
            None => {
                if let Some(suppressed) = FLOOD.check() {
                    info!(
                        suppressed,
                        "{msg} (many clients not served: lines throttled)"
                    );
                }
            }
        }
    }

    /// MACs remembered as "already logged" (tests).
    pub fn logged_len(&self) -> usize {
        self.logged.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Decides how to answer `p`, received on `iface`, at time `t`. Pure apart from the lease book.
    pub fn decide(&self, p: &Packet, iface: &Iface, t: u64) -> Decision {
        if p.op != 1 {
            return Decision::Drop("not a BOOTREQUEST");
        }
        let Some(mtype) = p.message_type() else {
            return Decision::Drop("no valid message type");
        };
        if p.hlen == 0 {
            return Decision::Drop("no hardware address");
        }
        let view = self.view();
        let mac = p.mac_string();
        let relayed = !p.giaddr.is_unspecified();
        let anchor = if relayed { p.giaddr } else { iface.addr };
        let Some(subnet) = view.subnets.iter().find(|s| s.contains(anchor)) else {
            self.log_once(&mac, format_args!("DHCP {mtype:?} from {mac} via {anchor}: no network in the networks table contains {anchor}; not answered"));
            return Decision::Drop("no subnet");
        };
        let host = view.hosts.get(&mac);
        if host.is_some_and(|h| h.noip) {
            return Decision::Drop("*NOIP* (deny booting)");
        }
        if host
            .and_then(|h| h.statements.as_ref())
            .is_some_and(|st| st.eval(&request_facts(p)).deny_booting)
        {
            return Decision::Drop("deny booting (OMAPI host statements)");
        }
        let client_id = p
            .get(opt::CLIENT_ID)
            .map(|v| v.iter().map(|b| format!("{b:02x}")).collect::<String>());
        match mtype {
            MessageType::Discover => {
                let Some(ip) = self.address_for(&view, subnet, p, host, &mac, t) else {
                    return Decision::Drop("no address");
                };
                let lease = Lease {
                    ip,
                    mac: mac.clone(),
                    client_id,
                    hostname: host
                        .map(|h| h.hostname.clone())
                        .or_else(|| p.get_str(opt::HOSTNAME)),
                    node: host.map(|h| h.node.clone()),
                    starts: t,
                    ends: t + OFFER_HOLD_SECS,
                    state: LeaseState::Offered,
                };
                if let Ok(mut b) = self.book.lock() {
                    // Never downgrade an active lease to an offer: a rebooting client keeps its address durable.
                    if b.by_ip(ip)
                        .is_none_or(|l| l.state != LeaseState::Active || l.mac != mac)
                    {
                        b.insert(lease);
                    }
                }
                let reply = self.reply(p, MessageType::Offer, ip, &view, subnet, host, iface);
                Decision::Reply {
                    to: self.destination(p, false),
                    reply,
                    lease: None,
                }
            }
            MessageType::Request => {
                if let Some(sid) = p.get_ip(opt::SERVER_ID) {
                    if sid != iface.addr {
                        // The client chose another server; forget our offer.
                        return Decision::Drop("request for another server");
                    }
                }
                let requested = p.get_ip(opt::REQUESTED_IP).unwrap_or(p.ciaddr);
                let wanted = match host {
                    Some(h) => h.ip.filter(|ip| subnet.contains(*ip)),
                    None => {
                        let ok = subnet.in_dynamic_range(requested)
                            && !view.reserved.contains_key(&requested)
                            && self
                                .book
                                .lock()
                                .map(|b| b.free_for(requested, &mac, t))
                                .unwrap_or(false);
                        ok.then_some(requested)
                    }
                };
                match wanted {
                    Some(ip) if ip == requested => {
                        let lease = Lease {
                            ip,
                            mac: mac.clone(),
                            client_id,
                            hostname: host
                                .map(|h| h.hostname.clone())
                                .or_else(|| p.get_str(opt::HOSTNAME)),
                            node: host.map(|h| h.node.clone()),
                            starts: t,
                            ends: t + u64::from(view.lease_time),
                            state: LeaseState::Active,
                        };
                        let reply = self.reply(p, MessageType::Ack, ip, &view, subnet, host, iface);
                        Decision::Reply {
                            to: self.destination(p, false),
                            reply,
                            lease: Some(lease),
                        }
                    }
                    _ => {
                        if requested.is_unspecified() {
                            return Decision::Drop("request without an address");
                        }
                        // RFC 2131: NAK only when we are sure the address is wrong for this client.
                        let mut nak = self.base_reply(p, MessageType::Nak, iface);
                        nak.set(
                            opt::MESSAGE,
                            format!("{requested} is not {mac}'s address").into_bytes(),
                        );
                        Decision::Reply {
                            to: self.destination(p, true),
                            reply: nak,
                            lease: None,
                        }
                    }
                }
            }
            MessageType::Release => {
                let released = self
                    .book
                    .lock()
                    .ok()
                    .and_then(|mut b| b.release(&mac, p.ciaddr, t));
                match released {
                    Some(l) => Decision::Record(l),
                    None => Decision::Drop("release of an address the client does not hold"),
                }
            }
            MessageType::Decline => {
                let Some(ip) = p.get_ip(opt::REQUESTED_IP) else {
                    return Decision::Drop("decline without an address");
                };
                if let Some(sid) = p.get_ip(opt::SERVER_ID) {
                    if sid != iface.addr {
                        return Decision::Drop("decline sent to another server");
                    }
                }
                // As ISC dhcpd and Kea: believed only from the client that holds or was offered
                // the address, and only for an address of a pool. A node's reserved address is
                // never declined by anyone: its owner keeps it (dhcpd ignores DECLINEs for
                // fixed addresses).
                static IGNORED: Throttle = Throttle::new();
                let why = if view.reserved.contains_key(&ip)
                    || host.and_then(|h| h.ip).is_some_and(|h| h == ip)
                {
                    Some("a node's reserved address")
                } else if !subnet.in_dynamic_range(ip) {
                    Some("not in the dynamic range")
                } else if !self.book.lock().is_ok_and(|b| {
                    b.by_ip(ip).is_some_and(|l| {
                        l.mac == mac
                            && matches!(l.state, LeaseState::Active | LeaseState::Offered)
                            && l.ends > t
                    })
                }) {
                    Some("not this client's lease or offer")
                } else {
                    None
                };
                if let Some(why) = why {
                    if let Some(suppressed) = IGNORED.check() {
                        warn!(suppressed, "DHCPDECLINE of {ip} from {mac} ignored: {why}");
                    }
                    return Decision::Drop("decline not from the address's client");
                }
                static DECLINED: Throttle = Throttle::new();
                if let Some(suppressed) = DECLINED.check() {
                    warn!(suppressed, "{mac} declined {ip} (another host answers ARP for it?); kept out of the pool for {DECLINE_HOLD_SECS} s");
                }
                let l = Lease {
                    ip,
                    mac: mac.clone(),
                    client_id,
                    hostname: None,
                    node: None,
                    starts: t,
                    ends: t + DECLINE_HOLD_SECS,
                    state: LeaseState::Declined,
                };
                if let Ok(mut b) = self.book.lock() {
                    b.insert(l.clone());
                }
                Decision::Record(l)
            }
            MessageType::Inform => {
                let mut reply = self.reply(
                    p,
                    MessageType::Ack,
                    Ipv4Addr::UNSPECIFIED,
                    &view,
                    subnet,
                    host,
                    iface,
                );
                reply.options.retain(|(c, _)| {
                    !matches!(*c, opt::LEASE_TIME | opt::RENEWAL | opt::REBINDING)
                });
                let to = if relayed {
                    SocketAddrV4::new(p.giaddr, self.relay_port)
                } else {
                    SocketAddrV4::new(p.ciaddr, self.client_port)
                };
                Decision::Reply {
                    reply,
                    to,
                    lease: None,
                }
            }
            _ => Decision::Drop("not a client message"),
        }
    }

    /// The address to offer: a known node's own, else one from the dynamic range.
    fn address_for(
        &self,
        view: &DhcpView,
        subnet: &Subnet,
        p: &Packet,
        host: Option<&super::config::HostEntry>,
        mac: &str,
        t: u64,
    ) -> Option<Ipv4Addr> {
        if let Some(h) = host {
            return match h.ip {
                Some(ip) if subnet.contains(ip) => Some(ip),
                Some(ip) => {
                    self.log_once(mac, format_args!("{} ({mac}) has address {ip}, which is not on network '{}' where it asks; not answered", h.node, subnet.name));
                    None
                }
                None => {
                    self.log_once(mac, format_args!("{} ({mac}) has no hosts.ip and its name does not resolve; not answered", h.node));
                    None
                }
            };
        }
        if subnet.ranges.is_empty() {
            self.log_once(
                mac,
                format_args!(
                    "unknown MAC {mac} on network '{}' which has no dynamicrange; not answered",
                    subnet.name
                ),
            );
            return None;
        }
        let requested = p.get_ip(opt::REQUESTED_IP);
        let mut book = self.book.lock().ok()?;
        // Honour the address the client asks for when it is free and in range.
        if let Some(r) = requested {
            if subnet.in_dynamic_range(r)
                && !view.reserved.contains_key(&r)
                && book.free_for(r, mac, t)
            {
                return Some(r);
            }
        }
        let picked = book.pick(
            mac,
            &subnet.ranges,
            &|ip| view.reserved.contains_key(&ip),
            t,
        );
        if picked.is_none() {
            drop(book);
            self.log_once(
                mac,
                format_args!(
                    "dynamic range of network '{}' is exhausted; {mac} not answered",
                    subnet.name
                ),
            );
        }
        picked
    }

    fn base_reply(&self, p: &Packet, mtype: MessageType, iface: &Iface) -> Packet {
        let mut r = Packet {
            op: 2,
            htype: p.htype,
            hlen: p.hlen,
            xid: p.xid,
            flags: p.flags,
            giaddr: p.giaddr,
            chaddr: p.chaddr,
            ..Packet::default()
        };
        r.set(opt::MESSAGE_TYPE, vec![mtype as u8]);
        r.set_ip(opt::SERVER_ID, iface.addr);
        if let Some(agent) = p.get(opt::RELAY_AGENT) {
            r.set(opt::RELAY_AGENT, agent.to_vec());
        }
        r
    }

    /// A reply with everything the client gets from us; to iPXE, when it names a boot file, also
    /// iPXE's "no-pxedhcp" (175.176 = 1): the offer is complete, so iPXE requests it at once
    /// instead of waiting seconds for ProxyDHCP offers no one sends. A reply without a boot file
    /// leaves the client free to wait for another server's.
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        p: &Packet,
        mtype: MessageType,
        ip: Ipv4Addr,
        view: &DhcpView,
        subnet: &Subnet,
        host: Option<&super::config::HostEntry>,
        iface: &Iface,
    ) -> Packet {
        let mut r = self.reply_body(p, mtype, ip, view, subnet, host, iface);
        let ipxe = p.get(opt::IPXE_ENCAP).is_some()
            || p.user_classes().iter().any(|u| u == "iPXE" || u == "xNBA");
        let boots = r.file.iter().any(|b| *b != 0) || r.get(opt::PXELINUX_CONFIGFILE).is_some();
        if ipxe && boots {
            r.set(opt::IPXE_ENCAP, IPXE_NO_PXEDHCP.to_vec());
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn reply_body(
        &self,
        p: &Packet,
        mtype: MessageType,
        ip: Ipv4Addr,
        view: &DhcpView,
        subnet: &Subnet,
        host: Option<&super::config::HostEntry>,
        iface: &Iface,
    ) -> Packet {
        let mut r = self.base_reply(p, mtype, iface);
        r.yiaddr = ip;
        if mtype == MessageType::Ack && !p.ciaddr.is_unspecified() {
            r.ciaddr = p.ciaddr;
        }
        let me = iface.addr;
        let lease = view.lease_time;
        r.set_u32(opt::LEASE_TIME, lease);
        r.set_u32(opt::RENEWAL, lease / 2);
        r.set_u32(opt::REBINDING, lease / 8 * 7);
        r.set_ip(opt::SUBNET_MASK, subnet.mask);
        if let Some(gw) = subnet.gateway {
            r.set_ip(opt::ROUTER, gw.unwrap_or(me));
        }
        let dns: Vec<Ipv4Addr> = if subnet.dns.is_empty() {
            &view.site_dns
        } else {
            &subnet.dns
        }
        .iter()
        .map(|d| d.unwrap_or(me))
        .collect();
        if !dns.is_empty() {
            r.set_ips(opt::DNS, &dns);
        }
        if let Some(d) = subnet.domain.as_ref().or(view.domain.as_ref()) {
            r.set(opt::DOMAIN, d.as_bytes().to_vec());
        }
        let ntp: Vec<Ipv4Addr> = subnet.ntp.iter().map(|d| d.unwrap_or(me)).collect();
        if !ntp.is_empty() {
            r.set_ips(opt::NTP, &ntp);
        }
        if let Some(mtu) = subnet.mtu {
            r.set(opt::MTU, mtu.to_be_bytes().to_vec());
        }
        if let Some(h) = host {
            r.set(opt::HOSTNAME, h.hostname.as_bytes().to_vec());
        }
        // Boot: next-server and file name.
        let client = ClientKind {
            arch: p.client_arch(),
            ipxe: p.get(opt::IPXE_ENCAP).is_some()
                || p.user_classes().iter().any(|u| u == "iPXE" || u == "xNBA"),
            vendor_class: p.get_str(opt::VENDOR_CLASS),
        };
        let mut next_server = host
            .and_then(|h| h.tftpserver)
            .or(subnet.tftpserver)
            .unwrap_or(me);
        if let Some(st) = host.and_then(|h| h.statements.as_ref()) {
            // An OMAPI host object's statements decide, as dhcpd's host declaration would.
            let e = st.eval(&request_facts(p));
            if let Some(h) = &e.hostname {
                r.set(opt::HOSTNAME, h.as_bytes().to_vec());
            }
            if let Some(ns) = e.next_server {
                next_server = ns;
            }
            if e.filename.is_some() || e.conf_file.is_some() || e.next_server.is_some() {
                r.siaddr = next_server;
                if let Some(f) = &e.filename {
                    r.file = f.as_bytes().to_vec();
                }
                if let Some(c) = &e.conf_file {
                    r.set(opt::PXELINUX_CONFIGFILE, c.as_bytes().to_vec());
                }
                return r;
            }
        }
        let boot = match host {
            Some(h) => h
                .netboot
                .as_ref()
                .map(|nb| bootfile::for_node(&h.node, nb, &client, next_server, h.local_boot)),
            None if iface.noboot => None,
            None => Some(bootfile::for_unknown(
                subnet.net,
                subnet.prefix,
                &client,
                next_server,
            )),
        };
        if let Some(b) = boot {
            r.siaddr = next_server;
            if let Some(f) = &b.filename {
                r.file = f.as_bytes().to_vec();
                let asked = p
                    .get(opt::PARAM_REQUEST)
                    .is_some_and(|l| l.contains(&opt::BOOTFILE));
                if asked && !f.is_empty() {
                    r.set(opt::BOOTFILE, f.as_bytes().to_vec());
                }
            }
            if let Some(c) = &b.conf_file {
                r.set(opt::PXELINUX_CONFIGFILE, c.as_bytes().to_vec());
            }
            if b.http_client {
                r.set(opt::VENDOR_CLASS, b"HTTPClient".to_vec());
            }
        }
        r
    }

    /// Where a reply goes (RFC 2131 §4.1).
    fn destination(&self, p: &Packet, nak: bool) -> SocketAddrV4 {
        if !p.giaddr.is_unspecified() {
            return SocketAddrV4::new(p.giaddr, self.relay_port);
        }
        if !nak && !p.ciaddr.is_unspecified() {
            return SocketAddrV4::new(p.ciaddr, self.client_port);
        }
        // A client without an address cannot be reached by unicast without an ARP entry; the
        // broadcast reaches it on the interface the socket is bound to.
        SocketAddrV4::new(Ipv4Addr::BROADCAST, self.client_port)
    }

    /// Handles one datagram end to end: decide, persist, send.
    pub async fn handle(
        self: Arc<Self>,
        buf: Vec<u8>,
        from: SocketAddr,
        iface: Arc<Iface>,
        sock: Arc<UdpSocket>,
    ) {
        let arrived = self.arrived();
        self.handle_arrived(buf, from, iface, sock, arrived).await
    }

    /// [`DhcpServer::handle`] for a datagram received at `arrived` ([`DhcpServer::arrived`]).
    pub async fn handle_arrived(
        self: Arc<Self>,
        buf: Vec<u8>,
        from: SocketAddr,
        iface: Arc<Iface>,
        sock: Arc<UdpSocket>,
        arrived: Option<crate::store::resolver::Ticket>,
    ) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let p = match Packet::decode(&buf) {
            Ok(p) => p,
            Err(e) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("dropped datagram from {from} on {}: {e}", iface.name);
                return;
            }
        };
        // Every store commit made before this request arrived is in the view it is decided on.
        self.refresh(arrived).await;
        match self.decide(&p, &iface, now()) {
            Decision::Drop(why) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                debug!("no answer to {} from {}: {why}", p.mac_string(), from);
            }
            Decision::Record(lease) => {
                if let Err(e) = self.writer.persist(lease).await {
                    warn!("lease change not saved: {e}");
                }
            }
            Decision::Reply { reply, to, lease } => {
                let mtype = reply.message_type();
                if let Some(l) = lease {
                    let l2 = l.clone();
                    if let Err(e) = self.writer.persist(l).await {
                        // Without a durable lease there is no ACK: the client retries.
                        warn!("no ACK for {}: lease not saved: {e}", p.mac_string());
                        return;
                    }
                    if let Ok(mut b) = self.book.lock() {
                        b.insert(l2);
                    }
                }
                match mtype {
                    Some(MessageType::Offer) => self.stats.offers.fetch_add(1, Ordering::Relaxed),
                    Some(MessageType::Ack) => self.stats.acks.fetch_add(1, Ordering::Relaxed),
                    Some(MessageType::Nak) => self.stats.naks.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                debug!(
                    "{:?} {} → {} for {}",
                    mtype,
                    reply.yiaddr,
                    to,
                    p.mac_string()
                );
                if let Err(e) = sock.send_to(&reply.encode(), SocketAddr::V4(to)).await {
                    warn!("cannot send DHCP reply to {to} on {}: {e}", iface.name);
                }
            }
        }
    }
}

/// What OMAPI statement conditions look at in a request.
fn request_facts(p: &Packet) -> RequestFacts {
    let user_classes = p.user_classes();
    RequestFacts {
        ipxe: p.get(opt::IPXE_ENCAP).is_some()
            || user_classes.iter().any(|u| u == "iPXE" || u == "xNBA"),
        user_classes,
        arch: p.client_arch(),
        vendor_class: p.get_str(opt::VENDOR_CLASS),
    }
}

/// Binds a DHCP socket on `iface` (SO_BINDTODEVICE, so each interface answers for itself).
pub fn bind(iface: &str, port: u16) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.as_bytes()))?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(s.into())
}

/// Receives on every interface until shutdown.
pub async fn run(
    server: Arc<DhcpServer>,
    sockets: Vec<(Arc<Iface>, Arc<UdpSocket>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for (iface, sock) in sockets {
        let server = server.clone();
        let limit = limit.clone();
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let permit = tokio::select! {
                    p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = stop.changed() => return,
                };
                let (n, from) = tokio::select! {
                    r = sock.recv_from(&mut buf) => match r {
                        Ok(x) => x,
                        Err(e) => {
                            warn!("DHCP receive on {} failed: {e}", iface.name);
                            continue;
                        }
                    },
                    _ = stop.changed() => return,
                };
                // Taken here, on receipt: requests that queue up behind one another share the
                // store check of whichever of them runs first.
                let arrived = server.arrived();
                let data = buf[..n].to_vec();
                let (server, iface, sock) = (server.clone(), iface.clone(), sock.clone());
                tokio::spawn(async move {
                    server
                        .handle_arrived(data, from, iface, sock, arrived)
                        .await;
                    drop(permit);
                });
            }
        });
    }
    let _ = shutdown.changed().await;
    tasks.abort_all();
    // Let in-flight requests finish their lease writes (bounded by the daemon's drain timeout).
    let _ = limit.acquire_many(MAX_IN_FLIGHT as u32).await;
    let st = &server.stats;
    info!(
        received = st.received.load(Ordering::Relaxed),
        dropped = st.dropped.load(Ordering::Relaxed),
        offers = st.offers.load(Ordering::Relaxed),
        acks = st.acks.load(Ordering::Relaxed),
        naks = st.naks.load(Ordering::Relaxed),
        "DHCP stopped"
    );
}
