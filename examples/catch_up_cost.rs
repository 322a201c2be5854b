//! What read-your-writes costs a request: `Resolver::catch_up` on an idle store, averaged over
//! many calls (the check every DHCP/TFTP/HTTP/NFS answer makes first), and after each of the
//! daemon's own commits (what a DHCP round pays after its leases were committed; the commit
//! itself not counted).
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
    let store = r.store().clone();
    let k = (n / 20).max(1);
    let mut spent = std::time::Duration::ZERO;
    for i in 0..k {
        let ip = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
        store.write(None, |tx| {
            tx.set("dhcpleases", &[&ip], &[("mac", Some("02:00:00:00:00:01"))])
        })?;
        let t = std::time::Instant::now();
        r.catch_up()?;
        spent += t.elapsed();
    }
    println!(
        "catch_up after each own commit of one lease: {:?} per call ({k} commits)",
        spent / k
    );
    Ok(())
}
