//! The web dashboard in headless Chromium (Debian's `chromium`), driven over the DevTools protocol
//! (tests/data/cdp.py, python3-websocket): the overview renders, a noderange search narrows the
//! node list (and a bad one says why), a node's page shows its timeline, and a boot that starts
//! while the overview is open appears on it without a reload. Screenshots are kept in
//! target/dashboard/. Access from outside loopback needs site.dashboardtoken.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{need, sh, udhcpc, Bh, Daemon, Netns, Pair};

const SERVER: &str = "10.99.95.1";
const MAC: &str = "52:54:00:99:95:05";

struct Browser {
    chrome: Child,
    driver: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Browser {
    fn start(ns: &Netns, profile: &std::path::Path) -> Browser {
        let port = "9333";
        let chrome = ns
            .command("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                &format!("--remote-debugging-port={port}"),
                &format!("--user-data-dir={}", profile.display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium");
        let script = common::data("cdp.py");
        let mut driver = ns
            .command("/usr/bin/python3")
            .arg(&script)
            .arg(port)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cdp driver (python3-websocket)");
        let input = driver.stdin.take().expect("stdin");
        let output = BufReader::new(driver.stdout.take().expect("stdout"));
        Browser {
            chrome,
            driver,
            input,
            output,
        }
    }

    fn say(&mut self, line: &str) -> String {
        writeln!(self.input, "{line}").expect("to the driver");
        let mut answer = String::new();
        self.output.read_line(&mut answer).expect("from the driver");
        answer.trim_end().to_string()
    }

    fn goto(&mut self, url: &str) {
        assert_eq!(self.say(&format!("goto {url}")), "ok");
    }

    fn text(&mut self) -> String {
        let v = self.say("eval document.body.innerText");
        serde_unquote(&v)
    }

    fn wait(&mut self, secs: u32, expr: &str) -> bool {
        self.say(&format!("wait {secs} {expr}")) == "ok"
    }

    fn shot(&mut self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
        std::fs::create_dir_all(&dir).expect("mkdir target/dashboard");
        let p = dir.join(name);
        assert_eq!(self.say(&format!("shot {}", p.display())), "ok");
        assert!(std::fs::metadata(&p)
            .map(|m| m.len() > 1000)
            .unwrap_or(false));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = self.chrome.kill();
        let _ = self.chrome.wait();
    }
}

/// A JSON string value as text (the driver prints JSON).
fn serde_unquote(v: &str) -> String {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json,sys; print(json.loads(sys.stdin.read()), end='')",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(v.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dashboard_renders_searches_and_updates_live_in_chromium() {
    need(&[
        ("chromium", "chromium"),
        ("curl", "curl"),
        ("busybox", "busybox"),
    ]);
    let bh = Bh::new();
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    bh.ok(&["chtab", "key=dashboardtoken", "site.value=s3cret"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "lab",
        "net=10.99.95.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&["nodeadd", "n[01-12]", "groups=compute"]);
    bh.ok(&["nodeadd", "s1,s2", "groups=storage"]);
    bh.ok(&["nodech", "n01-n04", "nodelist.status=booted"]);
    bh.ok(&["nodech", "n05", "nodelist.status=failed"]);
    bh.ok(&[
        "nodech",
        "n07",
        &format!("mac.mac={MAC}"),
        "hosts.ip=10.99.95.7",
    ]);
    let pair = Pair::new("dsh", &format!("{SERVER}/24"));
    pair.client_mac(MAC);
    let d = Daemon::start(&bh, &pair.srv, &["--no-nfs"]);
    assert!(d.wait_for("HTTP listening", 5), "{}", d.dump());

    // From another machine: the token or nothing.
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.95.50/24",
        "dev",
        "bhc0",
    ]);
    let code = |url: &str| {
        let o = pair
            .cli
            .command("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        code(&format!("http://{SERVER}/dashboard/api/overview")),
        "403"
    );
    assert_eq!(
        code(&format!(
            "http://{SERVER}/dashboard/api/overview?token=wrong"
        )),
        "403"
    );
    assert_eq!(
        code(&format!(
            "http://{SERVER}/dashboard/api/overview?token=s3cret"
        )),
        "200"
    );
    // An xCAT user with a REST API token sees what policy lets them list, and their power
    // buttons go through policy and the audit log.
    bh.ok(&[
        "tabch",
        "tokenid=tok-dora",
        "token.username=dora",
        "token.expire=never",
    ]);
    bh.ok(&[
        "tabch",
        "priority=6",
        "policy.name=dora",
        "policy.commands=lsdef",
        "policy.noderange=storage",
        "policy.rule=allow",
    ]);
    let api = |path: &str| format!("http://{SERVER}/dashboard/api/{path}");
    assert_eq!(code(&api("nodes?range=storage&token=tok-dora")), "200");
    assert_eq!(code(&api("node/s1?token=tok-dora")), "200");
    assert_eq!(code(&api("nodes?range=compute&token=tok-dora")), "403");
    assert_eq!(code(&api("node/n01?token=tok-dora")), "403");
    assert_eq!(code(&api("nodes?range=storage&token=tok-nobody")), "403");
    let o = pair
        .cli
        .command("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "X-Bootherd: 1",
            "-H",
            "X-Auth-Token: tok-dora",
        ])
        .arg(api("node/s1/power/on"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "403 Permission denied for request\n\n403"
    );
    assert!(bh
        .ok(&["tabdump", "-w", "userid==dora", "auditlog"])
        .contains("\"dora\",\"10.99.95.50\",\"dashboard\",\"rpower\",\"s1\",\"s1 on\",\"Denied\""));
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "del",
        "10.99.95.50/24",
        "dev",
        "bhc0",
    ]);

    // In the browser, from the appliance itself (loopback).
    let profile = bh.path("chromium-profile");
    let mut b = Browser::start(&pair.srv, &profile);
    b.goto("http://127.0.0.1/dashboard/");
    assert!(
        b.wait(10, "document.getElementById('total-nodes')"),
        "the overview did not render:\n{}",
        b.text()
    );
    let t = b.text();
    assert!(t.contains("Nodes by status"), "{t}");
    assert!(t.contains("14\nnodes"), "{t}");
    assert!(
        t.contains("4\nbooted") && t.contains("1\nfailed") && t.contains("9\nunknown"),
        "{t}"
    );
    assert!(t.contains("No boot in the last ten minutes."), "{t}");
    assert!(
        t.contains("n05") && t.contains("status failed"),
        "failures list n05: {t}"
    );
    b.shot("overview.png");

    // A boot starts while the page is open: the lease appears without a reload.
    let lease = udhcpc(&pair, &bh, &[]).expect("a lease");
    assert_eq!(lease.get("ip").map(String::as_str), Some("10.99.95.7"));
    assert!(
        b.wait(10, "document.getElementById('progress') && document.getElementById('progress').innerText.includes('n07')"),
        "the boot in progress did not appear live:\n{}\ndaemon:\n{}",
        b.text(),
        d.dump()
    );
    let t = b.text();
    assert!(
        t.contains("dhcp-ack 10.99.95.7 to 52:54:00:99:95:05"),
        "{t}"
    );
    b.shot("overview-live.png");

    // The node list and a noderange search.
    b.goto("http://127.0.0.1/dashboard/#/nodes");
    assert!(
        b.wait(10, "document.getElementById('count')"),
        "{}",
        b.text()
    );
    assert!(b.text().contains("14 node(s)"), "{}", b.text());
    assert_eq!(b.say("type #range n[01-03],storage"), "ok");
    assert!(
        b.wait(10, "document.getElementById('count') && document.getElementById('count').innerText == '5 node(s)'"),
        "the search did not narrow the list:\n{}",
        b.text()
    );
    let rows = b.say("eval Array.from(document.querySelectorAll('#nodes tbody tr td:first-child')).map(function(c){return c.innerText}).join(' ')");
    assert_eq!(serde_unquote(&rows), "n01 n02 n03 s1 s2");
    b.shot("nodes-search.png");
    assert_eq!(b.say("type #range nosuch"), "ok");
    assert!(
        b.wait(
            10,
            "document.body.innerText.includes('Invalid nodes and/or groups in noderange: nosuch')"
        ),
        "{}",
        b.text()
    );

    // A node's page: attributes, lease, timeline.
    b.goto("http://127.0.0.1/dashboard/#/node/n07");
    assert!(
        b.wait(10, "document.getElementById('timeline')"),
        "{}",
        b.text()
    );
    let t = b.text();
    assert!(t.contains("hosts.ip\t10.99.95.7"), "{t}");
    assert!(
        t.contains("10.99.95.7 for 52:54:00:99:95:05 (active)"),
        "{t}"
    );
    assert!(t.contains("dhcp-offer") && t.contains("dhcp-ack"), "{t}");
    b.shot("node.png");

    // Power from the node page: Wake-on-LAN reaches the node's segment.
    bh.ok(&["nodech", "n07", "nodehm.mgt=wol"]);
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.95.7/24",
        "dev",
        "bhc0",
    ]);
    let listener = pair
        .cli
        .command("/usr/bin/python3")
        .args(["-c", "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',9));s.settimeout(15);d,a=s.recvfrom(2048);print(d.hex())"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("listener");
    std::thread::sleep(Duration::from_millis(400));
    b.say("eval document.querySelector('#power button[data-action=wake]').click()");
    assert!(
        b.wait(15, "document.getElementById('power-out').innerText.includes('n07: wake sent to 10.99.95.255:9 (1 MAC)')"),
        "{}\ndaemon:\n{}",
        b.text(),
        d.dump()
    );
    let got = listener.wait_with_output().expect("listener");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        format!("{}{}", "ff".repeat(6), "525400999505".repeat(16))
    );
    b.shot("node-power.png");
    // A cross-site post (no X-Bootherd header) is refused, even from loopback.
    let o = pair
        .srv
        .command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "http://127.0.0.1/dashboard/api/node/n07/power/on",
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "403");
    drop(b);
    drop(d);
    std::thread::sleep(Duration::from_millis(100));
}
