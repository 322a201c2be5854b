//! imgcapture's probe answer (what the golden node says over ssh about its OS and disk): parsing
//! must never panic, and whatever parses must give a deploy script and a layout without panicking
//! and without a quote that could end a shell string early.
#![no_main]
use bootherd::image::sysclone::{deploy_script, Probe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = Probe::parse(text) {
        let _ = p.check();
        let _ = p.needed_bytes();
        let _ = p.layout_text("img");
        let s = deploy_script("img", &p);
        for part in &p.parts {
            assert!(!part.label.contains('\''));
            assert!(!part.mount.contains('\''));
        }
        assert!(s.starts_with("#!/bin/sh"));
    }
});
