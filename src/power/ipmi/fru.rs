//! FRU inventory (IPMI Platform Management FRU Information Storage Definition v1.0): reading a
//! FRU device in chunks over a session, and parsing its common header and the chassis, board and
//! product info areas (pure, fuzzed). Type/length fields decode binary (hex), BCD plus, 6-bit
//! packed ASCII and 8-bit ASCII.

use super::{IpmiError, Session};

/// A parse problem; the FRU bytes came from the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FruError {
    #[error("FRU data is too short for its common header")]
    Short,
    #[error("FRU common header has format version {0:#x}, not 1")]
    Version(u8),
    #[error("FRU common header checksum is wrong")]
    HeaderChecksum,
}

/// One decoded text field.
pub type Field = Option<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChassisInfo {
    pub chassis_type: u8,
    pub part_number: Field,
    pub serial_number: Field,
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardInfo {
    /// Minutes since 1996-01-01 00:00 UTC; 0 means unspecified.
    pub mfg_minutes: u32,
    pub manufacturer: Field,
    pub product: Field,
    pub serial_number: Field,
    pub part_number: Field,
    pub fru_file_id: Field,
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductInfo {
    pub manufacturer: Field,
    pub name: Field,
    pub part_number: Field,
    pub version: Field,
    pub serial_number: Field,
    pub asset_tag: Field,
    pub fru_file_id: Field,
    pub extra: Vec<String>,
}

/// The parsed areas; a bad area (checksum, truncation) is left out rather than failing the rest,
/// as ipmitool and xCAT both show what they can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fru {
    pub chassis: Option<ChassisInfo>,
    pub board: Option<BoardInfo>,
    pub product: Option<ProductInfo>,
}

impl BoardInfo {
    /// The manufacturing date as `YYYY-MM-DD HH:MM` UTC (civil-from-days arithmetic).
    pub fn mfg_date(&self) -> Option<String> {
        if self.mfg_minutes == 0 {
            return None;
        }
        // 1996-01-01 is day 9496 after 1970-01-01.
        let mins = i64::from(self.mfg_minutes);
        let days = 9496 + mins / 1440;
        let (y, m, d) = civil_from_days(days);
        Some(format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}",
            (mins % 1440) / 60,
            mins % 60
        ))
    }
}

/// Gregorian date from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses a whole FRU image.
pub fn parse(b: &[u8]) -> Result<Fru, FruError> {
    let h = b.get(..8).ok_or(FruError::Short)?;
    if h[0] & 0x0f != 1 {
        return Err(FruError::Version(h[0]));
    }
    if h.iter().fold(0u8, |a, x| a.wrapping_add(*x)) != 0 {
        return Err(FruError::HeaderChecksum);
    }
    let area = |i: usize| -> Option<&[u8]> {
        let off = usize::from(h[i]) * 8;
        if off == 0 {
            return None;
        }
        let len = usize::from(*b.get(off + 1)?) * 8;
        let a = b.get(off..off + len)?;
        // Area checksum: all bytes sum to zero. A bad sum drops the area.
        (len >= 3 && a.iter().fold(0u8, |s, x| s.wrapping_add(*x)) == 0).then_some(a)
    };
    let chassis = area(2).map(|a| {
        let mut f = Fields::new(a, 3);
        ChassisInfo {
            chassis_type: a[2],
            part_number: f.next_field(),
            serial_number: f.next_field(),
            extra: f.rest(),
        }
    });
    let board = area(3).and_then(|a| {
        let m = a.get(3..6)?;
        let mut f = Fields::new(a, 6);
        Some(BoardInfo {
            mfg_minutes: u32::from_le_bytes([m[0], m[1], m[2], 0]),
            manufacturer: f.next_field(),
            product: f.next_field(),
            serial_number: f.next_field(),
            part_number: f.next_field(),
            fru_file_id: f.next_field(),
            extra: f.rest(),
        })
    });
    let product = area(4).map(|a| {
        let mut f = Fields::new(a, 3);
        ProductInfo {
            manufacturer: f.next_field(),
            name: f.next_field(),
            part_number: f.next_field(),
            version: f.next_field(),
            serial_number: f.next_field(),
            asset_tag: f.next_field(),
            fru_file_id: f.next_field(),
            extra: f.rest(),
        }
    });
    Ok(Fru {
        chassis,
        board,
        product,
    })
}

