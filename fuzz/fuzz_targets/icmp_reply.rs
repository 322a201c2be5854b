//! ICMP echo replies (xcatmon's liveness probes): never panic, with or without an IPv4 header;
//! an echo request we build never reads as a reply, and its reply form round-trips id and seq.
#![no_main]
use bootherd::monitor::icmp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = icmp::parse_reply(data, true);
    let _ = icmp::parse_reply(data, false);
    if data.len() >= 4 {
        let id = u16::from_be_bytes([data[0], data[1]]);
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let mut p = icmp::echo_request(id, seq, [0; 8]);
        assert_eq!(icmp::checksum(&p), 0);
        assert!(icmp::parse_reply(&p, false).is_none());
        p[0] = 0;
        let r = icmp::parse_reply(&p, false).expect("a reply");
        assert_eq!((r.id, r.seq), (id, seq));
    }
});
