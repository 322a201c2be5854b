//! DHCPv4 datagrams from the network: decode never panics, every accessor copes with what
//! decoded, and encode → decode keeps the fields.
#![no_main]
use bootherd::dhcp::packet::Packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::decode(data) else { return };
    let _ = (p.message_type(), p.client_arch(), p.user_classes(), p.mac_string(), p.broadcast());
    let again = Packet::decode(&p.encode()).expect("our own encoding decodes");
    assert_eq!((again.xid, again.op, again.hwaddr()), (p.xid, p.op, p.hwaddr()));
    assert_eq!(again.message_type(), p.message_type());
});
