//! HTTP against real clients (curl, wget): `bootherd serve --no-dhcp --no-tftp` in one network
//! namespace, the clients in another, files compared byte for byte (SHA-256 for the large one).

mod common;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use common::{need, plain, sh, sha256, Bh, Daemon, Pair};

const SERVER: &str = "10.99.90.1";
const IMG: &str = "rhels8.6-x86_64-install-compute";

/// A store whose `site.installdir` and `site.tftpdir` are scratch roots, `bootherd serve` on
/// 10.99.90.1 (port 80) and a client namespace at 10.99.90.2.
struct Lab {
    bh: Bh,
    pair: Pair,
    daemon: Option<Daemon>,
    install: PathBuf,
    tftp: PathBuf,
}

impl Lab {
    /// Roots created and recorded in the store; the daemon is not started yet.
    fn new(tag: &str) -> Lab {
        need(&[
            ("curl", "curl"),
            ("wget", "wget"),
            ("sha256sum", "coreutils"),
        ]);
        let bh = Bh::new();
        let install = bh.path("install");
        let tftp = bh.path("tftpboot");
        std::fs::create_dir_all(&install).expect("mkdir install");
        std::fs::create_dir_all(&tftp).expect("mkdir tftpboot");
        bh.ok(&[
            "chtab",
            "key=installdir",
            &format!("site.value={}", install.display()),
        ]);
        bh.ok(&[
            "chtab",
            "key=tftpdir",
            &format!("site.value={}", tftp.display()),
        ]);
        let pair = Pair::new(tag, &format!("{SERVER}/24"));
        sh(&[
            "ip",
            "-n",
            &pair.cli.0,
            "addr",
            "add",
            "10.99.90.2/24",
            "dev",
            "bhc0",
        ]);
        Lab {
            bh,
            pair,
            daemon: None,
            install,
            tftp,
        }
    }

    fn start(&mut self) {
        let d = Daemon::start(&self.bh, &self.pair.srv, &["--no-dhcp", "--no-tftp"]);
        assert!(
            d.wait_for("HTTP listening", 5),
            "no HTTP service in bootherd serve:\n{}",
            d.dump()
        );
        self.daemon = Some(d);
    }

    fn dump(&self) -> String {
        self.daemon.as_ref().map(|d| d.dump()).unwrap_or_default()
    }

    /// Runs a client in the client namespace, bounded by `timeout`.
    fn client(&self, secs: u32, args: &[&str]) -> Output {
        self.pair
            .cli
            .command("timeout")
            .arg(secs.to_string())
            .args(args)
            .output()
            .expect("run client")
    }

    /// curl that must exit 0 (HTTP errors are statuses, not failures, without -f); stdout.
    fn curl(&self, args: &[&str]) -> Vec<u8> {
        let mut a = vec!["curl", "-sS"];
        a.extend_from_slice(args);
        let o = self.client(60, &a);
        assert!(
            o.status.success(),
            "{a:?} failed ({}): {}\nserver log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.dump()
        );
        o.stdout
    }

