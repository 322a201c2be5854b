//! DHCPv4: answers nodes from the table store, chooses PXE boot files, keeps leases durable.
//!
//! Rooms: [`packet`] (the wire codec, pure), [`bootfile`] (which boot file, pure), [`config`]
//! (the view built from the tables), [`keeper`] (keeps it current), [`leases`] (book and durable
//! writes), [`mmsg`] (batched socket I/O), [`server`] (the receive–decide–commit–send loop), [`omapi`].

pub mod bootfile;
pub mod config;
pub mod keeper;
pub mod leases;
pub mod mmsg;
pub mod omapi;
pub mod packet;
pub mod server;
