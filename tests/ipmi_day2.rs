//! reventlog, rbeacon, rspreset, rpower nmi, rinstall and rnetboot against OpenIPMI's ipmi_sim;
//! what the commands claim is checked with ipmitool and the simulator's own chassis log.

mod common;
use common::ipmisim::{IpmiSim, PASSWORD, USER};
use common::Bh;

const IMG: &str = "rhels9.4-x86_64-install-compute";

fn add_node(bh: &Bh, name: &str, bmc: &str) {
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        name,
        "groups=all,ipmi",
        "mgt=ipmi",
        &format!("bmc={bmc}"),
        &format!("bmcusername={USER}"),
        &format!("bmcpassword={PASSWORD}"),
        "mac=52:54:00:99:82:02",
        "ip=10.99.82.2",
        "netboot=xnba",
    ]);
}

/// Add SEL Entry (storage 0x44) with a system event record: (sensor type, number, event
/// type/direction, event data 1-3).
fn add_sel(sim: &IpmiSim, stype: u8, num: u8, etype: u8, ed: [u8; 3]) {
    let bytes = [
        0u8, 0, 0x02, 0, 0, 0, 0, 0x20, 0, 0x04, stype, num, etype, ed[0], ed[1], ed[2],
    ];
    let mut args = vec!["raw".to_string(), "0x0a".into(), "0x44".into()];
    args.extend(bytes.iter().map(|b| format!("0x{b:02x}")));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    sim.ipmitool(&a);
}

fn calls(sim: &IpmiSim) -> String {
    std::fs::read_to_string(sim.chassis("calls.log")).unwrap_or_default()
}

