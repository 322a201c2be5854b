//! The OMAPI control port against the real clients: ISC's omshell and Python's pypureomapi.

mod common;
use common::{udhcpc, Bh, Daemon, Pair};

use std::io::Write;
use std::process::Stdio;

/// The same 32-byte key as the passwd row, base64 (what `makedhcp -n` would create).
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItYm9vdGhlcmQtb21hcGktdGVzdA==";

fn store() -> Bh {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "lab",
        "net=10.99.50.0",
        "mask=255.255.255.0",
        "dynamicrange=10.99.50.100-10.99.50.120",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    bh.ok(&[
        "chtab",
        "key=omapi,username=xcat_key",
        &format!("passwd.password={SECRET}"),
    ]);
    bh
}

/// Feeds an omshell script from the client namespace; returns what omshell printed.
fn omshell(pair: &Pair, script: &str) -> String {
    let mut c = pair
        .cli
        .command("timeout")
        .args(["20", "omshell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("omshell");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    let o = c.wait_with_output().expect("wait");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn header(key: &str) -> String {
    format!("server 10.99.50.1\nport 7911\nkey xcat_key {key}\nconnect\n")
}

#[test]
fn omshell_creates_a_host_that_dhcp_then_serves_looks_it_up_and_removes_it() {
    let bh = store();
    let pair = Pair::new("oo", "10.99.50.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.50.2/24", "dev", "bhc0"]);
    pair.client_mac("52:54:00:99:50:51");
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(d.wait_for("OMAPI listening", 5), "{}", d.dump());
    // What xCAT's makedhcp pipes into omshell for an xnba node (reference §5).
    let statements = r#"ddns-hostname \"n51\"; send host-name \"n51\"; if option user-class-identifier = \"xNBA\" and option client-architecture = 00:00 { always-broadcast on; filename = \"http://10.99.50.1/tftpboot/xcat/xnba/nodes/n51\"; } else if option client-architecture = 00:07 { filename = \"xcat/xnba.efi\"; } else if option client-architecture = 00:00 { filename = \"xcat/xnba.kpxe\"; } else { filename = \"\"; }"#;
    let create = format!(
        "{}new host\nset name = \"n51\"\nset hardware-address = 52:54:00:99:50:51\nset hardware-type = 1\nset ip-address = 10.99.50.51\nset statements = \"{statements}\"\ncreate\n",
        header(SECRET)
    );
    let out = omshell(&pair, &create);
    assert!(
        out.contains("ip-address = 0a:63:32:33"),
        "create answered with the host:\n{out}\n{}",
        d.dump()
    );
    assert!(
        bh.ok(&["tabdump", "omapihosts"])
            .contains("\"n51\",\"52:54:00:99:50:51\""),
        "the host object is in the store"
    );
    // A fresh DHCP client with that MAC gets the address and the boot file the statements choose.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let env = udhcpc(&pair, &bh, &["-x", "0x5d:0000"]).expect("lease");
    assert_eq!(env["ip"], "10.99.50.51");
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("xcat/xnba.kpxe")
    );
    let env = udhcpc(&pair, &bh, &["-x", "0x5d:0007"]).expect("lease");
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("xcat/xnba.efi")
    );
    // Exclusive create of the same host again is refused.
    let again = omshell(&pair, &create);
    assert!(again.contains("already exists"), "{again}");
    // Look it up by name, then remove it.
    let lookup = format!("{}new host\nset name = \"n51\"\nopen\n", header(SECRET));
    let out = omshell(&pair, &lookup);
    assert!(
        out.contains("hardware-address = 52:54:00:99:50:51")
            && out.contains("ip-address = 0a:63:32:33"),
        "{out}"
    );
    let out = omshell(&pair, &format!("{}new host\nset hardware-address = 52:54:00:99:50:51\nset hardware-type = 1\nopen\nremove\n", header(SECRET)));
    assert!(out.contains("obj: <null>"), "{out}");
    let out = omshell(&pair, &lookup);
    assert!(out.contains("not found"), "{out}");
    assert!(!bh.ok(&["tabdump", "omapihosts"]).contains("n51"));
    // Statements bootherd does not understand are refused with a message naming them.
    let out = omshell(&pair, &format!("{}new host\nset name = \"bad\"\nset hardware-address = 52:54:00:99:50:52\nset statements = \"option routers 1.2.3.4;\"\ncreate\n", header(SECRET)));
    assert!(out.contains("routers"), "{out}");
    // A wrong key is refused.
    let out = omshell(
        &pair,
        &format!(
            "{}new host\nset name = \"n51\"\nopen\n",
            header("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=")
        ),
    );
    assert!(
        !out.contains("hardware-address ="),
        "wrong key must not read hosts: {out}"
    );
    // As with dhcpd: the login succeeds (key name and algorithm match), the first signed request
    // fails verification and the server closes the connection.
    assert!(out.contains("connection reset by peer"), "{out}");
}

