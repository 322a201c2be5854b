//! OMAPI wire input: decode must never panic; what decodes re-encodes to the same bytes and decodes
//! again to the same message; verification of arbitrary bytes never panics either.
#![no_main]
use bootherd::dhcp::omapi::wire::{self, Algorithm, Authenticator, Limits, Startup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Startup::decode(data);
    let tight = Limits { max_value: 64, max_message: 512, max_entries: 8, max_authlen: 64 };
    let _ = wire::decode_with(data, &tight);
    let Ok(Some(d)) = wire::decode(data) else { return };
    assert!(d.len <= data.len());
    let bytes = wire::encode(&d.message, None).expect("a decoded message re-encodes");
    assert_eq!(bytes.as_slice(), &data[..d.len], "the encoding is canonical");
    let again = wire::decode(&bytes).expect("re-decodes").expect("complete");
    assert_eq!(again.message, d.message);
    assert_eq!(again.len, bytes.len());
    let auth = Authenticator::new("k", Algorithm::HmacMd5, b"secret".to_vec());
    let _ = auth.verify(d.signed_bytes(data), &d.message.signature);
    if d.message.authid != 0 {
        // Re-signed, it verifies, and decodes to the same message apart from the signature (unless
        // the 16-byte signature pushes a message already at the size limit over it).
        match wire::encode(&d.message, Some(&auth)) {
            Ok(signed) => {
                let s = wire::decode(&signed).expect("decodes").expect("complete");
                assert!(auth.verify(s.signed_bytes(&signed), &s.message.signature));
                let resigned = wire::Message { signature: d.message.signature.clone(), ..s.message };
                assert_eq!(resigned, d.message);
            }
            Err(e) => assert!(matches!(e, wire::WireError::MessageTooLarge { .. }), "{e}"),
        }
    }
});
