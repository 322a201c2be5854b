//! Sensors: the SDR repository read over a session (Reserve SDR Repository, Get SDR in chunks),
//! full (type 1) and compact (type 2) sensor records parsed (pure, fuzzed), Get Sensor Reading,
//! and the conversion of a raw reading to a value: y = (M·x + B·10^Bexp) · 10^Rexp, where x is
//! unsigned, one's or two's complement as the record's analog data format says (IPMI 2.0 §36.3).

use super::{IpmiError, Session};

const NETFN_STORAGE: u8 = 0x0a;
const NETFN_SENSOR: u8 = 0x04;

/// Sensor types (IPMI 2.0 table 42-3) rvitals filters on.
pub const TYPE_TEMPERATURE: u8 = 0x01;
pub const TYPE_VOLTAGE: u8 = 0x02;
pub const TYPE_CURRENT: u8 = 0x03;
pub const TYPE_FAN: u8 = 0x04;
/// Base unit "Watts" (table 43-15).
pub const UNIT_WATTS: u8 = 6;

/// A sensor record, full or compact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorRecord {
    pub record_id: u16,
    /// 1 full, 2 compact.
    pub record_type: u8,
    pub owner: u8,
    pub lun: u8,
    pub number: u8,
    pub sensor_type: u8,
    /// 0x01 threshold; others are discrete.
    pub event_type: u8,
    /// Bits 7:6 analog data format (0 unsigned, 1 one's, 2 two's complement, 3 none), bit 0 %.
    pub units1: u8,
    pub base_unit: u8,
    pub linearization: u8,
    pub m: i16,
    pub b: i16,
    pub b_exp: i8,
    pub r_exp: i8,
    pub name: String,
}

/// Sign-extends the low `bits` bits of `v`.
fn signed(v: u16, bits: u32) -> i16 {
    let shift = 16 - bits;
    ((v << shift) as i16) >> shift
}

/// Parses one SDR (header included). Ok(None) for record types that are not sensors.
pub fn parse_record(r: &[u8]) -> Result<Option<SensorRecord>, IpmiError> {
    let short = || IpmiError::Malformed(format!("SDR record of {} bytes is truncated", r.len()));
    if r.len() < 5 {
        return Err(short());
    }
    let record_id = u16::from_le_bytes([r[0], r[1]]);
    let record_type = r[3];
    let (id_at, base) = match record_type {
        1 => (47, 48),
        2 => (31, 32),
        _ => return Ok(None),
    };
    if r.len() < id_at + 1 {
        return Err(short());
    }
    let tl = r[id_at];
    let n = usize::from(tl & 0x1f);
    let name_bytes = r.get(base..base + n).unwrap_or(&r[base.min(r.len())..]);
    let name = super::fru::decode_field(tl, name_bytes);
    let mut s = SensorRecord {
        record_id,
        record_type,
        owner: r[5],
        lun: r[6] & 0x03,
        number: r[7],
        sensor_type: r[12],
        event_type: r[13],
        units1: r[20],
        base_unit: r[21],
        linearization: 0,
        m: 1,
        b: 0,
        b_exp: 0,
        r_exp: 0,
        name,
    };
    if record_type == 1 {
        s.linearization = r[23] & 0x7f;
        s.m = signed(u16::from(r[24]) | (u16::from(r[25] >> 6) << 8), 10);
        s.b = signed(u16::from(r[26]) | (u16::from(r[27] >> 6) << 8), 10);
        s.r_exp = signed(u16::from(r[29] >> 4), 4) as i8;
        s.b_exp = signed(u16::from(r[29] & 0x0f), 4) as i8;
    }
    Ok(Some(s))
}

impl SensorRecord {
    /// Analog data format (units1 bits 7:6).
    pub fn analog_format(&self) -> u8 {
        self.units1 >> 6
    }

    /// A threshold sensor with an analog reading: its value converts to units.
    pub fn is_analog(&self) -> bool {
        self.record_type == 1 && self.event_type == 0x01 && self.analog_format() != 3
    }

    /// The value of a raw reading. Only linear records (linearization 0) are converted; others
    /// need functions (ln, 1/x, …) we apply too, as the spec lists them.
    pub fn convert(&self, raw: u8) -> f64 {
        if self.record_type != 1 {
            return f64::from(raw);
        }
        let x = match self.analog_format() {
            1 => {
                // One's complement: negative numbers are the bitwise inverse.
                if raw & 0x80 != 0 {
                    -f64::from(!raw)
                } else {
                    f64::from(raw)
                }
            }
            2 => f64::from(raw as i8),
            _ => f64::from(raw),
        };
        let y = (f64::from(self.m) * x + f64::from(self.b) * 10f64.powi(i32::from(self.b_exp)))
            * 10f64.powi(i32::from(self.r_exp));
        match self.linearization {
            1 => y.ln(),
            2 => y.log10(),
            3 => y.log2(),
            4 => y.exp(),
            5 => 10f64.powf(y),
            6 => y.exp2(),
            7 => {
                if y != 0.0 {
                    1.0 / y
                } else {
                    0.0
                }
            }
            8 => y * y,
            9 => y * y * y,
            10 => y.sqrt(),
            11 => y.cbrt(),
            _ => y,
        }
    }

