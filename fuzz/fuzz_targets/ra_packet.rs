//! ICMPv6 router solicitations and advertisements from the network: decode never panics, and
//! whatever decodes encodes to a message that decodes the same.
#![no_main]
use bootherd::ra::packet::{decode, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = decode(data) else { return };
    let again = m.encode();
    assert_eq!(decode(&again).as_ref(), Ok(&m), "encode → decode changed the message");
    if let Message::Advertisement(a) = &m {
        let _ = a.configures_something();
        assert!(again.len() >= 16);
    }
});
