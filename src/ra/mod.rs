//! IPv6 router advertisements that configure nothing, so firmware on an IPv4 network finishes its
//! IPv6 autoconfiguration at once instead of waiting for a router that never answers (iPXE waits
//! for every configurator before it boots; EDK2 too).
//!
//! Rooms: [`packet`] (RS/RA codec, pure), [`server`] (per-interface raw ICMPv6 sockets and the
//! advertising state machine). [`view`] reads the tables; `daemon/ra.rs` wires it.

pub mod packet;
pub mod server;

use std::net::Ipv6Addr;

use crate::store::resolver::Resolver;
use crate::store::StoreError;
use server::RaView;

/// Tables whose changes make the view stale.
pub const DEPENDS_ON: &[&str] = &["site", "networks"];

/// The site key that turns advertisements off (`no`); unset or anything else is on.
pub const SITE_KEY: &str = "routeradvertisements";

/// Whether a `site.routeradvertisements` value turns advertisements on.
pub fn enabled(value: Option<&str>) -> bool {
    !matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("no" | "n" | "0" | "off" | "false" | "disable" | "disabled")
    )
}

/// `net`/`mask` of an IPv6 `networks` row (`fd00::`, `/64` or `64`).
pub fn parse_v6_network(net: &str, mask: &str) -> Option<(Ipv6Addr, u8)> {
    let net: Ipv6Addr = net.trim().parse().ok()?;
    let len: u8 = mask.trim().trim_start_matches('/').parse().ok()?;
    (len <= 128).then_some((net, len))
}

/// The advertising view from the tables.
pub fn view(r: &Resolver) -> Result<RaView, StoreError> {
    let mut v = RaView {
        enabled: enabled(r.site(SITE_KEY)?.as_deref()),
        prefixes: Vec::new(),
    };
    let nets = r.table("networks")?;
    let col = |c: &str| nets.spec.col_index(c);
    for row in &nets.rows {
        let get = |c: &str| {
            col(c)
                .and_then(|i| row.get(i))
                .and_then(|x| x.clone())
                .filter(|x| !x.trim().is_empty())
        };
        let (Some(net), Some(mask)) = (get("net"), get("mask")) else {
            continue;
        };
        if let Some((p, len)) = parse_v6_network(&net, &mask) {
            v.prefixes.push((p, len, get("mgtifname")));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_values() {
        assert!(enabled(None));
        assert!(enabled(Some("yes")));
        assert!(enabled(Some("")));
        assert!(!enabled(Some("no")));
        assert!(!enabled(Some(" NO ")));
        assert!(!enabled(Some("0")));
    }

    #[test]
    fn v6_networks() {
        assert_eq!(
            parse_v6_network("fd00:10::", "/64"),
            Some(("fd00:10::".parse().expect("a"), 64))
        );
        assert_eq!(parse_v6_network("fd00::", "48").map(|x| x.1), Some(48));
        assert_eq!(parse_v6_network("10.0.0.0", "255.255.255.0"), None);
        assert_eq!(parse_v6_network("fd00::", "/129"), None);
    }
}
