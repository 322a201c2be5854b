//! DHCPv4 as a PXE client sends it (RFC 2131, PXE 2.1 options 60/93/94/97; iPXE's user class 77 and
//! option 175), and the parts of a reply a booting node acts on (yiaddr, siaddr, file, 54, 66, 67).

use std::net::Ipv4Addr;

pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const OPTIONS_AT: usize = 240;

/// Who is asking: the firmware's PXE ROM, or iPXE (xNBA) after it was loaded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Asker {
    Rom,
    Ipxe,
}

pub struct Ask<'a> {
    pub xid: u32,
    pub mac: [u8; 6],
    pub secs: u16,
    pub asker: Asker,
    /// REQUEST: the offered address and the server that offered it.
    pub select: Option<(Ipv4Addr, Ipv4Addr)>,
    pub uuid: &'a [u8; 16],
}

/// A DISCOVER (or REQUEST when `select` is set) with the broadcast flag: the client has no
/// address yet, so every server answers by broadcast.
pub fn build(a: &Ask) -> Vec<u8> {
    let mut b = Vec::with_capacity(400);
    b.extend_from_slice(&[1, 1, 6, 0]);
    b.extend_from_slice(&a.xid.to_be_bytes());
    b.extend_from_slice(&a.secs.to_be_bytes());
    b.extend_from_slice(&0x8000u16.to_be_bytes());
    b.extend_from_slice(&[0; 16]); // ciaddr yiaddr siaddr giaddr
    b.extend_from_slice(&a.mac);
    b.resize(OPTIONS_AT - 4, 0);
    b.extend_from_slice(&MAGIC);
    let t = if a.select.is_some() {
        REQUEST
    } else {
        DISCOVER
    };
    b.extend_from_slice(&[53, 1, t]);
    b.extend_from_slice(&[57, 2, 0x05, 0xc0]); // max message size 1472
    if let Some((ip, server)) = a.select {
        b.push(50);
        b.push(4);
        b.extend_from_slice(&ip.octets());
        b.push(54);
        b.push(4);
        b.extend_from_slice(&server.octets());
    }
    b.extend_from_slice(&[93, 2, 0, 0]); // client architecture: x86 BIOS
    b.extend_from_slice(&[94, 3, 1, 2, 1]); // UNDI 2.1
    b.push(97);
    b.push(17);
    b.push(0);
    b.extend_from_slice(a.uuid);
    let vc = b"PXEClient:Arch:00000:UNDI:002001";
    b.push(60);
    b.push(vc.len() as u8);
    b.extend_from_slice(vc);
    match a.asker {
        Asker::Rom => {
            b.extend_from_slice(&[55, 11, 1, 2, 3, 5, 6, 12, 13, 43, 60, 66, 67]);
        }
        Asker::Ipxe => {
            // xCAT's iPXE build says "xNBA"; option 175 carries iPXE's feature flags.
            b.extend_from_slice(&[77, 4]);
            b.extend_from_slice(b"xNBA");
            b.extend_from_slice(&[175, 3, 0x13, 1, 1]); // HTTP supported
            b.extend_from_slice(&[55, 10, 1, 3, 6, 12, 15, 17, 43, 66, 67, 175]);
        }
    }
    b.push(255);
    if b.len() < 300 {
        b.resize(300, 0);
    }
    b
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: u32,
    pub msg_type: u8,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub file: String,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A BOOTREPLY's fields; `None` for anything else. Options 66/67 replace sname/file.
pub fn parse(p: &[u8]) -> Option<Reply> {
    if p.len() < OPTIONS_AT || p[0] != 2 || p[236..240] != MAGIC {
        return None;
    }
    let xid = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let yiaddr = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let mut siaddr = Ipv4Addr::new(p[20], p[21], p[22], p[23]);
    let mut file = cstr(&p[108..236]);
    let (mut msg_type, mut server_id) = (None, None);
    let mut i = OPTIONS_AT;
    while i < p.len() {
        match p[i] {
            0 => i += 1,
            255 => break,
            code => {
                let len = *p.get(i + 1)? as usize;
                let v = p.get(i + 2..i + 2 + len)?;
                match (code, len) {
                    (53, 1) => msg_type = Some(v[0]),
                    (54, 4) => server_id = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                    (66, _) => {
                        if let Ok(ip) = cstr(v).parse() {
                            siaddr = ip;
                        }
                    }
                    (67, _) => file = cstr(v),
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
        siaddr,
        server_id,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_and_request_carry_the_pxe_options() {
        let uuid = [7u8; 16];
        let a = Ask {
            xid: 0x01020304,
            mac: [2, 0, 0, 0, 1, 2],
            secs: 0,
            asker: Asker::Rom,
            select: None,
            uuid: &uuid,
        };
        let d = build(&a);
        assert_eq!(&d[4..8], &[1, 2, 3, 4]);
        assert_eq!(d[10], 0x80, "broadcast flag");
        assert_eq!(&d[28..34], &[2, 0, 0, 0, 1, 2]);
        assert_eq!(&d[240..243], &[53, 1, DISCOVER]);
        let s = String::from_utf8_lossy(&d);
        assert!(s.contains("PXEClient:Arch:00000:UNDI:002001"));
        // the parameter request list's length matches its content
        let pos = d.windows(2).position(|w| w == [55, 11]).expect("option 55");
        assert_eq!(d[pos + 2 + 11], 255);
        let r = build(&Ask {
            asker: Asker::Ipxe,
            select: Some((Ipv4Addr::new(10, 98, 1, 1), Ipv4Addr::new(10, 98, 0, 1))),
            ..a
        });
        assert_eq!(&r[240..243], &[53, 1, REQUEST]);
        assert!(String::from_utf8_lossy(&r).contains("xNBA"));
        let pos = r.windows(2).position(|w| w == [55, 10]).expect("option 55");
        assert_eq!(r[pos + 2 + 10], 255);
    }

    #[test]
    fn reply_fields_and_options_66_67_win() {
        let mut p = vec![0u8; 240];
        p[0] = 2;
        p[4..8].copy_from_slice(&9u32.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 98, 1, 1]);
        p[20..24].copy_from_slice(&[10, 98, 0, 1]);
        p[108..112].copy_from_slice(b"abc\0");
        p[236..240].copy_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, OFFER, 54, 4, 10, 98, 0, 1]);
        p.extend_from_slice(&[67, 3]);
        p.extend_from_slice(b"xyz");
        p.push(255);
        let r = parse(&p).expect("reply");
        assert_eq!(r.xid, 9);
        assert_eq!(r.msg_type, OFFER);
        assert_eq!(r.yiaddr, Ipv4Addr::new(10, 98, 1, 1));
        assert_eq!(r.siaddr, Ipv4Addr::new(10, 98, 0, 1));
        assert_eq!(r.file, "xyz");
        assert!(parse(&p[..200]).is_none());
    }
}