    /// The status code of a GET (`--path-as-is`: the client sends `..` as it is).
    fn status(&self, path: &str) -> String {
        let url = format!("http://{SERVER}{path}");
        String::from_utf8(self.curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]))
        .expect("utf8")
    }

    /// Response headers of a HEAD, names lower-cased.
    fn head(&self, path: &str) -> BTreeMap<String, String> {
        let url = format!("http://{SERVER}{path}");
        String::from_utf8(self.curl(&["-I", &url]))
            .expect("utf8")
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect()
    }

    /// Daemon log lines (colour codes removed) containing every one of `needles`.
    /// Log lines with all of `needles`, waiting up to 3 s for the first (the daemon's log reaches
    /// the test through a pipe and a reader thread, a moment after the request is answered).
    fn log_lines_soon(&self, needles: &[&str]) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let l = self.log_lines(needles);
            if !l.is_empty() || std::time::Instant::now() > deadline {
                return l;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        let Some(d) = self.daemon.as_ref() else {
            return Vec::new();
        };
        d.log
            .lock()
            .map(|l| {
                l.iter()
                    .map(|x| plain(x))
                    .filter(|x| needles.iter().all(|n| x.contains(n)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn write(p: &Path, content: &[u8]) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
}

/// Bytes that differ at every position (so a misplaced range shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 8) as u8 ^ seed)
        .collect()
}

#[test]
fn head_ranges_conditionals_and_a_1gb_file_byte_exact() {
    let mut lab = Lab::new("hr");
    let data = pattern(1000, 7);
    write(&lab.install.join("rhels8.6/x86_64/images/data.bin"), &data);
    write(
        &lab.install.join("rhels8.6/x86_64/repodata/repomd.xml"),
        b"<repomd/>\n",
    );
    // 1 GiB, sparse with a pattern at the start, the middle and the end: fast to create, and a
    // misplaced byte anywhere near those shows in the digest.
    let big = lab.install.join("big.iso");
    {
        let mut f = std::fs::File::create(&big).expect("create");
        f.set_len(1 << 30).expect("set_len");
        for (at, seed) in [(0u64, 1u8), (512 << 20, 2), ((1 << 30) - (1 << 20), 3)] {
            f.seek(SeekFrom::Start(at)).expect("seek");
            f.write_all(&pattern(1 << 20, seed)).expect("write");
        }
    }
    lab.start();

    // HEAD: length and type, no body.
    let h = lab.head("/install/rhels8.6/x86_64/images/data.bin");
    assert_eq!(
        h.get("content-length").map(String::as_str),
        Some("1000"),
        "{h:?}"
    );
    assert_eq!(
        h.get("content-type").map(String::as_str),
        Some("application/octet-stream")
    );
    assert_eq!(h.get("accept-ranges").map(String::as_str), Some("bytes"));
    let lm = h.get("last-modified").cloned().expect("Last-Modified");
    let h = lab.head("/install/rhels8.6/x86_64/repodata/repomd.xml");
    assert_eq!(
        h.get("content-type").map(String::as_str),
        Some("application/xml")
    );
    assert_eq!(h.get("content-length").map(String::as_str), Some("10"));

    // Byte ranges, byte-exact.
    let url = format!("http://{SERVER}/install/rhels8.6/x86_64/images/data.bin");
    assert_eq!(lab.curl(&["-r", "100-199", &url]), data[100..200]);
    assert_eq!(lab.curl(&["-r", "990-", &url]), data[990..]);
    assert_eq!(lab.curl(&["-r", "-5", &url]), data[995..]);
    let meta = String::from_utf8(lab.curl(&["-r", "100-199", "-o", "/dev/null", "-D", "-", &url]))
        .expect("utf8");
    assert!(meta.starts_with("HTTP/1.1 206"), "{meta}");
    assert!(
        meta.contains("Content-Range: bytes 100-199/1000\r\n"),
        "{meta}"
    );
    assert!(meta.contains("Content-Length: 100\r\n"), "{meta}");
    let code = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend_from_slice(&["-o", "/dev/null", "-w", "%{http_code}", &url]);
        String::from_utf8(lab.curl(&a)).expect("utf8")
    };
    assert_eq!(code(&["-r", "1000-"]), "416");
    assert_eq!(
        code(&["-r", "0-1,5-6"]),
        "200",
        "several ranges: the whole file"
    );
    assert_eq!(code(&["-H", &format!("If-Modified-Since: {lm}")]), "304");
    assert_eq!(code(&["-X", "POST"]), "405");
    assert_eq!(code(&["-X", "DELETE"]), "405");
    // An interrupted download resumes (wget -c sends a Range from what it has).
    let part = lab.bh.path("resume.bin");
    std::fs::write(&part, &data[..300]).expect("write");
    let o = lab.client(
        20,
        &["wget", "-q", "-c", "-O", &part.display().to_string(), &url],
    );
    assert!(
        o.status.success(),
        "wget -c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&part).expect("read"), data);

    // 1 GiB streamed, digest compared (the client hashes as it receives: nothing on disk).
    let started = Instant::now();
    let want = sha256(&big);
    let hashed = started.elapsed();
    let started = Instant::now();
    let o = lab.client(
        60,
        &[
            "sh",
            "-c",
            &format!("curl -sS --fail http://{SERVER}/install/big.iso | sha256sum"),
        ],
    );
    assert!(
        o.status.success(),
        "1 GiB fetch: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(got, want, "the 1 GiB file arrived different");
    eprintln!(
        "1 GiB: source digest {:.2} s, fetch+digest {:.2} s",
        hashed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn wget_r_mirrors_postscripts() {
    let mut lab = Lab::new("hw");
    let ps = lab.install.join("postscripts");
    let files: &[(&str, Vec<u8>)] = &[
        ("syslog", b"#!/bin/sh\necho syslog\n".to_vec()),
        ("xcatdsklspost", b"#!/bin/sh\n".to_vec()),
        ("_xcat/ca.pem", b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        ("hostkeys/ssh_host_rsa_key.pub", b"ssh-rsa AAAA\n".to_vec()),
        ("with space & more.sh", b"x\n".to_vec()),
        ("deep/a/b/c.txt", b"deep\n".to_vec()),
        ("big.bin", pattern(3 << 20, 9)),
    ];
    for (rel, content) in files {
        write(&ps.join(rel), content);
    }
    std::fs::create_dir_all(ps.join("emptydir")).expect("mkdir");
    // Served as the file it points at (inside), or not offered at all (outside, private).
    symlink("syslog", ps.join("link-inside")).expect("symlink");
    symlink("/etc/passwd", ps.join("link-out")).expect("symlink");
    symlink("/etc", ps.join("dir-out")).expect("symlink");
    write(&ps.join("private"), b"secret");
    std::fs::set_permissions(ps.join("private"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    lab.start();

    // The redirect xCAT's scripts rely on when the slash is missing.
    let o = String::from_utf8(lab.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &format!("http://{SERVER}/install/postscripts"),
    ]))
    .expect("utf8");
    assert_eq!(o, format!("301 http://{SERVER}/install/postscripts/"));

    // xCAT's own command line (xcatdsklspost), into a scratch directory.
    let dest = lab.bh.path("xcatpost");
    let run = |what: &str| {
        let started = Instant::now();
        let o = lab.client(
            60,
            &[
                "wget",
                "-nv",
                "-l",
                "inf",
                "-N",
                "-r",
                "-e",
                "robots=off",
                "-nH",
                "--cut-dirs=2",
                "--reject",
                "index.html*",
                "--no-parent",
                "-t",
                "1",
                "-T",
                "10",
                "-P",
                &dest.display().to_string(),
                &format!("http://{SERVER}/install/postscripts/"),
            ],
        );
        assert!(
            o.status.success(),
            "{what}: wget -r failed ({}):\n{}\nserver log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            lab.dump()
        );
        eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
    };
    run("wget -r");
    let mut want: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(r, c)| (r.to_string(), c.clone()))
        .collect();
    want.insert("link-inside".into(), files[0].1.clone());
    // xCAT's default postscripts, which `bootherd serve` adds where the site has none of its own
    // (the site's syslog above is kept).
    for s in ["otherpkgs", "remoteshell", "syncfiles"] {
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("postscripts")
            .join(s);
        want.insert(
            s.into(),
            std::fs::read(shipped).expect("shipped postscript"),
        );
    }
    let got = tree(&dest);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the mirrored tree"
    );
    assert!(got == want, "a mirrored file differs");
    // Again with -N: every file is current, and the server says so (304) instead of sending it.
    run("wget -r -N again");
    assert!(
        !lab.log_lines_soon(&["status=304"]).is_empty(),
        "no conditional GET was answered 304:\n{}",
        lab.dump()
    );
    assert!(tree(&dest) == want);
}

/// Every regular file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn nothing_resolves_outside_its_root() {
    let mut lab = Lab::new("hx");
    write(&lab.install.join("ok.txt"), b"ok\n");
    write(&lab.tftp.join("pxelinux.0"), b"pxe");
    let secret = lab.bh.path("secret");
    write(&secret, b"root:x:0:0:outside\n");
    symlink("/etc/passwd", lab.install.join("abs-out")).expect("symlink");
    symlink("../secret", lab.install.join("rel-out")).expect("symlink");
    symlink("/etc", lab.install.join("etcdir")).expect("symlink");
    symlink("../install", lab.tftp.join("to-install")).expect("symlink");
    symlink("/proc/self/root/etc/passwd", lab.tftp.join("magic")).expect("symlink");
    lab.start();

    assert_eq!(lab.status("/install/ok.txt"), "200");
    assert_eq!(lab.status("/tftpboot/pxelinux.0"), "200");
    let refused = [
        "/install/../secret",
        "/install/../../../../etc/passwd",
        "/install/%2e%2e/secret",
        "/install/%2E%2E/%2e%2e/%2e%2e/etc/passwd",
        "/install/.%2e/secret",
        "/install/..%2fsecret",
        "/install/x%2f..%2f..%2fsecret",
        "/tftpboot/..%5c..%5cetc%5cpasswd",
        "/tftpboot/%2e%2e/install/ok.txt",
        "/install/abs-out",
        "/install/rel-out",
        "/install/etcdir/passwd",
        "/tftpboot/to-install/ok.txt",
        "/tftpboot/magic",
    ];
    for path in refused {
        let body = lab.curl(&["--path-as-is", &format!("http://{SERVER}{path}")]);
        assert!(
            !String::from_utf8_lossy(&body).contains("root:x:0"),
            "{path} leaked a file from outside the root"
        );
        assert_eq!(lab.status(path), "403", "{path}");
    }
    // One log line per refused request (each was asked for twice).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut lines = lab.log_lines(&["HTTP refused"]);
    while lines.len() < 2 * refused.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        lines = lab.log_lines(&["HTTP refused"]);
    }
    assert_eq!(lines.len(), 2 * refused.len(), "{}", lines.join("\n"));
    // curl without --path-as-is resolves `..` itself and asks for what is left: not found here.
    assert_eq!(
        String::from_utf8(lab.curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{SERVER}/install/../etc/passwd"),
        ]))
        .expect("utf8"),
        "404"
    );
}

/// A node booting by xNBA and one by pxelinux, both set to install, as tests/nodeset.rs does.
fn boot_setup(lab: &Lab) {
    let dir = lab.tftp.join(format!("xcat/osimage/{IMG}"));
    write(&dir.join("vmlinuz"), b"kernel");
    write(&dir.join("initrd.img"), b"initrd");
    let bh = &lab.bh;
    bh.ok(&["chtab", "key=master", "site.value=10.0.0.1"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        IMG,
        "imagetype=linux",
        "provmethod=install",
        "osvers=rhels8.6",
        "osarch=x86_64",
        "profile=compute",
    ]);
    bh.ok(&[
        "nodeadd",
        "n1-n2",
        "groups=compute,all",
        "noderes.netboot=xnba",
        "noderes.xcatmaster=10.0.0.1",
    ]);
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|n(\d+)|10.0.1.($1+4)|",
        r"mac.mac=|n(\d+)|52:54:00:aa:00:0($1)|",
    ]);
    bh.ok(&["chdef", "n2", "netboot=pxe"]);
    bh.ok(&["nodeset", "n1-n2", &format!("osimage={IMG}")]);
}

