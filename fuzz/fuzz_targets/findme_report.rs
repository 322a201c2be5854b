//! findme reports from unknown machines (`src/discovery/report.rs`), by HTTP POST or UDP 3001,
//! plain, XML or gzipped: parsing never panics; a parsed report names at least one NIC, every
//! MAC is normalised, and its boot NIC is one of them.
#![no_main]
use bootherd::discovery::report::{norm_mac, Report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Report::parse(data) {
        assert!(!r.nics.is_empty());
        for n in &r.nics {
            assert_eq!(norm_mac(&n.mac).as_deref(), Some(n.mac.as_str()), "{n:?}");
        }
        let b = r.boot_nic().expect("a boot NIC");
        assert!(r.nics.contains(b));
        assert!(!r.uuid.is_empty());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(m) = norm_mac(s) {
            assert_eq!(m.len(), 17);
            assert_eq!(norm_mac(&m).as_deref(), Some(m.as_str()));
        }
    }
});