    /// The unit as xCAT prints it (ipmi.pm `%units`), "" when unspecified.
    pub fn unit(&self) -> &'static str {
        unit_name(self.base_unit)
    }
}

/// Base units (IPMI 2.0 table 43-15), xCAT's words for them.
pub fn unit_name(u: u8) -> &'static str {
    match u {
        1 => "C",
        2 => "F",
        3 => "K",
        4 => "Volts",
        5 => "Amps",
        6 => "Watts",
        7 => "Joules",
        8 => "Coulombs",
        9 => "VA",
        17 => "CFM",
        18 => "RPM",
        19 => "Hz",
        20 => "microsecond",
        21 => "millisecond",
        22 => "second",
        23 => "minute",
        24 => "hour",
        70 => "byte",
        _ => "",
    }
}

/// Get Sensor Reading reply, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub raw: u8,
    /// Bit 5 of byte 2: "reading/state unavailable" (the sensor is still initialising or gone).
    pub unavailable: bool,
    /// Bit 6 of byte 2: sensor scanning enabled; a disabled sensor's reading means nothing.
    pub scanning: bool,
    /// Threshold comparison bits, or discrete state bits 0-14.
    pub state: u16,
}

impl Reading {
    pub fn valid(&self) -> bool {
        !self.unavailable && self.scanning
    }
}

pub fn parse_reading(d: &[u8]) -> Result<Reading, IpmiError> {
    if d.len() < 2 {
        return Err(IpmiError::Malformed(
            "Get Sensor Reading reply is short".into(),
        ));
    }
    let s1 = d.get(2).copied().unwrap_or(0);
    let s2 = d.get(3).copied().unwrap_or(0) & 0x7f;
    Ok(Reading {
        raw: d[0],
        unavailable: d[1] & 0x20 != 0,
        scanning: d[1] & 0x40 != 0,
        state: u16::from(s1) | (u16::from(s2) << 8),
    })
}

pub async fn read_sensor(s: &mut Session, rec: &SensorRecord) -> Result<Reading, IpmiError> {
    let d = s.request(NETFN_SENSOR, 0x2d, &[rec.number]).await?;
    parse_reading(&d)
}

/// Every record of the SDR repository, raw (header included), in repository order.
pub async fn read_repository(s: &mut Session) -> Result<Vec<Vec<u8>>, IpmiError> {
    let mut out = Vec::new();
    let mut resv = reserve(s).await?;
    let mut id: u16 = 0;
    // A repository is bounded (record IDs are 16-bit); this guards against a BMC whose "next
    // record" chain loops.
    for _ in 0..4096 {
        let (next, rec) = match read_record(s, &mut resv, id).await? {
            Some(x) => x,
            None => break,
        };
        out.push(rec);
        if next == 0xffff || next == id {
            break;
        }
        id = next;
    }
    Ok(out)
}

async fn reserve(s: &mut Session) -> Result<[u8; 2], IpmiError> {
    let d = s.request(NETFN_STORAGE, 0x22, &[]).await?;
    d.get(..2)
        .and_then(|x| x.try_into().ok())
        .ok_or_else(|| IpmiError::Malformed("Reserve SDR Repository reply is short".into()))
}