/// `nodeset <node> show`, split into (path under the TFTP root, content) for rendered files.
fn shown_files(lab: &Lab, node: &str) -> Vec<(String, String)> {
    let show = lab.bh.ok(&["nodeset", node, "show"]);
    let prefix = format!("# {node}: {}/", lab.tftp.display());
    let mut out: Vec<(String, String)> = Vec::new();
    for line in show.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(&prefix) {
            // Aliases (`a -> b (…)`) name a binary on disk, not rendered text.
            out.push((rest.trim_end().to_string(), String::new()));
        } else if let Some((_, content)) = out.last_mut() {
            content.push_str(line);
        }
    }
    out.retain(|(p, _)| !p.contains(" -> "));
    out
}

#[test]
fn rendered_boot_files_are_what_nodeset_show_prints() {
    let mut lab = Lab::new("hb");
    boot_setup(&lab);
    lab.start();
    let n1 = shown_files(&lab, "n1");
    assert!(
        n1.iter().any(|(p, _)| p == "xcat/xnba/nodes/n1"),
        "nodeset show lists no xNBA file for n1: {n1:?}"
    );
    let n2 = shown_files(&lab, "n2");
    assert!(
        n2.iter()
            .any(|(p, _)| p == "pxelinux.cfg/01-52-54-00-aa-00-02")
            && n2.iter().any(|(p, _)| p == "pxelinux.cfg/0A000106"),
        "pxelinux files by MAC and hex IP for n2: {n2:?}"
    );
    for (path, want) in n1.iter().chain(&n2) {
        let url = format!("http://{SERVER}/tftpboot/{path}");
        let got = lab.curl(&["--fail", &url]);
        assert_eq!(String::from_utf8_lossy(&got), *want, "{path}");
    }
    let h = lab.head("/tftpboot/xcat/xnba/nodes/n1");
    assert!(
        h.get("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{h:?}"
    );
    let xnba = n1
        .iter()
        .find(|(p, _)| p == "xcat/xnba/nodes/n1")
        .map(|(_, c)| c.len().to_string());
    assert_eq!(h.get("content-length"), xnba.as_ref(), "{h:?}");
    // Files on disk under the TFTP root, next to the rendered ones.
    assert_eq!(
        lab.curl(&[&format!(
            "http://{SERVER}/tftpboot/xcat/osimage/{IMG}/vmlinuz"
        )]),
        b"kernel"
    );
    // A node that is not set to boot has nothing rendered.
    assert_eq!(lab.status("/tftpboot/xcat/xnba/nodes/n9"), "404");
    // nodeset while the daemon runs: the next request sees the new state.
    lab.bh.ok(&["nodeset", "n1", "boot"]);
    let want = shown_files(&lab, "n1")
        .into_iter()
        .find(|(p, _)| p == "xcat/xnba/nodes/n1")
        .map(|(_, c)| c)
        .expect("n1's xNBA file after nodeset boot");
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = lab.curl(&[&format!("http://{SERVER}/tftpboot/xcat/xnba/nodes/n1")]);
        if String::from_utf8_lossy(&got) == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving the old file:\n{}",
            String::from_utf8_lossy(&got)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn sysclone_images_are_served_to_nodes_only() {
    let mut lab = Lab::new("hsc");
    let etc = lab.install.join("sysclone/images/gold/etc");
    std::fs::create_dir_all(&etc).expect("mkdir");
    write(&etc.join("shadow"), b"root:$6$secret:19000:0:99999:7:::\n");
    write(&lab.install.join("sysclone/images/gold.tar"), b"tar bytes");
    write(&lab.install.join("open.txt"), b"anyone\n");
    lab.start();
    // 10.99.90.2 (the client) is no node yet: a golden node's files are not for it.
    for path in [
        "/install/sysclone/images/gold/etc/shadow",
        "/install/sysclone/images/gold.tar",
        "/install/%73ysclone/images/gold.tar",
        "/install//sysclone/./images/gold.tar",
    ] {
        assert_eq!(lab.status(path), "403", "{path}\n{}", lab.dump());
    }
    assert_eq!(lab.status("/install/open.txt"), "200");
    lab.bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.90.2",
    ]);
    assert_eq!(
        lab.curl(&[&format!("http://{SERVER}/install/sysclone/images/gold.tar")]),
        b"tar bytes"
    );
}
