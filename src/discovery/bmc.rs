//! What a node's BMC should be set to (xCAT's getbmcconfig, reference §6): address, netmask and
//! gateway (from the `networks` row holding the address), VLAN, port selection, user and
//! password. Given only to the node itself while its current step is `runcmd=bmcsetup`.

use std::io::Read;
use std::net::Ipv4Addr;

use crate::store::resolver::Resolver;
use crate::store::Store;

/// The BMC address: `ipmi.bmc` when it is an address; else the hosts entry for that name, or
/// the node's `hosts.otherinterfaces` entry for it.
pub fn bmc_address(r: &Resolver, node: &str) -> Result<Option<Ipv4Addr>, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let Some(bmc) = r
        .attr(node, "ipmi", "bmc")
        .map_err(e)?
        .filter(|b| !b.trim().is_empty())
    else {
        return Ok(None);
    };
    let bmc = bmc.trim();
    let host = bmc.split(':').next().unwrap_or(bmc);
    if let Ok(ip) = host.parse() {
        return Ok(Some(ip));
    }
    if let Some(ip) = r
        .attr(host, "hosts", "ip")
        .map_err(e)?
        .and_then(|s| s.trim().parse().ok())
    {
        return Ok(Some(ip));
    }
    let other = r
        .attr(node, "hosts", "otherinterfaces")
        .map_err(e)?
        .unwrap_or_default();
    Ok(other.split(',').find_map(|p| {
        let (name, ip) = p.trim().rsplit_once(':')?;
        (name == host).then(|| ip.trim().parse().ok()).flatten()
    }))
}

fn random_password() -> Result<String, String> {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("no random source: {e}"))?;
    Ok(b.iter()
        .map(|x| char::from(CHARS[usize::from(*x) % CHARS.len()]))
        .collect())
}

/// The settings as `key=value` lines, or why they are refused.
pub fn settings(store: &Store, r: &Resolver, node: &str) -> Result<String, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let cs = r
        .attr(node, "chain", "currstate")
        .map_err(e)?
        .unwrap_or_default();
    if cs.trim() != "runcmd=bmcsetup" {
        return Err(format!(
            "{node} is not in its bmcsetup step (current step: '{}')",
            cs.trim()
        ));
    }
    let ip =
        bmc_address(r, node)?.ok_or_else(|| format!("{node} has no BMC address (ipmi.bmc)"))?;
    let nets = r.table("networks").map_err(e)?;
    let col = |row: &crate::store::Row, c: &str| {
        nets.spec
            .col_index(c)
            .and_then(|i| row.get(i))
            .cloned()
            .flatten()
            .unwrap_or_default()
    };
    let (mut netmask, mut gateway) = (String::new(), String::new());
    for row in &nets.rows {
        let (Ok(net), Ok(mask)) = (
            col(row, "net").trim().parse::<Ipv4Addr>(),
            col(row, "mask").trim().parse::<Ipv4Addr>(),
        ) else {
            continue;
        };
        if u32::from(ip) & u32::from(mask) == u32::from(net) {
            netmask = mask.to_string();
            gateway = col(row, "gateway").trim().to_string();
            if gateway == "<xcatmaster>" {
                gateway.clear();
            }
            break;
        }
    }
    if netmask.is_empty() {
        return Err(format!("no networks row holds {node}'s BMC address {ip}"));
    }
    let a = |c: &str| r.attr(node, "ipmi", c).map(|v| v.filter(|s| !s.is_empty()));
    let mut user = a("username").map_err(e)?;
    let mut pass = a("password").map_err(e)?;
    if user.is_none() || pass.is_none() {
        let pw = r.table("passwd").map_err(e)?;
        let row = pw.rows_for("ipmi").next().cloned();
        if let Some(row) = row {
            let c = |n: &str| {
                pw.spec
                    .col_index(n)
                    .and_then(|i| row.get(i))
                    .cloned()
                    .flatten()
                    .filter(|s| !s.is_empty())
            };
            user = user.or_else(|| c("username"));
            pass = pass.or_else(|| c("password"));
        }
    }
    let gen = r
        .site("genpasswords")
        .map_err(e)?
        .map(|v| v.trim().to_ascii_lowercase());
    if pass.is_none() && matches!(gen.as_deref(), Some("1" | "yes" | "y" | "true")) {
        let p = random_password()?;
        store
            .write(
                Some(&crate::store::Audit {
                    command: "bmcsetup".into(),
                    noderange: node.into(),
                    args: "generated BMC password".into(),
                }),
                |tx| tx.set("ipmi", &[node], &[("password", Some(&p))]),
            )
            .map_err(|e| e.to_string())?;
        pass = Some(p);
    }
    let (Some(user), Some(pass)) = (user, pass) else {
        return Err(format!("no BMC credentials for {node} (ipmi.username/password, passwd key=ipmi, or site.genpasswords=yes)"));
    };
    let mut out = format!(
        "bmcip={ip}\nnetmask={netmask}\ngateway={gateway}\nusername={user}\npassword={pass}\n"
    );
    if let Some(v) = a("taggedvlan").map_err(e)? {
        out.push_str(&format!("vlan={v}\n"));
    }
    if let Some(p) = a("bmcport").map_err(e)? {
        out.push_str(&format!("bmcport={p}\n"));
    }
    Ok(out)
}
