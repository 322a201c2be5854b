//! Hand-written DHCPv4 (RFC 2131) encoder and decoder for exactly what a relay-mode load
//! generator needs: DISCOVER and REQUEST as a relay agent forwards them (giaddr set, hops 1),
//! and the server's OFFER / ACK / NAK.
//!
//! Hand-written rather than a general codec because it runs on the hot path (tens of thousands of
//! packets per second on a core shared with nothing but the kernel) and the layout is fixed.
//! Option 53 (message type) goes first, as real clients send it; the unit tests check the
//! packets against an independent codec (dhcproto).

use std::net::Ipv4Addr;

pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];

pub const DHCPDISCOVER: u8 = 1;
pub const DHCPOFFER: u8 = 2;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPACK: u8 = 5;
pub const DHCPNAK: u8 = 6;

const OPT_PAD: u8 = 0;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_MSG_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAM_REQ: u8 = 55;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// Offset of the options field (after the fixed BOOTP header and the magic cookie).
const OPTIONS_AT: usize = 240;
/// BOOTP's minimum message size; relays and clients pad to it (RFC 1542 section 2.1).
pub const MIN_LEN: usize = 300;

/// Everything that identifies one simulated client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub xid: u32,
    pub mac: [u8; 6],
    /// The relay agent's address (the generator's own address).
    pub giaddr: Ipv4Addr,
}

/// Client MAC for client number `n`: locally administered unicast `02:SS:SS:nn:nn:nn`,
/// where `seed` tells runs (or generators) apart.
pub fn client_mac(seed: u16, n: u32) -> [u8; 6] {
    let s = seed.to_be_bytes();
    let c = n.to_be_bytes();
    [0x02, s[0], s[1], c[1], c[2], c[3]]
}

fn header(buf: &mut Vec<u8>, r: &Request) {
    buf.clear();
    buf.extend_from_slice(&[BOOTREQUEST, 1, 6, 1]); // op, htype ethernet, hlen 6, hops 1 (one relay)
    buf.extend_from_slice(&r.xid.to_be_bytes());
    buf.extend_from_slice(&[0; 4]); // secs, flags (unicast reply to the relay anyway)
    buf.extend_from_slice(&[0; 12]); // ciaddr, yiaddr, siaddr
    buf.extend_from_slice(&r.giaddr.octets());
    buf.extend_from_slice(&r.mac);
    buf.resize(OPTIONS_AT - 4, 0); // rest of chaddr, sname, file
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[OPT_MSG_TYPE, 1, 0]); // type patched by the caller
    buf.extend_from_slice(&[OPT_CLIENT_ID, 7, 1]); // client id: htype 1 + MAC
    buf.extend_from_slice(&r.mac);
}

fn trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&[OPT_PARAM_REQ, 3, 1, 3, 6]); // subnet mask, router, DNS
    buf.push(OPT_END);
    if buf.len() < MIN_LEN {
        buf.resize(MIN_LEN, OPT_PAD);
    }
}

/// DHCPDISCOVER as forwarded by a relay agent. Reuses `buf`.
pub fn discover(buf: &mut Vec<u8>, r: &Request) {
    header(buf, r);
    buf[OPTIONS_AT + 2] = DHCPDISCOVER;
    trailer(buf);
}

/// DHCPREQUEST in SELECTING state (RFC 2131 4.3.2): ciaddr 0, option 50 = the offered address,
/// option 54 = the server that made the offer.
pub fn request(buf: &mut Vec<u8>, r: &Request, requested: Ipv4Addr, server_id: Ipv4Addr) {
    header(buf, r);
    buf[OPTIONS_AT + 2] = DHCPREQUEST;
    buf.extend_from_slice(&[OPT_REQUESTED_IP, 4]);
    buf.extend_from_slice(&requested.octets());
    buf.extend_from_slice(&[OPT_SERVER_ID, 4]);
    buf.extend_from_slice(&server_id.octets());
    trailer(buf);
}

/// The parts of a server reply the generator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub xid: u32,
    pub msg_type: u8,
    pub yiaddr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub chaddr: [u8; 6],
}

