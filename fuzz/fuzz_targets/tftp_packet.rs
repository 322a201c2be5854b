//! TFTP datagrams from the network: decode never panics, whatever decodes encodes to a datagram
//! that decodes the same, the path rules never let a name climb, negotiation grants only what
//! the RFCs and the limits allow, and netascii translates back to the same bytes.
#![no_main]
use bootherd::tftp::packet::{negotiate, Limits, Packet, MAX_BLKSIZE, MIN_BLKSIZE};
use bootherd::tftp::source::TftpPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // netascii: the receiver's translation back (CR LF → LF, CR NUL → CR) gives the bytes back.
    let net = bootherd::tftp::packet::to_netascii(data);
    let mut back = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < net.len() {
        if net[i] == b'\r' {
            let next = net.get(i + 1).copied();
            assert!(matches!(next, Some(b'\n' | 0)), "bare CR in netascii");
            back.push(if next == Some(b'\n') { b'\n' } else { b'\r' });
            i += 2;
        } else {
            assert_ne!(net[i], b'\n', "bare LF in netascii");
            back.push(net[i]);
            i += 1;
        }
    }
    assert_eq!(back, data);
    let Ok(p) = Packet::decode(data) else { return };
    let again = p.encode();
    assert_eq!(
        Packet::decode(&again).as_ref(),
        Ok(&p),
        "encode → decode changed the message"
    );
    let (Packet::Rrq(r) | Packet::Wrq(r)) = &p else {
        return;
    };
    if let Ok(path) = TftpPath::parse(&r.filename) {
        assert!(!path.components().is_empty());
        for c in path.components() {
            assert!(
                !c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\']),
                "{c:?}"
            );
        }
        let same = TftpPath::parse(&path.relative()).expect("a normalised name parses");
        assert_eq!(same.components(), path.components());
    }
    let limits = Limits::default();
    let n = negotiate(&r.options, Some(data.len() as u64), &limits);
    assert!(!negotiate(&r.options, None, &limits)
        .oack
        .iter()
        .any(|(k, _)| k == "tsize"));
    assert!((MIN_BLKSIZE..=MAX_BLKSIZE).contains(&n.blksize));
    assert!(n.windowsize >= 1 && n.windowsize <= limits.max_windowsize);
    assert!(
        usize::from(n.blksize) * usize::from(n.windowsize)
            <= limits.max_window_bytes.max(usize::from(n.blksize))
    );
    for (name, _) in &n.oack {
        assert!(
            r.options.iter().any(|(asked, _)| asked == name),
            "granted {name}, never asked"
        );
    }
});
