//! What the IPMI commands (rpower, rsetboot, rinv, rvitals) share: finding each node's BMC and
//! credentials in the store, the site knobs (fan-out, timeout, tries, cipher suites), and the
//! runner that works on many nodes at once.
//!
//! **Where a BMC is.** `ipmi.bmc` is `host`, `host:port`, `[v6addr]:port` or a bare IPv6 address
//! (the first of a comma-separated list, as xCAT takes it). A host name is looked up in the
//! `hosts` table first (`hosts.ip` of that name), then through the system resolver. The UDP port
//! is 623 unless `ipmi.bmc` names one, or `ipmi.bmcport` is a single integer above 1: xCAT uses
//! bmcport for something else (`0`/`1`/`0 2`: shared or dedicated NIC, set by bmcsetup), and
//! those values must keep that meaning.
//!
//! **Credentials.** `ipmi.username`/`ipmi.password`, else the `passwd` row whose key is `ipmi`,
//! else xCAT's built-in `USERID`/`PASSW0RD`. They go into a [`Secret`] and never into output.
//!
//! **Output order.** Nodes are worked on in parallel (a semaphore of `site.powerfanout`, default
//! 64), but each node's lines are printed in noderange order, as soon as it and every node before
//! it are done. xCAT prints in completion order, so admins pipe through `sort`/`xcoll`; a stable
//! order costs nothing at the end of the run and makes output diffable and scripts simpler.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::power::ipmi::{CipherSuite, IpmiError, Secret, Target, DEFAULT_PORT};
use crate::store::resolver::Resolver;

/// Site knobs for talking to BMCs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub fanout: usize,
    pub timeout: Duration,
    pub tries: u32,
    pub suites: Vec<CipherSuite>,
}

/// The default of `site.powerfanout`.
pub const DEFAULT_FANOUT: usize = 64;

impl Settings {
    /// `site.powerfanout` (64), `site.ipmitimeout` (seconds, 2), `site.ipmiretries` (3: how many
    /// times each request is sent, as xCAT counts them), `site.ipmiciphersuites` (bootherd's own:
    /// `17,3` by default; `3` skips the suite-17 attempt on BMCs known not to have it).
    pub fn from_site(r: &Resolver) -> anyhow::Result<Settings> {
        let num = |k: &str| -> anyhow::Result<Option<f64>> {
            match r.site(k)? {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(Some)
                    .ok_or_else(|| anyhow::anyhow!("site.{k} is '{v}', not a positive number")),
            }
        };
        let fanout = num("powerfanout")?
            .map_or(DEFAULT_FANOUT, |x| x as usize)
            .max(1);
        let timeout = Duration::from_secs_f64(num("ipmitimeout")?.unwrap_or(2.0).min(600.0));
        let tries = num("ipmiretries")?.map_or(3, |x| x as u32).clamp(1, 20);
        let suites = match r.site("ipmiciphersuites")? {
            None => vec![CipherSuite::Suite17, CipherSuite::Suite3],
            Some(v) => {
                let mut out = Vec::new();
                for s in v.split([',', ' ']).filter(|s| !s.is_empty()) {
                    let id: u8 = s.parse().unwrap_or(0);
                    let suite = CipherSuite::from_id(id).ok_or_else(|| {
                        anyhow::anyhow!("site.ipmiciphersuites: '{s}' is not a supported cipher suite (3 or 17)")
                    })?;
                    out.push(suite);
                }
                if out.is_empty() {
                    vec![CipherSuite::Suite17, CipherSuite::Suite3]
                } else {
                    out
                }
            }
        };
        Ok(Settings {
            fanout,
            timeout,
            tries,
            suites,
        })
    }
}

/// A node's BMC as the store describes it, before name resolution.
#[derive(Debug, Clone)]
pub struct BmcSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
}

/// `ipmi.bmc` (+ `ipmi.bmcport`) → (host, port). See the module doc for the rules.
pub fn parse_bmc(bmc: &str, bmcport: Option<&str>) -> Result<(String, u16), String> {
    let first = bmc.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return Err("no BMC address (ipmi.bmc is empty)".into());
    }
    let default_port = bmcport
        .map(str::trim)
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 1)
        .unwrap_or(DEFAULT_PORT);
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("'{first}' in ipmi.bmc has a bad port '{p}'"))
    };
    if let Some(rest) = first.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{first}' in ipmi.bmc lacks its ']'"))?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), port(p)?)),
            None if tail.is_empty() => Ok((host.to_string(), default_port)),
            None => Err(format!("'{first}' in ipmi.bmc is not [address]:port")),
        };
    }
    match first.matches(':').count() {
        0 => Ok((first.to_string(), default_port)),
        1 => {
            let (h, p) = first.split_once(':').unwrap_or((first, ""));
            Ok((h.to_string(), port(p)?))
        }
        // More than one colon: a bare IPv6 address.
        _ => Ok((first.to_string(), default_port)),
    }
}

