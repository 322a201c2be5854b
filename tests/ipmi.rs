//! rpower / rsetboot / rinv / rvitals over IPMI 2.0 against OpenIPMI `ipmi_sim` BMCs on
//! loopback; every claim the binary makes is checked with `ipmitool -I lanplus`, or with the
//! simulator's own chassis state files, never with our own client.

mod common;
use common::ipmisim::{IpmiSim, PASSWORD, USER};
use common::Bh;

/// A store with node `name` managed over IPMI by `sim`.
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
    ]);
}

/// Short timeouts so the unreachable cases finish quickly.
fn quick(bh: &Bh) {
    bh.ok(&["chtab", "key=ipmitimeout", "site.value=0.5"]);
    bh.ok(&["chtab", "key=ipmiretries", "site.value=2"]);
}

fn power(sim: &IpmiSim) -> String {
    let o = sim.ipmitool(&["chassis", "power", "status"]);
    o.trim().to_string()
}

#[test]
fn rpower_drives_several_bmcs() {
    let sims: Vec<IpmiSim> = (0..3).map(|_| IpmiSim::start()).collect();
    let bh = Bh::new();
    for (i, s) in sims.iter().enumerate() {
        add_node(&bh, &format!("n{}", i + 1), &s.bmc());
    }
    assert_eq!(
        bh.ok(&["rpower", "n1-n3", "stat"]),
        "n1: off\nn2: off\nn3: off\n"
    );
    for s in &sims {
        assert_eq!(power(s), "Chassis Power is off");
    }

    assert_eq!(bh.ok(&["rpower", "ipmi", "on"]), "n1: on\nn2: on\nn3: on\n");
    for s in &sims {
        assert_eq!(power(s), "Chassis Power is on");
    }
    assert_eq!(
        bh.ok(&["nodels", "n1-n3", "nodelist.status"]),
        "n1: powering-on\nn2: powering-on\nn3: powering-on\n"
    );
    let audit = bh.ok(&["tabdump", "auditlog"]);
    assert!(
        audit.contains("\"rpower\"") && audit.contains("ipmi"),
        "{audit}"
    );
    // `state` is `stat`; on for a node already on sends nothing and says on.
    assert_eq!(bh.ok(&["rpower", "n1", "state"]), "n1: on\n");
    assert_eq!(bh.ok(&["rpower", "n1", "on"]), "n1: on\n");

    assert_eq!(bh.ok(&["rpower", "n1,n2", "off"]), "n1: off\nn2: off\n");
    assert_eq!(power(&sims[0]), "Chassis Power is off");
    assert_eq!(power(&sims[1]), "Chassis Power is off");
    assert_eq!(power(&sims[2]), "Chassis Power is on");
    assert_eq!(
        bh.ok(&["nodels", "n1-n3", "nodelist.status"]),
        "n1: powering-off\nn2: powering-off\nn3: powering-on\n"
    );

    // reset: only an "on" node is reset (the simulator counts resets).
    assert_eq!(bh.ok(&["rpower", "n2,n3", "reset"]), "n2: off\nn3: reset\n");
    assert_eq!(sims[2].state("resets"), "1");
    assert_eq!(sims[1].state("resets"), "");
    assert_eq!(power(&sims[2]), "Chassis Power is on");

    // boot: on when off ("off on"), reset when on ("on reset").
    assert_eq!(
        bh.ok(&["rpower", "n1,n3", "boot"]),
        "n1: off on\nn3: on reset\n"
    );
    assert_eq!(power(&sims[0]), "Chassis Power is on");
    assert_eq!(sims[2].state("resets"), "2");
    assert_eq!(sims[0].state("resets"), "");

    // softoff and cycle reach the chassis too.
    assert_eq!(bh.ok(&["rpower", "n1", "softoff"]), "n1: softoff\n");
    let calls = std::fs::read_to_string(sims[0].chassis("calls.log")).unwrap_or_default();
    assert!(
        calls.contains("set shutdown 1") || calls.contains("set power 0"),
        "{calls}"
    );
    assert_eq!(bh.ok(&["rpower", "n3", "cycle"]), "n3: cycle\n");
    let calls = std::fs::read_to_string(sims[2].chassis("calls.log")).unwrap_or_default();
    assert!(calls.contains("set power 0"), "{calls}");
}

