//! What to do with one DNS packet: a pure function of the bytes and the [`DnsView`] (hickory's
//! codec does the wire format). A question under one of our zones is answered here
//! (authoritative: A, PTR, SOA, NS; NXDOMAIN for names we do not have, NODATA for other types),
//! any other question is handed to the forwarder when `site.forwarders` is set and the client
//! asked for recursion (REFUSED otherwise). Packets that do not parse, responses, and queries
//! without exactly one question are dropped: nothing is sent to whoever sent them.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, PTR, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::zone::{DnsView, TTL};

/// The largest UDP answer we send to a client that announces a larger buffer (RFC 9715's advice).
pub const MAX_UDP: usize = 1232;

/// What became of a packet.
#[derive(Debug)]
pub enum Decision {
    /// Nothing is sent back; the reason is for the (throttled) log line.
    Drop(&'static str),
    /// These bytes go back to the client.
    Reply(Vec<u8>),
    /// Not ours: ask the forwarders (see [`super::forward`]).
    Forward(Box<Message>),
}

/// The transport a packet came on: UDP answers are cut to what the client can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The reply size limit for `req` on `t`.
pub fn limit(req: &Message, t: Transport) -> usize {
    match t {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match &req.edns {
            Some(e) => usize::from(e.max_payload()).clamp(512, MAX_UDP),
            None => 512,
        },
    }
}

/// The response skeleton for `req`: same id, opcode, question, RD and CD; EDNS when asked.
pub fn response_for(req: &Message, code: ResponseCode) -> Message {
    let mut m = Message::response(req.metadata.id, req.metadata.op_code);
    m.metadata = Metadata::response_from_request(&req.metadata);
    m.metadata.response_code = code;
    m.queries = req.queries.clone();
    if req.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP as u16);
        m.set_edns(e);
    }
    m
}

/// Encodes `m`, replaced by its truncated form (TC set, question only) when it is over `max`.
pub fn encode(m: &Message, max: usize) -> Option<Vec<u8>> {
    let bytes = m.to_vec().ok()?;
    if bytes.len() <= max {
        return Some(bytes);
    }
    let mut t = m.truncate();
    t.metadata.id = m.metadata.id;
    t.to_vec().ok()
}

/// The decision for one packet.
pub fn decide(view: &DnsView, packet: &[u8], t: Transport) -> Decision {
    let req = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return Decision::Drop("malformed DNS packet"),
    };
    if req.metadata.message_type != MessageType::Query {
        return Decision::Drop("a DNS response sent to the server");
    }
    let max = limit(&req, t);
    let reply = |m: Message| match encode(&m, max) {
        Some(b) => Decision::Reply(b),
        None => Decision::Drop("answer could not be encoded"),
    };
    if req.metadata.op_code != OpCode::Query {
        return reply(response_for(&req, ResponseCode::NotImp));
    }
    if req.queries.len() != 1 {
        return Decision::Drop("DNS query without exactly one question");
    }
    if req.edns.as_ref().is_some_and(|e| e.version() > 0) {
        // RFC 6891: BADVERS (16), carried as extended rcode.
        return reply(response_for(&req, ResponseCode::BADVERS));
    }
    let q = &req.queries[0];
    let qname = lower(q.name());
    let Some(zone) = zone_of(view, &qname) else {
        if view.forwarders.is_empty() || !req.metadata.recursion_desired {
            return reply(response_for(&req, ResponseCode::Refused));
        }
        return Decision::Forward(Box::new(req));
    };
    if q.query_class() != DNSClass::IN && q.query_class() != DNSClass::ANY {
        return reply(response_for(&req, ResponseCode::Refused));
    }
    reply(authoritative(view, &req, q, &qname, zone))
}

/// A name as we compare it: lower case, no trailing dot.
pub fn lower(n: &Name) -> String {
    let s = n.to_ascii().to_ascii_lowercase();
    s.strip_suffix('.').unwrap_or(&s).to_string()
}

/// The most specific zone of ours holding `qname`.
fn zone_of<'v>(view: &'v DnsView, qname: &str) -> Option<&'v str> {
    view.domains
        .iter()
        .chain(view.reverse.iter())
        .filter(|z| qname == z.as_str() || qname.ends_with(&format!(".{z}")))
        .max_by_key(|z| z.len())
        .map(String::as_str)
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{s}.")).ok()
}

fn soa(view: &DnsView, zone: &str) -> Option<Record> {
    let server = name(&view.server)?;
    let rname = name(&format!("root.{}", view.server))?;
    let rd = SOA::new(server, rname, 1, 10800, 3600, 604800, TTL);
    Some(Record::from_rdata(name(zone)?, TTL, RData::SOA(rd)))
}

