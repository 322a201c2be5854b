//! `makedns`: bootherd serves DNS itself from the tables (`bootherd serve`, `src/dns/`), so there
//! are no zone files to write and no named to restart. The command checks what the service will
//! answer, reports it in xCAT's words (`Handling …`, `Ignoring host …`, `DNS setup is completed`),
//! and keeps xCAT's `-d`: the nodes' records are withdrawn (bootherd's `dnsexcluded` table) until
//! `makedns <node>` or `makedns -n` puts them back. `site.forwarders` is optional: without it,
//! names outside the cluster's zones are refused.

use std::process::ExitCode;

use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::dns::zone;
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct MakednsArgs {
    /// Verbose: the zones and the forwarders
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Start anew: every record `makedns -d` withdrew is served again
    #[arg(short = 'n', long = "new")]
    new: bool,
    /// Withdraw the nodes' records
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// Update an external DNS server (not supported: bootherd serves DNS itself)
    #[arg(short = 'e', long = "external")]
    external: bool,
    /// All nodes (the default)
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// The nodes (default: all)
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

pub fn makedns(db: &DbOpt, a: MakednsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    if a.external {
        crate::errln!("Error: makedns -e (updating an external DNS server) is not supported: bootherd serves the cluster's DNS itself (bootherd serve).");
        return Ok(ExitCode::from(1));
    }
    if a.delete && a.noderange.is_none() {
        crate::errln!("Error: makedns -d without noderange or -a is not supported");
        return Ok(ExitCode::from(1));
    }
    let domain = r.site("domain")?.filter(|d| !d.trim().is_empty());
    let Some(domain) = domain else {
        crate::errln!("Error: domain not defined in site table");
        return Ok(ExitCode::from(1));
    };
    if a.verbose {
        crate::outln!("domain name = {}", domain.trim());
    }
    let (nodes, mut failed) = match &a.noderange {
        Some(range) => {
            let exp = r.noderange(range, true)?;
            let failed = report_missing(&exp.missing);
            (Some(exp.nodes), failed)
        }
        None => (None, false),
    };
    let range = a.noderange.clone().unwrap_or_default();

    if a.delete {
        let nodes = nodes.unwrap_or_default();
        let audit = Audit {
            command: "makedns".into(),
            noderange: range,
            args: "-d".into(),
        };
        let stamp = now();
        store.write(Some(&audit), |tx| {
            for n in &nodes {
                tx.set("dnsexcluded", &[n], &[("removed", Some(&stamp))])?;
            }
            Ok(())
        })?;
        for n in &nodes {
            crate::outln!("Removing {n} from DNS.");
        }
        crate::outln!("DNS setup is completed");
        return Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    // Naming nodes (or -n: all of them) puts back what `makedns -d` withdrew.
    let back: Vec<String> = store
        .rows("dnsexcluded")?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .filter(|n| a.new || nodes.as_ref().is_some_and(|l| l.contains(n)))
        .collect();
    if !back.is_empty() {
        let audit = Audit {
            command: "makedns".into(),
            noderange: range,
            args: if a.new { "-n".into() } else { String::new() },
        };
        store.write(Some(&audit), |tx| {
            for n in &back {
                tx.delete("dnsexcluded", &[n])?;
            }
            Ok(())
        })?;
        r.invalidate("dnsexcluded");
    }

    let view = zone::build(&r, nodes.as_deref())?;
    if a.verbose {
        for z in view.domains.iter().chain(view.reverse.iter()) {
            crate::outln!("zone: {z}");
        }
        match view.forwarders.is_empty() {
            true => {
                crate::outln!("site.forwarders is not set: names outside these zones are refused")
            }
            false => crate::outln!(
                "forwarders = {}",
                view.forwarders
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
    for e in &view.entries {
        crate::outln!("Handling {} in the hosts table.", e.host);
        if a.verbose {
            crate::outln!("{} IN A {}", e.fqdn, e.ip);
            for al in &e.aliases {
                crate::outln!("{al} IN CNAME {}", e.fqdn);
            }
        }
    }
    for h in &view.ignored {
        crate::outln!("Ignoring host {h}, it does not belong to any nets defined in networks table or the net it belongs to is configured to use an external nameserver.");
    }
    if let Some(list) = &nodes {
        let ip = r.column("hosts", "ip")?;
        for n in list {
            if ip.get(n)?.is_none_or(|v| v.trim().is_empty()) {
                crate::errln!("Error: {n}: no hosts.ip; it has no DNS records");
                failed = true;
            }
        }
    }
    for p in &view.problems {
        crate::errln!("Warning: {p}");
    }
    crate::outln!("DNS setup is completed");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