#[test]
fn rsetboot_sets_pxe_as_ipmitool_reads_it() {
    let sim = IpmiSim::start();
    let bh = Bh::new();
    add_node(&bh, "n1", &sim.bmc());
    let out = bh.ok(&["rsetboot", "n1", "net"]);
    assert!(out.starts_with("n1: Network"), "{out}");
    let p5 = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
    assert!(p5.contains("Force PXE"), "{p5}");
    assert_eq!(sim.state("boot"), "pxe");

    let out = bh.ok(&["rsetboot", "n1", "hd", "-p"]);
    assert!(out.starts_with("n1: Hard Drive"), "{out}");
    let p5 = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
    assert!(p5.contains("Force Boot from default Hard-Drive"), "{p5}");
    let out = bh.ok(&["rsetboot", "n1", "stat"]);
    assert!(out.starts_with("n1: Hard Drive"), "{out}");
    assert!(bh.ok(&["rsetboot", "n1", "cd"]).starts_with("n1: CD/DVD"));
    assert!(sim
        .ipmitool(&["chassis", "bootparam", "get", "5"])
        .contains("Force Boot from CD/DVD"));
    assert!(bh
        .ok(&["rsetboot", "n1", "setup"])
        .starts_with("n1: BIOS Setup"));
    assert_eq!(
        bh.ok(&["rsetboot", "n1", "def"]),
        "n1: boot override inactive\n"
    );
    let p5 = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
    assert!(p5.contains("No override"), "{p5}");
    // A bad device is a command-line error.
    let err = bh.fail(&["rsetboot", "n1", "usb"]);
    assert!(err.contains("not an rsetboot device"), "{err}");
}

/// The value column of `ipmitool sensor` for `name`, as a number.
fn ipmitool_sensor(sensor: &str, name: &str) -> f64 {
    let line = sensor
        .lines()
        .find(|l| l.split('|').next().map(str::trim) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in ipmitool sensor:\n{sensor}"));
    line.split('|')
        .nth(1)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no value in {line}"))
}

/// `name:   value unit…` from rvitals/rinv output for node `node`.
fn field<'a>(out: &'a str, node: &str, name: &str) -> &'a str {
    let prefix = format!("{node}: {name}:");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} for {node} in:\n{out}"))
}

