//! Walked switch tables → ports and MACs, and xCAT's port-name matching: never panics, and every
//! MAC the table reports is found again on the port that lists it, whatever a switch sends.
#![no_main]
use bootherd::discovery::fdb::{decode, Cell, Row, SwitchWalk};
use bootherd::discovery::portname::namesmatch;
use libfuzzer_sys::fuzz_target;

/// Rows from bytes: [column, index length, index…, value kind, value…], small numbers so that
/// indexes collide and the joins have something to join.
fn rows(data: &[u8]) -> SwitchWalk {
    let mut w = SwitchWalk { qbridge: data.first().is_some_and(|b| b & 1 == 1), ..Default::default() };
    let mut it = data.iter().copied().skip(1);
    while let (Some(col), Some(n)) = (it.next(), it.next()) {
        let index: Vec<u32> = (0..n % 9).filter_map(|_| it.next()).map(|b| u32::from(b) * if b > 250 { 1000 } else { 1 }).collect();
        let value = match it.next() {
            Some(k) if k % 3 == 0 => Cell::Int(i64::from(it.next().unwrap_or(0) as i8)),
            Some(k) if k % 3 == 1 => {
                let len = usize::from(it.next().unwrap_or(0) % 12);
                Cell::Bytes((0..len).filter_map(|_| it.next()).collect())
            }
            _ => Cell::Other,
        };
        let r = Row { index, value };
        match col % 5 {
            0 => w.names.push(r),
            1 => w.mtu.push(r),
            2 => w.base_port_ifindex.push(r),
            3 => w.fdb.push(r),
            _ => w.fdb_status.push(r),
        }
    }
    w
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = decode(&rows(data)) {
        for p in &t.ports {
            for l in &p.macs {
                assert!(t.find(&l.mac).any(|(q, _)| q.name == p.name));
            }
        }
    }
    let s = String::from_utf8_lossy(data);
    let (a, b) = s.split_at(s.char_indices().nth(s.chars().count() / 2).map(|(i, _)| i).unwrap_or(0));
    let _ = namesmatch(a, b);
});
