//! Questions outside our zones go to `site.forwarders` through hickory's resolver (UDP, then
//! TCP for truncated answers; its cache keeps repeated questions off the forwarders). The
//! resolver is rebuilt when the forwarders change.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::Resolver;

use super::answer::{encode, limit, response_for, Transport};

type Upstream = Resolver<TokioRuntimeProvider>;

/// The resolver for the current forwarders.
#[derive(Default)]
pub struct Forwarder {
    current: Mutex<Option<(Vec<IpAddr>, Arc<Upstream>)>>,
}

impl Forwarder {
    fn upstream(&self, servers: &[IpAddr]) -> Result<Arc<Upstream>, String> {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, r)) = cur.as_ref() {
            if s == servers {
                return Ok(r.clone());
            }
        }
        let config = ResolverConfig::from_parts(
            None,
            vec![],
            servers
                .iter()
                .map(|ip| NameServerConfig::udp_and_tcp(*ip))
                .collect(),
        );
        let mut b = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        let o = b.options_mut();
        o.use_hosts_file = ResolveHosts::Never;
        o.preserve_intermediates = true;
        o.timeout = Duration::from_secs(2);
        o.attempts = 2;
        o.ndots = 0;
        let r = Arc::new(b.build().map_err(|e| e.to_string())?);
        *cur = Some((servers.to_vec(), r.clone()));
        Ok(r)
    }

    /// The encoded answer to `req` (one question, not ours) from `servers`.
    pub async fn answer(&self, servers: &[IpAddr], req: &Message, t: Transport) -> Option<Vec<u8>> {
        let max = limit(req, t);
        let q = req.queries.first()?;
        let mut resp = response_for(req, ResponseCode::NoError);
        resp.metadata.recursion_available = true;
        let upstream = match self.upstream(servers) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("DNS: cannot use site.forwarders: {e}");
                resp.metadata.response_code = ResponseCode::ServFail;
                return encode(&resp, max);
            }
        };
        let mut name = q.name().clone();
        name.set_fqdn(true);
        match upstream.lookup(name, q.query_type()).await {
            Ok(lookup) => {
                resp.answers.extend(lookup.answers().iter().cloned());
                resp.authorities
                    .extend(lookup.authorities().iter().cloned());
            }
            Err(e) => fill_error(&mut resp, e),
        }
        encode(&resp, max)
    }
}

/// NXDOMAIN and NODATA keep their code and SOA; anything else is SERVFAIL.
fn fill_error(resp: &mut Message, e: NetError) {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code, soa, ..
        })) => {
            resp.metadata.response_code = response_code;
            if let Some(soa) = soa {
                resp.authorities.push(soa.into_record_of_rdata());
            }
        }
        other => {
            tracing::debug!("DNS: forwarding failed: {other}");
            resp.metadata.response_code = ResponseCode::ServFail;
        }
    }
}
