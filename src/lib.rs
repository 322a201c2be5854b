//! bootherd: a network-boot appliance for clusters.
//!
//! Rooms (see ARCHITECTURE.md): [`store`] holds every fact in xCAT's tables; [`cli`] is the admin
//! commands (multi-call, like busybox); [`daemon`] is `bootherd serve`, which runs the network
//! services and follows the store's change log.

pub mod appliance;
pub mod boot;
pub mod cli;
pub mod daemon;
pub mod dhcp;
pub mod discovery;
pub mod dns;
pub mod http;
pub mod image;
pub mod limits;
pub mod metrics;
pub mod monitor;
pub mod nfs;
pub mod power;
pub mod ra;
pub mod store;
pub mod tftp;
pub mod timeline;
pub mod xcatd;