/// Walks the type/length fields of an area until the 0xC1 end marker (or the area's end).
struct Fields<'a> {
    a: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Fields<'a> {
    fn new(a: &'a [u8], at: usize) -> Fields<'a> {
        Fields { a, at, done: false }
    }

    /// The next field: None once the area ends; Some(None) for an empty one.
    fn next_raw(&mut self) -> Option<Field> {
        if self.done {
            return None;
        }
        let Some(&tl) = self.a.get(self.at) else {
            self.done = true;
            return None;
        };
        if tl == 0xc1 {
            self.done = true;
            return None;
        }
        let len = usize::from(tl & 0x3f);
        let Some(bytes) = self.a.get(self.at + 1..self.at + 1 + len) else {
            self.done = true;
            return None;
        };
        self.at += 1 + len;
        let s = decode_field(tl, bytes);
        Some((!s.is_empty()).then_some(s))
    }

    fn next_field(&mut self) -> Field {
        self.next_raw().flatten()
    }

    /// Custom fields after the fixed ones, non-empty only.
    fn rest(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.next_raw()).flatten().collect()
    }
}

/// One field's bytes by the type in bits 7:6 of its type/length byte.
pub fn decode_field(tl: u8, b: &[u8]) -> String {
    match tl >> 6 {
        // Binary or unspecified: hex, as xCAT's phex does.
        0 => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        // BCD plus: digits, space, dash, period.
        1 => b
            .iter()
            .flat_map(|x| [x >> 4, x & 0x0f])
            .map(|n| match n {
                0..=9 => char::from(b'0' + n),
                0xa => ' ',
                0xb => '-',
                0xc => '.',
                _ => '?',
            })
            .collect::<String>()
            .trim_end()
            .to_string(),
        // 6-bit packed ASCII: four 6-bit characters (+0x20) in every three bytes, LSB first.
        2 => {
            let mut out = String::new();
            let mut acc: u32 = 0;
            let mut bits = 0;
            for &x in b {
                acc |= u32::from(x) << bits;
                bits += 8;
                while bits >= 6 {
                    out.push(char::from((acc & 0x3f) as u8 + 0x20));
                    acc >>= 6;
                    bits -= 6;
                }
            }
            out.trim_end().to_string()
        }
        // 8-bit ASCII + Latin-1 (English); trailing NULs and spaces are padding.
        _ => b
            .iter()
            .map(|&x| char::from(x))
            .collect::<String>()
            .trim_end_matches(['\0', ' '])
            .to_string(),
    }
}

