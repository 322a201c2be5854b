//! The System Event Log (reventlog): Get SEL Info / Time / Entry, Reserve and Clear SEL, and
//! the text of an entry as xCAT's ipmi.pm writes it — `MM/DD/YYYY HH:MM:SS <sensor type>,
//! <event> (<sensor name or "Sensor 0xNN">[ reading … with threshold …])[ - Recovered]`, with
//! `BMC Uptime <secs> s` for timestamps the BMC counts from its start. Decoding is pure.

use super::events::{GENERIC_EVENTS, SENSOR_EVENTS};
use super::sdr::{Reading, SensorRecord};
use super::{IpmiError, Session};

const NETFN_STORAGE: u8 = 0x0a;

/// Get SEL Info, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelInfo {
    pub version: u8,
    pub entries: u16,
    /// Bit 1 of the operation support byte.
    pub reserve_supported: bool,
}

pub fn parse_info(d: &[u8]) -> Result<SelInfo, IpmiError> {
    if d.len() < 14 {
        return Err(IpmiError::Malformed(format!(
            "Get SEL Info reply of {} bytes",
            d.len()
        )));
    }
    Ok(SelInfo {
        version: d[0],
        entries: u16::from_le_bytes([d[1], d[2]]),
        reserve_supported: d[13] & 0x02 != 0,
    })
}

/// One SEL record (16 bytes) and the id of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub next: u16,
    pub raw: [u8; 16],
}

/// Get SEL Entry reply: next record id (2 bytes) and the record.
pub fn parse_entry(d: &[u8]) -> Result<Entry, IpmiError> {
    if d.len() < 18 {
        return Err(IpmiError::Malformed(format!(
            "Get SEL Entry reply of {} bytes",
            d.len()
        )));
    }
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&d[2..18]);
    Ok(Entry {
        next: u16::from_le_bytes([d[0], d[1]]),
        raw,
    })
}

/// xCAT's correction for a BMC clock: Get SEL Time minus our time, when the BMC's time is a
/// real date (above 0x20000000); 0 otherwise.
pub fn clock_offset(sel_time: u32, now: i64) -> i64 {
    if sel_time > 0x2000_0000 {
        i64::from(sel_time) - now
    } else {
        0
    }
}

/// `(date, time)` of a SEL timestamp: `BMC Uptime` and `%6d s` below 0x20000000, else the local
/// date and time (`local` formats seconds since the epoch as `MM/DD/YYYY`, `HH:MM:SS`).
fn when(ts: u32, offset: i64, local: &dyn Fn(i64) -> (String, String)) -> (String, String) {
    if ts < 0x2000_0000 {
        return ("BMC Uptime".into(), format!("{ts:6} s"));
    }
    local(i64::from(ts) - offset)
}

fn lookup(table: &[(u8, Option<u8>, &'static str)], t: u8, offset: u8) -> Option<&'static str> {
    table
        .iter()
        .find(|(tt, o, _)| *tt == t && *o == Some(offset))
        .or_else(|| table.iter().find(|(tt, o, _)| *tt == t && o.is_none()))
        .map(|(_, _, v)| *v)
}

/// Splits "Type,Event" at the first comma (an entry without one is all type).
fn split(v: &str) -> (String, String) {
    match v.split_once(',') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (v.to_string(), String::new()),
    }
}

/// The hex dump xCAT appends to OEM records: `xx xx … (text)`.
fn phex(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x} ")).collect();
    let text: String = b
        .iter()
        .map(|&x| {
            let c = char::from(x);
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                ' '
            }
        })
        .collect();
    format!("{hex}({text})")
}

