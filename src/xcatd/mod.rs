//! xCAT's client/server administration: the request port (TCP 3001, TLS) that xCAT's own client
//! commands and bootherd's CLI (with `XCATHOST`) send requests to. `wire` is the XML codec (pure,
//! fuzzed), `policy` xcatd's `validate` (pure), `pki` the appliance's CA and the per-user client
//! certificates, `auth` passwords and tokens, `server` the listener (authenticate, decide, audit,
//! run the command through [`crate::cli::handle_remote`], stream its output), `client` the remote
//! side of bootherd's own CLI.

pub mod auth;
pub mod client;
pub mod pki;
pub mod policy;
pub mod rest;
pub mod server;
pub mod wire;

/// The TLS implementation: rustls over *ring*. rustls marks *ring* deprecated for lacking
/// post-quantum key exchange; *ring* is kept because AWS-LC (the alternative) is a large C build
/// on every machine that builds bootherd, and the request port serves a management network.
#[allow(deprecated)]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
