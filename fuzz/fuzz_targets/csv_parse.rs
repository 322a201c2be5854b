//! tabrestore input: parse must never panic, and whatever parses must dump and re-parse to the same rows.
#![no_main]
use bootherd::store::{csv, schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = csv::parse(text) else { return };
    let Some(spec) = schema::table("policy") else { return };
    let Ok(rows) = csv::to_rows(spec, &parsed) else { return };
    let rows: Vec<_> = rows.into_iter().map(|(_, r)| r).collect();
    let dumped = csv::dump(spec, &rows);
    let again = csv::parse(&dumped).expect("a dump parses");
    let again: Vec<_> = csv::to_rows(spec, &again).expect("a dump maps to rows").into_iter().map(|(_, r)| r).collect();
    // Trailing white space is not kept by tabrestore (as in xCAT), so compare modulo that.
    let norm = |rows: &[bootherd::store::Row]| -> Vec<Vec<Option<String>>> {
        rows.iter().map(|r| r.iter().map(|v| v.as_ref().map(|s| s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n"))).collect()).collect()
    };
    assert_eq!(norm(&rows), norm(&again));
});
