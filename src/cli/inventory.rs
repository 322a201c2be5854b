//! `rinv` (hardware inventory: Get Device ID, System GUID, FRU 0) and `rvitals` (sensors: the SDR
//! repository and Get Sensor Reading) over IPMI, one line per item, nodes in noderange order.
//!
//! Labels and value formats are xCAT's (ipmi.pm): `rinv` prints `desc:` padded to 20 columns then
//! the value (`Manufacturer ID`, `Product ID`, `Device ID`, `UUID/GUID`, `BMC Firmware`, `System
//! Manufacturer`, `System Description`, `System Model/MTM`, `System Revision`, `System Serial
//! Number`, `System Asset Number`, `Chassis Serial Number`, `Chassis Part Number`, `Board …`);
//! `rvitals` prints `name:` padded to 30 columns then the value and unit (`45 C (113 F)`,
//! `12.06 Volts`, `4500 RPM`, `200 Watts (683 BTUs/hr)`, `N/A` when the sensor has no reading).
//! Differences from xCAT, on purpose: a fixed item order (device ID, GUID, firmware, then FRU
//! product/chassis/board) instead of ipmi.pm's hash-key order; no trailing pad spaces; discrete
//! sensors print their state bits (`0x0001`) rather than a raw byte that means nothing.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::bmc::{self, bmc_spec, Settings, Work};
use super::nodes::report_missing;
use super::DbOpt;
use crate::power::ipmi::{commands, fru, sdr, IpmiError, Session, Target};
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct RinvArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// all (default), model, serial, asset, firm, mprom, deviceid, guid, uuid, misc, mac, vpd
    what: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RvitalsArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// all (default), temp, voltage, fanspeed, power, wattage
    what: Vec<String>,
}