#[test]
fn rinv_and_rvitals_show_the_simulators_inventory_and_sensors() {
    let sims = [IpmiSim::start(), IpmiSim::start()];
    let bh = Bh::new();
    add_node(&bh, "n1", &sims[0].bmc());
    add_node(&bh, "n2", &sims[1].bmc());

    let mc = sims[0].ipmitool(&["mc", "info"]);
    let fru = sims[0].ipmitool(&["fru", "print", "0"]);
    let tool = |text: &str, key: &str| -> String {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} not in:\n{text}"))
    };
    let inv = bh.ok(&["rinv", "n1,n2"]);
    for n in ["n1", "n2"] {
        assert!(field(&inv, n, "Manufacturer ID").contains(&tool(&mc, "Manufacturer ID")));
        assert!(tool(&mc, "Product ID").starts_with(field(&inv, n, "Product ID")));
        assert_eq!(field(&inv, n, "Device ID"), tool(&mc, "Device ID"));
        assert_eq!(
            field(&inv, n, "BMC Firmware"),
            tool(&mc, "Firmware Revision")
        );
        assert_eq!(
            field(&inv, n, "System Manufacturer"),
            tool(&fru, "Product Manufacturer")
        );
        assert_eq!(
            field(&inv, n, "System Description"),
            tool(&fru, "Product Name")
        );
        assert_eq!(
            field(&inv, n, "System Model/MTM"),
            tool(&fru, "Product Part Number")
        );
        assert_eq!(
            field(&inv, n, "System Revision"),
            tool(&fru, "Product Version")
        );
        assert_eq!(
            field(&inv, n, "System Serial Number"),
            tool(&fru, "Product Serial")
        );
        assert_eq!(
            field(&inv, n, "System Asset Number"),
            tool(&fru, "Product Asset Tag")
        );
        assert_eq!(
            field(&inv, n, "Chassis Serial Number"),
            tool(&fru, "Chassis Serial")
        );
        assert_eq!(
            field(&inv, n, "Chassis Part Number"),
            tool(&fru, "Chassis Part Number")
        );
        assert_eq!(
            field(&inv, n, "Board manufacturer"),
            tool(&fru, "Board Mfg")
        );
        assert_eq!(
            field(&inv, n, "Board Description"),
            tool(&fru, "Board Product")
        );
        assert_eq!(
            field(&inv, n, "Board Serial Number"),
            tool(&fru, "Board Serial")
        );
        assert_eq!(
            field(&inv, n, "Board Model Number"),
            tool(&fru, "Board Part Number")
        );
        // ipmitool: "Sun Dec 27 00:00:00 2015 UTC".
        assert!(tool(&fru, "Board Mfg Date").contains("Dec 27 00:00:00 2015"));
        assert_eq!(field(&inv, n, "Board manufacture date"), "2015-12-27 00:00");
    }
    // xCAT's layout: label and colon padded to 20 columns.
    assert!(inv.contains("n1: BMC Firmware:        9.08\n"), "{inv}");
    // Item filters.
    assert_eq!(
        bh.ok(&["rinv", "n1", "serial"]),
        "n1: System Serial Number: PRODSER99\nn1: Chassis Serial Number: CHSER123\n"
    );
    assert_eq!(
        bh.ok(&["rinv", "n1", "firm"]),
        "n1: BMC Firmware:        9.08\n"
    );

    let sensor = sims[0].ipmitool(&["sensor"]);
    let vit = bh.ok(&["rvitals", "n1,n2"]);
    let num = |v: &str| -> f64 {
        v.split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("no number in {v}"))
    };
    for n in ["n1", "n2"] {
        for name in ["CPU Temp", "12V", "Fan 1", "Inlet Temp", "PSU Power"] {
            let ours = num(field(&vit, n, name));
            let theirs = ipmitool_sensor(&sensor, name);
            assert!((ours - theirs).abs() < 1e-6, "{name}: {ours} vs {theirs}");
        }
        assert_eq!(field(&vit, n, "Power Status"), "off");
    }
    assert!(
        vit.contains("n1: CPU Temp:                      45 C (113 F)\n"),
        "{vit}"
    );
    assert!(
        vit.contains("n1: 12V:                           12.06 Volts\n"),
        "{vit}"
    );
    assert!(
        vit.contains("n1: Fan 1:                         4500 RPM\n"),
        "{vit}"
    );
    assert!(
        vit.contains("n1: Inlet Temp:                    -5 C (23 F)\n"),
        "{vit}"
    );
    assert!(
        vit.contains("n1: PSU Power:                     200 Watts (683 BTUs/hr)\n"),
        "{vit}"
    );
    // The compact (discrete) record is read too: the intrusion bit the emu file set.
    assert!(
        vit.contains("n1: Chassis Intru:                 0x0001\n"),
        "{vit}"
    );
    assert_eq!(
        bh.ok(&["rvitals", "n1", "temp"]),
        "n1: CPU Temp:                      45 C (113 F)\nn1: Inlet Temp:                    -5 C (23 F)\n"
    );
    assert_eq!(
        bh.ok(&["rvitals", "n1", "fanspeed"]),
        "n1: Fan 1:                         4500 RPM\n"
    );
    assert_eq!(
        bh.ok(&["rvitals", "n1", "voltage"]),
        "n1: 12V:                           12.06 Volts\n"
    );
    assert_eq!(
        bh.ok(&["rvitals", "n1", "power"]),
        "n1: PSU Power:                     200 Watts (683 BTUs/hr)\nn1: Power Status: off\n"
    );
}

