//! The DHCPv4 server: one socket per served interface, a decision per packet from the current
//! [`DhcpView`] and the [`LeaseBook`], and an ACK only after its lease is durable.
//!
//! Reactions to bad input (chosen per stage, as hickory-dns does): a datagram that does not decode,
//! is not a BOOTREQUEST or has no valid message type is dropped and counted; a client we may not
//! serve (unknown MAC with no dynamic range, `*NOIP*`, address outside the subnet) gets no answer
//! and one log line per MAC; a REQUEST for an address that is not the client's gets a NAK.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::bootfile::{self, ClientKind};
use super::config::{DhcpView, Subnet};
use super::leases::{
    now, Lease, LeaseBook, LeaseState, LeaseWriter, DECLINE_HOLD_SECS, OFFER_HOLD_SECS,
};
use super::mmsg::{send_all, RecvBatch};
use super::omapi::statements::RequestFacts;
use super::packet::{opt, MessageType, Packet};
use crate::limits::{Recent, Throttle};

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
    /// DISCOVERs left unanswered under overload (REQUESTs went first).
    pub shed: AtomicU64,
}

/// Shared state of the DHCP service.
pub struct DhcpServer {
    view: RwLock<Arc<DhcpView>>,
    book: Mutex<LeaseBook>,
    writer: LeaseWriter,
    /// Addresses ACKed but not yet committed, with the MAC each went to: a second client asking
    /// for one of them meanwhile gets no answer (it retries once the lease is in the book).
    claimed: Mutex<HashMap<Ipv4Addr, String>>,
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
            claimed: Mutex::new(HashMap::new()),
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
        if host.is_none() && view.elsewhere.contains(&mac) {
            return Decision::Drop("a node another appliance serves");
        }
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
            .map(|v| super::packet::hex_joined(v, None));
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
                let reuse = self.reusable(&view, &lease, t);
                if let Ok(mut b) = self.book.lock() {
                    // Never downgrade an active lease to an offer: a rebooting client keeps its address durable.
                    if b.by_ip(ip)
                        .is_none_or(|l| l.state != LeaseState::Active || l.mac != mac)
                    {
                        b.insert(lease);
                    }
                }
                let mut reply = self.reply(p, MessageType::Offer, ip, &view, subnet, host, iface);
                if let Some(ends) = reuse {
                    set_lease_times(&mut reply, ends - t);
                }
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
                        if let Ok(mut b) = self.book.lock() {
                            b.withdraw_offer(&mac);
                        }
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
                        let mut reply =
                            self.reply(p, MessageType::Ack, ip, &view, subnet, host, iface);
                        if let Some(ends) = self.reusable(&view, &lease, t) {
                            // The lease stands as stored: ACK it with its remaining time, now,
                            // and write nothing.
                            set_lease_times(&mut reply, ends - t);
                            return Decision::Reply {
                                to: self.destination(p, false),
                                reply,
                                lease: None,
                            };
                        }
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

