//! Wake-on-LAN: the magic packet (6 × 0xFF, then the target MAC 16 times) sent by UDP broadcast
//! where the node can hear it: the broadcast address of this machine's interface on the node's
//! network when it is local, else the node network's directed broadcast (net | ~mask, from the
//! `networks` table), which a router forwards when configured to (`bc_forwarding`). `--broadcast`
//! overrides the address, as ctys' `broadcast:` suboption does.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

/// The UDP port magic packets go to (the discard port, as most senders use).
pub const PORT: u16 = 9;

/// The magic packet for `mac` (6 bytes).
pub fn magic_packet(mac: &[u8; 6]) -> [u8; 102] {
    let mut p = [0xFFu8; 102];
    for i in 0..16 {
        p[6 + i * 6..12 + i * 6].copy_from_slice(mac);
    }
    p
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`) → bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let hex: Vec<u8> = s
        .split([':', '-'])
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    if s.split([':', '-']).count() != 6 {
        return None;
    }
    hex.try_into().ok()
}

/// Where to send for a node at `ip`: (source address to bind, destination broadcast address).
/// A local interface on the node's subnet gives its broadcast from its own address; otherwise
/// the directed broadcast of the node's `networks` row (`nets`: (net, mask)) from any address.
pub fn route(
    ip: Ipv4Addr,
    local: &[(Ipv4Addr, Ipv4Addr)],
    nets: &[(Ipv4Addr, Ipv4Addr)],
) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let bcast = |net: Ipv4Addr, mask: Ipv4Addr| Ipv4Addr::from(u32::from(net) | !u32::from(mask));
    for (addr, mask) in local {
        if u32::from(*addr) & u32::from(*mask) == u32::from(ip) & u32::from(*mask) {
            return Some((*addr, bcast(*addr, *mask)));
        }
    }
    nets.iter()
        .find(|(net, mask)| u32::from(*net) & u32::from(*mask) == u32::from(ip) & u32::from(*mask))
        .map(|(net, mask)| (Ipv4Addr::UNSPECIFIED, bcast(*net, *mask)))
}

/// This machine's IPv4 interface addresses with their masks (loopback left out).
pub fn local_addresses() -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let (Some(a), Some(m)) = (ifa.address, ifa.netmask) else {
                continue;
            };
            let (Some(a), Some(m)) = (a.as_sockaddr_in(), m.as_sockaddr_in()) else {
                continue;
            };
            if !a.ip().is_loopback() {
                out.push((a.ip(), m.ip()));
            }
        }
    }
    out
}

/// Sends the magic packet for `mac` from `source` to `dest`:9.
pub fn send(mac: &[u8; 6], source: Ipv4Addr, dest: Ipv4Addr) -> std::io::Result<()> {
    let sock = UdpSocket::bind(SocketAddr::from((source, 0)))?;
    sock.set_broadcast(true)?;
    sock.send_to(&magic_packet(mac), SocketAddr::from((dest, PORT)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_packet_layout() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        let p = magic_packet(&mac);
        assert_eq!(&p[..6], &[0xFF; 6]);
        for i in 0..16 {
            assert_eq!(&p[6 + i * 6..12 + i * 6], &mac);
        }
        assert_eq!(parse_mac("52:54:00:12:34:56"), Some(mac));
        assert_eq!(parse_mac("52-54-00-12-34-56"), Some(mac));
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("zz:54:00:12:34:56"), None);
    }

    #[test]
    fn local_segment_then_directed_broadcast() {
        let local = [(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(255, 255, 255, 0))];
        let nets = [(Ipv4Addr::new(10, 1, 0, 0), Ipv4Addr::new(255, 255, 0, 0))];
        assert_eq!(
            route(Ipv4Addr::new(10, 0, 0, 7), &local, &nets),
            Some((Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 255)))
        );
        assert_eq!(
            route(Ipv4Addr::new(10, 1, 2, 3), &local, &nets),
            Some((Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(10, 1, 255, 255)))
        );
        assert_eq!(route(Ipv4Addr::new(192, 168, 1, 1), &local, &nets), None);
    }
}