#[test]
fn failures_are_per_node_and_never_show_credentials() {
    let good = [IpmiSim::start(), IpmiSim::start()];
    let bh = Bh::new();
    quick(&bh);
    add_node(&bh, "n1", &good[0].bmc());
    // Wrong password on a live BMC.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n2",
        "groups=all",
        "mgt=ipmi",
        &format!("bmc={}", good[1].bmc()),
        "bmcusername=admin",
        "bmcpassword=N0tTheP4ss",
    ]);
    // No ipmi.bmc at all.
    bh.ok(&["mkdef", "-t", "node", "-o", "n3", "groups=all", "mgt=ipmi"]);
    // Nobody listens there.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    add_node(&bh, "n4", &format!("127.0.0.1:{dead}"));
    add_node(&bh, "n5", &good[1].bmc());
    // An unknown user.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n6",
        "groups=all",
        "mgt=ipmi",
        &format!("bmc={}", good[0].bmc()),
        "bmcusername=nosuchuser",
        "bmcpassword=N0tTheP4ss",
    ]);
    let o = bh.run(&["rpower", "n1-n6", "on"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "n1: on");
    assert_eq!(
        lines[1],
        "n2: Error: BMC refused the user name or password (RAKP2: the BMC's key exchange code does not match this password)"
    );
    assert_eq!(lines[2], "n3: Error: no BMC address (ipmi.bmc is empty)");
    assert_eq!(
        lines[3],
        format!("n4: Error: no answer from BMC 127.0.0.1:{dead} (2 tries, 0.5 s each)")
    );
    assert_eq!(lines[4], "n5: on");
    assert!(
        lines[5].starts_with(
            "n6: Error: BMC refused the user name or password (RAKP2: 0x0d unauthorized name)"
        ),
        "{out}"
    );
    for secret in [PASSWORD, "N0tTheP4ss"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    }
    assert_eq!(power(&good[0]), "Chassis Power is on");
    assert_eq!(power(&good[1]), "Chassis Power is on");
    // Only the nodes that changed get a status.
    assert_eq!(
        bh.ok(&["nodels", "n1-n6", "nodelist.status"]),
        "n1: powering-on\nn2: \nn3: \nn4: \nn5: powering-on\nn6: \n"
    );
    // The same per-node errors from the other commands.
    let o = bh.run(&["rinv", "n3,n1", "firm"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n1: BMC Firmware:        9.08\nn3: Error: no BMC address (ipmi.bmc is empty)\n"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn bmc_by_host_name_port_rules_and_passwd_credentials() {
    let sim = IpmiSim::start();
    let bh = Bh::new();
    quick(&bh);
    // ipmi.bmc names a host of the hosts table; ipmi.bmcport is a port (an integer above 1).
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "bmc1",
        "groups=bmcs",
        "ip=127.0.0.1",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "mgt=ipmi",
        "bmc=bmc1",
        &format!("bmcport={}", sim.port),
    ]);
    // No ipmi.username/password: the passwd row key=ipmi.
    bh.ok(&[
        "chtab",
        &format!("key=ipmi,username={USER}"),
        &format!("passwd.password={PASSWORD}"),
    ]);
    assert_eq!(bh.ok(&["rpower", "n1", "stat"]), "n1: off\n");
    // xCAT's bmcport "1" (dedicated NIC) is not a port: the explicit host:port is used.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n2",
        "groups=all",
        "mgt=ipmi",
        &format!("bmc={}", sim.bmc()),
        "bmcport=1",
    ]);
    assert_eq!(bh.ok(&["rpower", "n2", "on"]), "n2: on\n");
    assert_eq!(power(&sim), "Chassis Power is on");
    // …and "0" on a bare host means port 623, where nothing answers here.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n3",
        "groups=all",
        "mgt=ipmi",
        "bmc=127.0.0.1",
        "bmcport=0",
    ]);
    let o = bh.run(&["rpower", "n3", "stat"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n3: Error: no answer from BMC 127.0.0.1:623 (2 tries, 0.5 s each)\n"
    );
    // Suite 3 only, by the site override, works as well.
    bh.ok(&["chtab", "key=ipmiciphersuites", "site.value=3"]);
    assert_eq!(bh.ok(&["rpower", "n2", "stat"]), "n2: on\n");
}