/// Reads FRU device `id` whole: Get FRU Inventory Area Info, then Read FRU Data in chunks. A
/// BMC that finds a chunk too large (0xC7/0xC8/0xCA) gets smaller ones. None when the device
/// is not present (0xCB).
pub async fn read(s: &mut Session, id: u8) -> Result<Option<Vec<u8>>, IpmiError> {
    let (cc, info) = s.request_cc(0x0a, 0x10, &[id]).await?;
    match cc {
        0 => {}
        0xcb => return Ok(None),
        code => {
            return Err(IpmiError::Completion {
                netfn: 0x0a,
                cmd: 0x10,
                code,
            })
        }
    }
    if info.len() < 3 {
        return Err(IpmiError::Malformed(
            "Get FRU Inventory Area Info reply is short".into(),
        ));
    }
    let size = usize::from(u16::from_le_bytes([info[0], info[1]]));
    // Word-addressed devices count offsets and lengths in 16-bit words.
    let words = info[2] & 1 == 1;
    let mut out = Vec::with_capacity(size);
    let mut chunk: usize = 32;
    while out.len() < size {
        let want = chunk.min(size - out.len());
        let (off, n) = if words {
            (out.len() / 2, want.div_ceil(2))
        } else {
            (out.len(), want)
        };
        let off = u16::try_from(off).map_err(|_| IpmiError::Malformed("FRU too large".into()))?;
        let [lo, hi] = off.to_le_bytes();
        let (cc, d) = s.request_cc(0x0a, 0x11, &[id, lo, hi, n as u8]).await?;
        match cc {
            0 => {}
            0xc7 | 0xc8 | 0xca if chunk > 8 => {
                chunk /= 2;
                continue;
            }
            code => {
                return Err(IpmiError::Completion {
                    netfn: 0x0a,
                    cmd: 0x11,
                    code,
                })
            }
        }
        let Some((&count, data)) = d.split_first() else {
            return Err(IpmiError::Malformed("Read FRU Data reply is empty".into()));
        };
        let count = if words {
            usize::from(count) * 2
        } else {
            usize::from(count)
        };
        let got = data.get(..count.min(data.len())).unwrap_or_default();
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(got);
    }
    out.truncate(size);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(body: &[u8]) -> Vec<u8> {
        let mut a = body.to_vec();
        a.push(0xc1);
        while !(a.len() + 1).is_multiple_of(8) {
            a.push(0);
        }
        a[1] = ((a.len() + 1) / 8) as u8;
        let sum = a.iter().fold(0u8, |s, x| s.wrapping_add(*x));
        a.push(sum.wrapping_neg());
        a
    }

    fn text(s: &str) -> Vec<u8> {
        let mut v = vec![0xc0 | s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn parses_areas_and_field_types() {
        let mut c = vec![1, 0, 0x17];
        c.extend(text("CH-PART-1"));
        c.extend(text("CHSER123"));
        let c = area(&c);
        let mut b = vec![1, 0, 0x19, 0x00, 0x00, 0x00];
        b.extend(text("Simu Inc"));
        // "123-4" in BCD plus: 0x12 0x3b 0x4a → "123-4 " trimmed.
        b.extend([0x43, 0x12, 0x3b, 0x4a]);
        // "IPMI" in 6-bit ASCII: I=0x29 P=0x30 M=0x2d I=0x29 → packed 3 bytes.
        let v: u32 = 0x29 | (0x30 << 6) | (0x2d << 12) | (0x29 << 18);
        b.extend([0x83, v as u8, (v >> 8) as u8, (v >> 16) as u8]);
        b.push(0x02);
        b.extend([0xde, 0xad]);
        b.extend(text(""));
        let b = area(&b);
        let mut p = vec![1, 0, 0x19];
        for s in [
            "Simu Inc",
            "SimServer 9000",
            "SS9K-A",
            "1.2",
            "PRODSER99",
            "ASSET-0042",
            "",
            "extra1",
        ] {
            p.extend(text(s));
        }
        let p = area(&p);
        let mut img = vec![1, 0, 1, 0, 0, 0, 0, 0];
        img[3] = (1 + c.len() / 8) as u8;
        img[4] = img[3] + (b.len() / 8) as u8;
        img[7] = img[..7]
            .iter()
            .fold(0u8, |s, x| s.wrapping_add(*x))
            .wrapping_neg();
        img.extend(&c);
        img.extend(&b);
        img.extend(&p);
        let f = parse(&img).expect("fru");
        let ch = f.chassis.expect("chassis");
        assert_eq!(ch.part_number.as_deref(), Some("CH-PART-1"));
        assert_eq!(ch.serial_number.as_deref(), Some("CHSER123"));
        let bd = f.board.expect("board");
        assert_eq!(bd.manufacturer.as_deref(), Some("Simu Inc"));
        assert_eq!(bd.product.as_deref(), Some("123-4"));
        assert_eq!(bd.serial_number.as_deref(), Some("IPMI"));
        assert_eq!(bd.part_number.as_deref(), Some("de ad"));
        assert_eq!(bd.mfg_date(), None);
        let pr = f.product.expect("product");
        assert_eq!(pr.name.as_deref(), Some("SimServer 9000"));
        assert_eq!(pr.asset_tag.as_deref(), Some("ASSET-0042"));
        assert_eq!(pr.fru_file_id, None);
        assert_eq!(pr.extra, vec!["extra1".to_string()]);

        // A broken area checksum drops only that area.
        let mut bad = img.clone();
        bad[9] ^= 0x01;
        let f = parse(&bad).expect("fru");
        assert!(f.chassis.is_none() && f.product.is_some());
        assert_eq!(parse(&img[..5]), Err(FruError::Short));
    }

    #[test]
    fn board_date() {
        let b = BoardInfo {
            mfg_minutes: 60 * 24 * 365 * 20,
            ..Default::default()
        };
        // The same minutes ipmitool prints as "Sun Dec 27 00:00:00 2015".
        assert_eq!(b.mfg_date().as_deref(), Some("2015-12-27 00:00"));
    }
}