    /// When `new` may be answered with the client's lease as the store holds it, its end: ISC
    /// dhcpd's `dhcp-cache-threshold`. The book's active lease for the address must be this
    /// client's (same MAC, client id, node and host name), unexpired, no longer than a lease
    /// given now would be, and younger than `view.cache_threshold` percent of its length. An
    /// active lease is in the book only once committed, so the answer is as durable as a new
    /// commit's; it costs no write, which a client restarting its DHCP within minutes (PXE ROM,
    /// iPXE, the booted OS) would otherwise cost at every step.
    fn reusable(&self, view: &DhcpView, new: &Lease, t: u64) -> Option<u64> {
        let pct = u64::from(view.cache_threshold);
        if pct == 0 {
            return None;
        }
        let b = self.book.lock().ok()?;
        let l = b.by_ip(new.ip)?;
        let length = l.ends.checked_sub(l.starts)?;
        let age = t.checked_sub(l.starts)?;
        (l.state == LeaseState::Active
            && l.mac == new.mac
            && l.client_id == new.client_id
            && l.node == new.node
            && l.hostname == new.hostname
            && l.ends > t
            && l.ends <= t + u64::from(view.lease_time)
            && age * 100 <= length * pct)
            .then_some(l.ends)
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

    /// Decides one round of datagrams received on `iface`: REQUESTs (and every other message)
    /// first, DISCOVERs after them, so that under a flood the clients already offered an address
    /// finish before new ones start. With `discover_deadline`, DISCOVERs still undecided at that
    /// instant are shed (no answer; the client retries) — the round runs only when the socket
    /// could not be drained, so the server keeps up with reading and never lets REQUESTs queue
    /// behind DISCOVERs it has no time for.
    pub fn decide_round(
        &self,
        iface: &Iface,
        dgrams: &[(&[u8], SocketAddrV4)],
        discover_deadline: Option<Instant>,
        round: &mut Round,
    ) {
        let t = now();
        let shed_before = round.shed;
        let view = self.view();
        // A boot-timeline event for this client? Nodes' always; machines that are no node only
        // as many as the recorder keeps (a DHCP load test's thousands would be formatted and
        // then dropped).
        let timeline = |mac: &str| {
            crate::timeline::enabled()
                && (view.hosts.contains_key(mac) || crate::timeline::take_unknown())
        };
        let mut decoded = Vec::with_capacity(dgrams.len());
        for (d, from) in dgrams {
            self.stats.received.fetch_add(1, Ordering::Relaxed);
            match Packet::decode(d) {
                Ok(p) => decoded.push((p, *from)),
                Err(e) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    debug!("dropped datagram from {from} on {}: {e}", iface.name);
                }
            }
        }
        for discovers in [false, true] {
            let mut checked = 0usize;
            for (p, from) in &decoded {
                if (p.message_type() == Some(MessageType::Discover)) != discovers {
                    continue;
                }
                if discovers {
                    if let Some(d) = discover_deadline {
                        // The clock is read every 8 DISCOVERs: cheap, and a few µs late at most.
                        if round.shed > shed_before
                            || (checked.is_multiple_of(8) && Instant::now() >= d)
                        {
                            round.shed += 1;
                            continue;
                        }
                        checked += 1;
                    }
                }
                match self.decide(p, iface, t) {
                    Decision::Drop(why) => {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        debug!("no answer to {} from {}: {why}", p.mac_string(), from);
                    }
                    Decision::Record(lease) => round.records.push(lease),
                    Decision::Reply { reply, to, lease } => {
                        let mtype = reply.message_type();
                        if lease.is_none() {
                            // ACKs are logged once sent, after their commit (commit_round).
                            debug!(
                                "{:?} {} → {} for {}",
                                mtype,
                                reply.yiaddr,
                                to,
                                p.mac_string()
                            );
                        }
                        match lease {
                            Some(l) => {
                                // Two clients asking for one address in the same round: the
                                // first gets it, the other no answer (it retries and is
                                // decided against the committed lease).
                                let taken = self
                                    .claimed
                                    .lock()
                                    .map(|mut c| match c.get(&l.ip) {
                                        Some(m) => *m != l.mac,
                                        None => {
                                            c.insert(l.ip, l.mac.clone());
                                            false
                                        }
                                    })
                                    .unwrap_or(false);
                                if taken {
                                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                if timeline(&l.mac) {
                                    round.ack_events.push(dhcp_event(
                                        crate::timeline::Kind::DhcpAck,
                                        &reply,
                                        &l.mac,
                                    ));
                                }
                                round.acks.push((reply.encode(), to));
                                round.acked.push(l);
                            }
                            None => {
                                if timeline(&p.mac_string()) {
                                    let kind = match mtype {
                                        Some(MessageType::Offer) => {
                                            Some(crate::timeline::Kind::DhcpOffer)
                                        }
                                        Some(MessageType::Nak) => {
                                            Some(crate::timeline::Kind::DhcpNak)
                                        }
                                        // A lease answered as it stands (nothing to commit).
                                        Some(MessageType::Ack) if reply.yiaddr.is_unspecified() => {
                                            None
                                        }
                                        Some(MessageType::Ack) => {
                                            Some(crate::timeline::Kind::DhcpAck)
                                        }
                                        _ => None,
                                    };
                                    if let Some(k) = kind {
                                        crate::timeline::record(dhcp_event(
                                            k,
                                            &reply,
                                            &p.mac_string(),
                                        ));
                                    }
                                }
                                match mtype {
                                    Some(MessageType::Offer) => {
                                        self.stats.offers.fetch_add(1, Ordering::Relaxed)
                                    }
                                    Some(MessageType::Nak) => {
                                        self.stats.naks.fetch_add(1, Ordering::Relaxed)
                                    }
                                    Some(MessageType::Ack) => {
                                        self.stats.acks.fetch_add(1, Ordering::Relaxed)
                                    }
                                    _ => 0,
                                };
                                round.now.push((reply.encode(), to));
                            }
                        }
                    }
                }
            }
        }
        if round.shed > shed_before {
            self.stats
                .shed
                .fetch_add((round.shed - shed_before) as u64, Ordering::Relaxed);
        }
    }

    /// Makes a round's leases durable, then (and only then) puts its ACKed leases in the book and
    /// returns the ACKs to send: one entry per ACK of the round, in its order, `None` for one not
    /// to send (its address is another appliance's), and all `None` when nothing could be saved.
    /// Without a durable lease there is no ACK: the clients retry. Leaves the round empty (apart
    /// from its shed count).
    pub fn commit_round(&self, round: &mut Round) -> Vec<Option<(Vec<u8>, SocketAddrV4)>> {
        if round.acked.is_empty() && round.records.is_empty() {
            return Vec::new();
        }
        let mut n = round.acked.len();
        let mut events = std::mem::take(&mut round.ack_events);
        let mut leases = std::mem::take(&mut round.acked);
        leases.append(&mut round.records);
        let acks = std::mem::take(&mut round.acks);
        let saved = self.writer.commit_blocking(&leases);
        let mut claimed = self.claimed.lock().ok();
        let refused = match saved {
            Ok(r) => r,
            Err(e) => {
                if n > 0 {
                    warn!("no ACK for {n} request(s): leases not saved: {e}");
                } else {
                    warn!("lease change not saved: {e}");
                }
                if let Some(c) = claimed.as_mut() {
                    for l in &leases[..n] {
                        c.remove(&l.ip);
                    }
                }
                return vec![None; acks.len()];
            }
        };
        // Addresses another appliance sharing the store holds: no ACK (the client retries and
        // is NAKed or offered another address), and the book learns the holder.
        let mut acks: Vec<_> = acks.into_iter().map(Some).collect();
        if !refused.is_empty() {
            static TAKEN: Throttle = Throttle::new();
            if let Some(suppressed) = TAKEN.check() {
                for r in refused.iter().take(3) {
                    info!(
                        suppressed,
                        "{} for {} not ACKed: another appliance gave it to {}",
                        r.holder.ip,
                        leases[r.index].mac,
                        r.holder.mac
                    );
                }
            }
            let out: std::collections::HashSet<usize> = refused.iter().map(|r| r.index).collect();
            // The other ACKs keep their places: the committer sends each socket's share by
            // position.
            for &i in &out {
                if let Some(a) = acks.get_mut(i) {
                    *a = None;
                }
            }
            // Not every ACK has an event (machines that are no node: a few per flush), so
            // the refused ones' events are found by MAC.
            let macs: std::collections::HashSet<&str> = refused
                .iter()
                .map(|r| leases[r.index].mac.as_str())
                .collect();
            events.retain(
                |e| !matches!(&e.who, crate::timeline::Who::Mac(m) if macs.contains(m.as_str())),
            );
            // The book is behind what the other appliances gave out: learn all of it (one read
            // of the lease table), not only these holders, or the refused clients' next picks
            // walk into the other appliance's addresses one refusal at a time.
            let stored = self.writer.stored();
            if let Ok(mut b) = self.book.lock() {
                for r in &refused {
                    if let Some(c) = claimed.as_mut() {
                        c.remove(&leases[r.index].ip);
                    }
                    b.insert(r.holder.clone());
                }
                match stored {
                    Ok(all) => {
                        let n = b.learn(all, now());
                        debug!("{n} lease(s) of other appliances learned from the store");
                    }
                    Err(e) => warn!("cannot read the leases other appliances gave out: {e}"),
                }
            }
            let mut k = 0;
            leases.retain(|_| {
                k += 1;
                !out.contains(&(k - 1))
            });
            n -= out.iter().filter(|i| **i < n).count();
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            for (l, (_, to)) in leases[..n].iter().zip(acks.iter().flatten()) {
                debug!(
                    "{:?} {} → {} for {}",
                    Some(MessageType::Ack),
                    l.ip,
                    to,
                    l.mac
                );
            }
        }
        if let Ok(mut b) = self.book.lock() {
            for l in leases.drain(..n) {
                if let Some(c) = claimed.as_mut() {
                    c.remove(&l.ip);
                }
                b.insert(l);
            }
        }
        drop(claimed);
        for e in events {
            crate::timeline::record(e);
        }
        self.stats
            .acks
            .fetch_add(acks.iter().flatten().count() as u64, Ordering::Relaxed);
        acks
    }
}

/// What [`DhcpServer::decide_round`] decided and [`DhcpServer::commit_round`] commits; rounds
/// decided while a commit waits accumulate here.
#[derive(Debug, Default)]
pub struct Round {
    /// Replies that need nothing durable: OFFERs, NAKs, answers to INFORM (send and clear them).
    pub now: Vec<(Vec<u8>, SocketAddrV4)>,
    /// ACKs, sent once their leases ([`Round::acked`]) are committed.
    pub acks: Vec<(Vec<u8>, SocketAddrV4)>,
    /// The leases of [`Round::acks`], in the same order.
    pub acked: Vec<Lease>,
    /// Lease changes without a reply (RELEASE, DECLINE).
    pub records: Vec<Lease>,
    /// DISCOVERs left unanswered because a round ran out of time under overload.
    pub shed: usize,
    /// Boot-timeline events of the ACKs, recorded once their leases are committed (only while
    /// a recorder runs).
    pub ack_events: Vec<crate::timeline::Event>,
}

impl Round {
    /// Whether anything waits for a commit.
    pub fn pending(&self) -> bool {
        !self.acked.is_empty() || !self.records.is_empty()
    }
}

/// Sets a reply's lease time (option 51) and its renewal (T1) and rebinding (T2) times from it,
/// as for a full lease.
fn set_lease_times(reply: &mut Packet, secs: u64) {
    let lease = u32::try_from(secs).unwrap_or(u32::MAX);
    reply.set_u32(opt::LEASE_TIME, lease);
    reply.set_u32(opt::RENEWAL, lease / 2);
    reply.set_u32(opt::REBINDING, lease / 8 * 7);
}

/// A timeline event for a reply: its address and boot file.
fn dhcp_event(kind: crate::timeline::Kind, reply: &Packet, mac: &str) -> crate::timeline::Event {
    let file = String::from_utf8_lossy(&reply.file);
    let file = file.trim_end_matches('\0');
    let detail = if file.is_empty() {
        format!("{} to {mac}", reply.yiaddr)
    } else {
        format!("{} to {mac}, boot file {file}", reply.yiaddr)
    };
    crate::timeline::Event::now(crate::timeline::Who::Mac(mac.to_string()), kind, detail)
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

/// Binds a DHCP socket on `iface` (SO_BINDTODEVICE, so each interface answers for itself), with
/// a receive buffer deep enough for a burst of a few thousand requests; non-blocking (its thread
/// waits with `ppoll`).
pub fn bind(iface: &str, port: u16) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(iface.as_bytes()))?;
    // Root may exceed net.core.rmem_max; otherwise take what the limit allows.
    if nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &RCVBUF).is_err() {
        let _ = s.set_recv_buffer_size(RCVBUF);
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    Ok(s.into())
}

