//! The appliance's small certificate authority, as xCAT's `setup-xcat-ca.sh`,
//! `setup-server-cert.sh` and `setup-local-client.sh` make one: a CA, the server's certificate
//! (`server-cred.pem` = key + certificate), and one client certificate per user whose CN is the
//! user name (`~/.xcat/client-cred.pem`, `ca.pem`). Revoked certificates go into a CRL the server
//! checks at the TLS handshake.
//!
//! Layout of the directory (default `/etc/bootherd/pki`, `BOOTHERD_PKI`, `--pki-dir`):
//! `ca.pem`, `ca-key.pem` (0600), `server-cred.pem` (0600), `issued` (serial and user per line),
//! `revoked` (serials), `crl.pem`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Where the CA lives unless told otherwise.
pub const DEFAULT_DIR: &str = "/etc/bootherd/pki";

/// How long certificates are valid (xCAT's scripts use 7300 days).
const VALID_DAYS: i64 = 7300;

pub struct Pki {
    dir: PathBuf,
}

/// A client certificate just issued.
pub struct Issued {
    pub user: String,
    pub serial: String,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

fn write_private(path: &Path, data: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_public(path: &Path, data: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness: {e}"))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from_slice(&b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn validity(p: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(VALID_DAYS);
}

impl Pki {
    /// The CA at `dir`, created (CA, server certificate, empty CRL) when it does not exist yet.
    /// Says whether it was created.
    pub fn open_or_create(dir: &Path, server_names: &[String]) -> anyhow::Result<(Pki, bool)> {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        if pki.path("ca.pem").exists() && pki.path("server-cred.pem").exists() {
            pki.crl()?;
            return Ok((pki, false));
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        // The CA.
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("bootherd CA on {}", crate::store::local_host()),
        );
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.key_identifier_method = KeyIdMethod::Sha256;
        ca.serial_number = Some(random_serial()?);
        validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key)?;
        write_private(&pki.path("ca-key.pem"), &ca_key.serialize_pem())?;
        write_public(&pki.path("ca.pem"), &ca_cert.pem())?;
        // The server: CN is the host name (as xCAT's), names and addresses as SANs.
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate()?;
        let mut names: Vec<String> = server_names.to_vec();
        if names.is_empty() {
            names.push(crate::store::local_host());
        }
        let mut p = CertificateParams::new(names.clone())?;
        p.distinguished_name
            .push(DnType::CommonName, names[0].clone());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.serial_number = Some(random_serial()?);
        validity(&mut p);
        let cert = p.signed_by(&key, &issuer)?;
        write_private(
            &pki.path("server-cred.pem"),
            &format!("{}{}", key.serialize_pem(), cert.pem()),
        )?;
        pki.write_crl(&issuer, &[])?;
        Ok((pki, true))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn issuer(&self) -> anyhow::Result<Issuer<'static, KeyPair>> {
        let key_pem = fs::read_to_string(self.path("ca-key.pem"))
            .with_context(|| format!("cannot read {}", self.path("ca-key.pem").display()))?;
        let key = KeyPair::from_pem(&key_pem)?;
        let ca_pem = self.ca_pem()?;
        Ok(Issuer::from_ca_cert_pem(&ca_pem, key)?)
    }

    pub fn ca_pem(&self) -> anyhow::Result<String> {
        fs::read_to_string(self.path("ca.pem"))
            .with_context(|| format!("cannot read {}", self.path("ca.pem").display()))
    }

    /// Issues a client certificate whose CN is `user`.
    pub fn issue(&self, user: &str) -> anyhow::Result<Issued> {
        if user.is_empty() || user.contains(['/', '\n', ',', '=']) {
            bail!("'{user}' is not a user name");
        }
        let issuer = self.issuer()?;
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, user);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = random_serial()?;
        let serial_hex = hex(serial.as_ref());
        p.serial_number = Some(serial);
        validity(&mut p);
        let cert = p.signed_by(&key, &issuer)?;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.path("issued"))
            .with_context(|| format!("cannot write {}", self.path("issued").display()))?;
        writeln!(f, "{serial_hex} {user}")?;
        Ok(Issued {
            user: user.to_string(),
            serial: serial_hex,
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
            ca_pem: self.ca_pem()?,
        })
    }

    /// Revokes every certificate issued to `user`; returns how many.
    pub fn revoke(&self, user: &str) -> anyhow::Result<usize> {
        let issued = fs::read_to_string(self.path("issued")).unwrap_or_default();
        let mut revoked: Vec<String> = self.revoked_serials();
        let mut n = 0;
        for l in issued.lines() {
            if let Some((serial, u)) = l.split_once(' ') {
                if u == user && !revoked.iter().any(|r| r == serial) {
                    revoked.push(serial.to_string());
                    n += 1;
                }
            }
        }
        if n == 0 {
            return Ok(0);
        }
        write_public(&self.path("revoked"), &(revoked.join("\n") + "\n"))?;
        let issuer = self.issuer()?;
        self.write_crl(&issuer, &revoked)?;
        Ok(n)
    }

    fn revoked_serials(&self) -> Vec<String> {
        fs::read_to_string(self.path("revoked"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn write_crl(&self, issuer: &Issuer<'_, KeyPair>, serials: &[String]) -> anyhow::Result<()> {
        let now = time::OffsetDateTime::now_utc();
        let mut n = [0u8; 8];
        getrandom::fill(&mut n).map_err(|e| anyhow!("no randomness: {e}"))?;
        n[0] &= 0x7f;
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + time::Duration::days(VALID_DAYS),
            crl_number: SerialNumber::from_slice(&n),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .filter_map(|s| unhex(s))
                .map(|b| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&b),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(issuer)?;
        write_public(&self.path("crl.pem"), &crl.pem()?)
    }

    /// The CRL (written now if an older CA directory has none).
    fn crl(&self) -> anyhow::Result<CertificateRevocationListDer<'static>> {
        if !self.path("crl.pem").exists() {
            let issuer = self.issuer()?;
            self.write_crl(&issuer, &self.revoked_serials())?;
        }
        CertificateRevocationListDer::from_pem_file(self.path("crl.pem"))
            .map_err(|e| anyhow!("cannot read {}: {e:?}", self.path("crl.pem").display()))
    }

    /// When the CRL last changed (the server rebuilds its TLS settings when it moves).
    pub fn crl_stamp(&self) -> Option<std::time::SystemTime> {
        fs::metadata(self.path("crl.pem"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// The server's TLS settings: its certificate, and client certificates checked against the
    /// CA and the CRL (a client without one is let in, anonymous, as xcatd lets it in; policy
    /// decides what it may do).
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(super::provider());
        let cred = self.path("server-cred.pem");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cred)
            .map_err(|e| anyhow!("cannot read {}: {e:?}", cred.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("cannot read {}: {e:?}", cred.display()))?;
        let key = PrivateKeyDer::from_pem_file(&cred)
            .map_err(|e| anyhow!("cannot read the key in {}: {e:?}", cred.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.path("ca.pem"))
            .map_err(|e| anyhow!("cannot read ca.pem: {e:?}"))?
        {
            roots.add(c.map_err(|e| anyhow!("cannot read ca.pem: {e:?}"))?)?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .with_crls(vec![self.crl()?])
        .allow_unauthenticated()
        .build()?;
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)?)
    }
}

/// Writes a client's credentials as `setup-local-client.sh` does: `<dir>/.xcat/client-key.pem`,
/// `client-cert.pem`, `client-cred.pem` (key + certificate) and `ca.pem`; owned by `owner`.
pub fn write_client_dir(
    dir: &Path,
    issued: &Issued,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<PathBuf> {
    let x = dir.join(".xcat");
    fs::create_dir_all(&x).with_context(|| format!("cannot create {}", x.display()))?;
    fs::set_permissions(&x, fs::Permissions::from_mode(0o700))?;
    write_private(&x.join("client-key.pem"), &issued.key_pem)?;
    write_public(&x.join("client-cert.pem"), &issued.cert_pem)?;
    write_private(
        &x.join("client-cred.pem"),
        &format!("{}{}", issued.key_pem, issued.cert_pem),
    )?;
    write_public(&x.join("ca.pem"), &issued.ca_pem)?;
    if let Some((uid, gid)) = owner {
        for f in [
            "",
            "client-key.pem",
            "client-cert.pem",
            "client-cred.pem",
            "ca.pem",
        ] {
            let p = if f.is_empty() { x.clone() } else { x.join(f) };
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to uid {uid}", p.display()))?;
        }
    }
    Ok(x)
}

/// The CN of a certificate (a client's user name).
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_client_certificates_whose_cn_is_the_user_and_revokes_them() {
        let d = tempfile::tempdir().expect("tmp");
        let (pki, created) =
            Pki::open_or_create(&d.path().join("pki"), &["mn".into()]).expect("ca");
        assert!(created);
        let (_, again) = Pki::open_or_create(&d.path().join("pki"), &[]).expect("ca");
        assert!(!again, "an existing CA is kept");
        let mode = fs::metadata(d.path().join("pki/ca-key.pem"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the CA key is private");
        let i = pki.issue("alice").expect("issue");
        let der = CertificateDer::from_pem_slice(i.cert_pem.as_bytes()).expect("pem");
        assert_eq!(common_name(&der).as_deref(), Some("alice"));
        let x = write_client_dir(d.path(), &i, None).expect("write");
        assert!(x.join("client-cred.pem").exists() && x.join("ca.pem").exists());
        pki.server_config().expect("server config");
        assert_eq!(pki.revoke("alice").expect("revoke"), 1);
        assert_eq!(pki.revoke("alice").expect("revoke"), 0);
        pki.server_config().expect("server config with a CRL");
        assert!(pki.issue("bad/name").is_err());
    }
}
