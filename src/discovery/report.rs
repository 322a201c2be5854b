//! What an unknown machine reports about itself (xCAT's `findme`), as a pure codec.
//!
//! Two encodings are accepted:
//! * bootherd's genesis posts `key=value` lines over HTTP (`mac=` repeated, one per NIC);
//! * xCAT's genesis sends XML (`<xcatrequest><command>findme</command>…`), gzipped or not, by
//!   UDP to port 3001 — the same fields as elements.
//!
//! NIC entries are `driver|ifname|MAC|ip/prefix` in both (xCAT's `<mac>` form); the address part
//! is empty for a NIC that is down or has no lease.

use std::io::Read;

/// One network interface of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nic {
    pub driver: String,
    pub ifname: String,
    /// Lower-case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// `a.b.c.d/prefix`, if it has one.
    pub ip: Option<String>,
}

/// A findme report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub uuid: String,
    pub arch: String,
    pub mtm: String,
    pub serial: String,
    pub cpucount: String,
    pub cputype: String,
    pub memory: String,
    pub disksize: String,
    pub nodetype: String,
    pub bmc: String,
    pub bmcmac: String,
    pub nics: Vec<Nic>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("the report is not a findme: {0}")]
    NotFindme(String),
    #[error("the report names no network interface with a MAC address")]
    NoMac,
    #[error("the report is too large or not text")]
    Garbled,
}