/// Receive buffer asked for each DHCP socket.
const RCVBUF: usize = 8 << 20;
/// Datagrams taken per `recvmmsg`.
const BATCH: usize = 64;
/// Most datagrams decided in one round; a round that reaches it found the socket not drained.
const ROUND_MAX: usize = 1024;
/// Under overload (a full round), how long after a round begins DISCOVERs are still answered.
const DISCOVER_BUDGET: Duration = Duration::from_millis(4);
/// Group commit: how long a decided ACK may wait for more to share its commit (one fsync).
const COMMIT_LINGER: Duration = Duration::from_millis(5);
/// ... and how many may wait before the commit runs at once.
const COMMIT_MAX: usize = 512;
/// Shortest time between the starts of two rounds while busy (see `serve_socket`). Measured
/// under perfdhcp at 5,000 exchanges/s (relay, 2 interleaved rounds): 0.5 ms 36 µs of CPU per
/// exchange, 1 ms 26–30 µs, 2 ms 19–22 µs, for an OFFER 1.2 ms late at most (clients wait
/// seconds before they retransmit).
const COALESCE: Duration = Duration::from_millis(2);
/// How long an idle thread waits before looking at the shutdown flag.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Serves every interface until shutdown: one thread per socket, each taking all queued
/// datagrams at once (`recvmmsg`), deciding them as one round and sending the OFFERs at once
/// (`sendmmsg`); one committer thread makes the ACKed leases durable — every round waiting while
/// a commit runs goes into the next one (one fsync) — and only then sends their ACKs. A slow
/// disk delays ACKs, never OFFERs or reading.
pub async fn run(
    server: Arc<DhcpServer>,
    sockets: Vec<(Arc<Iface>, std::net::UdpSocket)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Handle::current();
    let (jobs, queue) = std::sync::mpsc::channel::<CommitJob>();
    let mut threads = Vec::new();
    let srv = server.clone();
    match std::thread::Builder::new()
        .name("dhcp-commit".into())
        .spawn(move || committer(&srv, &queue))
    {
        Ok(t) => threads.push(t),
        Err(e) => warn!("cannot start the DHCP lease committer: {e}"),
    }
    for (iface, sock) in sockets {
        let (server, stop, rt, jobs) = (server.clone(), stop.clone(), rt.clone(), jobs.clone());
        let sock = Arc::new(sock);
        let name = format!("dhcp-{}", iface.name);
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || serve_socket(&server, &iface, &sock, &stop, &rt, &jobs))
        {
            Ok(t) => threads.push(t),
            Err(e) => warn!("cannot start a DHCP thread: {e}"),
        }
    }
    drop(jobs);
    let _ = shutdown.changed().await;
    stop.store(true, Ordering::SeqCst);
    // Each receiver notices within IDLE_WAIT and hands over what it decided; the committer
    // finishes once every receiver is gone.
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
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

