//! xcatd's wire format (`src/xcatd/wire.rs`): any bytes a client sends as a request or a server
//! as a response parse without panicking; a parsed request names a command (or asks for a token)
//! and survives bootherd's own encoding unchanged.
#![no_main]
use bootherd::xcatd::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::request_end(data);
    if let Ok(r) = wire::parse_request(data) {
        assert!(!r.command.is_empty() || r.gettoken.is_some());
        if !r.command.is_empty() && r.environment.keys().all(|k| is_name(k)) {
            let again = wire::parse_request(wire::encode_request(&r).as_bytes());
            if let Ok(a) = again {
                assert_eq!(a.command, r.command);
                assert_eq!(a.args.len(), r.args.len());
            }
        }
    }
    let _ = wire::parse_response(data);
});

fn is_name(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
