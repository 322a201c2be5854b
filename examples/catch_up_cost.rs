//! What read-your-writes costs a request when nothing changed: `Resolver::catch_up` on an idle
//! store, averaged over many calls (the check every DHCP/TFTP/HTTP/NFS answer makes first).
//!
//!     cargo run --release --example catch_up_cost [calls] [store-url]
//!
//! Without a URL the store is a new SQLite file; with `postgres://…` it is that database.
use std::sync::Arc;

use bootherd::store::resolver::Resolver;
use bootherd::store::Store;

fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::args()
        .nth(2)
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("c.db").display()));
    let r = Resolver::new(Arc::new(Store::open(&url)?));
    r.catch_up()?;
    let t = std::time::Instant::now();
    for _ in 0..n {
        r.catch_up()?;
    }
    println!(
        "catch_up with nothing new: {:?} per call ({n} calls)",
        t.elapsed() / n.max(1)
    );
    Ok(())
}
