//! HTTP requests from the network (`src/http/proto.rs`): a request head never panics the parser
//! at any size limit, a parsed head re-parses the same after re-serialising, refusals map to a
//! 4xx/5xx status, request targets never yield a segment that climbs or holds a separator, and
//! `Range` answers stay inside the representation.
#![no_main]
use bootherd::http::proto::{self, parse_head, parse_range, parse_target, RangeReq};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [64usize, 1024, 16 << 10] {
        match parse_head(data, max) {
            Ok(Some((head, n))) => {
                assert!(n <= data.len() && n <= max);
                let _ = head.keep_alive();
                let _ = head.expects_continue();
                if let Err(e) = head.body_length() {
                    assert!((400..600).contains(&e.status()));
                }
                // Re-serialised, the head parses to the same request.
                let mut again = format!("{} {} HTTP/1.{}\r\n", head.method, head.target, head.minor);
                for (k, v) in &head.headers {
                    again.push_str(&format!("{k}: {v}\r\n"));
                }
                again.push_str("\r\n");
                if !again.contains('\u{fffd}') {
                    if let Ok(Some((h2, _))) = parse_head(again.as_bytes(), usize::MAX) {
                        assert_eq!(h2.method, head.method);
                        assert_eq!(h2.target, head.target);
                        assert_eq!(h2.headers.len(), head.headers.len());
                    }
                }
                check_target(&head.target);
                if let Some(r) = head.header("range") {
                    for size in [0u64, 1, 1000, u64::MAX] {
                        match parse_range(r, size) {
                            RangeReq::Part { start, end } => {
                                assert!(start <= end && end < size, "{r:?} {size}");
                            }
                            RangeReq::Whole | RangeReq::Unsatisfiable => {}
                        }
                    }
                }
            }
            Ok(None) => assert!(data.len() < max || max == 0),
            Err(e) => assert!((400..600).contains(&e.status())),
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        check_target(s);
        let _ = proto::parse_http_date(s);
    }
});

fn check_target(t: &str) {
    match parse_target(t) {
        Ok(target) => {
            for s in &target.segments {
                assert!(!s.is_empty() && s != "." && s != "..", "{s:?}");
                assert!(!s.contains('/') && !s.contains('\0'), "{s:?}");
            }
        }
        Err(e) => assert!(matches!(e.status(), 400 | 403)),
    }
}