/// Sensor-specific detail xCAT adds for some sensor types (ipmi.pm getaddsensorevent).
fn extra(sensor_type: u8, offset: u8, ed1: u8, ed2: u8, ed3: u8) -> Option<String> {
    let _ = ed1;
    match (sensor_type, offset) {
        (0x08, 0x06) => match ed3 {
            0 => Some("Vendor mismatch".into()),
            1 => Some("Revision mismatch".into()),
            2 => Some("Processor missing".into()),
            3 => Some("Power Supply rating mismatch".into()),
            4 => Some("Voltage rating mismatch".into()),
            _ => None,
        },
        (0x0c, _) => Some(format!("Memory module {ed3}")),
        (0x10, 0x00) => Some(format!("Memory module {ed2}")),
        (0x10, 0x05) => Some(format!("{ed3}% full")),
        (0x12, 0x04) => {
            let names = [
                (0x20, "NMI"),
                (0x10, "OEM action"),
                (0x08, "power cycle"),
                (0x04, "reset"),
                (0x02, "power off"),
                (0x01, "Alert"),
            ];
            let v: Vec<&str> = names
                .iter()
                .filter(|(bit, _)| ed2 & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            (!v.is_empty()).then(|| v.join(", "))
        }
        (0x1d, 0x07) => {
            let causes = [
                "Unknown",
                "Chassis reset via User command to BMC",
                "Reset button",
                "Power button",
                "Watchdog action",
                "OEM",
                "AC Power apply force on",
                "Restore previous power state on AC",
                "PEF initiated reset",
                "PEF initiated power cycle",
                "Soft reboot",
                "RTC Wake",
            ];
            let c = usize::from(ed2 & 0x0f);
            let text = causes
                .get(c)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("Unrecognized cause {c}"));
            Some(format!("{text}via channel {ed3}"))
        }
        _ => None,
    }
}

/// The line reventlog prints for one record (without the `node: ` prefix).
pub fn describe(
    raw: &[u8; 16],
    offset: i64,
    sdrs: &[SensorRecord],
    local: &dyn Fn(i64) -> (String, String),
) -> String {
    let record_type = raw[2];
    let ts = u32::from_le_bytes([raw[3], raw[4], raw[5], raw[6]]);
    if record_type != 0x02 {
        // OEM records: timestamped (C0h-DFh) or not (E0h-FFh).
        if (0x30..0xe0).contains(&record_type) {
            let (d, t) = when(ts, offset, local);
            return format!(
                "{d} {t} Unknown OEM SEL Type {record_type:02x}:{}",
                phex(&raw[7..16])
            );
        }
        return format!("SEL Type {record_type:02x}:{}", phex(&raw[3..16]));
    }
    let (d, t) = when(ts, offset, local);
    let (owner, lun) = (raw[7], raw[8]);
    let (sensor_type, sensor_num) = (raw[10], raw[11]);
    let recovered = raw[12] & 0x80 != 0;
    let event_type = raw[12] & 0x7f;
    let (ed1, ed2, ed3) = (raw[13], raw[14], raw[15]);
    let off = ed1 & 0x0f;
    let (mut ty, mut desc) = match lookup(SENSOR_EVENTS, sensor_type, off) {
        Some(v) => split(v),
        None => (
            format!("No Mappings found ({sensor_type:02X}h)"),
            format!("No Mappings found ({off:02X}h)"),
        ),
    };
    if event_type <= 0x0c {
        desc = match lookup(GENERIC_EVENTS, event_type, off) {
            Some(v) => split(v).1,
            None => format!("No Mappings found ({off:02X}h)"),
        };
    }
    if ty.is_empty() || ty == "-" {
        ty = format!("OEM Sensor Type {sensor_type}");
    }
    if desc.is_empty() || desc == "-" {
        desc = format!("OEM Sensor Event {off}");
    }
    if ty == desc {
        desc.clear();
    }
    if let Some(x) = extra(sensor_type, off, ed1, ed2, ed3) {
        desc = if desc.is_empty() {
            x
        } else {
            format!("{desc} {x}")
        };
    }
    let mut sensor = format!("Sensor 0x{sensor_num:02x}");
    if let Some(rec) = sdrs
        .iter()
        .find(|r| r.owner == owner && r.lun == lun & 0x03 && r.number == sensor_num)
    {
        // The name comes from the BMC: no control characters into our output.
        sensor = rec
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if rec.event_type == 0x01 && ed1 & 0xc0 == 0x40 {
            let reading = |raw: u8| {
                crate::cli::inventory::format_reading(
                    rec,
                    &Reading {
                        raw,
                        unavailable: false,
                        scanning: true,
                        state: 0,
                    },
                )
            };
            sensor.push_str(&format!(" reading {}", reading(ed2)));
            if ed1 & 0x30 == 0x10 {
                sensor.push_str(&format!(" with threshold {}", reading(ed3)));
            }
        }
    }
    let mut text = format!("{d} {t} {ty}, {desc} ({sensor})");
    if recovered {
        text.push_str(" - Recovered");
    }
    text
}

