//! One switch polled over SNMP: the session (v1/v2c community, or v3 USM) and the walks
//! [`super::fdb`] needs, on async-snmp. GETBULK walks for v2c/v3, GETNEXT for v1 (which has no
//! GETBULK); every request has a timeout and retries, so a dead switch costs
//! `timeout × (retries + 1)` and never more.
//!
//! Walk order and fallbacks follow xCAT's `MacMap.pm`: ifName (ifDescr when ifName is missing or
//! blank), ifMtu (optional), dot1dBasePortIfIndex, dot1qTpFdbPort (dot1dTpFdbPort when the switch
//! has no Q-BRIDGE-MIB), dot1qTpFdbStatus (optional). One switch is walked sequentially, as xCAT
//! and net-snmp do: a switch's SNMP agent runs on a small management CPU, so many switches are
//! polled in parallel ([`super::switchmap`]) rather than one switch many times over.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use async_snmp::{Auth, Client, ErrorKind, Oid, Retry, UsmConfig, Value, WalkOptions};

use super::fdb::{names_usable, Cell, Row, SwitchWalk};

/// ifName (IF-MIB ifXTable).
pub const IF_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
/// ifDescr (IF-MIB ifTable), the fallback for switches without a usable ifName.
pub const IF_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 2];
/// ifMtu (shown by switchprobe).
pub const IF_MTU: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 4];
/// dot1dBasePortIfIndex (BRIDGE-MIB): bridge port → ifIndex.
pub const DOT1D_BASE_PORT_IFINDEX: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 1, 4, 1, 2];
/// dot1qTpFdbPort (Q-BRIDGE-MIB): `<fdbId>.<mac>` → bridge port.
pub const DOT1Q_TP_FDB_PORT: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 2];
/// dot1qTpFdbStatus: `<fdbId>.<mac>` → learned(3), self(4), …
pub const DOT1Q_TP_FDB_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 3];
/// dot1dTpFdbPort (BRIDGE-MIB): `<mac>` → bridge port.
pub const DOT1D_TP_FDB_PORT: &[u32] = &[1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 2];

/// The SNMP version, as `switches.snmpversion` says it (xCAT: anything containing 3 is v3,
/// anything containing 2 is v2c, everything else, and unset, is v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2c,
    V3,
}

impl Version {
    pub fn from_xcat(v: Option<&str>) -> Version {
        match v {
            Some(v) if v.contains('3') => Version::V3,
            Some(v) if v.contains('2') => Version::V2c,
            _ => Version::V1,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "1",
            Version::V2c => "2c",
            Version::V3 => "3",
        })
    }
}

/// SNMPv3 authentication protocol (`switches.auth`; xCAT's default is MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProto {
    Md5,
    Sha,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl AuthProto {
    /// `md5`, `sha`/`sha1`, `sha224`, `sha-256`, … in any case.
    pub fn parse(s: &str) -> Option<AuthProto> {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match k.as_str() {
            "md5" => AuthProto::Md5,
            "sha" | "sha1" => AuthProto::Sha,
            "sha224" => AuthProto::Sha224,
            "sha256" => AuthProto::Sha256,
            "sha384" => AuthProto::Sha384,
            "sha512" => AuthProto::Sha512,
            _ => return None,
        })
    }

    fn lib(self) -> async_snmp::AuthProtocol {
        use async_snmp::AuthProtocol as A;
        match self {
            AuthProto::Md5 => A::Md5,
            AuthProto::Sha => A::Sha1,
            AuthProto::Sha224 => A::Sha224,
            AuthProto::Sha256 => A::Sha256,
            AuthProto::Sha384 => A::Sha384,
            AuthProto::Sha512 => A::Sha512,
        }
    }
}

/// SNMPv3 privacy protocol (`switches.privacy`; unset means authNoPriv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProto {
    Des,
    Aes,
    Aes192,
    Aes256,
}

impl PrivProto {
    /// `des`, `aes`/`aes128`, `aes192`, `aes256`, in any case (net-snmp's names).
    pub fn parse(s: &str) -> Option<PrivProto> {
        let k: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match k.as_str() {
            "des" => PrivProto::Des,
            "aes" | "aes128" => PrivProto::Aes,
            "aes192" => PrivProto::Aes192,
            "aes256" => PrivProto::Aes256,
            _ => return None,
        })
    }

    fn lib(self) -> async_snmp::PrivProtocol {
        use async_snmp::PrivProtocol as P;
        // net-snmp's AES192/AES256 are the Blumenthal key extension (its "AES192C" is Reeder).
        match self {
            PrivProto::Des => P::Des,
            PrivProto::Aes => P::Aes128,
            PrivProto::Aes192 => P::Aes192Blumenthal,
            PrivProto::Aes256 => P::Aes256Blumenthal,
        }
    }
}

