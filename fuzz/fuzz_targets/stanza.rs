//! mkdef -z / chdef -z input: parse must never panic, and what lsdef -z writes from parsed
//! stanzas must read back to the same objects (after one normalising pass, since the reader
//! trims quotes and spaces the writer never produces).
#![no_main]
use std::collections::BTreeMap;

use bootherd::cli::stanza;
use libfuzzer_sys::fuzz_target;

fn write(objs: &[stanza::Stanza]) -> String {
    let mut text = String::from(stanza::HEADER);
    text.push('\n');
    for s in objs {
        let attrs: BTreeMap<String, String> = s.attrs.iter().cloned().collect();
        stanza::write_object(&mut text, &s.name, s.objtype().unwrap_or(""), &attrs);
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(first) = stanza::parse(text) else { return };
    let once = stanza::parse(&write(&first)).expect("what lsdef -z writes parses");
    let twice = stanza::parse(&write(&once)).expect("and again");
    assert_eq!(once, twice);
});