const PYPURE: &str = r#"
import sys, pypureomapi
secret = sys.argv[1].encode()
o = pypureomapi.Omapi("10.99.50.1", 7911, b"xcat_key", secret, timeout=5)
o.add_host_supersede_name("10.99.50.52", "52:54:00:99:50:52", "n52")
print("ip", o.lookup_ip_host("52:54:00:99:50:52"))
h = o.lookup_host("n52")
print("host", h["ip"], h["mac"], h["hostname"])
o.add_host("10.99.50.53", "52:54:00:99:50:53")
print("ip53", o.lookup_ip_host("52:54:00:99:50:53"))
o.del_host("52:54:00:99:50:53")
try:
    o.lookup_ip_host("52:54:00:99:50:53")
    print("still there")
except pypureomapi.OmapiErrorNotFound:
    print("deleted")
if len(sys.argv) > 2:
    print("lease", o.lookup_ip(sys.argv[2]), o.lookup_mac(o.lookup_ip(sys.argv[2])))
"#;

const PYPURE_WRONG: &str = r#"
import pypureomapi
try:
    o = pypureomapi.Omapi("10.99.50.1", 7911, b"xcat_key", b"d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=", timeout=5)
    o.lookup_host("n52")
    print("accepted")
except pypureomapi.OmapiError as e:
    print("refused", e)
"#;

fn venv_python() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: tests/run.sh creates it (python3 -m venv + pip install pypureomapi)",
        p.display()
    );
    p.display().to_string()
}

#[test]
fn pypureomapi_adds_looks_up_deletes_and_reads_leases() {
    let bh = store();
    let pair = Pair::new("op", "10.99.50.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.50.2/24", "dev", "bhc0"]);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(d.wait_for("OMAPI listening", 5));
    // A dynamic lease for another MAC first, for the lease lookup.
    pair.client_mac("52:54:00:99:50:99");
    let env = udhcpc(&pair, &bh, &[]).expect("dynamic lease");
    let py = venv_python();
    let script = bh.file("p.py", PYPURE);
    let o = pair
        .cli
        .command(&py)
        .args([&script, SECRET, "52:54:00:99:50:99"])
        .output()
        .expect("python");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        out,
        String::from_utf8_lossy(&o.stderr),
        d.dump()
    );
    assert!(out.contains("ip 10.99.50.52\n"), "{out}");
    assert!(
        out.contains("host 10.99.50.52 52:54:00:99:50:52 n52\n"),
        "{out}"
    );
    assert!(
        out.contains("ip53 10.99.50.53\n") && out.contains("deleted\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("lease {} 52:54:00:99:50:99", env["ip"])),
        "{out}"
    );
    // The supersede host-name statement is obeyed by DHCP.
    std::thread::sleep(std::time::Duration::from_millis(600));
    pair.client_mac("52:54:00:99:50:52");
    let env = udhcpc(&pair, &bh, &[]).expect("lease for n52");
    assert_eq!(env["ip"], "10.99.50.52");
    assert_eq!(env.get("hostname").map(String::as_str), Some("n52"));
    // A wrong key is refused.
    let wrong = bh.file("w.py", PYPURE_WRONG);
    let o = pair.cli.command(&py).arg(&wrong).output().expect("python");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("refused"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
