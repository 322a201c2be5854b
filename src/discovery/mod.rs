//! Node discovery: switch-port mapping now; findme, matching and bmcsetup come next.
//!
//! A node that boots unknown is identified by where it is cabled: the `switch` table says which
//! node sits on which switch port, and the switches say (over SNMP) which MACs they learned on
//! which port. The pieces, from pure to I/O:
//!
//! - [`mac`]: the [`MacAddr`] type;
//! - [`portname`]: xCAT's `namesmatch`, does a `switch.port` value name this SNMP interface;
//! - [`fdb`]: walked rows (ifName, dot1dBasePortIfIndex, dot1q/dot1dTpFdbPort) → ports and MACs,
//!   a pure function;
//! - [`snmp`]: one switch polled over SNMP v1/v2c/v3 (async-snmp), with timeouts and retries;
//! - [`switchmap`]: the configuration from the tables, [`SwitchMapper`] (parallel polls, the
//!   per-switch cache with xCAT's 20 s minimum between polls), `locate` and `probe`.

pub mod fdb;
pub mod mac;
pub mod portname;
pub mod snmp;
pub mod switchmap;

pub use mac::MacAddr;
pub use switchmap::{
    config_from_store, Located, MacLocation, MapConfig, Sighting, SwitchConfig, SwitchMapper,
    SwitchReport, Verdict,
};