#[test]
fn fanout_one_still_covers_every_node_in_order() {
    let sims = [IpmiSim::start(), IpmiSim::start()];
    let bh = Bh::new();
    bh.ok(&["chtab", "key=powerfanout", "site.value=1"]);
    for i in 0..6 {
        add_node(&bh, &format!("f{i}"), &sims[i % 2].bmc());
    }
    assert_eq!(
        bh.ok(&["rpower", "f0-f5", "stat"]),
        "f0: off\nf1: off\nf2: off\nf3: off\nf4: off\nf5: off\n"
    );
}

/// The library against the simulator: FRU and SDR parsing agree with `ipmitool`.
#[test]
fn library_session_reads_fru_and_sdr_like_ipmitool() {
    use bootherd::power::ipmi::{commands, fru, sdr, CipherSuite, Session, Target};
    let sim = IpmiSim::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sim.port));
    let (f, records, readings, dev) = rt.block_on(async {
        let t = Target::new(addr, USER, PASSWORD);
        let mut s = Session::open(&t).await.expect("session");
        // ipmi_sim has no suite 17: the fallback to 3 happened.
        assert_eq!(s.suite(), CipherSuite::Suite3);
        let dev = commands::device_id(&mut s).await.expect("device id");
        let image = fru::read(&mut s, 0).await.expect("fru").expect("present");
        let f = fru::parse(&image).expect("parse");
        let raws = sdr::read_repository(&mut s).await.expect("sdr");
        let mut records = Vec::new();
        let mut readings = Vec::new();
        for r in &raws {
            if let Some(rec) = sdr::parse_record(r).expect("record") {
                let rd = sdr::read_sensor(&mut s, &rec).await.expect("reading");
                readings.push(rd);
                records.push(rec);
            }
        }
        // A FRU device that does not exist.
        assert_eq!(fru::read(&mut s, 7).await.ok().flatten(), None);
        s.close().await;
        (f, records, readings, dev)
    });
    let p = f.product.expect("product");
    let fru_text = sim.ipmitool(&["fru", "print", "0"]);
    for v in [
        &p.name,
        &p.serial_number,
        &p.asset_tag,
        &p.part_number,
        &p.version,
        &p.manufacturer,
    ] {
        let v = v.as_deref().expect("field");
        assert!(
            fru_text.contains(&format!(": {v}\n")),
            "{v} not in {fru_text}"
        );
    }
    assert_eq!(f.chassis.expect("chassis").chassis_type, 0x17);
    assert_eq!(dev.firmware(), "9.08");
    assert_eq!(records.len(), 6);
    let elist = sim.ipmitool(&["sdr", "elist"]);
    let sensor = sim.ipmitool(&["sensor"]);
    for (rec, rd) in records.iter().zip(&readings) {
        let line = elist
            .lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(rec.name.as_str()))
            .unwrap_or_else(|| panic!("{} not in {elist}", rec.name));
        // Column 2 of elist is the sensor number, e.g. "01h".
        let num = line.split('|').nth(1).map(str::trim).unwrap_or_default();
        assert_eq!(num, format!("{:02x}h", rec.number), "{line}");
        assert!(rd.valid(), "{} reads invalid", rec.name);
        if rec.is_analog() {
            let theirs = ipmitool_sensor(&sensor, &rec.name);
            assert!((rec.convert(rd.raw) - theirs).abs() < 1e-6, "{}", rec.name);
        } else {
            assert_eq!(rec.record_type, 2);
            assert_eq!(rd.state & 1, 1, "intrusion bit");
        }
    }
}
