//! DNS packets from the network (`src/dns/answer.rs`): deciding never panics; whatever is
//! answered parses back as a response to the same id with the same question, within the
//! transport's size limit; responses are never answered; only questions outside our zones are
//! forwarded, and only when forwarders are set.
#![no_main]
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use bootherd::dns::answer::{decide, Decision, Transport};
use bootherd::dns::zone::DnsView;
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

fn view(forward: bool) -> DnsView {
    let mut v = DnsView {
        domains: vec!["cluster.test".into()],
        reverse: vec!["1.168.192.in-addr.arpa".into(), "10.in-addr.arpa".into()],
        server: "mn.cluster.test".into(),
        ..DnsView::default()
    };
    for i in 1..=20u8 {
        let a = Ipv4Addr::new(192, 168, 1, i);
        let n = format!("node{i:02}.cluster.test");
        v.names.insert(n.clone(), vec![a]);
        v.ptr.insert(a, n);
    }
    v.aliases
        .insert("login.cluster.test".into(), "node01.cluster.test".into());
    if forward {
        v.forwarders = vec!["192.0.2.53".parse().expect("ip")];
    }
    v
}

fuzz_target!(|data: &[u8]| {
    static VIEWS: OnceLock<(DnsView, DnsView)> = OnceLock::new();
    let (plain, fwd) = VIEWS.get_or_init(|| (view(false), view(true)));
    for (v, t) in [
        (plain, Transport::Udp),
        (fwd, Transport::Udp),
        (fwd, Transport::Tcp),
    ] {
        match decide(v, data, t) {
            Decision::Drop(_) => {}
            Decision::Forward(req) => {
                assert!(!v.forwarders.is_empty(), "forwarded without forwarders");
                assert_eq!(req.queries.len(), 1);
            }
            Decision::Reply(bytes) => {
                let max = if t == Transport::Udp { 1232 } else { 65535 };
                assert!(bytes.len() <= max, "{} bytes over {max}", bytes.len());
                let req = Message::from_vec(data).expect("answered, so the query parsed");
                assert_eq!(req.metadata.message_type, MessageType::Query);
                let resp = Message::from_vec(&bytes).expect("our reply parses");
                assert_eq!(resp.metadata.message_type, MessageType::Response);
                assert_eq!(resp.metadata.id, req.metadata.id);
                assert_eq!(resp.queries, req.queries);
            }
        }
    }
});