#[test]
fn reventlog_reads_decodes_and_clears_the_sel() {
    let sim = IpmiSim::start();
    let bh = Bh::new();
    add_node(&bh, "n1", &sim.bmc());
    // An empty SEL first.
    sim.ipmitool(&["sel", "clear"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(bh.ok(&["reventlog", "n1"]), "n1: no SEL entries\n");
    // CPU Temp (sensor 1, a threshold sensor in the SDR): upper critical going high, reading 80
    // with threshold 72 (event data 1 0x59: both in bytes 2 and 3, offset 9).
    add_sel(&sim, 0x01, 0x01, 0x01, [0x59, 80, 72]);
    // A processor thermal trip (sensor-specific 0x6f, offset 1) on a sensor the SDR lacks,
    // deasserted.
    add_sel(&sim, 0x07, 0x40, 0xef, [0x01, 0xff, 0xff]);
    let listed = sim.ipmitool(&["sel", "list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");

    let out = bh.ok(&["reventlog", "n1", "all"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    // ipmi_sim stamps entries with its uptime: xCAT's "BMC Uptime <secs> s".
    assert!(lines[0].starts_with("n1: BMC Uptime "), "{out}");
    assert!(
        lines[0].ends_with(" s Temperature, Upper Critical - going high (CPU Temp reading 80 C (176 F) with threshold 72 C (162 F))"),
        "{out}"
    );
    assert!(
        lines[1].ends_with(" s Processor, Thermal Trip (Sensor 0x40) - Recovered"),
        "{out}"
    );
    // A count shows the first entries; -s starts from the newest.
    assert_eq!(bh.ok(&["reventlog", "n1", "1"]).lines().count(), 1);
    assert!(bh.ok(&["reventlog", "n1", "1"]).contains("Temperature"));
    let newest = bh.ok(&["reventlog", "n1", "1", "-s"]);
    assert!(newest.contains("Thermal Trip"), "{newest}");
    // clear, as ipmitool sees it.
    assert_eq!(bh.ok(&["reventlog", "n1", "clear"]), "n1: SEL cleared\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = sim.ipmitool_output(&["sel", "list"]);
    let text = String::from_utf8_lossy(&after.stdout).to_string()
        + &String::from_utf8_lossy(&after.stderr);
    assert!(text.contains("SEL has no entries"), "{text}");
    // An unknown argument is refused.
    bh.fail(&["reventlog", "n1", "sometimes"]);
}

#[test]
fn rbeacon_rspreset_and_nmi_reach_the_bmc() {
    let sim = IpmiSim::start();
    let bh = Bh::new();
    add_node(&bh, "n1", &sim.bmc());
    assert_eq!(bh.ok(&["rbeacon", "n1", "on"]), "n1: on\n");
    assert!(calls(&sim).contains("set identify 0 1"), "{}", calls(&sim));
    assert_eq!(bh.ok(&["rbeacon", "n1", "blink"]), "n1: blink\n");
    assert!(calls(&sim).contains("set identify 15"), "{}", calls(&sim));
    assert_eq!(bh.ok(&["rbeacon", "n1", "off"]), "n1: off\n");
    assert!(calls(&sim).contains("set identify 0 0"), "{}", calls(&sim));
    // The simulator does not report the identify state: a per-node error, exit 1.
    let o = bh.run(&["rbeacon", "n1", "stat"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n1: Error: the BMC does not report the chassis identify state\n"
    );
    bh.fail(&["rbeacon", "n1", "disco"]);

    sim.set_power(true);
    // ipmi_sim refuses the diagnostic interrupt (ipmitool's `chassis power diag` fails the
    // same way): the BMC's answer is the node's error.
    let diag = sim.ipmitool_output(&["chassis", "power", "diag"]);
    assert!(
        !diag.status.success(),
        "ipmi_sim now takes an NMI: expect n1: nmi here"
    );
    let o = bh.run(&["rpower", "n1", "nmi"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n1: Error: Chassis Control failed: 0xcc invalid data field in request\n"
    );

    // ipmi_sim has no Cold Reset either (ipmitool's raw 0x06 0x02 gets 0xc1): rspreset sends
    // it and reports the BMC's refusal for that node; a BMC that takes it prints "BMC reset".
    let raw = sim.ipmitool_output(&["raw", "0x06", "0x02"]);
    assert!(
        String::from_utf8_lossy(&raw.stderr).contains("rsp=0xc1"),
        "ipmi_sim now takes a cold reset: expect n1: BMC reset here"
    );
    let o = bh.run(&["rspreset", "n1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n1: Error: Cold Reset failed: 0xc1 invalid or unsupported command\n"
    );
    // The BMC still answers.
    assert_eq!(bh.ok(&["rpower", "n1", "stat"]), "n1: on\n");
}

#[test]
fn rinstall_sets_the_boot_state_the_boot_device_and_power_in_one_command() {
    let sim = IpmiSim::start();
    let bh = Bh::new();
    let tftp = bh.path("tftpboot");
    let img = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&img).expect("mkdir");
    std::fs::write(img.join("vmlinuz"), b"k").expect("k");
    std::fs::write(img.join("initrd.img"), b"i").expect("i");
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        IMG,
        "imagetype=linux",
        "provmethod=install",
        "osvers=rhels9.4",
        "osarch=x86_64",
        "profile=compute",
    ]);
    add_node(&bh, "n1", &sim.bmc());
    sim.set_power(false);
    let out = bh.ok(&["rinstall", "n1", &format!("osimage={IMG}")]);
    assert_eq!(out, "Provision node(s): n1\n");
    // The boot state, the boot device and the power, each as the simulator or the store has it.
    let st = bh.ok(&["nodels", "n1", "chain.currstate"]);
    assert!(st.contains("install") && st.contains("rhels9.4"), "{st}");
    assert_eq!(sim.state("boot"), "pxe");
    assert_eq!(sim.state("power"), "1");
    // -V shows every step.
    let out = bh.ok(&["rinstall", "n1", &format!("osimage={IMG}"), "-V"]);
    assert!(out.contains("Run command: nodeset n1"), "{out}");
    assert!(out.contains("n1: Network"), "{out}");
    assert!(out.contains("n1: on reset"), "{out}");

    // rnetboot: network boot now, no nodeset.
    sim.set_power(false);
    let _ = std::fs::remove_file(sim.chassis("boot"));
    let out = bh.ok(&["rnetboot", "n1"]);
    assert!(out.contains("n1: off on"), "{out}");
    assert_eq!(sim.state("boot"), "pxe");

    // A node whose BMC does not answer: rinstall says which step failed for it.
    bh.ok(&["chtab", "key=ipmitimeout", "site.value=0.5"]);
    bh.ok(&["chtab", "key=ipmiretries", "site.value=1"]);
    bh.ok(&["chdef", "n1", "bmc=127.0.0.1:9"]);
    let o = bh.run(&["rinstall", "n1", &format!("osimage={IMG}")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Failed to run 'rsetboot' against the following nodes: n1"),
        "{err}"
    );
}

/// A stand-in for the node's serial port (the far end of ipmi_sim's SOL): a TCP server that
/// answers each line (Enter) with the line in brackets and a login prompt, as a getty would.
fn serial_port() -> (u16, std::process::Child) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let child = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('127.0.0.1',{port}));s.listen(1)\nc,_=s.accept()\nb=b''\nwhile True:\n  d=c.recv(100)\n  if not d: break\n  b+=d\n  while b'\\r' in b:\n    line,b=b.split(b'\\r',1); c.sendall(b'<'+line+b'>\\r\\nVMSERIAL login: ')\n"
            ),
        ])
        .spawn()
        .expect("python3");
    std::thread::sleep(std::time::Duration::from_millis(400));
    (port, child)
}

#[test]
fn rcons_shows_the_serial_console_takes_input_and_leaves_on_tilde_dot() {
    use std::io::{Read, Write};
    let (port, mut serial) = serial_port();
    let sim = IpmiSim::start_sol(Some(&format!("tcp:127.0.0.1:{port}")));
    let bh = Bh::new();
    add_node(&bh, "n1", &sim.bmc());
    let log = bh.path("n1.console");
    let mut c = bh
        .cmd(&["rcons", "n1", "--log", &log.display().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rcons");
    let mut stdout = c.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 256];
        while let Ok(n) = stdout.read(&mut b) {
            if n == 0 {
                break;
            }
            s2.lock().expect("lock").extend_from_slice(&b[..n]);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&seen.lock().expect("lock")).to_string();
            if text.contains(needle) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no '{needle}' in: {text:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // Enter brings the node's prompt; typed input reaches the node and its answer comes back.
    let mut stdin = c.stdin.take().expect("stdin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"\r").expect("type");
    stdin.flush().expect("flush");
    wait_for("VMSERIAL login: ");
    stdin.write_all(b"root\r").expect("type");
    stdin.flush().expect("flush");
    wait_for("<root>");
    // ~. at the start of a line leaves, cleanly.
    stdin.write_all(b"~.").expect("escape");
    stdin.flush().expect("flush");
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = c.try_wait().expect("wait") {
            break st;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "rcons did not leave on ~."
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    c.stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "{err}");
    assert!(err.contains("[terminated rcons to n1]"), "{err}");
    // "~." itself never reached the node.
    let text = String::from_utf8_lossy(&seen.lock().expect("lock")).to_string();
    assert!(!text.contains("~."), "{text}");
    // --log kept what the console printed.
    let logged = std::fs::read_to_string(&log).expect("console log");
    assert!(
        logged.contains("VMSERIAL login: ") && logged.contains("<root>"),
        "{logged}"
    );
    // The payload was deactivated: a second rcons gets the console without -f.
    let mut again = bh
        .cmd(&["rcons", "n1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rcons");
    std::thread::sleep(std::time::Duration::from_millis(800));
    drop(again.stdin.take());
    let o = again.wait_with_output().expect("rcons");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("SOL Session operational"), "{err}");
    let _ = serial.kill();
    let _ = serial.wait();
}

#[test]
fn makeconservercf_writes_xcats_stanzas_and_removes_them_again() {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "mgt=ipmi",
        "cons=ipmi",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n2",
        "groups=all",
        "cons=cyclades",
        "termserver=ts1",
        "termport=7",
    ]);
    // No console settings: no entry. A console method bootherd has no client for: ignored.
    bh.ok(&["mkdef", "-t", "node", "-o", "n3", "groups=all", "mgt=ipmi"]);
    bh.ok(&["mkdef", "-t", "node", "-o", "n4", "groups=all", "cons=kvm"]);
    let cf = bh.path("conserver.cf");
    std::fs::write(
        &cf,
        "# the site's own\nconsole manual { type host; host m1; }\n",
    )
    .expect("cf");
    let file = cf.display().to_string();
    let out = bh.ok(&["makeconservercf", "--file", &file]);
    assert!(out.contains("n4: ignore, console method 'kvm'"), "{out}");
    let text = std::fs::read_to_string(&cf).expect("cf");
    assert!(text.starts_with("default cyclades { type host; portbase 7000; portinc 1; }\ndefault mrv { type host; portbase 2000; portinc 100; }\naccess * {\n  trusted 127.0.0.1;\n"), "{text}");
    assert!(text.contains("default * {\n  logfile /var/log/consoles/&;\n  timestamp 1lab;\n  rw *;\n  master localhost;\n}\n"), "{text}");
    assert!(
        text.contains("console manual { type host; host m1; }\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "#xCAT BEGIN n1 CONS\nconsole n1 {{\n  type exec;\n  exec {} --db {} rcons n1 -f;\n}}\n#xCAT END n1 CONS\n",
        common::bin(),
        bh.db
    )), "{text}");
    assert!(text.contains("#xCAT BEGIN ts1 TS\ndefault ts1 {\n  include cyclades;\n  host ts1;\n}\n#xCAT END ts1 TS\n"), "{text}");
    assert!(
        text.contains(
            "#xCAT BEGIN n2 CONS\nconsole n2 {\n include ts1;\n port 7;\n}\n#xCAT END n2 CONS\n"
        ),
        "{text}"
    );
    assert!(!text.contains("n3"), "{text}");
    // Running it again gives the same lines (stanzas are replaced, not added; as in xCAT the
    // new access/default headers go before the terminal-server defaults already there).
    bh.ok(&["makeconservercf", "--file", &file]);
    let again = std::fs::read_to_string(&cf).expect("cf");
    let sorted = |t: &str| {
        let mut v: Vec<String> = t.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&again), sorted(&text));
    // -d removes one node's stanza only.
    bh.ok(&["makeconservercf", "--file", &file, "-d", "n1"]);
    let after = std::fs::read_to_string(&cf).expect("cf");
    assert!(!after.contains("console n1 {"), "{after}");
    assert!(after.contains("console n2 {"), "{after}");
    assert!(after.contains("console manual"), "{after}");
}

#[test]
fn rcons_shows_a_qemu_vms_serial_console_through_ipmi_sim() {
    use std::io::{Read, Write};
    common::need(&[("qemu-system-x86_64", "qemu-system-x86")]);
    let bh = Bh::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let mon = bh.path("qemu-monitor.sock");
    // A VM whose serial port is its console (ipmi_sim's SOL connects to it), stopped (-S) until
    // the console is attached: a kernel whose initramfs runs a shell on that console, so what
    // is typed through rcons can be seen to reach it.
    let assets = common::vm::assets();
    let root = bh.path("initramfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::create_dir_all(root.join("proc")).expect("mkdir");
    std::fs::copy(assets.join("busybox"), root.join("bin/busybox")).expect("busybox");
    std::fs::write(
        root.join("init"),
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\necho READY-FOR-INPUT\nexec sh\n",
    )
    .expect("init");
    common::sh(&["chmod", "755", &root.join("init").display().to_string()]);
    let cpio = bh.path("initramfs.cpio");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
            root.display(),
            cpio.display()
        ))
        .output()
        .expect("cpio");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let vm = std::process::Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-accel", "tcg", "-smp", "1", "-m", "256"])
        .arg("-kernel")
        .arg(assets.join("vmlinuz"))
        .arg("-initrd")
        .arg(&cpio)
        .args([
            "-append",
            "console=ttyS0,115200 rdinit=/init quiet panic=-1",
        ])
        .args([
            "-display",
            "none",
            "-vga",
            "none",
            "-net",
            "none",
            "-no-reboot",
            "-S",
        ])
        .args([
            "-serial",
            &format!("tcp:127.0.0.1:{port},server=on,wait=off"),
        ])
        .args([
            "-monitor",
            &format!("unix:{},server=on,wait=off", mon.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(bh.path("qemu.log")).expect("qemu log"))
        .spawn()
        .expect("qemu");
    // The VM goes when the test does, failed or not.
    struct Vm(std::process::Child);
    impl Drop for Vm {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut vm = Vm(vm);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !mon.exists() {
        assert!(std::time::Instant::now() < deadline, "qemu did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sim = IpmiSim::start_sol(Some(&format!("tcp:127.0.0.1:{port}")));
    add_node(&bh, "n1", &sim.bmc());
    let mut c = bh
        .cmd(&["rcons", "n1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rcons");
    let mut stdout = c.stdout.take().expect("stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok(n) = stdout.read(&mut b) {
            if n == 0 {
                break;
            }
            s2.lock().expect("lock").extend_from_slice(&b[..n]);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Run the VM.
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket,time\ns=socket.socket(socket.AF_UNIX);s.connect('{}');time.sleep(0.3);s.recv(4096);s.sendall(b'cont\\n');time.sleep(0.5)\n",
                mon.display()
            ),
        ])
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "{} (qemu: {:?}: {})",
        String::from_utf8_lossy(&o.stderr),
        vm.0.try_wait(),
        std::fs::read_to_string(bh.path("qemu.log")).unwrap_or_default()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = String::from_utf8_lossy(&seen.lock().expect("lock")).to_string();
        if text.contains("READY-FOR-INPUT") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(60),
            "no shell on the console: {text:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Typed input reaches the VM's shell, and its answer comes back.
    let mut stdin = c.stdin.take().expect("stdin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"echo MARK$((6*7))\r").expect("type");
    stdin.flush().expect("flush");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&seen.lock().expect("lock")).to_string();
        if text.contains("MARK42") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the typed command did not reach the VM's shell: {text:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    stdin.write_all(b"\r~.").expect("escape");
    stdin.flush().expect("flush");
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = c.try_wait().expect("wait") {
            break st;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "rcons did not leave on ~."
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    drop(vm);
}
