//! RPC records from the network as the NFS service sees them: the call header, AUTH_SYS, the
//! NFSv3/MOUNT/portmapper argument decoders and the signed file handle never panic; every call
//! through the whole dispatcher (with an empty export table, so no file system is touched) gets
//! a well-formed reply or a hang-up; a decoded handle is one we could have signed.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use bootherd::nfs::fh::{self, HandleKey};
use bootherd::nfs::server::{answer, Service};
use bootherd::nfs::vfs::Fs;
use bootherd::nfs::{exports, mount, nfs3, portmap, rpc};
use libfuzzer_sys::fuzz_target;

fn service() -> &'static Service {
    static S: OnceLock<Service> = OnceLock::new();
    S.get_or_init(|| {
        let fs = Arc::new(Fs::new(HandleKey::new([3; 32]), [0; 8]));
        Service::new(fs, 2049, Some(111))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = rpc::fragment_header([0, 0, 0, 0]);
    if let Ok(call) = rpc::decode_call(data) {
        assert!(call.cred.gids.len() <= 16);
        let _ = nfs3::decode_args(call.proc_, call.args);
        let _ = mount::decode_args(call.proc_, call.args);
        let _ = portmap::decode_args(call.proc_, call.args);
    }
    for p in 0..23 {
        let _ = nfs3::decode_args(p, data);
    }
    let key = HandleKey::new([3; 32]);
    if let Ok(d) = fh::decode(&key, data) {
        assert!(data.len() <= fh::NFS3_FHSIZE);
        let k = bootherd::nfs::sys::KernelHandle { htype: d.htype, bytes: d.kernel.to_vec(), mount_id: 0 };
        assert_eq!(fh::encode(&key, d.export_id, &k), data, "a handle we did not sign verified");
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(n) = exports::normalize(s) {
            assert!(n.starts_with('/') && !n.split('/').any(|c| c == ".." || c == "."));
        }
    }
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    for udp in [false, true] {
        if let Some(w) = answer(service(), peer, data, udp) {
            let reply = rpc::unsealed(&w);
            assert!(reply.len() >= 12 && reply.len() % 4 == 0, "reply of {} bytes", reply.len());
            assert_eq!(&reply[..4], &data[..4], "reply xid differs");
        }
    }
});
