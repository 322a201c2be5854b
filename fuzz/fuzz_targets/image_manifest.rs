//! imgimport's manifest.xml and image list files: parsing must never panic, and a manifest that
//! parses must write and re-parse to the same content.
#![no_main]
use bootherd::image::{media, pkglist, port::Manifest};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = Manifest::parse(text) {
        let again = Manifest::parse(&m.to_xml()).expect("a written manifest parses");
        assert_eq!(again.osimage, m.osimage);
        assert_eq!(again.linuximage, m.linuximage);
    }
    let read = |p: &Path| (p == Path::new("/f")).then(|| text.to_string());
    let _ = pkglist::parse_pkglist(Path::new("/f"), &read, &|_| None);
    if let Ok(ex) = pkglist::parse_exlist(&[Path::new("/f").to_path_buf()], &read) {
        let _ = ex.keeps("./usr/share/doc/x");
    }
    let _ = pkglist::glob(text, "./usr/share/man/man1/ls.1.gz");
    let files = |p: &str| (p == ".disk/info" || p == ".discinfo" || p == ".treeinfo").then(|| text.to_string());
    let _ = media::identify(&files, None, None);
});
