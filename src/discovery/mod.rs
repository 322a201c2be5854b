//! Node discovery: what an unknown machine reports ([`report`], xCAT's findme) and which node it
//! is ([`matcher`]: known MAC, switch port, MTM+serial, sequential), written in one transaction.
//! The HTTP side is `http::discovery`; the commands are `cli/discover.rs`.

pub mod bmc;
pub mod matcher;
pub mod report;
pub mod udp;
