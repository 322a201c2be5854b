//! ISC OMAPI, so that omshell, pypureomapi and xCAT's makedhcp drive bootherd as they drove dhcpd.
//! [`statements`] parses and evaluates host `statements`.

pub mod server;
pub mod statements;
pub mod wire;
