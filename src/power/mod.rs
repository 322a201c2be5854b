//! Power control. [`wol`]: Wake-on-LAN magic packets, to the local segment or by directed
//! broadcast into a routed one. [`ipmi`]: IPMI 2.0 over LAN (RMCP+) to nodes' BMCs: power,
//! boot device, inventory and sensors.

pub mod ipmi;
pub mod wol;