pub async fn info(s: &mut Session) -> Result<SelInfo, IpmiError> {
    parse_info(&s.request(NETFN_STORAGE, 0x40, &[]).await?)
}

pub async fn time(s: &mut Session) -> Result<u32, IpmiError> {
    let d = s.request(NETFN_STORAGE, 0x48, &[]).await?;
    if d.len() < 4 {
        return Err(IpmiError::Malformed("Get SEL Time reply is short".into()));
    }
    Ok(u32::from_le_bytes([d[0], d[1], d[2], d[3]]))
}

/// Every record, first to last (at most `entries + 16`, so a looping chain ends).
pub async fn read_all(s: &mut Session, entries: u16) -> Result<Vec<[u8; 16]>, IpmiError> {
    let mut out = Vec::new();
    let mut id: u16 = 0;
    for _ in 0..(usize::from(entries) + 16) {
        let [lo, hi] = id.to_le_bytes();
        let d = s
            .request(NETFN_STORAGE, 0x43, &[0, 0, lo, hi, 0x00, 0xff])
            .await?;
        let e = parse_entry(&d)?;
        out.push(e.raw);
        if e.next == 0xffff || e.next == 0 {
            break;
        }
        id = e.next;
    }
    Ok(out)
}

/// Reserve SEL, then Clear SEL ("CLR", initiate erase).
pub async fn clear(s: &mut Session) -> Result<(), IpmiError> {
    let r = s.request(NETFN_STORAGE, 0x42, &[]).await?;
    if r.len() < 2 {
        return Err(IpmiError::Malformed("Reserve SEL reply is short".into()));
    }
    s.request(NETFN_STORAGE, 0x47, &[r[0], r[1], 0x43, 0x4c, 0x52, 0xaa])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(t: i64) -> (String, String) {
        (format!("day{t}"), "time".into())
    }

    #[test]
    fn threshold_and_sensor_specific_events_read_as_xcat_prints_them() {
        // Temperature sensor 0x30, threshold event, upper critical going high.
        let raw = [
            1, 0, 2, 0x10, 0, 0, 0, 0x20, 0, 4, 0x01, 0x30, 0x01, 0x59, 0x50, 0x48,
        ];
        assert_eq!(
            describe(&raw, 0, &[], &local),
            "BMC Uptime     16 s Temperature, Upper Critical - going high (Sensor 0x30)"
        );
        // Processor thermal trip, sensor-specific, deasserted.
        let raw = [
            2, 0, 2, 0, 0, 0, 0x60, 0x20, 0, 4, 0x07, 0x05, 0xef, 0x01, 0xff, 0xff,
        ];
        assert_eq!(
            describe(&raw, 0x100, &[], &local),
            format!(
                "day{} time Processor, Thermal Trip (Sensor 0x05) - Recovered",
                0x6000_0000i64 - 0x100
            )
        );
        // OEM, not timestamped.
        let raw = [3, 0, 0xf0, b'A', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert!(describe(&raw, 0, &[], &local).starts_with("SEL Type f0:41 01 "));
    }

    #[test]
    fn replies_are_length_checked() {
        assert!(parse_info(&[0x51, 0, 0]).is_err());
        assert!(parse_entry(&[0; 17]).is_err());
        let i = parse_info(&[0x51, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a]).expect("info");
        assert_eq!(i.entries, 2);
        assert!(i.reserve_supported);
        assert_eq!(clock_offset(0x100, 5), 0);
        assert_eq!(clock_offset(0x6000_0000, 0x5000_0000), 0x1000_0000);
    }
}