/// One record: header first (5 bytes, whose last is the body length), then the body in chunks.
/// A lost reservation (0xC5) is renewed and the read restarted.
async fn read_record(
    s: &mut Session,
    resv: &mut [u8; 2],
    id: u16,
) -> Result<Option<(u16, Vec<u8>)>, IpmiError> {
    let mut chunk: u8 = 32;
    let [il, ih] = id.to_le_bytes();
    'again: for _ in 0..4 {
        let mut rec: Vec<u8> = Vec::new();
        let mut next = 0xffff;
        let mut total = 5usize;
        while rec.len() < total {
            let want = if rec.is_empty() {
                5
            } else {
                (total - rec.len()).min(usize::from(chunk)) as u8
            };
            let off = rec.len() as u8;
            let (cc, d) = s
                .request_cc(NETFN_STORAGE, 0x23, &[resv[0], resv[1], il, ih, off, want])
                .await?;
            match cc {
                0 => {}
                0xc5 => {
                    *resv = reserve(s).await?;
                    continue 'again;
                }
                0xcb if id == 0 && rec.is_empty() => return Ok(None),
                0xca | 0xc7 | 0xc8 if chunk > 8 => {
                    chunk /= 2;
                    continue;
                }
                code => {
                    return Err(IpmiError::Completion {
                        netfn: NETFN_STORAGE,
                        cmd: 0x23,
                        code,
                    })
                }
            }
            if d.len() < 3 {
                return Err(IpmiError::Malformed("Get SDR reply is short".into()));
            }
            next = u16::from_le_bytes([d[0], d[1]]);
            rec.extend_from_slice(&d[2..]);
            if rec.len() >= 5 && total == 5 {
                total = 5 + usize::from(rec[4]);
            }
        }
        rec.truncate(total);
        return Ok(Some((next, rec)));
    }
    Err(IpmiError::Malformed(
        "SDR reservation kept being cancelled".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full sensor record as the test simulator defines it (tests/common/ipmisim.rs).
    #[allow(clippy::too_many_arguments)]
    fn full(
        num: u8,
        stype: u8,
        name: &str,
        units1: u8,
        unit: u8,
        m: i16,
        b: i16,
        rexp: i8,
    ) -> Vec<u8> {
        let mut body = vec![
            0x20, 0, num, 0x03, 1, 0x7f, 0x68, stype, 0x01, 0, 0, 0, 0, 0, 0, units1, unit, 0, 0,
        ];
        body.extend([
            m as u8,
            (((m >> 8) & 3) as u8) << 6,
            b as u8,
            (((b >> 8) & 3) as u8) << 6,
            0,
            ((rexp as u8) & 0x0f) << 4,
        ]);
        body.extend([0; 17]);
        body.push(0xc0 | name.len() as u8);
        body.extend(name.as_bytes());
        let mut r = vec![num, 0, 0x51, 1, body.len() as u8];
        r.extend(body);
        r
    }

    #[test]
    fn converts_linear_readings() {
        let t = parse_record(&full(1, 1, "CPU Temp", 0, 1, 1, 0, 0))
            .expect("ok")
            .expect("sensor");
        assert_eq!((t.number, t.name.as_str(), t.unit()), (1, "CPU Temp", "C"));
        assert_eq!(t.convert(45), 45.0);
        let v = parse_record(&full(2, 2, "12V", 0, 4, 6, 0, -2))
            .expect("ok")
            .expect("sensor");
        assert!((v.convert(201) - 12.06).abs() < 1e-9);
        let s = parse_record(&full(4, 1, "Inlet", 0x80, 1, 1, 0, 0))
            .expect("ok")
            .expect("sensor");
        assert_eq!(s.convert(0xfb), -5.0);
        let o = parse_record(&full(4, 1, "Ones", 0x40, 1, 1, 0, 0))
            .expect("ok")
            .expect("sensor");
        assert_eq!(o.convert(0xfb), -4.0);
        // Negative M and B with exponents: M = -2, B = -3, Bexp 0, Rexp -1 → (-2x - 3) / 10.
        let n = parse_record(&full(5, 2, "neg", 0, 4, -2, -3, -1))
            .expect("ok")
            .expect("sensor");
        assert_eq!((n.m, n.b, n.r_exp), (-2, -3, -1));
        assert!((n.convert(10) - (-2.3)).abs() < 1e-9);
    }

    #[test]
    fn compact_and_other_records() {
        let name = "Chassis Intru";
        let mut body = vec![
            0x20, 0, 6, 0x17, 1, 0x7f, 0x40, 0x05, 0x6f, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0,
        ];
        body.extend([0; 8]);
        body.push(0xc0 | name.len() as u8);
        body.extend(name.as_bytes());
        let mut r = vec![6, 0, 0x51, 2, body.len() as u8];
        r.extend(body);
        let c = parse_record(&r).expect("ok").expect("sensor");
        assert_eq!(
            (c.record_type, c.sensor_type, c.name.as_str()),
            (2, 5, name)
        );
        assert!(!c.is_analog());
        assert!(matches!(parse_record(&[1, 0, 0x51, 0x11, 0]), Ok(None)));
        assert!(parse_record(&[1, 0, 0x51, 1, 3, 0, 0]).is_err());
    }

    #[test]
    fn reading_bits() {
        let r = parse_reading(&[45, 0xc0, 0x00]).expect("reading");
        assert!(r.valid());
        let r = parse_reading(&[0, 0x20]).expect("reading");
        assert!(!r.valid());
        let r = parse_reading(&[0, 0x80, 1, 0x80]).expect("reading");
        assert!(!r.scanning && r.state == 1);
        assert!(parse_reading(&[1]).is_err());
    }
}
