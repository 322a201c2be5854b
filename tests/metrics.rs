//! `/metrics` on the HTTP service: the page parses with Prometheus' own text parser (the
//! `prometheus_client` Python package, Debian's python3-prometheus-client), and its counters move
//! as real clients (udhcpc, tftp-hpa, curl) talk to `bootherd serve` in a network namespace.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{need, sh, udhcpc, Bh, Daemon, Pair};

const SERVER: &str = "10.99.93.1";

/// Parses a page with prometheus_client's parser; every sample as `name{k="v",…}` → value.
fn parse(page: &str) -> HashMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        print("%s{%s}\t%r\t%s" % (s.name, labels, s.value, fam.type))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (python3-prometheus-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write page");
    let o = child.wait_with_output().expect("parser");
    assert!(
        o.status.success(),
        "the Prometheus text parser refused the page: {}\n{page}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:?}", m.keys().collect::<Vec<_>>()))
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    need(&[
        ("curl", "curl"),
        ("tftp", "tftp-hpa"),
        ("busybox", "busybox"),
    ]);
    assert!(
        std::path::Path::new("/usr/bin/python3").exists()
            && Command::new("/usr/bin/python3")
                .args(["-c", "import prometheus_client.parser"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false),
        "the Prometheus text parser is missing: apt-get install python3-prometheus-client (tests/run.sh does)"
    );
    let bh = Bh::new();
    let install = bh.path("install");
    let tftp = bh.path("tftpboot");
    std::fs::create_dir_all(&install).unwrap();
    std::fs::create_dir_all(&tftp).unwrap();
    std::fs::write(install.join("file.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(tftp.join("boot.bin"), vec![9u8; 50_000]).unwrap();
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
        "net=10.99.93.0",
        "mask=255.255.255.0",
        "dynamicrange=10.99.93.100-10.99.93.150",
    ]);
    bh.ok(&["nodeadd", "n1-n3", "groups=compute"]);
    bh.ok(&["nodech", "n1", "nodelist.status=booted"]);
    bh.ok(&["nodech", "n2", "nodelist.status=booted"]);
    let pair = Pair::new("met", &format!("{SERVER}/24"));
    let d = Daemon::start(&bh, &pair.srv, &["--no-nfs"]);
    assert!(d.wait_for("HTTP listening", 5), "{}", d.dump());
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    let curl = |path: &str| -> (String, String) {
        let o = pair
            .cli
            .command("curl")
            .args([
                "-sS",
                "-D",
                "/dev/stderr",
                &format!("http://{SERVER}{path}"),
            ])
            .output()
            .expect("curl");
        assert!(
            o.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // The client needs an address to reach HTTP; DHCP gives it one (and moves DHCP's counters).
    let before_page = curl_page_from_server(&pair);
    let before = parse(&before_page);
    let lease = udhcpc(&pair, &bh, &[]).expect("udhcpc got a lease");
    let ip = lease.get("ip").expect("ip").clone();
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        &format!("{ip}/24"),
        "dev",
        "bhc0",
    ]);

    let (page, head) = curl("/metrics");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let m = parse(&page);
    // Every family this page promises.
    for key in [
        "process_cpu_seconds_total{}",
        "process_resident_memory_bytes{}",
        "process_open_fds{}",
        "process_start_time_seconds{}",
        "bootherd_store_commit_seconds_count{}",
        "bootherd_request_duration_seconds_count{service=\"nfs\"}",
    ] {
        get(&m, key);
    }
    assert!(get(&m, "process_resident_memory_bytes{}") > 1e6);
    assert!(get(&m, "process_open_fds{}") >= 3.0);
    // Nodes per status, leases per network.
    assert_eq!(get(&m, "bootherd_nodes{status=\"booted\"}"), 2.0);
    assert_eq!(get(&m, "bootherd_nodes{status=\"unknown\"}"), 1.0);
    assert_eq!(
        get(&m, "bootherd_dhcp_leases{network=\"10.99.93.0/24\"}"),
        1.0
    );
    // DHCP: DISCOVER + REQUEST taken, OFFER + ACK sent; the lease was committed.
    let dreq = get(&m, "bootherd_requests_total{service=\"dhcp\"}")
        - get(&before, "bootherd_requests_total{service=\"dhcp\"}");
    assert!(dreq >= 2.0, "dhcp requests moved by {dreq}");
    assert!(
        get(&m, "bootherd_response_bytes_total{service=\"dhcp\"}")
            >= get(&before, "bootherd_response_bytes_total{service=\"dhcp\"}") + 2.0 * 300.0
    );
    assert!(
        get(&m, "bootherd_store_commit_seconds_count{}")
            > get(&before, "bootherd_store_commit_seconds_count{}")
    );

    // HTTP: a 100 kB file and a 404.
    let h0 = m.clone();
    let (body, _) = curl("/install/file.bin");
    assert_eq!(body.len(), 100_000);
    let _ = curl("/install/nosuch");
    let (page, _) = curl("/metrics");
    let m = parse(&page);
    let hreq = |m: &HashMap<String, f64>| get(m, "bootherd_requests_total{service=\"http\"}");
    // file + 404 + the previous /metrics itself.
    assert_eq!(hreq(&m) - hreq(&h0), 3.0);
    let hbytes = get(&m, "bootherd_response_bytes_total{service=\"http\"}")
        - get(&h0, "bootherd_response_bytes_total{service=\"http\"}");
    assert!(hbytes >= 100_000.0, "http bytes moved by {hbytes}");
    assert_eq!(
        get(&m, "bootherd_errors_total{service=\"http\"}")
            - get(&h0, "bootherd_errors_total{service=\"http\"}"),
        1.0
    );
    assert!(
        get(
            &m,
            "bootherd_request_duration_seconds_count{service=\"http\"}"
        ) > get(
            &h0,
            "bootherd_request_duration_seconds_count{service=\"http\"}"
        )
    );

    // TFTP: one file with tftp-hpa, one missing file.
    let t0 = m.clone();
    let out = bh.path("got.bin");
    let o = pair
        .cli
        .command("tftp")
        .args([
            SERVER,
            "-m",
            "binary",
            "-c",
            "get",
            "boot.bin",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("tftp");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 50_000);
    let _ = pair
        .cli
        .command("tftp")
        .args([SERVER, "-c", "get", "nosuch.bin", "/dev/null"])
        .output();
    let (page, _) = curl("/metrics");
    let m = parse(&page);
    let delta = |k: &str| get(&m, k) - get(&t0, k);
    assert_eq!(delta("bootherd_requests_total{service=\"tftp\"}"), 2.0);
    assert_eq!(
        delta("bootherd_response_bytes_total{service=\"tftp\"}"),
        50_000.0
    );
    assert_eq!(delta("bootherd_errors_total{service=\"tftp\"}"), 1.0);
    assert_eq!(
        delta("bootherd_request_duration_seconds_count{service=\"tftp\"}"),
        1.0
    );
    // Histograms are cumulative: +Inf equals the count.
    assert_eq!(
        get(
            &m,
            "bootherd_request_duration_seconds_bucket{le=\"+Inf\",service=\"tftp\"}"
        ),
        get(
            &m,
            "bootherd_request_duration_seconds_count{service=\"tftp\"}"
        )
    );
    drop(d);
}

/// /metrics asked from the server's own namespace (before the client has an address).
fn curl_page_from_server(pair: &Pair) -> String {
    let o = pair
        .srv
        .command("curl")
        .args(["-sS", &format!("http://{SERVER}/metrics")])
        .output()
        .expect("curl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
