//! The chassis and application commands rpower, rsetboot and rinv need, as typed calls over a
//! [`Session`], with their request/response bytes decoded by pure functions (tested, fuzzed).

use std::fmt;

use super::{IpmiError, Session};

const NETFN_CHASSIS: u8 = 0x00;
const NETFN_APP: u8 = 0x06;

/// Chassis Control (netfn 0, cmd 2) actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChassisControl {
    Off = 0,
    On = 1,
    Cycle = 2,
    Reset = 3,
    Nmi = 4,
    SoftOff = 5,
}

/// Get Chassis Status: is the system power on? (bit 0 of the first data byte)
pub async fn power_is_on(s: &mut Session) -> Result<bool, IpmiError> {
    let d = s.request(NETFN_CHASSIS, 0x01, &[]).await?;
    parse_chassis_status(&d)
}

pub fn parse_chassis_status(d: &[u8]) -> Result<bool, IpmiError> {
    let b = d
        .first()
        .ok_or_else(|| IpmiError::Malformed("empty Get Chassis Status reply".into()))?;
    Ok(b & 1 == 1)
}

pub async fn chassis_control(s: &mut Session, c: ChassisControl) -> Result<(), IpmiError> {
    s.request(NETFN_CHASSIS, 0x02, &[c as u8]).await.map(|_| ())
}

/// Boot devices of boot flags parameter 5 (IPMI 2.0 table 28-14, data byte 2 bits 5:2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    /// No override: the BIOS's own order.
    Default,
    Net,
    Hd,
    Cd,
    Setup,
    Floppy,
}

impl BootDevice {
    /// Data byte 2 of parameter 5 (device selector in bits 5:2).
    pub fn selector(self) -> u8 {
        match self {
            BootDevice::Default => 0x00,
            BootDevice::Net => 0x04,
            BootDevice::Hd => 0x08,
            BootDevice::Cd => 0x14,
            BootDevice::Setup => 0x18,
            BootDevice::Floppy => 0x3c,
        }
    }

    pub fn parse(s: &str) -> Option<BootDevice> {
        Some(match s {
            "net" => BootDevice::Net,
            "hd" => BootDevice::Hd,
            "cd" => BootDevice::Cd,
            "setup" => BootDevice::Setup,
            "floppy" => BootDevice::Floppy,
            d if d.starts_with("def") => BootDevice::Default,
            _ => return None,
        })
    }
}

/// The boot flags read back (parameter 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOverride {
    /// Bit 7 of data 1: the flags are valid, i.e. an override is set.
    pub valid: bool,
    pub persistent: bool,
    pub uefi: bool,
    /// Bits 5:2 of data 2, shifted down.
    pub device: u8,
}

impl fmt::Display for BootOverride {
    /// xCAT's words (ipmi.pm `setboot_gotstat`). xCAT reports "boot override inactive" whenever
    /// the valid bit is clear; some BMCs (ipmi_sim) keep the device but never the bit, so a
    /// device without it is named, with the fact said.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.valid {
            if self.device == 0 {
                return f.write_str("boot override inactive");
            }
            let dev = BootOverride {
                valid: true,
                ..*self
            };
            return write!(f, "{dev} (boot flags not marked valid)");
        }
        match self.device {
            0 => f.write_str("BIOS default"),
            1 => f.write_str("Network"),
            2 => f.write_str("Hard Drive"),
            5 => f.write_str("CD/DVD"),
            6 => f.write_str("BIOS Setup"),
            15 => f.write_str("Floppy"),
            d => write!(f, "boot device {d:#x}"),
        }
    }
}

/// Set System Boot Options the way xCAT does (xcat.md §11): stop the 60-second auto-clear
/// (param 3), "set in progress" (param 0 = 1), the flags (param 5), "set complete" (param 0 =
/// 0). `Default` clears the override (all zero flags).
///
/// Params 3 and 0 are best effort: plenty of BMCs have no auto-clear timer or no set-in-progress
/// lock (ipmi_sim answers 0xCC to param 0), and the flags still take. Only param 5 must succeed.
pub async fn set_boot_device(
    s: &mut Session,
    dev: BootDevice,
    persistent: bool,
    uefi: bool,
) -> Result<(), IpmiError> {
    let optional = |r: Result<Vec<u8>, IpmiError>| match r {
        Ok(_) => Ok(true),
        Err(e) if e.completion().is_some() => Ok(false),
        Err(e) => Err(e),
    };
    optional(s.request(NETFN_CHASSIS, 0x08, &[0x03, 0x08]).await)?;
    let locked = optional(s.request(NETFN_CHASSIS, 0x08, &[0x00, 0x01]).await)?;
    s.request(
        NETFN_CHASSIS,
        0x08,
        &boot_flags_request(dev, persistent, uefi),
    )
    .await?;
    if locked {
        s.request(NETFN_CHASSIS, 0x08, &[0x00, 0x00]).await?;
    }
    Ok(())
}

/// Parameter 5's Set request: [5, flags, device, 0, 0, 0].
pub fn boot_flags_request(dev: BootDevice, persistent: bool, uefi: bool) -> [u8; 6] {
    if dev == BootDevice::Default {
        return [0x05, 0, 0, 0, 0, 0];
    }
    let flags = 0x80 | (u8::from(persistent) << 6) | (u8::from(uefi) << 5);
    [0x05, flags, dev.selector(), 0, 0, 0]
}

