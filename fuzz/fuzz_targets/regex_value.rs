//! Table values evaluated per node (`|node(\d+)|10.0.0.($1+0)|` and friends): never panics.
#![no_main]
use bootherd::store::regexattr::RegexValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (value, node) = s.split_once('\n').unwrap_or((s, "node007"));
    if let Ok(Some(rv)) = RegexValue::parse(value) {
        let _ = rv.apply(node);
    }
});