/// A receiver's decided round, for the committer.
struct CommitJob {
    round: Round,
    sock: Arc<std::net::UdpSocket>,
    iface: Arc<Iface>,
}

fn committer(server: &DhcpServer, queue: &std::sync::mpsc::Receiver<CommitJob>) {
    use std::os::fd::AsRawFd;
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = queue.try_recv() {
            jobs.push(j);
        }
        let mut all = Round::default();
        let mut parts = Vec::with_capacity(jobs.len());
        for j in jobs {
            let CommitJob {
                mut round,
                sock,
                iface,
            } = j;
            parts.push((sock, iface, round.acks.len()));
            all.acks.append(&mut round.acks);
            all.acked.append(&mut round.acked);
            all.ack_events.append(&mut round.ack_events);
            all.records.append(&mut round.records);
        }
        // One entry per ACK of every part, in order; `None`s are not sent.
        let mut acks = server.commit_round(&mut all).into_iter();
        for (sock, iface, n) in parts {
            let mine: Vec<(Vec<u8>, SocketAddrV4)> = acks.by_ref().take(n).flatten().collect();
            if mine.is_empty() {
                continue;
            }
            let bytes: usize = mine.iter().map(|(d, _)| d.len()).sum();
            crate::metrics::DHCP.sent(bytes as u64);
            for (to, e) in send_all(sock.as_raw_fd(), &mine) {
                crate::metrics::DHCP.error();
                warn!("cannot send DHCP ACK to {to} on {}: {e}", iface.name);
            }
        }
    }
}