/// Get System Boot Options, parameter 5.
pub async fn get_boot_device(s: &mut Session) -> Result<BootOverride, IpmiError> {
    let d = s.request(NETFN_CHASSIS, 0x09, &[0x05, 0x00, 0x00]).await?;
    parse_boot_flags(&d)
}

/// Reply: [parameter version, parameter 5 (valid bit 7), data 1, data 2, …].
pub fn parse_boot_flags(d: &[u8]) -> Result<BootOverride, IpmiError> {
    if d.len() < 4 {
        return Err(IpmiError::Malformed(format!(
            "Get System Boot Options reply has {} bytes, not 7",
            d.len()
        )));
    }
    let (b1, b2) = (d[2], d[3]);
    Ok(BootOverride {
        valid: b1 & 0x80 != 0,
        persistent: b1 & 0x40 != 0,
        uefi: b1 & 0x20 != 0,
        device: (b2 & 0x3c) >> 2,
    })
}

/// Get Device ID (App 0x01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub device_id: u8,
    pub device_revision: u8,
    pub firmware_major: u8,
    /// BCD, as sent.
    pub firmware_minor: u8,
    pub ipmi_version: u8,
    pub support: u8,
    pub manufacturer: u32,
    pub product: u16,
}

impl DeviceId {
    /// "9.08": major in decimal, minor as its two BCD digits (xCAT's "BMC Firmware").
    pub fn firmware(&self) -> String {
        format!(
            "{}.{}{}",
            self.firmware_major & 0x7f,
            self.firmware_minor >> 4,
            self.firmware_minor & 0x0f
        )
    }
}

pub async fn device_id(s: &mut Session) -> Result<DeviceId, IpmiError> {
    let d = s.request(NETFN_APP, 0x01, &[]).await?;
    parse_device_id(&d)
}

pub fn parse_device_id(d: &[u8]) -> Result<DeviceId, IpmiError> {
    if d.len() < 11 {
        return Err(IpmiError::Malformed(format!(
            "Get Device ID reply has {} bytes, not 11",
            d.len()
        )));
    }
    Ok(DeviceId {
        device_id: d[0],
        device_revision: d[1] & 0x0f,
        firmware_major: d[2] & 0x7f,
        firmware_minor: d[3],
        ipmi_version: d[4],
        support: d[5],
        manufacturer: u32::from_le_bytes([d[6], d[7], d[8] & 0x0f, 0]),
        product: u16::from_le_bytes([d[9], d[10]]),
    })
}

/// Get System GUID (App 0x37), formatted as xCAT prints it: the first three fields are stored
/// little-endian (SMBIOS order), so they are byte-swapped into the usual text form.
pub async fn system_guid(s: &mut Session) -> Result<String, IpmiError> {
    let d = s.request(NETFN_APP, 0x37, &[]).await?;
    format_guid(&d)
}

pub fn format_guid(d: &[u8]) -> Result<String, IpmiError> {
    let g: [u8; 16] = d
        .get(..16)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| IpmiError::Malformed("Get System GUID reply is short".into()))?;
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut out = String::with_capacity(36);
    for (i, &k) in order.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{:02X}", g[k]));
    }
    Ok(out)
}

/// A few manufacturer IDs (IANA enterprise numbers), for rinv's "Manufacturer ID".
pub fn manufacturer_name(id: u32) -> Option<&'static str> {
    Some(match id {
        2 => "IBM",
        11 => "HP",
        343 => "Intel",
        674 => "Dell",
        4753 => "MontaVista",
        10876 => "Supermicro",
        19046 => "Lenovo",
        20301 => "IBM",
        47196 => "Lenovo",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_flags_match_xcat() {
        assert_eq!(
            boot_flags_request(BootDevice::Net, false, false),
            [5, 0x80, 0x04, 0, 0, 0]
        );
        assert_eq!(
            boot_flags_request(BootDevice::Hd, true, true),
            [5, 0xe0, 0x08, 0, 0, 0]
        );
        assert_eq!(
            boot_flags_request(BootDevice::Default, true, false),
            [5, 0, 0, 0, 0, 0]
        );
        let got = parse_boot_flags(&[1, 5, 0x80, 0x04, 0, 0, 0]).expect("flags");
        assert_eq!(got.to_string(), "Network");
        let got = parse_boot_flags(&[1, 5, 0x00, 0x00, 0, 0, 0]).expect("flags");
        assert_eq!(got.to_string(), "boot override inactive");
        let got = parse_boot_flags(&[1, 5, 0x00, 0x04, 0, 0, 0]).expect("flags");
        assert_eq!(got.to_string(), "Network (boot flags not marked valid)");
        assert_eq!(
            parse_boot_flags(&[1, 5, 0xc0, 0x14])
                .expect("f")
                .to_string(),
            "CD/DVD"
        );
        assert!(parse_boot_flags(&[1]).is_err());
    }

    #[test]
    fn device_id_and_guid() {
        // ipmi_sim's "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02".
        let d = parse_device_id(&[0, 0x23, 9, 0x08, 0x02, 0x9f, 0x91, 0x12, 0, 0x02, 0x0f])
            .expect("devid");
        assert_eq!(d.firmware(), "9.08");
        assert_eq!(
            (d.manufacturer, d.product, d.device_revision),
            (4753, 3842, 3)
        );
        assert!(parse_device_id(&[0; 10]).is_err());
        let g: Vec<u8> = (0..16).collect();
        assert_eq!(
            format_guid(&g).expect("guid"),
            "03020100-0504-0706-0809-0A0B0C0D0E0F"
        );
    }
}
