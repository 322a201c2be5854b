//! Query values of the dashboard's API (`?range=…&token=…`): decoding never panics, plain text
//! without `%` and `+` decodes to itself, and an escaped value decodes back to what was escaped.
#![no_main]
use bootherd::http::dashboard::unescape;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = unescape(text);
    if !text.contains('%') && !text.contains('+') {
        assert_eq!(unescape(text), text);
    }
    let escaped: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(unescape(&escaped), text);
});