fn serve_socket(
    server: &DhcpServer,
    iface: &Arc<Iface>,
    sock: &Arc<std::net::UdpSocket>,
    stop: &AtomicBool,
    rt: &tokio::runtime::Handle,
    jobs: &std::sync::mpsc::Sender<CommitJob>,
) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let mut rb = RecvBatch::new(BATCH);
    let mut arena: Vec<u8> = Vec::with_capacity(ROUND_MAX * 600);
    let mut items: Vec<(std::ops::Range<usize>, SocketAddrV4)> = Vec::with_capacity(ROUND_MAX);
    let mut round = Round::default();
    // When the oldest decision waiting for a commit was made.
    let mut waiting_since: Option<Instant> = None;
    let mut last_start: Option<Instant> = None;
    // Overload reports: DISCOVERs shed since the last report, at most one report a second.
    let mut shed_reported = 0usize;
    let mut shed_since: Option<Instant> = None;
    let commit = |round: &mut Round| {
        if !round.pending() {
            return;
        }
        let job = CommitJob {
            round: Round {
                acks: std::mem::take(&mut round.acks),
                acked: std::mem::take(&mut round.acked),
                ack_events: std::mem::take(&mut round.ack_events),
                records: std::mem::take(&mut round.records),
                ..Round::default()
            },
            sock: sock.clone(),
            iface: iface.clone(),
        };
        if jobs.send(job).is_err() {
            warn!(
                "DHCP lease committer is gone; requests on {} not acknowledged",
                iface.name
            );
        }
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            commit(&mut round);
            return;
        }
        // Wait for datagrams; while decisions wait for a commit, only until the commit is due.
        let wait = match waiting_since {
            Some(t) => {
                let due = t + COMMIT_LINGER;
                let now = Instant::now();
                if now >= due {
                    commit(&mut round);
                    waiting_since = None;
                    continue;
                }
                due - now
            }
            None => IDLE_WAIT,
        };
        match readable(fd, wait) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                warn!("DHCP wait on {} failed: {e}", iface.name);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let started = Instant::now();
        arena.clear();
        items.clear();
        let mut full = false;
        loop {
            if items.len() >= ROUND_MAX {
                full = true;
                break;
            }
            match rb.recv(fd, false) {
                Ok(n) => {
                    for i in 0..n {
                        if let Some((d, from)) = rb.get(i) {
                            let at = arena.len();
                            arena.extend_from_slice(d);
                            items.push((at..arena.len(), from));
                        }
                    }
                    if n < rb.capacity() {
                        break;
                    }
                }
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        debug!("DHCP receive on {} failed: {e}", iface.name);
                    }
                    break;
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        // Taken on receipt: every store commit made before these datagrams arrived is in the
        // view they are decided on (one catch-up covers the round).
        let arrived = server.arrived();
        rt.block_on(server.refresh(arrived));
        let dgrams: Vec<(&[u8], SocketAddrV4)> = items
            .iter()
            .map(|(r, from)| (&arena[r.clone()], *from))
            .collect();
        server.decide_round(
            iface,
            &dgrams,
            full.then(|| started + DISCOVER_BUDGET),
            &mut round,
        );
        if round.shed > shed_reported {
            let since = *shed_since.get_or_insert(started);
            if started.duration_since(since) >= Duration::from_secs(1) {
                warn!(
                    "DHCP on {} overloaded: {} DISCOVER(s) left unanswered in the last {:.1} s; REQUESTs were answered first",
                    iface.name,
                    round.shed - shed_reported,
                    started.duration_since(since).as_secs_f64()
                );
                shed_reported = round.shed;
                shed_since = None;
            }
        }
        let now = std::mem::take(&mut round.now);
        for (to, e) in send_all(fd, &now) {
            crate::metrics::DHCP.error();
            warn!("cannot send DHCP reply to {to} on {}: {e}", iface.name);
        }
        // Counted per round: one add for the batch, not one per datagram.
        let m = &crate::metrics::DHCP;
        m.requests_n(items.len() as u64);
        m.sent(now.iter().map(|(d, _)| d.len() as u64).sum());
        m.duration.observe_n(started.elapsed(), items.len() as u64);
        if round.pending() {
            // Under load (a full round, or many waiting) commit at once: the batch is big anyway.
            if full || round.acked.len() + round.records.len() >= COMMIT_MAX {
                commit(&mut round);
                waiting_since = None;
            } else if waiting_since.is_none() {
                waiting_since = Some(started);
            }
        }
        // Coalescing, as a NIC's interrupt moderation does: while busy, let the next datagrams
        // queue for a moment and take them together instead of waking for each one. A round
        // that began within COALESCE of the previous one is busy; a request to an idle server is
        // answered at once.
        let busy = last_start.is_some_and(|l| started.duration_since(l) < COALESCE);
        last_start = Some(started);
        if !full && busy {
            let next = started + COALESCE;
            let now = Instant::now();
            if next > now + Duration::from_micros(50) {
                std::thread::sleep(next - now);
            }
        }
    }
}