/// Parses a BOOTREPLY. `None` for anything that is not a well-formed DHCP reply with a
/// message type. Option overload (option 52) is not followed: servers only use it when the
/// options do not fit, which never happens for these small replies.
pub fn parse_reply(p: &[u8]) -> Option<Reply> {
    if p.len() < OPTIONS_AT || p[0] != BOOTREPLY || p[236..240] != MAGIC {
        return None;
    }
    let xid = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let yiaddr = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let chaddr: [u8; 6] = p[28..34].try_into().ok()?;
    let (mut msg_type, mut server_id) = (None, None);
    let mut i = OPTIONS_AT;
    while i < p.len() {
        match p[i] {
            OPT_PAD => i += 1,
            OPT_END => break,
            code => {
                let len = *p.get(i + 1)? as usize;
                let v = p.get(i + 2..i + 2 + len)?;
                match (code, len) {
                    (OPT_MSG_TYPE, 1) => msg_type = Some(v[0]),
                    (OPT_SERVER_ID, 4) => server_id = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                    _ => {}
                }
                i += 2 + len;
            }
        }
    }
    Some(Reply {
        xid,
        msg_type: msg_type?,
        yiaddr,
        server_id,
        chaddr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
    use dhcproto::{Decodable, Decoder, Encodable, Encoder};

    const GI: Ipv4Addr = Ipv4Addr::new(10, 99, 128, 1);
    const SRV: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

    fn req() -> Request {
        Request {
            xid: 0xdead_beef,
            mac: client_mac(0x4248, 0x01_02_03),
            giaddr: GI,
        }
    }

    fn decode(b: &[u8]) -> v4::Message {
        v4::Message::decode(&mut Decoder::new(b)).expect("dhcproto decodes it")
    }

    #[test]
    fn mac_is_counter_based_and_locally_administered() {
        assert_eq!(client_mac(0x4248, 0x01_02_03), [2, 0x42, 0x48, 1, 2, 3]);
        assert_ne!(client_mac(1, 0), client_mac(1, 1));
        assert_ne!(client_mac(1, 7), client_mac(2, 7));
        // only the low 24 bits of the client number are used
        assert_eq!(client_mac(1, 0x0100_0005), client_mac(1, 5));
    }

    #[test]
    fn discover_as_a_relay_forwards_it() {
        let mut b = Vec::new();
        discover(&mut b, &req());
        assert_eq!(b.len(), MIN_LEN);
        // message type is the first option, as clients send it
        assert_eq!(&b[240..243], &[53, 1, 1]);
        let m = decode(&b);
        assert_eq!(m.opcode(), v4::Opcode::BootRequest);
        assert_eq!(m.htype(), v4::HType::Eth);
        assert_eq!(m.hops(), 1);
        assert_eq!(m.xid(), 0xdead_beef);
        assert_eq!(m.giaddr(), GI);
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(!m.flags().broadcast());
        assert_eq!(m.chaddr(), &req().mac);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
        let mut cid = vec![1];
        cid.extend_from_slice(&req().mac);
        assert_eq!(
            m.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(cid))
        );
        assert!(m.opts().get(OptionCode::RequestedIpAddress).is_none());
        assert!(m.opts().get(OptionCode::ServerIdentifier).is_none());
    }

    #[test]
    fn request_carries_requested_ip_and_server_id() {
        let mut b = vec![0xff; 1000]; // a reused, dirty buffer must not leak into the packet
        let yi = Ipv4Addr::new(10, 99, 130, 7);
        request(&mut b, &req(), yi, SRV);
        assert_eq!(b.len(), MIN_LEN);
        let m = decode(&b);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(m.hops(), 1);
        assert_eq!(m.giaddr(), GI);
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            m.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(yi))
        );
        assert_eq!(
            m.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(SRV))
        );
        assert!(m.sname().is_none() && m.fname().is_none());
    }

    /// A reply encoded by dhcproto (which writes options sorted by code, so 53 is not first).
    fn server_reply(mt: MessageType, yi: Ipv4Addr, sid: Option<Ipv4Addr>) -> Vec<u8> {
        let mut m = v4::Message::new_with_id(
            0x0102_0304,
            Ipv4Addr::UNSPECIFIED,
            yi,
            Ipv4Addr::UNSPECIFIED,
            GI,
            &req().mac,
        );
        m.set_opcode(v4::Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(mt));
        m.opts_mut()
            .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 128, 0)));
        m.opts_mut().insert(DhcpOption::Router(vec![GI]));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(3600));
        if let Some(s) = sid {
            m.opts_mut().insert(DhcpOption::ServerIdentifier(s));
        }
        let mut b = Vec::new();
        m.encode(&mut Encoder::new(&mut b)).unwrap();
        b
    }

    #[test]
    fn parses_offer_ack_nak_from_an_independent_encoder() {
        let yi = Ipv4Addr::new(10, 99, 128, 10);
        let o = parse_reply(&server_reply(MessageType::Offer, yi, Some(SRV))).unwrap();
        assert_eq!(
            o,
            Reply {
                xid: 0x0102_0304,
                msg_type: DHCPOFFER,
                yiaddr: yi,
                server_id: Some(SRV),
                chaddr: req().mac,
            }
        );
        let a = parse_reply(&server_reply(MessageType::Ack, yi, Some(SRV))).unwrap();
        assert_eq!(a.msg_type, DHCPACK);
        let n = parse_reply(&server_reply(MessageType::Nak, Ipv4Addr::UNSPECIFIED, None)).unwrap();
        assert_eq!((n.msg_type, n.server_id), (DHCPNAK, None));
    }

    #[test]
    fn rejects_requests_truncation_and_garbage() {
        let mut b = Vec::new();
        discover(&mut b, &req());
        assert_eq!(parse_reply(&b), None, "a BOOTREQUEST is not a reply");
        let ok = server_reply(MessageType::Ack, GI, Some(SRV));
        assert_eq!(
            parse_reply(&ok[..200]),
            None,
            "shorter than the fixed header"
        );
        let mut bad = ok.clone();
        bad[236] = 0;
        assert_eq!(parse_reply(&bad), None, "wrong magic cookie");
        // an option whose length runs past the end of the packet
        let mut cut = ok[..240].to_vec();
        cut.extend_from_slice(&[53, 1, 5, 54, 4, 10]);
        assert_eq!(parse_reply(&cut), None);
        // no message type option at all
        let mut none = ok[..240].to_vec();
        none.push(255);
        assert_eq!(parse_reply(&none), None);
    }

    #[test]
    fn parse_skips_pads_and_unknown_options() {
        let mut b = server_reply(MessageType::Offer, GI, Some(SRV))[..240].to_vec();
        b.extend_from_slice(&[
            0, 0, 82, 3, 1, 1, 9, 0, 54, 4, 10, 99, 0, 1, 53, 1, 2, 255, 0, 0,
        ]);
        let r = parse_reply(&b).unwrap();
        assert_eq!((r.msg_type, r.server_id), (DHCPOFFER, Some(SRV)));
    }
}