/// The address a reverse name stands for, when it names all four octets.
pub fn reverse_addr(qname: &str) -> Option<Ipv4Addr> {
    let rest = qname.strip_suffix(".in-addr.arpa")?;
    let o: Vec<&str> = rest.split('.').collect();
    if o.len() != 4 {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, p) in o.iter().rev().enumerate() {
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        b[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(b))
}

fn authoritative(view: &DnsView, req: &Message, q: &Query, qname: &str, zone: &str) -> Message {
    let mut m = response_for(req, ResponseCode::NoError);
    m.metadata.authoritative = true;
    m.metadata.recursion_available = !view.forwarders.is_empty();
    let qt = q.query_type();
    let wants = |t: RecordType| qt == t || qt == RecordType::ANY;
    let Some(owner) = name(qname) else {
        m.metadata.response_code = ResponseCode::FormErr;
        return m;
    };
    let mut exists = false;
    if qname == zone {
        exists = true;
        if wants(RecordType::SOA) {
            m.answers.extend(soa(view, zone));
        }
        if wants(RecordType::NS) {
            if let Some(s) = name(&view.server) {
                m.answers
                    .push(Record::from_rdata(owner.clone(), TTL, RData::NS(NS(s))));
            }
        }
    }
    if zone.ends_with(".in-addr.arpa") {
        if let Some(target) = reverse_addr(qname).and_then(|a| view.ptr.get(&a)) {
            exists = true;
            if wants(RecordType::PTR) {
                if let Some(t) = name(target) {
                    m.answers
                        .push(Record::from_rdata(owner.clone(), TTL, RData::PTR(PTR(t))));
                }
            }
        } else if !exists {
            // An empty non-terminal (`1.168.192.in-addr.arpa` under a /16 zone) exists.
            let suffix = format!(".{qname}");
            exists = view.ptr.keys().any(|a| {
                let o = a.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]).ends_with(&suffix)
            });
        }
    } else if let Some(addrs) = view.names.get(qname) {
        exists = true;
        if wants(RecordType::A) {
            for a in addrs {
                m.answers
                    .push(Record::from_rdata(owner.clone(), TTL, RData::A(A(*a))));
            }
        }
    } else if let Some(target) = view.aliases.get(qname) {
        // An alias is a CNAME of the host's name (as xCAT's makedns adds them); the target's
        // addresses follow when we have them.
        exists = true;
        if let Some(t) = name(target) {
            m.answers.push(Record::from_rdata(
                owner.clone(),
                TTL,
                RData::CNAME(CNAME(t.clone())),
            ));
            if qt != RecordType::CNAME {
                for a in view.names.get(target).into_iter().flatten() {
                    if wants(RecordType::A) {
                        m.answers
                            .push(Record::from_rdata(t.clone(), TTL, RData::A(A(*a))));
                    }
                }
            }
        }
    } else if !exists {
        let suffix = format!(".{qname}");
        exists = view.names.keys().any(|n| n.ends_with(&suffix));
    }
    if !exists {
        m.metadata.response_code = ResponseCode::NXDomain;
    }
    if m.answers.is_empty() {
        // NXDOMAIN or NODATA: the zone's SOA tells how long to remember it (RFC 2308).
        m.authorities.extend(soa(view, zone));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> DnsView {
        let mut v = DnsView {
            domains: vec!["cluster.test".into()],
            reverse: vec!["1.168.192.in-addr.arpa".into()],
            server: "mn.cluster.test".into(),
            ..DnsView::default()
        };
        let a: Ipv4Addr = "192.168.1.11".parse().expect("ip");
        v.names.insert("node01.cluster.test".into(), vec![a]);
        v.ptr.insert(a, "node01.cluster.test".into());
        v
    }

    fn ask(v: &DnsView, q: &str, t: RecordType, rd: bool) -> Decision {
        let mut m = Message::query();
        m.metadata.recursion_desired = rd;
        m.add_query(Query::query(Name::from_ascii(q).expect("name"), t));
        decide(v, &m.to_vec().expect("encode"), Transport::Udp)
    }

    fn reply(d: Decision) -> Message {
        match d {
            Decision::Reply(b) => Message::from_vec(&b).expect("decode reply"),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_forward_reverse_and_nxdomain() {
        let v = view();
        let r = reply(ask(&v, "NODE01.cluster.test.", RecordType::A, true));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::A(A("192.168.1.11".parse().expect("ip")))
        );
        let r = reply(ask(&v, "11.1.168.192.in-addr.arpa.", RecordType::PTR, true));
        assert_eq!(r.answers.len(), 1);
        let r = reply(ask(&v, "nope.cluster.test.", RecordType::A, true));
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities.len(), 1, "SOA for negative caching");
        let r = reply(ask(&v, "node01.cluster.test.", RecordType::AAAA, true));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = reply(ask(&v, "12.1.168.192.in-addr.arpa.", RecordType::PTR, true));
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn others_are_refused_or_forwarded() {
        let mut v = view();
        let r = reply(ask(&v, "example.org.", RecordType::A, true));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        v.forwarders = vec!["192.0.2.53".parse().expect("ip")];
        assert!(matches!(
            ask(&v, "example.org.", RecordType::A, true),
            Decision::Forward(_)
        ));
        let r = reply(ask(&v, "example.org.", RecordType::A, false));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn garbage_is_dropped() {
        let v = view();
        for p in [&b""[..], b"\x00", b"\x12\x34\x01\x00\x00\x01", &[0xff; 40]] {
            assert!(matches!(decide(&v, p, Transport::Udp), Decision::Drop(_)));
        }
        // A response is never answered (no reflection loops).
        let mut m = Message::query();
        m.metadata.message_type = MessageType::Response;
        m.add_query(Query::query(
            Name::from_ascii("node01.cluster.test.").expect("name"),
            RecordType::A,
        ));
        let b = m.to_vec().expect("encode");
        assert!(matches!(decide(&v, &b, Transport::Udp), Decision::Drop(_)));
    }
}
