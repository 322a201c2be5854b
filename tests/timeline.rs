//! Boot timelines: a node in a network namespace takes a lease (udhcpc), fetches a file over
//! TFTP (tftp-hpa) and HTTP (curl), asks for a missing one and reports a status through the
//! HTTP callback; `bootherd timeline <node>` then lists every step in order, with sizes.

mod common;

use std::time::{Duration, Instant};

use common::{need, sh, udhcpc, Bh, Daemon, Pair};

const SERVER: &str = "10.99.94.1";
const MAC: &str = "52:54:00:99:94:07";

#[test]
fn a_nodes_steps_are_listed_in_order() {
    need(&[
        ("curl", "curl"),
        ("tftp", "tftp-hpa"),
        ("busybox", "busybox"),
    ]);
    let bh = Bh::new();
    let install = bh.path("install");
    let tftp = bh.path("tftpboot");
    std::fs::create_dir_all(&install).unwrap();
    std::fs::create_dir_all(&tftp).unwrap();
    std::fs::write(install.join("kernel"), vec![7u8; 123_456]).unwrap();
    std::fs::write(tftp.join("loader.0"), vec![9u8; 4321]).unwrap();
    for (k, v) in [
        ("installdir", install.display().to_string()),
        ("tftpdir", tftp.display().to_string()),
        ("dhcpinterfaces", "bhs0".into()),
    ] {
        bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
    }
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "lab",
        "net=10.99.94.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "nodeadd",
        "n7",
        "groups=compute",
        &format!("mac.mac={MAC}"),
        "hosts.ip=10.99.94.7",
    ]);
    let pair = Pair::new("tl", &format!("{SERVER}/24"));
    pair.client_mac(MAC);
    let d = Daemon::start(&bh, &pair.srv, &["--no-nfs"]);
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    assert_eq!(bh.ok(&["timeline", "n7"]), "n7: no boot events recorded\n");
    let lease = udhcpc(&pair, &bh, &[]).expect("a lease");
    assert_eq!(lease.get("ip").map(String::as_str), Some("10.99.94.7"));
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.94.7/24",
        "dev",
        "bhc0",
    ]);
    let got = bh.path("got");
    let o = pair
        .cli
        .command("tftp")
        .args([
            SERVER,
            "-m",
            "binary",
            "-c",
            "get",
            "loader.0",
            got.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let curl = |args: &[&str]| {
        let o = pair.cli.command("curl").args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    curl(&[
        "-sS",
        "-o",
        "/dev/null",
        &format!("http://{SERVER}/install/kernel"),
    ]);
    curl(&[
        "-sS",
        "-o",
        "/dev/null",
        &format!("http://{SERVER}/install/missing"),
    ]);
    curl(&[
        "-sS",
        "-o",
        "/dev/null",
        &format!("http://{SERVER}/xcat/node/installstatus/booted"),
    ]);

    // The recorder writes every quarter second.
    let t0 = Instant::now();
    let mut text = String::new();
    while t0.elapsed() < Duration::from_secs(10) {
        text = bh.ok(&["timeline", "n7"]);
        if text.contains("status      booted") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(
        kinds,
        ["dhcp-offer", "dhcp-ack", "tftp", "http", "error", "status"],
        "timeline:\n{text}\ndaemon:\n{}",
        d.dump()
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("10.99.94.7 to 52:54:00:99:94:07"),
        "{text}"
    );
    assert!(
        lines[2].contains("loader.0 (4321 bytes in ") && lines[2].ends_with("from 10.99.94.7"),
        "{text}"
    );
    assert!(
        lines[3].contains("GET /install/kernel (123456 bytes in "),
        "{text}"
    );
    assert!(lines[4].contains("http 404 GET /install/missing"), "{text}");
    assert!(lines[5].ends_with("booted"), "{text}");
    assert!(
        lines[1].contains("10.99.94.7 to 52:54:00:99:94:07"),
        "{text}"
    );
    // --last and an unknown node.
    assert_eq!(bh.ok(&["timeline", "n7", "--last", "1"]).lines().count(), 1);
    let e = bh.fail(&["timeline", "nosuch"]);
    assert!(e.contains("nosuch is not a node"), "{e}");
}
