//! Node discovery. A machine that boots unknown reports what it is ([`report`], xCAT's findme,
//! over HTTP or xCAT's UDP [`udp`]) and is placed ([`matcher`]: known MAC, switch port, MTM+serial,
//! sequential), everything learnt written in one transaction; [`bmc`] is the BMC settings genesis
//! applies. The HTTP side is `http::discovery`; the commands are `cli/discover.rs` and
//! `cli/switchprobe.rs`.
//!
//! Switch ports: the `switch` table says which node sits on which switch port, and the switches
//! say (over SNMP) which MACs they learned on which port. From pure to I/O:
//!
//! - [`mac`]: the [`MacAddr`] type;
//! - [`portname`]: xCAT's `namesmatch`, does a `switch.port` value name this SNMP interface;
//! - [`fdb`]: walked rows (ifName, dot1dBasePortIfIndex, dot1q/dot1dTpFdbPort) → ports and MACs,
//!   a pure function;
//! - [`snmp`]: one switch polled over SNMP v1/v2c/v3 (async-snmp), with timeouts and retries;
//! - [`switchmap`]: the configuration from the tables, [`SwitchMapper`] (parallel polls, the
//!   per-switch cache with xCAT's 20 s minimum between polls), `locate` and `probe`.

pub mod bmc;
pub mod fdb;
pub mod mac;
pub mod matcher;
pub mod portname;
pub mod ports;
pub mod report;
pub mod snmp;
pub mod switchmap;
pub mod udp;

pub use mac::MacAddr;
pub use switchmap::{
    config_from_store, Located, MacLocation, MapConfig, Sighting, SwitchConfig, SwitchMapper,
    SwitchReport, Verdict,
};
