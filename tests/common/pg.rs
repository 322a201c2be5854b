//! A throwaway PostgreSQL cluster from Debian's `postgresql` package, started by the test itself:
//! `initdb` + `pg_ctl` as the unprivileged `postgres` user, a unix socket in a temporary
//! directory (reachable from every network namespace) and TCP on a free loopback port with
//! password (SCRAM) authentication. Stopped and deleted when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's PostgreSQL server programs are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The password of the `postgres` role over TCP.
pub const PASSWORD: &str = "bh-test-pw";

pub struct PgCluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// More `-c` settings for the server (TLS).
    extra: String,
}

fn pg(prog: &str) -> PathBuf {
    let p = Path::new(PG_BIN).join(prog);
    assert!(
        p.exists(),
        "{} is missing: install Debian's postgresql package (tests/run.sh does)",
        p.display()
    );
    p
}

/// Runs a PostgreSQL program as the `postgres` user (initdb refuses root).
fn as_postgres(prog: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    };
    c.args(args).output().expect("run a PostgreSQL program")
}

fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("bh-pg")
            .tempdir()
            .expect("tempdir");
        if nix::unistd::geteuid().is_root() {
            let pw = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("the postgres user (Debian's postgresql package creates it)");
            nix::unistd::chown(dir.path(), Some(pw.uid), Some(pw.gid)).expect("chown");
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        if nix::unistd::geteuid().is_root() {
            let _ = Command::new("chown").arg("postgres").arg(&pwfile).status();
        }
        let data = dir.path().join("data");
        let o = as_postgres(
            &pg("initdb"),
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "-N",
            ],
        );
        assert!(
            o.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let c = PgCluster {
            dir,
            port: free_port(),
            extra: String::new(),
        };
        c.ctl("start");
        c
    }

    /// [`PgCluster::start`] with TLS on TCP: a CA made for the test ([`PgCluster::ca`]) signed
    /// the server's certificate for 127.0.0.1.
    pub fn start_tls() -> PgCluster {
        let mut c = PgCluster::start();
        c.ctl("stop");
        let d = c.dir.path();
        c.make_ca("ca");
        let ext = d.join("server.ext");
        std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &d.join("server.key").display().to_string(),
            "-out",
            &d.join("server.csr").display().to_string(),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &d.join("server.csr").display().to_string(),
            "-CA",
            &d.join("ca.pem").display().to_string(),
            "-CAkey",
            &d.join("ca.key").display().to_string(),
            "-CAcreateserial",
            "-out",
            &d.join("server.pem").display().to_string(),
            "-extfile",
            &ext.display().to_string(),
        ]);
        if nix::unistd::geteuid().is_root() {
            for f in ["server.key", "server.pem"] {
                let _ = Command::new("chown")
                    .arg("postgres")
                    .arg(d.join(f))
                    .status();
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod key");
        c.extra = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            d.join("server.pem").display(),
            d.join("server.key").display()
        );
        c.ctl("start");
        c
    }

    /// Makes a self-signed CA `<name>.pem` (key `<name>.key`) in the cluster's directory.
    pub fn make_ca(&self, name: &str) -> String {
        let d = self.dir.path();
        let pem = d.join(format!("{name}.pem"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=bootherd test {name}"),
            "-keyout",
            &d.join(format!("{name}.key")).display().to_string(),
            "-out",
            &pem.display().to_string(),
        ]);
        pem.display().to_string()
    }

    /// The test CA's certificate (after [`PgCluster::start_tls`]).
    pub fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn ctl(&self, what: &str) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        // fsync off: a throwaway cluster; crash safety is PostgreSQL's own business.
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300{}",
            self.dir.path().display(),
            self.port,
            self.extra
        );
        let o = as_postgres(
            &pg("pg_ctl"),
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-m",
                "fast",
                "-o",
                &opts,
                what,
            ],
        );
        assert!(
            o.status.success(),
            "pg_ctl {what} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `pg_ctl restart -m fast`: every connection is cut.
    pub fn restart(&self) {
        self.ctl("restart");
    }

    pub fn stop(&self) {
        self.ctl("stop");
    }

    pub fn start_again(&self) {
        self.ctl("start");
    }

    /// A URL over the unix socket (trust), for database `db`.
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@{}:{}/{db}",
            self.dir.path().display().to_string().replace('/', "%2F"),
            self.port
        )
    }

    /// A URL over TCP with the password, for database `db`.
    pub fn tcp_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// A URL over the unix socket (trust) as role `user`, for database `db`.
    pub fn socket_url_as(&self, user: &str, db: &str) -> String {
        format!(
            "postgres://{user}@{}:{}/{db}",
            self.dir.path().display().to_string().replace('/', "%2F"),
            self.port
        )
    }

    /// Runs the SQL file `file` in database `db` with psql over the socket, with psql variables
    /// `vars` (`-v name=value`), stopping at the first error; returns stdout.
    pub fn psql_file(&self, db: &str, file: &Path, vars: &[(&str, &str)]) -> String {
        // The postgres user must be able to read it: pass it on stdin instead of by path.
        let sql = std::fs::read_to_string(file).expect("read the SQL file");
        let mut c = if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "/usr/bin/psql"]);
            c
        } else {
            Command::new("/usr/bin/psql")
        };
        c.args([
            "-h",
            &self.dir.path().display().to_string(),
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
        ]);
        for (k, v) in vars {
            c.arg("-v").arg(format!("{k}={v}"));
        }
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("run psql");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(sql.as_bytes()).expect("write SQL");
        }
        let o = child.wait_with_output().expect("psql");
        assert!(
            o.status.success(),
            "psql -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Runs SQL in database `db` with psql over the socket; returns stdout.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let o = as_postgres(
            Path::new("/usr/bin/psql"),
            &[
                "-h",
                &self.dir.path().display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-At",
                "-d",
                db,
                "-c",
                sql,
            ],
        );
        assert!(
            o.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &pg("pg_ctl"),
            &["-D", &data.display().to_string(), "-m", "immediate", "stop"],
        );
    }
}
