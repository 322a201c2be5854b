//! IPMI 2.0 over LAN (RMCP+), our own async client on tokio UDP. This room owns talking to BMCs:
//! [`wire`] (the codec and session crypto, pure), [`session`] (open / request / close with
//! retries), [`commands`] (chassis, boot options, device ID), [`fru`] (inventory), [`sdr`]
//! (sensor records and readings). What to ask which node is the CLI's business
//! (`cli/power.rs`, `cli/inventory.rs`); this module never reads the store.
//!
//! Credentials live in [`Secret`], whose `Debug` and `Display` never show them; no error message
//! carries a user's password.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub mod commands;
pub mod events;
pub mod fru;
pub mod sdr;
pub mod sel;
pub mod session;
pub mod sol;
pub mod wire;

pub use commands::{BootDevice, BootOverride, ChassisControl, DeviceId};
pub use session::Session;
pub use wire::CipherSuite;

/// The UDP port BMCs listen on (RMCP, "asf-rmcp").
pub const DEFAULT_PORT: u16 = 623;

/// A password: shown as `<redacted>` by Debug and Display.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where and how to reach one BMC.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: String,
    pub password: Secret,
    /// Cipher suites to try, in order (see [`Session::open`]).
    pub suites: Vec<CipherSuite>,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times to send each request.
    pub tries: u32,
}

impl Target {
    /// A target with xCAT's defaults: 2 s, 3 tries, suites 17 then 3.
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Target {
        Target {
            addr,
            user: user.to_string(),
            password: Secret::new(password),
            suites: vec![CipherSuite::Suite17, CipherSuite::Suite3],
            timeout: Duration::from_secs(2),
            tries: 3,
        }
    }
}

/// Why talking to a BMC failed, in words an admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum IpmiError {
    #[error("no answer from BMC {bmc} ({tries} tries, {} each)", secs(*.timeout))]
    NoAnswer {
        bmc: SocketAddr,
        tries: u32,
        timeout: Duration,
    },
    #[error("cannot talk to BMC {bmc}: {source}")]
    Io {
        bmc: SocketAddr,
        source: std::io::Error,
    },
    #[error("BMC refused the user name or password ({0})")]
    Credentials(String),
    #[error("BMC refused cipher suite {suite} (Open Session: {status:#04x} {})", wire::rmcp_status(*.status))]
    SuiteRefused { suite: u8, status: u8 },
    #[error("no cipher suite to try")]
    NoSuites,
    #[error("BMC refused the session ({stage}: {status:#04x} {})", wire::rmcp_status(*.status))]
    Refused { stage: &'static str, status: u8 },
    #[error("{} failed: {code:#04x} {}", command_name(*.netfn, *.cmd), wire::completion_name(*.code))]
    Completion { netfn: u8, cmd: u8, code: u8 },
    #[error("malformed reply from BMC: {0}")]
    Malformed(String),
    /// The BMC answered well but not as asked (e.g. a boot device that does not read back).
    #[error("{0}")]
    Unexpected(String),
}

impl IpmiError {
    /// The completion code, when the BMC answered with one.
    pub fn completion(&self) -> Option<u8> {
        match self {
            IpmiError::Completion { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{} s", s as u64)
    } else {
        format!("{s:.1} s")
    }
}

/// The commands we send, by name, for error messages.
pub fn command_name(netfn: u8, cmd: u8) -> String {
    let name = match (netfn, cmd) {
        (0x00, 0x01) => "Get Chassis Status",
        (0x00, 0x02) => "Chassis Control",
        (0x00, 0x04) => "Chassis Identify",
        (0x00, 0x08) => "Set System Boot Options",
        (0x00, 0x09) => "Get System Boot Options",
        (0x04, 0x2d) => "Get Sensor Reading",
        (0x06, 0x01) => "Get Device ID",
        (0x06, 0x02) => "Cold Reset",
        (0x06, 0x37) => "Get System GUID",
        (0x06, 0x3b) => "Set Session Privilege Level",
        (0x06, 0x3c) => "Close Session",
        (0x0a, 0x10) => "Get FRU Inventory Area Info",
        (0x0a, 0x11) => "Read FRU Data",
        (0x0a, 0x22) => "Reserve SDR Repository",
        (0x0a, 0x23) => "Get SDR",
        (0x0a, 0x40) => "Get SEL Info",
        (0x0a, 0x42) => "Reserve SEL",
        (0x0a, 0x43) => "Get SEL Entry",
        (0x0a, 0x47) => "Clear SEL",
        (0x0a, 0x48) => "Get SEL Time",
        _ => return format!("IPMI command {netfn:#04x}/{cmd:#04x}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_errors_never_show_the_password() {
        let t = Target::new(SocketAddr::from(([127, 0, 0, 1], 623)), "admin", "s3cr3t!");
        let dbg = format!("{t:?}");
        assert!(
            !dbg.contains("s3cr3t!") && dbg.contains("<redacted>"),
            "{dbg}"
        );
        let e = IpmiError::NoAnswer {
            bmc: t.addr,
            tries: 3,
            timeout: Duration::from_secs(2),
        };
        assert_eq!(
            e.to_string(),
            "no answer from BMC 127.0.0.1:623 (3 tries, 2 s each)"
        );
        let e = IpmiError::Completion {
            netfn: 0,
            cmd: 2,
            code: 0xd4,
        };
        assert_eq!(
            e.to_string(),
            "Chassis Control failed: 0xd4 insufficient privilege level"
        );
    }
}