/// How to talk to one switch.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub version: Version,
    /// The community (v1/v2c) or the v3 passphrase, used for both authentication and privacy as
    /// xCAT does.
    pub secret: String,
    /// The v3 user name.
    pub username: String,
    pub auth: AuthProto,
    /// `None`: authNoPriv.
    pub privacy: Option<PrivProto>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("version", &self.version)
            .field("secret", &"[REDACTED]")
            .field("username", &self.username)
            .field("auth", &self.auth)
            .field("privacy", &self.privacy)
            .finish()
    }
}

/// Request timing and walk size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times to resend an unanswered request.
    pub retries: u32,
    /// GETBULK max-repetitions (rows per request).
    pub max_repetitions: u32,
}

impl Default for Settings {
    /// 2 s × 3 tries (xCAT has no site key for this; net-snmp's default is 1 s × 6), 25 rows per
    /// GETBULK (net-snmp's snmpbulkwalk asks for 10; 25 keeps responses under a 1500-byte MTU
    /// for FDB rows).
    fn default() -> Settings {
        Settings {
            timeout: Duration::from_secs(2),
            retries: 2,
            max_repetitions: 25,
        }
    }
}

/// The DES salt source shared by every DES session of this process.
///
/// A DES IV is the salt XOR a key-derived pre-IV, so a salt must never repeat under one key.
/// async-snmp makes the salt (boots epoch, counter) and asks for the epoch to be persisted so a
/// restart cannot reuse one. A poller has nowhere natural to persist it; an epoch drawn from the
/// clock and the process id (31 bits) per process makes a repeat as unlikely as net-snmp's
/// random salt start does. (DES is broken anyway; it is here because old switches only do DES.)
fn des_salt_state() -> Result<async_snmp::DesSaltState, String> {
    static STATE: std::sync::OnceLock<Result<async_snmp::DesSaltState, String>> =
        std::sync::OnceLock::new();
    STATE
        .get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let mix = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
            // 1 ..= 2^31 - 2, so that the "restart" to epoch + 1 stays within 2^31 - 1.
            let epoch = (mix % 0x7FFF_FFFE) as u32 + 1;
            let previous =
                async_snmp::PersistedDesSaltState::new(epoch).map_err(|e| e.to_string())?;
            async_snmp::DesSaltState::restart(previous, |_| Ok::<(), std::convert::Infallible>(()))
                .map_err(|e| format!("DES privacy state: {e}"))
        })
        .clone()
}

