//! The systemd readiness protocol (sd_notify): one datagram to `$NOTIFY_SOCKET`. Written here
//! rather than pulled in as a crate because it is a dozen lines.

use std::os::unix::net::UnixDatagram;

fn send(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    // A leading '@' names a socket in the abstract namespace.
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
    } else {
        sock.send_to(msg.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(e) = result {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Tells systemd the daemon is ready (Type=notify).
pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send("STOPPING=1");
}
