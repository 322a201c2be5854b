//! Bytes from a BMC: every RMCP+ / IPMI / FRU / SDR parser takes arbitrary input without
//! panicking, and what we encode (clear or encrypted and signed) decodes back to itself.
#![no_main]
use bootherd::power::ipmi::wire::{self, CipherSuite, Keys, Packet};
use bootherd::power::ipmi::{commands, fru, sdr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys3 = Keys::derive(CipherSuite::Suite3, b"fuzz session integrity key");
    let keys17 = Keys::derive(CipherSuite::Suite17, b"fuzz session integrity key");
    let _ = wire::decode_packet(data, None);
    for k in [&keys3, &keys17] {
        if let Ok(p) = wire::decode_packet(data, Some(k)) {
            // Only a correctly signed packet decodes; re-signing it gives the same packet.
            let again = wire::encode_packet(&p, Some(k), [7; 16]);
            assert_eq!(wire::decode_packet(&again, Some(k)).as_ref(), Ok(&p));
        }
        let _ = wire::decrypt(k, data);
    }
    if let Ok(r) = wire::decode_response(data) {
        assert!(r.rq_seq < 64);
    }
    let _ = wire::parse_open_session_response(data);
    let _ = wire::parse_rakp2(data);
    let _ = wire::parse_rakp4(data);
    let _ = commands::parse_chassis_status(data);
    let _ = commands::parse_boot_flags(data).map(|b| b.to_string());
    let _ = commands::parse_device_id(data).map(|d| d.firmware());
    let _ = commands::format_guid(data);
    if let Ok(f) = fru::parse(data) {
        let _ = f.board.map(|b| b.mfg_date());
    }
    if let Ok(Some(rec)) = sdr::parse_record(data) {
        for raw in [0u8, 1, 0x7f, 0x80, 0xff] {
            let _ = rec.convert(raw);
        }
    }
    let _ = sdr::parse_reading(data);
    // SEL replies and records (reventlog): never panic; a record always reads as one line.
    let _ = bootherd::power::ipmi::sel::parse_info(data);
    if let Ok(e) = bootherd::power::ipmi::sel::parse_entry(data) {
        let sdrs: Vec<_> = sdr::parse_record(data).ok().flatten().into_iter().collect();
        let line = bootherd::power::ipmi::sel::describe(&e.raw, 0, &sdrs, &|t| {
            (t.to_string(), String::new())
        });
        assert!(!line.contains('\n'));
    }
    let _ = bootherd::cli::day2::identify_state(data);
    // SOL payloads (rcons): decode → encode gives the bytes back; the escape parser never
    // passes "~." through.
    if let Ok(p) = bootherd::power::ipmi::sol::SolPacket::decode(data) {
        let mut expect = data.to_vec();
        expect[0] &= 0x0f;
        expect[1] &= 0x0f;
        assert_eq!(p.encode(), expect);
    }
    let mut esc = bootherd::power::ipmi::sol::Escape::new();
    for i in esc.feed(data) {
        if let bootherd::power::ipmi::sol::Input::Quit = i {
            break;
        }
    }
    // Round trip: any payload, clear and protected.
    let p = Packet {
        payload_type: data.first().copied().unwrap_or(0) & 0x3f,
        session_id: 0x01020304,
        seq: 5,
        payload: data.to_vec(),
    };
    if data.len() <= 0xffe0 {
        for k in [None, Some(&keys3), Some(&keys17)] {
            let b = wire::encode_packet(&p, k, [1; 16]);
            assert_eq!(wire::decode_packet(&b, k).as_ref(), Ok(&p));
        }
    }
});
