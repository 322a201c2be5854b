//! NFS file handles: what is in them and why they can be neither forged nor guessed.
//!
//! ```text
//! byte 0      version (1)
//! bytes 1–4   export id (see `exports::export_id`), big-endian
//! bytes 5–8   kernel handle type (name_to_handle_at), big-endian
//! byte 9      kernel handle length n (≤ 36)
//! 10..10+n    kernel handle bytes (ext4: inode number + generation)
//! then 16     HMAC-SHA256 over everything before it, truncated to 128 bits
//! ```
//!
//! At most 62 bytes (NFSv3 allows 64). The MAC key is a 32-byte secret kept in the store
//! (`passwd` key `nfs-handle`), so handles stay valid across restarts and across reboots of the
//! appliance, while a client cannot make one up: it can only replay handles it was given, and
//! those are checked again against the export's allowed address on every request. The kernel
//! part makes the handle outlive renames (it names the inode, not a path).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::sys::{KernelHandle, MAX_KERNEL_HANDLE};

pub const VERSION: u8 = 1;
const HEADER: usize = 10;
const MAC_LEN: usize = 16;
/// NFSv3's limit on handle size (RFC 1813 NFS3_FHSIZE).
pub const NFS3_FHSIZE: usize = 64;

/// The secret handles are signed with, kept as an HMAC state already keyed with it: HMAC's key
/// setup (hashing the inner and outer pads) is two of the five SHA-256 blocks a 62-byte handle
/// costs, and every request verifies a handle while every READDIRPLUS entry signs one, so it is
/// done once here and the keyed state cloned per use.
#[derive(Clone)]
pub struct HandleKey(Hmac<Sha256>);

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(…)")
    }
}

impl HandleKey {
    pub fn new(bytes: [u8; 32]) -> HandleKey {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        match <Hmac<Sha256> as Mac>::new_from_slice(&bytes) {
            Ok(m) => HandleKey(m),
            Err(_) => unreachable!("HMAC takes any key length"),
        }
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut m = self.0.clone();
        m.update(data);
        m
    }
}

/// A verified handle's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub export_id: u32,
    pub htype: i32,
    pub kernel: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FhError {
    /// Wrong size, version or layout: NFS3ERR_BADHANDLE.
    Malformed,
    /// Well formed but not signed by us (forged, or from before the key changed): NFS3ERR_STALE.
    BadMac,
}

/// Builds the handle of a kernel handle inside export `export_id`.
pub fn encode(key: &HandleKey, export_id: u32, k: &KernelHandle) -> Vec<u8> {
    let n = k.bytes.len().min(MAX_KERNEL_HANDLE);
    let mut out = Vec::with_capacity(HEADER + n + MAC_LEN);
    out.push(VERSION);
    out.extend_from_slice(&export_id.to_be_bytes());
    out.extend_from_slice(&k.htype.to_be_bytes());
    out.push(n as u8);
    out.extend_from_slice(&k.bytes[..n]);
    let tag = key.mac(&out).finalize().into_bytes();
    out.extend_from_slice(&tag[..MAC_LEN]);
    out
}

/// Checks layout and MAC; only then are the contents believed.
pub fn decode<'a>(key: &HandleKey, fh: &'a [u8]) -> Result<Decoded<'a>, FhError> {
    if fh.len() < HEADER + MAC_LEN || fh.len() > NFS3_FHSIZE || fh[0] != VERSION {
        return Err(FhError::Malformed);
    }
    let n = fh[9] as usize;
    if n > MAX_KERNEL_HANDLE || fh.len() != HEADER + n + MAC_LEN {
        return Err(FhError::Malformed);
    }
    let (body, tag) = fh.split_at(HEADER + n);
    key.mac(body)
        .verify_truncated_left(tag)
        .map_err(|_| FhError::BadMac)?;
    Ok(Decoded {
        export_id: u32::from_be_bytes([fh[1], fh[2], fh[3], fh[4]]),
        htype: i32::from_be_bytes([fh[5], fh[6], fh[7], fh[8]]),
        kernel: &fh[HEADER..HEADER + n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kh() -> KernelHandle {
        KernelHandle {
            htype: 1,
            bytes: vec![1, 2, 3, 4, 5, 6, 7, 8],
            mount_id: 0,
        }
    }

    #[test]
    fn round_trip_and_size() {
        let key = HandleKey::new([7; 32]);
        let fh = encode(&key, 0xabcd, &kh());
        assert!(fh.len() <= NFS3_FHSIZE);
        let d = decode(&key, &fh).unwrap();
        assert_eq!(d.export_id, 0xabcd);
        assert_eq!(d.htype, 1);
        assert_eq!(d.kernel, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let big = KernelHandle {
            htype: 1,
            bytes: vec![9; MAX_KERNEL_HANDLE],
            mount_id: 0,
        };
        assert!(encode(&key, 1, &big).len() <= NFS3_FHSIZE);
    }

    #[test]
    fn forgery_is_detected() {
        let key = HandleKey::new([7; 32]);
        let fh = encode(&key, 1, &kh());
        // Another export id, another inode, another key: all refused.
        for i in [1, 5, 12, fh.len() - 1] {
            let mut f = fh.clone();
            f[i] ^= 1;
            assert_eq!(decode(&key, &f), Err(FhError::BadMac), "byte {i}");
        }
        assert_eq!(decode(&HandleKey::new([8; 32]), &fh), Err(FhError::BadMac));
        assert_eq!(decode(&key, &fh[..20]), Err(FhError::Malformed));
        assert_eq!(decode(&key, &[]), Err(FhError::Malformed));
        let mut f = fh.clone();
        f[9] = 200;
        assert_eq!(decode(&key, &f), Err(FhError::Malformed));
    }
}