/// Builds the session for `addr`.
async fn session(addr: SocketAddr, c: &Credentials, s: &Settings) -> Result<Client, String> {
    let auth: Auth = match c.version {
        Version::V1 => Auth::v1(c.secret.as_str()),
        Version::V2c => Auth::v2c(c.secret.as_str()),
        Version::V3 => {
            if c.username.is_empty() {
                return Err("SNMPv3 needs a user name (switches.username)".into());
            }
            let u = UsmConfig::new(c.username.clone().into_bytes());
            let u = match c.privacy {
                Some(p) => u.auth_priv(c.auth.lib(), &c.secret, p.lib(), &c.secret),
                None => u.auth(c.auth.lib(), &c.secret),
            };
            u.map_err(|e| format!("SNMPv3 credentials (switches.password/auth/privacy): {e}"))?
                .into()
        }
    };
    let retry = Retry::fixed(s.retries, Duration::ZERO).map_err(|e| e.to_string())?;
    let walk = WalkOptions {
        max_repetitions: s.max_repetitions.max(1),
        ..WalkOptions::default()
    };
    let mut b = Client::builder(addr, auth);
    if c.version == Version::V3 && c.privacy == Some(PrivProto::Des) {
        b = b.des_salt_state(des_salt_state()?);
    }
    b.request_timeout(s.timeout)
        .retry(retry)
        .walk_options(walk)
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// A walk that failed: whether the switch itself is unreachable or refuses us (fatal for the
/// switch), or only this table is missing or broken (the caller may fall back).
enum WalkFailure {
    Fatal(String),
    Table(String),
}

fn cell(v: &Value) -> Option<Cell> {
    Some(match v {
        Value::Integer(i) => Cell::Int(i64::from(*i)),
        Value::Counter32(u) | Value::Gauge32(u) | Value::UInteger32(u) | Value::TimeTicks(u) => {
            Cell::Int(i64::from(*u))
        }
        Value::Counter64(u) => Cell::Int(i64::try_from(*u).ok()?),
        Value::OctetString(b) | Value::Opaque(b) | Value::Nsap(b) => Cell::Bytes(b.to_vec()),
        v if v.is_exception() => return None,
        _ => Cell::Other,
    })
}

/// Walks one column; rows carry the sub-identifiers after `column`.
async fn walk(
    client: &Client,
    column: &[u32],
    c: &Credentials,
    s: &Settings,
) -> Result<Vec<Row>, WalkFailure> {
    let base = Oid::from_slice(column);
    let fail = |e: Box<async_snmp::Error>| -> WalkFailure {
        let tries = s.retries + 1;
        match e.kind() {
            ErrorKind::Timeout => WalkFailure::Fatal(format!(
                "no SNMP answer from {} ({tries} tries of {:.1} s): unreachable, or {}",
                client.peer_addr(),
                s.timeout.as_secs_f64(),
                if c.version == Version::V3 {
                    // A wrong passphrase draws an unauthenticated report, which a client must not
                    // trust: it looks like silence.
                    "wrong SNMPv3 user or passphrase"
                } else {
                    "wrong community"
                }
            )),
            ErrorKind::Auth | ErrorKind::Report => WalkFailure::Fatal(format!(
                "SNMPv3 authentication failed ({e}); check switches.username, password, auth and privacy"
            )),
            ErrorKind::Network | ErrorKind::Closed | ErrorKind::Privacy | ErrorKind::Config => {
                WalkFailure::Fatal(e.to_string())
            }
            _ => WalkFailure::Table(e.to_string()),
        }
    };
    let mut stream = client.walk(base.clone()).map_err(fail)?;
    let mut rows = Vec::new();
    while let Some(vb) = stream.next().await {
        let vb = vb.map_err(fail)?;
        // The walk ends at the column's end; a row outside it means a confused agent.
        if !vb.oid.starts_with(&base) {
            break;
        }
        let index = vb.oid.arcs().get(column.len()..).unwrap_or_default();
        if let Some(value) = cell(&vb.value) {
            rows.push(Row {
                index: index.to_vec(),
                value,
            });
        }
    }
    Ok(rows)
}

/// A column that may be missing: a table error is an empty table, an unreachable switch is not.
async fn walk_optional(
    client: &Client,
    column: &[u32],
    c: &Credentials,
    s: &Settings,
) -> Result<Vec<Row>, String> {
    match walk(client, column, c, s).await {
        Ok(r) => Ok(r),
        Err(WalkFailure::Table(_)) => Ok(Vec::new()),
        Err(WalkFailure::Fatal(e)) => Err(e),
    }
}

/// Walks everything mapping needs from the switch at `addr`.
pub async fn poll(addr: SocketAddr, c: &Credentials, s: &Settings) -> Result<SwitchWalk, String> {
    let client = session(addr, c, s).await?;
    let mut w = SwitchWalk {
        names: walk_optional(&client, IF_NAME, c, s).await?,
        ..Default::default()
    };
    if !names_usable(&w.names) {
        w.names = walk_optional(&client, IF_DESCR, c, s).await?;
    }
    w.mtu = walk_optional(&client, IF_MTU, c, s).await?;
    w.base_port_ifindex = match walk(&client, DOT1D_BASE_PORT_IFINDEX, c, s).await {
        Ok(r) => r,
        Err(WalkFailure::Fatal(e)) => return Err(e),
        Err(WalkFailure::Table(e)) => {
            return Err(format!(
                "Failed to get a valid response to BRIDGE-MIB request: {e}"
            ))
        }
    };
    w.fdb = walk_optional(&client, DOT1Q_TP_FDB_PORT, c, s).await?;
    w.qbridge = !w.fdb.is_empty();
    if w.qbridge {
        w.fdb_status = walk_optional(&client, DOT1Q_TP_FDB_STATUS, c, s).await?;
    } else {
        w.fdb = walk_optional(&client, DOT1D_TP_FDB_PORT, c, s).await?;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xcat_version_strings() {
        assert_eq!(Version::from_xcat(None), Version::V1);
        assert_eq!(Version::from_xcat(Some("1")), Version::V1);
        assert_eq!(Version::from_xcat(Some("2c")), Version::V2c);
        assert_eq!(Version::from_xcat(Some("v2")), Version::V2c);
        assert_eq!(Version::from_xcat(Some("3")), Version::V3);
        assert_eq!(Version::from_xcat(Some("ver3")), Version::V3);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(AuthProto::parse("MD5"), Some(AuthProto::Md5));
        assert_eq!(AuthProto::parse("sha"), Some(AuthProto::Sha));
        assert_eq!(AuthProto::parse("SHA-256"), Some(AuthProto::Sha256));
        assert_eq!(AuthProto::parse("rot13"), None);
        assert_eq!(PrivProto::parse("DES"), Some(PrivProto::Des));
        assert_eq!(PrivProto::parse("aes"), Some(PrivProto::Aes));
        assert_eq!(PrivProto::parse("AES-256"), Some(PrivProto::Aes256));
        assert_eq!(PrivProto::parse("rc4"), None);
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = Credentials {
            version: Version::V2c,
            secret: "s3cret-community".into(),
            username: String::new(),
            auth: AuthProto::Md5,
            privacy: None,
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