/// Builds each node's work, runs `job`, prints its lines; shared by rinv and rvitals.
fn per_node<F, Fut>(db: &DbOpt, noderange: &str, job: F) -> anyhow::Result<ExitCode>
where
    F: Fn(Target) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<String>, IpmiError>> + Send + 'static,
{
    let store = db.open()?;
    let r = Resolver::new(store);
    let exp = r.noderange(noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    let settings = Settings::from_site(&r)?;
    let mut work = Vec::new();
    for node in &exp.nodes {
        let w = match bmc_spec(&r, node)? {
            Ok(spec) => Work::Bmc(spec),
            Err(e) => Work::Done(Err(e)),
        };
        work.push((node.clone(), w));
    }
    bmc::run(&settings, work, job, |node, res| match res {
        Ok(lines) => {
            use std::io::Write;
            let mut out = super::stdout();
            for l in lines {
                let _ = writeln!(out, "{node}: {l}");
            }
        }
        Err(e) => {
            crate::outln!("{node}: Error: {e}");
            failed = true;
        }
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// rinv's item types, and what each request word selects (ipmi.pm `inv`).
const RINV_WORDS: &[(&str, &[&str])] = &[
    (
        "all",
        &[
            "model", "serial", "deviceid", "mprom", "guid", "misc", "asset", "firmware", "mac",
        ],
    ),
    ("model", &["model"]),
    ("serial", &["serial"]),
    ("asset", &["asset"]),
    ("firm", &["firmware"]),
    ("firmware", &["firmware"]),
    ("mprom", &["mprom"]),
    ("deviceid", &["deviceid"]),
    ("guid", &["guid"]),
    ("uuid", &["guid"]),
    ("misc", &["misc"]),
    ("mac", &["mac"]),
    ("vpd", &["model", "serial", "deviceid", "mprom"]),
];

pub fn rinv(db: &DbOpt, a: RinvArgs) -> anyhow::Result<ExitCode> {
    let mut wanted: Vec<&'static str> = Vec::new();
    let words: Vec<&str> = if a.what.is_empty() {
        vec!["all"]
    } else {
        a.what.iter().flat_map(|w| w.split(',')).collect()
    };
    for w in words {
        let Some((_, types)) = RINV_WORDS.iter().find(|(k, _)| *k == w) else {
            bail!(
                "'{w}' is not an rinv item ({})",
                RINV_WORDS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        wanted.extend_from_slice(types);
    }
    let wanted = std::sync::Arc::new(wanted);
    per_node(db, &a.noderange, move |t| {
        let wanted = wanted.clone();
        async move {
            let mut s = Session::open(&t).await?;
            let r = inventory(&mut s, &wanted).await;
            s.close().await;
            r
        }
    })
}

/// One inventory item: the types it answers to, its label, its value.
type Item = (&'static [&'static str], &'static str, String);

async fn inventory(s: &mut Session, wanted: &[&str]) -> Result<Vec<String>, IpmiError> {
    let wants = |types: &[&str]| types.iter().any(|t| wanted.contains(t));
    let mut items: Vec<Item> = Vec::new();
    let dev = commands::device_id(s).await?;
    let mfg = match commands::manufacturer_name(dev.manufacturer) {
        Some(n) => format!("{n} ({})", dev.manufacturer),
        None => dev.manufacturer.to_string(),
    };
    items.push((&["deviceid"], "Manufacturer ID", mfg));
    items.push((&["deviceid"], "Product ID", dev.product.to_string()));
    items.push((&["deviceid"], "Device ID", dev.device_id.to_string()));
    if wants(&["guid"]) {
        // Many BMCs have no system GUID; that is not an inventory failure.
        if let Ok(g) = commands::system_guid(s).await {
            items.push((&["guid"], "UUID/GUID", g));
        }
    }
    items.push((&["mprom", "firmware"], "BMC Firmware", dev.firmware()));
    if wants(&["model", "serial", "asset", "misc", "mac"]) {
        if let Some(bytes) = fru::read(s, 0).await? {
            let f = fru::parse(&bytes).map_err(|e| IpmiError::Malformed(e.to_string()))?;
            fru_items(&f, &mut items);
        }
    }
    Ok(items
        .into_iter()
        .filter(|(types, _, _)| wants(types))
        .map(|(_, desc, value)| format!("{:<20} {value}", format!("{desc}:")))
        .collect())
}

fn fru_items(f: &fru::Fru, items: &mut Vec<Item>) {
    let mut add = |types: &'static [&'static str], desc: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            items.push((types, desc, v.clone()));
        }
    };
    if let Some(p) = &f.product {
        add(&["misc"], "System Manufacturer", &p.manufacturer);
        add(&["model"], "System Description", &p.name);
        add(&["model"], "System Model/MTM", &p.part_number);
        add(&["misc"], "System Revision", &p.version);
        add(&["serial"], "System Serial Number", &p.serial_number);
        add(&["asset"], "System Asset Number", &p.asset_tag);
        for e in &p.extra {
            add(&["misc"], "Product Extra data", &Some(e.clone()));
        }
    }
    if let Some(c) = &f.chassis {
        add(&["serial"], "Chassis Serial Number", &c.serial_number);
        add(&["model"], "Chassis Part Number", &c.part_number);
        for e in &c.extra {
            add(&["misc"], "Chassis Extra data", &Some(e.clone()));
        }
    }
    if let Some(b) = &f.board {
        add(&["misc"], "Board manufacture date", &b.mfg_date());
        add(&["misc"], "Board manufacturer", &b.manufacturer);
        add(&["misc"], "Board Description", &b.product);
        add(&["misc"], "Board Serial Number", &b.serial_number);
        add(&["misc"], "Board Model Number", &b.part_number);
        for e in &b.extra {
            add(&["misc"], "Board Extra data", &Some(e.clone()));
        }
    }
}

/// Which sensors an rvitals run shows.
#[derive(Debug, Clone, Default)]
struct VitalsFilter {
    all: bool,
    types: Vec<u8>,
    watts: bool,
    power_state: bool,
}

impl VitalsFilter {
    fn shows(&self, rec: &sdr::SensorRecord) -> bool {
        self.all
            || (rec.record_type == 1 && self.types.contains(&rec.sensor_type))
            || (self.watts && rec.base_unit == sdr::UNIT_WATTS)
    }
}

pub fn rvitals(db: &DbOpt, a: RvitalsArgs) -> anyhow::Result<ExitCode> {
    let mut f = VitalsFilter::default();
    let words: Vec<&str> = if a.what.is_empty() {
        vec!["all"]
    } else {
        a.what.iter().flat_map(|w| w.split(',')).collect()
    };
    for w in words {
        match w {
            "all" => {
                f.all = true;
                f.power_state = true;
            }
            "temp" => f.types.push(sdr::TYPE_TEMPERATURE),
            "voltage" => f.types.push(sdr::TYPE_VOLTAGE),
            "fanspeed" => f.types.push(sdr::TYPE_FAN),
            "wattage" => f.watts = true,
            "power" => {
                f.types.push(sdr::TYPE_CURRENT);
                f.watts = true;
                f.power_state = true;
            }
            other => bail!(
                "'{other}' is not an rvitals item (all, temp, voltage, fanspeed, power, wattage)"
            ),
        }
    }
    let f = std::sync::Arc::new(f);
    per_node(db, &a.noderange, move |t| {
        let f = f.clone();
        async move {
            let mut s = Session::open(&t).await?;
            let r = vitals(&mut s, &f).await;
            s.close().await;
            r
        }
    })
}

async fn vitals(s: &mut Session, f: &VitalsFilter) -> Result<Vec<String>, IpmiError> {
    let mut lines = Vec::new();
    // xCAT puts the chassis lines first for "all" and the power state last for "power".
    let power_line = |on: bool| format!("Power Status: {}", if on { "on" } else { "off" });
    if f.all && f.power_state {
        lines.push(power_line(commands::power_is_on(s).await?));
    }
    let mut sensors = Vec::new();
    for raw in sdr::read_repository(s).await? {
        if let Some(rec) = sdr::parse_record(&raw)? {
            if f.shows(&rec) {
                sensors.push(rec);
            }
        }
    }
    // ipmi.pm sorts by the sensor's name.
    sensors.sort_by(|a, b| a.name.cmp(&b.name));
    for rec in &sensors {
        let value = match sdr::read_sensor(s, rec).await {
            Ok(rd) => format_reading(rec, &rd),
            // A sensor the BMC will not read (0xCB "not present" and the like) is shown as
            // such, as xCAT does; the other sensors still print.
            Err(IpmiError::Completion { code, .. }) => {
                format!("N/A ({})", crate::power::ipmi::wire::completion_name(code))
            }
            Err(e) => return Err(e),
        };
        lines.push(format!("{:<30} {value}", format!("{}:", rec.name)));
    }
    if !f.all && f.power_state {
        lines.push(power_line(commands::power_is_on(s).await?));
    }
    Ok(lines)
}

/// A reading as xCAT words it: value, unit, with °F for °C and BTU/h for watts.
pub fn format_reading(rec: &sdr::SensorRecord, rd: &sdr::Reading) -> String {
    if !rd.valid() {
        return "N/A".into();
    }
    if !rec.is_analog() {
        return format!("0x{:04x}", rd.state);
    }
    let v = rec.convert(rd.raw);
    let num = format_number(v);
    // Perl's int(x + .5), as ipmi.pm rounds its companion units.
    let round = |x: f64| (x + 0.5).trunc() as i64;
    let pct = if rec.units1 & 1 == 1 { "% " } else { "" };
    match rec.unit() {
        "C" => format!("{num} C ({} F)", round(v * 9.0 / 5.0 + 32.0)),
        "F" => format!("{num} F ({} C)", round((v - 32.0) * 5.0 / 9.0)),
        "Watts" => format!("{num} Watts ({} BTUs/hr)", round(v * 3.413)),
        "" => format!("{num}{}", pct.trim_end()),
        u => format!("{num} {pct}{u}"),
    }
}

/// Integers without a decimal point, others with up to three decimals.
fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(unit: u8, m: i16, r_exp: i8) -> sdr::SensorRecord {
        sdr::SensorRecord {
            record_id: 1,
            record_type: 1,
            owner: 0x20,
            lun: 0,
            number: 1,
            sensor_type: 1,
            event_type: 1,
            units1: 0,
            base_unit: unit,
            linearization: 0,
            m,
            b: 0,
            b_exp: 0,
            r_exp,
            name: "x".into(),
        }
    }

    #[test]
    fn readings_as_xcat_prints_them() {
        let ok = |raw| sdr::Reading {
            raw,
            unavailable: false,
            scanning: true,
            state: 0,
        };
        assert_eq!(format_reading(&rec(1, 1, 0), &ok(45)), "45 C (113 F)");
        assert_eq!(format_reading(&rec(4, 6, -2), &ok(201)), "12.06 Volts");
        assert_eq!(format_reading(&rec(18, 50, 0), &ok(90)), "4500 RPM");
        assert_eq!(
            format_reading(&rec(6, 2, 0), &ok(100)),
            "200 Watts (683 BTUs/hr)"
        );
        let mut neg = rec(1, 1, 0);
        neg.units1 = 0x80;
        assert_eq!(format_reading(&neg, &ok(0xfb)), "-5 C (23 F)");
        let na = sdr::Reading {
            unavailable: true,
            ..ok(0)
        };
        assert_eq!(format_reading(&rec(1, 1, 0), &na), "N/A");
    }
}
