//! Power control. [`wol`]: Wake-on-LAN magic packets, to the local segment or by directed
//! broadcast into a routed one. IPMI over LAN comes next.

pub mod wol;