/// Normalises a MAC (`52-54-00-AA-BB-CC`, `5254.00aa.bbcc`, …) to `52:54:00:aa:bb:cc`.
pub fn norm_mac(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12
        || s.chars()
            .any(|c| !(c.is_ascii_hexdigit() || ":-.".contains(c)))
    {
        return None;
    }
    let b = hex.to_ascii_lowercase();
    Some(
        (0..6)
            .filter_map(|i| b.get(i * 2..i * 2 + 2))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

fn nic(v: &str) -> Option<Nic> {
    let parts: Vec<&str> = v.trim().split('|').collect();
    match parts.as_slice() {
        [driver, ifname, mac, rest @ ..] => Some(Nic {
            driver: driver.trim().to_string(),
            ifname: ifname.trim().to_string(),
            mac: norm_mac(mac.trim())?,
            ip: rest
                .first()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        }),
        [mac] => Some(Nic {
            mac: norm_mac(mac.trim())?,
            ..Nic::default()
        }),
        _ => None,
    }
}

impl Report {
    fn set(&mut self, key: &str, value: &str) {
        let v = value.trim().to_string();
        match key {
            "uuid" => self.uuid = v.to_ascii_lowercase(),
            "arch" => self.arch = v,
            "mtm" => self.mtm = v,
            "serial" => self.serial = v,
            "cpucount" => self.cpucount = v,
            "cputype" => self.cputype = v,
            "memory" => self.memory = v,
            "disksize" => self.disksize = v,
            "nodetype" => self.nodetype = v,
            "bmc" => self.bmc = v,
            "bmcmac" => self.bmcmac = norm_mac(&v).unwrap_or(v),
            "mac" => {
                if let Some(n) = nic(&v) {
                    if !self.nics.iter().any(|x| x.mac == n.mac) {
                        self.nics.push(n);
                    }
                }
            }
            _ => {}
        }
    }

    /// Parses either encoding (gzip is undone first).
    pub fn parse(bytes: &[u8]) -> Result<Report, ReportError> {
        const MAX: u64 = 1 << 20;
        let owned;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .take(MAX)
                .read_to_end(&mut out)
                .map_err(|_| ReportError::Garbled)?;
            owned = out;
            &owned[..]
        } else {
            bytes
        };
        let text = std::str::from_utf8(bytes).map_err(|_| ReportError::Garbled)?;
        let mut r = Report::default();
        if text.trim_start().starts_with('<') {
            // Compiled once: a findme flood must not pay for it per report.
            static ELEMENT: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
            let re = ELEMENT
                .get_or_init(|| {
                    regex::Regex::new(r"<([A-Za-z0-9_]+)>([^<]*)</([A-Za-z0-9_]+)>").ok()
                })
                .as_ref()
                .ok_or(ReportError::Garbled)?;
            let mut command = None;
            for c in re.captures_iter(text) {
                let (Some(open), Some(val), Some(close)) = (c.get(1), c.get(2), c.get(3)) else {
                    continue;
                };
                if open.as_str() != close.as_str() {
                    continue;
                }
                let v = xml_unescape(val.as_str());
                if open.as_str() == "command" {
                    command = Some(v.clone());
                }
                r.set(open.as_str(), &v);
            }
            if command.as_deref() != Some("findme") {
                return Err(ReportError::NotFindme(format!(
                    "command is {}",
                    command.unwrap_or_else(|| "missing".into())
                )));
            }
        } else {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    r.set(k.trim(), v);
                }
            }
        }
        if r.nics.is_empty() {
            return Err(ReportError::NoMac);
        }
        if r.uuid.is_empty() {
            // No SMBIOS UUID (xCAT uses mtm-serial-mac on such machines).
            let mac = r
                .nics
                .first()
                .map(|n| n.mac.replace(':', ""))
                .unwrap_or_default();
            r.uuid = format!("{}-{}-{}", r.mtm, r.serial, mac);
        }
        Ok(r)
    }

    /// The NIC with an address (the one the machine booted from), else the first.
    pub fn boot_nic(&self) -> Option<&Nic> {
        self.nics
            .iter()
            .find(|n| n.ip.is_some())
            .or(self.nics.first())
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reports_parse() {
        let r = Report::parse(
            b"uuid=4C4C4544-0036-3010-8030-B4C04F4E3232\narch=x86_64\nmtm=7X06CTO1WW\nserial=J300ABCD\n\
              mac=virtio_net|eth0|52:54:00:12:34:56|10.0.0.101/24\nmac=e1000|eth1|52-54-00-AB-CD-EF|\nnoise\n",
        )
        .expect("parse");
        assert_eq!(r.uuid, "4c4c4544-0036-3010-8030-b4c04f4e3232");
        assert_eq!(r.nics.len(), 2);
        assert_eq!(r.nics[1].mac, "52:54:00:ab:cd:ef");
        assert_eq!(r.nics[1].ip, None);
        assert_eq!(r.boot_nic().map(|n| n.ifname.as_str()), Some("eth0"));
    }

    #[test]
    fn xcat_xml_parses_gzipped_or_not() {
        let xml =
            "<xcatrequest><command>findme</command><sequential>1</sequential><arch>x86_64</arch>\
                   <mtm>8335-GTB</mtm><serial>1234</serial><uuid>ABC</uuid>\
                   <mac>mlx5_core|enP1p1s0|98:be:94:00:00:01|10.1.0.5/16</mac></xcatrequest>";
        let r = Report::parse(xml.as_bytes()).expect("xml");
        assert_eq!(
            (r.mtm.as_str(), r.nics[0].mac.as_str()),
            ("8335-GTB", "98:be:94:00:00:01")
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, xml.as_bytes()).expect("gz");
        let z = gz.finish().expect("gz");
        assert_eq!(Report::parse(&z).expect("gz xml"), r);
    }

    #[test]
    fn bad_reports_are_errors() {
        assert_eq!(Report::parse(b"arch=x86_64\n"), Err(ReportError::NoMac));
        assert!(matches!(
            Report::parse(b"<xcatrequest><command>rpower</command><mac>a|b|52:54:00:00:00:01|</mac></xcatrequest>"),
            Err(ReportError::NotFindme(_))
        ));
        assert_eq!(
            Report::parse(&[0xff, 0xfe, 0x00]),
            Err(ReportError::Garbled)
        );
        assert_eq!(
            Report::parse(&[0x1f, 0x8b, 1, 2, 3]),
            Err(ReportError::Garbled)
        );
        assert_eq!(norm_mac("52:54:00:zz:00:01"), None);
        assert_eq!(
            norm_mac("5254.00aa.bbcc").as_deref(),
            Some("52:54:00:aa:bb:cc")
        );
    }

    #[test]
    fn no_uuid_falls_back_to_mtm_serial_mac() {
        let r = Report::parse(b"mtm=M\nserial=S\nmac=d|eth0|52:54:00:00:00:09|\n").expect("parse");
        assert_eq!(r.uuid, "M-S-525400000009");
    }
}
