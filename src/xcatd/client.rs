//! The remote side of bootherd's CLI: with `XCATHOST=host[:port]` (or `--server host[:port]`),
//! an xCAT command is sent to that appliance instead of opening a store, as xCAT's client does
//! (`perl-xCAT/xCAT/Client.pm`): TLS with `~/.xcat/client-cred.pem` (key and certificate) checked
//! against `~/.xcat/ca.pem` (the host name is not checked, as xCAT's client does not), one
//! `<xcatrequest>`, the `<xcatresponse>` stream printed as xCAT's `handle_response` prints it,
//! and the exit code from `<errorcode>`. What the command reads travels with the request: stdin
//! for `mkdef -z`/`chdef -z`, the CSV file of `tabrestore`. Without `XCATHOST`, a user who cannot
//! use the local store (not allowed to write it, or none here but a certificate in `~/.xcat`)
//! is sent to `localhost:3001`, as xCAT's client defaults to.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::wire::{self, XcatRequest};

/// The appliance to send the command to: `--server X` (taken out of `args`), else `XCATHOST`.
/// Only xCAT's commands go remote; `serve`, `links`, `cert`, … always run here.
pub fn target(args: &mut Vec<OsString>) -> Option<String> {
    let (cmd_at, _) = crate::cli::xcat_command(args)?;
    let mut found = None;
    let mut i = 1;
    while i < cmd_at {
        let a = args[i].to_string_lossy().into_owned();
        if a == "--server" && i + 1 < cmd_at {
            found = Some(args[i + 1].to_string_lossy().into_owned());
            args.drain(i..i + 2);
            break;
        }
        if let Some(v) = a.strip_prefix("--server=") {
            found = Some(v.to_string());
            args.remove(i);
            break;
        }
        i += 1;
    }
    found
        .or_else(|| std::env::var("XCATHOST").ok())
        .filter(|s| !s.trim().is_empty())
        .or_else(|| local_store_unusable(args).then(|| "localhost:3001".to_string()))
}

/// Whether this user cannot use the local store, so the command goes to the appliance's own
/// request port (`localhost:3001`, xCAT's client default) with the user's certificate: the
/// SQLite store exists but this user may not read and write it (an administrator who is not
/// root, on the appliance), or there is none here and `~/.xcat` holds a certificate.
fn local_store_unusable(args: &[OsString]) -> bool {
    let mut url = std::env::var("BOOTHERD_DB").ok();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--db" {
            url = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
            break;
        }
        if let Some(v) = a.strip_prefix("--db=") {
            url = Some(v.to_string());
            break;
        }
        i += 1;
    }
    let url = url.unwrap_or_else(|| crate::store::DEFAULT_DB_URL.to_string());
    let Some(path) = crate::store::Store::sqlite_file(&url) else {
        return false;
    };
    if path.exists() {
        use nix::unistd::{access, AccessFlags};
        access(&path, AccessFlags::R_OK | AccessFlags::W_OK).is_err()
    } else {
        home().join(".xcat/client-cred.pem").exists()
    }
}

/// `host`, `host:port`, `[v6]:port`: with xcatd's port 3001 when none is given.
fn with_port(host: &str) -> String {
    if host.starts_with('[') {
        if host.contains("]:") {
            host.to_string()
        } else {
            format!("{host}:3001")
        }
    } else if host.matches(':').count() == 1 {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:3001")
    } else {
        format!("{host}:3001")
    }
}

/// Where `.xcat/` is: `$HOME`, else the user's home from the password database (xCAT's
/// client uses the latter only).
fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Sends the command in `args` (`bootherd <command> …`) to `server` and prints its answer.
pub fn run(server: &str, _argv0: &str, args: &[OsString]) -> ExitCode {
    let Some((at, command)) = crate::cli::xcat_command(args) else {
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args[at + 1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let req = match build_request(&command, rest) {
        Ok(r) => r,
        Err(e) => {
            eprintln_raw(&format!("Error: {e}"));
            return ExitCode::from(1);
        }
    };
    match send(server, &req) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let addr = with_port(server);
            print_raw(&format!(
                "Unable to open socket connection to xcatd daemon on {addr}.\nVerify that the xcatd daemon is running and that your SSL setup is correct.\n"
            ));
            eprintln_raw(&format!("Connection failure: {e:#}"));
            ExitCode::from(1)
        }
    }
}

// The client writes straight to the process's streams: it is the far end of a request, not a
// command serving one.
fn print_raw(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn eprintln_raw(s: &str) {
    let _ = std::io::stdout().lock().flush();
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.write_all(b"\n");
}

/// The request for `command args`: all arguments as `<arg>` (the server finds the noderange),
/// the working directory, `XCAT_*` variables, and what the command reads.
pub fn build_request(command: &str, args: Vec<String>) -> anyhow::Result<XcatRequest> {
    let cwd = std::env::current_dir().ok();
    let mut r = XcatRequest {
        command: command.to_string(),
        cwd: cwd.as_ref().map(|c| c.display().to_string()),
        clienttype: Some("cli".into()),
        ..Default::default()
    };
    for (k, v) in std::env::vars() {
        if k.starts_with("XCAT_") {
            r.environment.insert(k, v);
        }
    }
    let stanza = args.iter().any(|a| a == "-z" || a == "--stanza");
    if stanza && matches!(command, "mkdef" | "chdef") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| anyhow::anyhow!("cannot read the stanza file from standard input: {e}"))?;
        r.stdin = Some(b);
    }
    if command == "tabrestore" {
        for a in args.iter().filter(|a| !a.starts_with('-')) {
            let p = Path::new(a);
            let abs = match &cwd {
                Some(c) if p.is_relative() => c.join(p),
                _ => p.to_path_buf(),
            };
            let data = std::fs::read(&abs)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", abs.display()))?;
            r.files.insert(abs.display().to_string(), data);
        }
    }
    r.args = args;
    Ok(r)
}