/// The node's BMC and credentials from the store, or the per-node error to print.
pub fn bmc_spec(r: &Resolver, node: &str) -> anyhow::Result<Result<BmcSpec, String>> {
    let bmc = r.attr(node, "ipmi", "bmc")?.unwrap_or_default();
    let bmcport = r.attr(node, "ipmi", "bmcport")?;
    let (mut host, port) = match parse_bmc(&bmc, bmcport.as_deref()) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    if host.parse::<IpAddr>().is_err() {
        if let Some(ip) = r.attr(&host, "hosts", "ip")? {
            let ip = ip.trim();
            if ip.parse::<IpAddr>().is_ok() {
                host = ip.to_string();
            }
        }
    }
    let (mut user, mut password) = (
        r.attr(node, "ipmi", "username")?,
        r.attr(node, "ipmi", "password")?,
    );
    if user.is_none() || password.is_none() {
        let t = r.table("passwd")?;
        let (u, p) = (t.spec.col_index("username"), t.spec.col_index("password"));
        let row = t.rows_for("ipmi").next().cloned();
        if let Some(row) = row {
            let get = |i: Option<usize>| i.and_then(|i| row.get(i)).cloned().flatten();
            user = user.or_else(|| get(u));
            password = password.or_else(|| get(p));
        }
    }
    Ok(Ok(BmcSpec {
        host,
        port,
        user: user.unwrap_or_else(|| "USERID".into()),
        password: Secret::new(password.unwrap_or_else(|| "PASSW0RD".into())),
    }))
}

/// Turns a spec into a target: an address literal as is, a name through the system resolver.
async fn resolve(spec: &BmcSpec, s: &Settings) -> Result<Target, String> {
    let addr = match spec.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, spec.port),
        Err(_) => tokio::net::lookup_host((spec.host.as_str(), spec.port))
            .await
            .map_err(|e| format!("cannot resolve BMC name {}: {e}", spec.host))?
            .next()
            .ok_or_else(|| format!("BMC name {} has no address", spec.host))?,
    };
    Ok(Target {
        addr,
        user: spec.user.clone(),
        password: spec.password.clone(),
        suites: s.suites.clone(),
        timeout: s.timeout,
        tries: s.tries,
    })
}

/// Work for one node: already decided (an error, or a Wake-on-LAN result), or a BMC to talk to.
pub enum Work<R> {
    Done(Result<R, String>),
    Bmc(BmcSpec),
}

/// Runs `job` for every node with a BMC, at most `s.fanout` at once, on one thread (the work
/// is waiting on the network; the crypto is microseconds). `emit` sees every node's result in
/// input order, as soon as it and every node before it are finished.
pub fn run<R, F, Fut>(
    s: &Settings,
    work: Vec<(String, Work<R>)>,
    job: F,
    mut emit: impl FnMut(&str, Result<R, String>),
) -> anyhow::Result<()>
where
    R: Send + 'static,
    F: Fn(Target) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<R, IpmiError>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sem = Arc::new(Semaphore::new(s.fanout));
        let mut set = JoinSet::new();
        let mut ids = HashMap::new();
        let mut names = Vec::with_capacity(work.len());
        let mut slots: Vec<Option<Result<R, String>>> = Vec::with_capacity(work.len());
        for (i, (node, w)) in work.into_iter().enumerate() {
            names.push(node);
            match w {
                Work::Done(r) => slots.push(Some(r)),
                Work::Bmc(spec) => {
                    slots.push(None);
                    let (sem, job, s) = (sem.clone(), job.clone(), s.clone());
                    let h = set.spawn(async move {
                        // The semaphore is never closed, so acquiring only waits.
                        let _permit = sem.acquire_owned().await;
                        match resolve(&spec, &s).await {
                            Ok(t) => job(t).await.map_err(|e| e.to_string()),
                            Err(e) => Err(e),
                        }
                    });
                    ids.insert(h.id(), i);
                }
            }
        }
        let mut next = 0;
        let mut flush = |slots: &mut Vec<Option<Result<R, String>>>, next: &mut usize| {
            while let Some(r) = slots.get_mut(*next).and_then(Option::take) {
                emit(&names[*next], r);
                *next += 1;
            }
        };
        flush(&mut slots, &mut next);
        while let Some(done) = set.join_next_with_id().await {
            let (id, r) = match done {
                Ok((id, r)) => (id, r),
                Err(e) => (e.id(), Err(format!("internal error: {e}"))),
            };
            if let Some(slot) = ids.get(&id).and_then(|i| slots.get_mut(*i)) {
                *slot = Some(r);
            }
            flush(&mut slots, &mut next);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmc_addresses_and_ports() {
        let p = |b: &str, port: Option<&str>| parse_bmc(b, port);
        assert_eq!(p("10.0.1.7", None), Ok(("10.0.1.7".into(), 623)));
        assert_eq!(p("10.0.1.7:16231", None), Ok(("10.0.1.7".into(), 16231)));
        assert_eq!(p("bmc7", Some("16000")), Ok(("bmc7".into(), 16000)));
        // xCAT's own bmcport values select a NIC; they are not ports.
        assert_eq!(p("bmc7", Some("0")), Ok(("bmc7".into(), 623)));
        assert_eq!(p("bmc7", Some("1")), Ok(("bmc7".into(), 623)));
        assert_eq!(p("bmc7", Some("0 2")), Ok(("bmc7".into(), 623)));
        // An explicit port in ipmi.bmc wins.
        assert_eq!(p("bmc7:700", Some("16000")), Ok(("bmc7".into(), 700)));
        assert_eq!(p("[fd00::7]:6230", None), Ok(("fd00::7".into(), 6230)));
        assert_eq!(p("[fd00::7]", None), Ok(("fd00::7".into(), 623)));
        assert_eq!(p("fd00::7", None), Ok(("fd00::7".into(), 623)));
        assert_eq!(p("10.0.1.7,10.0.1.8", None), Ok(("10.0.1.7".into(), 623)));
        assert_eq!(
            p("", None),
            Err("no BMC address (ipmi.bmc is empty)".to_string())
        );
        assert!(p("bmc7:x", None).is_err());
        assert!(p("[fd00::7:623", None).is_err());
    }
}
