//! DHCPv4: answers nodes from the table store, chooses PXE boot files, keeps leases durable.
//!
//! Rooms: [`packet`] (the wire codec, pure), [`bootfile`] (which boot file, pure), more to come
//! (leases, the server loop, OMAPI).

pub mod bootfile;
pub mod config;
pub mod keeper;
pub mod leases;
pub mod omapi;
pub mod packet;
pub mod server;