/// Sends `req` and prints the responses; returns the exit code.
pub fn send(server: &str, req: &XcatRequest) -> anyhow::Result<i32> {
    let addr = with_port(server);
    let sa = addr
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{addr}: no address"))?;
    let tcp = TcpStream::connect_timeout(&sa, Duration::from_secs(15))?;
    tcp.set_nodelay(true).ok();
    let config = client_config(&home())?;
    let host = addr
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    let name = ServerName::try_from(host.clone())
        .or_else(|_| ServerName::try_from("bootherd".to_string()))
        .map_err(|e| anyhow::anyhow!("{host}: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(wire::encode_request(req).as_bytes())?;
    tls.flush()?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut code = 0i32;
    loop {
        while let Some(end) = wire::response_end(&buf) {
            let doc: Vec<u8> = buf.drain(..end).collect();
            let start = doc
                .windows(14)
                .position(|w| w == b"<xcatresponse>")
                .unwrap_or(0);
            let r = wire::parse_response(&doc[start..])
                .map_err(|e| anyhow::anyhow!("the server's answer is not xCAT's: {e}"))?;
            print_response(&r);
            if let Some(c) = r.errorcode {
                code |= c;
            }
            if r.serverdone {
                return Ok(code);
            }
        }
        let n = match tls.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            eprintln_raw(
                "ERROR/WARNING: communication with the xCAT server seems to have been ended prematurely",
            );
            return Ok(1);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// xCAT's `handle_response`: errors and warnings to stderr with their prefixes, info and data to
/// stdout.
fn print_response(r: &wire::Response) {
    for e in &r.error {
        if r.no_error_prefix {
            eprintln_raw(e);
        } else {
            eprintln_raw(&format!("Error: {e}"));
        }
    }
    for w in &r.warning {
        eprintln_raw(&format!("Warning: {w}"));
    }
    let mut out = String::new();
    for i in &r.info {
        out.push_str(i);
        out.push('\n');
    }
    for d in &r.data {
        out.push_str(d);
        out.push('\n');
    }
    if !out.is_empty() {
        print_raw(&out);
    }
}

/// TLS settings: the user's certificate and the appliance's CA when `~/.xcat` has them; else,
/// as xCAT's client, an unverified connection, with its warning.
fn client_config(home: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(super::provider());
    let x = home.join(".xcat");
    let (cred, ca) = (x.join("client-cred.pem"), x.join("ca.pem"));
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if cred.exists() && ca.exists() {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&ca)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e:?}", ca.display()))?
        {
            roots.add(c.map_err(|e| anyhow::anyhow!("cannot read {}: {e:?}", ca.display()))?)?;
        }
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cred)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e:?}", cred.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e:?}", cred.display()))?;
        let key = PrivateKeyDer::from_pem_file(&cred)
            .map_err(|e| anyhow::anyhow!("cannot read the key in {}: {e:?}", cred.display()))?;
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaOnly(inner)))
            .with_client_auth_cert(certs, key)?)
    } else {
        let user = crate::store::local_user();
        eprintln_raw(&format!("warning: the client certificates under {}/.xcat/ are not setup correctly, please run 'bootherd cert issue {user}' as 'root' on the appliance to generate the client certificates; otherwise, the SSL connection between xcat client and xcatd will be setup without certificate verification and open to Man-In-The-Middle attacks.", home.display()));
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth())
    }
}

/// The chain must lead to the appliance's CA; the name is not checked (xCAT's client uses
/// `SSL_verifycn_scheme => "none"`, and appliances are reached by address).
#[derive(Debug)]
struct CaOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for CaOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// xCAT's client without certificates: `SSL_VERIFY_NONE` (signatures are still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_is_xcatds() {
        assert_eq!(with_port("mn"), "mn:3001");
        assert_eq!(with_port("10.0.0.1:3101"), "10.0.0.1:3101");
        assert_eq!(with_port("fd00::1"), "[fd00::1]:3001");
        assert_eq!(with_port("[fd00::1]:5"), "[fd00::1]:5");
    }

    #[test]
    fn only_xcat_commands_go_remote_and_server_is_taken_out() {
        let mut a: Vec<OsString> = ["bootherd", "--server", "mn:1", "nodels", "all"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(target(&mut a).as_deref(), Some("mn:1"));
        assert_eq!(a, ["bootherd", "nodels", "all"]);
        let mut s: Vec<OsString> = ["bootherd", "--server", "mn:1", "serve"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(target(&mut s), None);
    }
}