/// Waits up to `timeout` for `fd` to become readable.
fn readable(fd: std::os::fd::RawFd, timeout: Duration) -> std::io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    let r = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const RELAY: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);

    fn server() -> DhcpServer {
        let view = DhcpView {
            subnets: vec![Subnet {
                name: "remote".into(),
                net: Ipv4Addr::new(10, 0, 1, 0),
                mask: Ipv4Addr::new(255, 255, 255, 0),
                prefix: 24,
                gateway: Some(Some(RELAY)),
                dns: Vec::new(),
                domain: None,
                ntp: Vec::new(),
                mtu: None,
                ranges: vec![(Ipv4Addr::new(10, 0, 1, 10), Ipv4Addr::new(10, 0, 1, 100))],
                tftpserver: None,
            }],
            lease_time: 3600,
            ..DhcpView::default()
        };
        let store = Arc::new(Store::open_in_memory().expect("store"));
        server_on(view, LeaseWriter::spawn(store))
    }

    fn server_on(view: DhcpView, writer: LeaseWriter) -> DhcpServer {
        DhcpServer::new(view, LeaseBook::default(), writer)
    }

    fn iface() -> Iface {
        Iface {
            name: "eth0".into(),
            addr: SERVER,
            noboot: true,
        }
    }

    /// A relayed DISCOVER, or REQUEST for `requested`, from MAC 02:00:00:00:00:`n`.
    fn msg(n: u8, mtype: MessageType, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let mut p = Packet {
            op: 1,
            htype: 1,
            hlen: 6,
            hops: 1,
            xid: u32::from(n),
            giaddr: RELAY,
            ..Packet::default()
        };
        p.chaddr[..6].copy_from_slice(&[2, 0, 0, 0, 0, n]);
        p.set(opt::MESSAGE_TYPE, vec![mtype as u8]);
        if let Some(ip) = requested {
            p.set_ip(opt::REQUESTED_IP, ip);
            p.set_ip(opt::SERVER_ID, SERVER);
        }
        p.encode()
    }

    fn reply_type(d: &[u8]) -> Option<MessageType> {
        Packet::decode(d).ok().and_then(|p| p.message_type())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn an_overloaded_round_answers_its_requests_and_sheds_its_discovers() {
        let s = server();
        let from = SocketAddrV4::new(RELAY, 67);
        // Client 1 is offered an address.
        let mut r = Round::default();
        let d1 = msg(1, MessageType::Discover, None);
        s.decide_round(&iface(), &[(&d1, from)], None, &mut r);
        assert_eq!(r.now.len(), 1);
        let offered = Packet::decode(&r.now[0].0).expect("offer").yiaddr;
        assert_eq!(reply_type(&r.now[0].0), Some(MessageType::Offer));
        // Then a round, found with more queued than it can take, holding two new clients'
        // DISCOVERs before client 1's REQUEST, whose time for DISCOVERs is already up.
        let mut r = Round::default();
        let (d2, d3) = (
            msg(2, MessageType::Discover, None),
            msg(3, MessageType::Discover, None),
        );
        let q1 = msg(1, MessageType::Request, Some(offered));
        let past = Instant::now() - Duration::from_millis(10);
        let dgrams = [(&d2[..], from), (&d3[..], from), (&q1[..], from)];
        let s2 = tokio::task::block_in_place(|| {
            s.decide_round(&iface(), &dgrams, Some(past), &mut r);
            r.shed
        });
        assert_eq!(s2, 2, "both DISCOVERs shed");
        assert!(r.now.is_empty(), "no OFFER sent: {:?}", r.now);
        assert_eq!(r.acked.len(), 1);
        assert_eq!(s.stats.shed.load(Ordering::Relaxed), 2);
        // The ACK leaves only once its lease is committed, and the lease is then in the book.
        let acks = tokio::task::block_in_place(|| s.commit_round(&mut r));
        assert_eq!(acks.len(), 1);
        let ack = acks[0].as_ref().expect("ACKed");
        assert_eq!(reply_type(&ack.0), Some(MessageType::Ack));
        assert_eq!(ack.1, from, "answered to the relay");
        let book = s.book.lock().expect("book");
        let l = book.by_mac("02:00:00:00:00:01").expect("lease");
        assert_eq!((l.ip, l.state), (offered, LeaseState::Active));
        // Without a deadline the same DISCOVERs are answered.
        drop(book);
        let mut r = Round::default();
        s.decide_round(&iface(), &dgrams[..2], None, &mut r);
        assert_eq!(r.now.len(), 2);
        assert_eq!(r.shed, 0);
    }

    /// Two appliances share a store. A round holds two REQUESTs; the other appliance already
    /// gave the first one's address away. The second client is ACKed all the same, the first is
    /// not, and is offered another address next. (The committer used to send none of a round's
    /// ACKs once one was refused: 56 clients went unanswered for a minute in tests/servicenode.rs.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_refused_lease_costs_only_its_own_ack() {
        let store = Arc::new(Store::open_in_memory().expect("store"));
        let writer = LeaseWriter::spawn(store.clone()).checking_others();
        let s = server_on(server().view().as_ref().clone(), writer.clone());
        let (taken, free) = (Ipv4Addr::new(10, 0, 1, 20), Ipv4Addr::new(10, 0, 1, 21));
        let t = now();
        // The other appliance's lease, as it committed it.
        let theirs = Lease {
            ip: taken,
            mac: "02:00:00:00:00:99".into(),
            client_id: None,
            hostname: None,
            node: None,
            starts: t,
            ends: t + 3600,
            state: LeaseState::Active,
        };
        // ... and two more it gave out, where this book's search for a free address begins.
        let mut more = vec![theirs.clone()];
        for (i, ip) in [Ipv4Addr::new(10, 0, 1, 10), Ipv4Addr::new(10, 0, 1, 11)]
            .into_iter()
            .enumerate()
        {
            more.push(Lease {
                ip,
                mac: format!("02:00:00:00:00:9{i}"),
                ..theirs.clone()
            });
        }
        tokio::task::block_in_place(|| writer.commit_blocking(&more)).expect("their leases");
        let from = SocketAddrV4::new(RELAY, 67);
        let (q1, q2) = (
            msg(1, MessageType::Request, Some(taken)),
            msg(2, MessageType::Request, Some(free)),
        );
        let mut round = Round::default();
        s.decide_round(&iface(), &[(&q1, from), (&q2, from)], None, &mut round);
        assert_eq!(round.acked.len(), 2, "both decided an ACK on the book");
        // The committer sends to where the round says: here, a socket of this test.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let Ok(std::net::SocketAddr::V4(to)) = rx.local_addr() else {
            panic!("no IPv4 address");
        };
        for a in &mut round.acks {
            a.1 = to;
        }
        let sock = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"));
        let (jobs, queue) = std::sync::mpsc::channel();
        jobs.send(CommitJob {
            round,
            sock,
            iface: Arc::new(iface()),
        })
        .expect("queue");
        drop(jobs);
        tokio::task::block_in_place(|| committer(&s, &queue));
        let mut b = [0u8; 1500];
        let n = rx.recv(&mut b).expect("client 2's ACK sent");
        let ack = Packet::decode(&b[..n]).expect("ACK");
        assert_eq!(
            (ack.message_type(), ack.yiaddr, ack.mac_string().as_str()),
            (Some(MessageType::Ack), free, "02:00:00:00:00:02")
        );
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        assert!(rx.recv(&mut b).is_err(), "client 1 is not ACKed");
        assert_eq!(s.stats.acks.load(Ordering::Relaxed), 1);
        // The book learned the holder; client 1 is offered another address, and its REQUEST
        // for the taken one is NAKed.
        let d1 = msg(1, MessageType::Discover, None);
        let mut r = Round::default();
        s.decide_round(&iface(), &[(&d1, from), (&q1, from)], None, &mut r);
        let types: Vec<_> = r.now.iter().map(|(d, _)| reply_type(d)).collect();
        assert_eq!(
            types,
            [Some(MessageType::Nak), Some(MessageType::Offer)],
            "REQUESTs are decided first"
        );
        // Not one of the other appliance's addresses either: the refusal made the book learn
        // every lease the store holds.
        let offered = Packet::decode(&r.now[1].0).expect("offer").yiaddr;
        assert_eq!(offered, Ipv4Addr::new(10, 0, 1, 12));
    }

    /// ISC dhcpd's dhcp-cache-threshold (default 25 %): a renewal of a lease younger than a
    /// quarter of its length is ACKed at once with the lease as stored (its remaining time),
    /// and nothing is written; an older lease, or with the threshold 0, is committed anew.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_young_lease_is_acked_as_it_stands_and_not_written_again() {
        let store = Arc::new(Store::open_in_memory().expect("store"));
        let writer = LeaseWriter::spawn(store.clone());
        let mut view = server().view().as_ref().clone();
        view.cache_threshold = 25;
        let s = server_on(view.clone(), writer.clone());
        let from = SocketAddrV4::new(RELAY, 67);
        let t = now();
        // Client n's lease, committed `age` seconds ago for an hour.
        let held = |n: u8, age: u64| Lease {
            ip: Ipv4Addr::new(10, 0, 1, 30 + n),
            mac: format!("02:00:00:00:00:0{n}"),
            client_id: None,
            hostname: None,
            node: None,
            starts: t - age,
            ends: t - age + 3600,
            state: LeaseState::Active,
        };
        let leases = [held(1, 600), held(2, 1000)];
        tokio::task::block_in_place(|| writer.commit_blocking(&leases)).expect("leases");
        for l in &leases {
            s.book.lock().expect("book").insert(l.clone());
        }
        let starts = |n: u8| {
            LeaseBook::load(&store)
                .expect("load")
                .by_mac(&format!("02:00:00:00:00:0{n}"))
                .map(|l| l.starts)
        };
        let (q1, q2) = (
            msg(1, MessageType::Request, Some(leases[0].ip)),
            msg(2, MessageType::Request, Some(leases[1].ip)),
        );
        let mut r = Round::default();
        s.decide_round(&iface(), &[(&q1, from), (&q2, from)], None, &mut r);
        // Client 1 (10 minutes into an hour): ACKed now, with the 50 minutes left.
        assert_eq!(r.now.len(), 1, "one ACK needs no commit");
        let ack = Packet::decode(&r.now[0].0).expect("ACK");
        assert_eq!(
            (ack.message_type(), ack.yiaddr),
            (Some(MessageType::Ack), leases[0].ip)
        );
        let left = u32::try_from(leases[0].ends - t).expect("secs");
        let lease_time = ack
            .get(opt::LEASE_TIME)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes);
        assert!(
            lease_time.is_some_and(|l| l <= left && l + 2 >= left),
            "lease time {lease_time:?}, {left} s left"
        );
        // Client 2 (1,000 s in: past 25 %): a new lease, committed before its ACK.
        assert_eq!(r.acked.len(), 1);
        assert_eq!(r.acked[0].mac, "02:00:00:00:00:02");
        let acks = tokio::task::block_in_place(|| s.commit_round(&mut r));
        assert_eq!(acks.iter().flatten().count(), 1);
        assert_eq!(
            starts(1),
            Some(t - 600),
            "client 1's lease not written again"
        );
        assert!(
            starts(2).is_some_and(|s| s >= t),
            "client 2's lease renewed"
        );
        // With the threshold 0, every ACK writes its lease.
        view.cache_threshold = 0;
        s.set_view(view);
        let mut r = Round::default();
        s.decide_round(&iface(), &[(&q1, from)], None, &mut r);
        assert!(r.now.is_empty());
        tokio::task::block_in_place(|| s.commit_round(&mut r));
        assert!(
            starts(1).is_some_and(|s| s >= t),
            "client 1's lease renewed"
        );
    }
}
