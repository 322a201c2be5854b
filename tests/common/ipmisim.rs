//! OpenIPMI's `ipmi_sim` as a stand-in BMC on 127.0.0.1:<free port>, with FRU data, six sensors
//! and a chassis_control script that keeps power and boot device in files; `ipmitool -I lanplus`
//! confirms what our code claims. Killed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "tbpass123";

/// One simulated BMC.
pub struct IpmiSim {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A type/length field of 8-bit ASCII.
fn text(s: &str) -> Vec<u8> {
    let mut v = vec![0xc0 | s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// A FRU info area: version, length (×8), body, end marker, pad, checksum.
fn area(body: &[u8]) -> Vec<u8> {
    let mut a = vec![1, 0];
    a.extend_from_slice(body);
    a.push(0xc1);
    while (a.len() + 1) % 8 != 0 {
        a.push(0);
    }
    a[1] = ((a.len() + 1) / 8) as u8;
    let sum = a.iter().fold(0u8, |s, x| s.wrapping_add(*x));
    a.push(sum.wrapping_neg());
    a
}

/// The FRU 0 image: chassis (rack mount), board (dated), product areas.
pub fn fru_image() -> Vec<u8> {
    let mut c = vec![0x17];
    c.extend(text("CH-PART-1"));
    c.extend(text("CHSER123"));
    let c = area(&c);
    // Board: language, minutes since 1996 (20 × 365 days), manufacturer, product, serial, part.
    let mins: u32 = 60 * 24 * 365 * 20;
    let mut b = vec![0x19, mins as u8, (mins >> 8) as u8, (mins >> 16) as u8];
    for s in ["Simu Inc", "SimBoard X1", "BRDSER42", "BRD-PN-7", ""] {
        b.extend(text(s));
    }
    let b = area(&b);
    let mut p = vec![0x19];
    for s in [
        "Simu Inc",
        "SimServer 9000",
        "SS9K-A",
        "1.2",
        "PRODSER99",
        "ASSET-0042",
        "",
    ] {
        p.extend(text(s));
    }
    let p = area(&p);
    let mut h = vec![1, 0, 1, 0, 0, 0, 0];
    h[3] = (1 + c.len() / 8) as u8;
    h[4] = h[3] + (b.len() / 8) as u8;
    let sum = h.iter().fold(0u8, |s, x| s.wrapping_add(*x));
    h.push(sum.wrapping_neg());
    [h, c, b, p].concat()
}

/// A full sensor record (type 1), threshold-based, linear, with M, B, Rexp.
#[allow(clippy::too_many_arguments)]
fn full_sdr(
    num: u8,
    stype: u8,
    name: &str,
    units1: u8,
    unit: u8,
    m: i16,
    b: i16,
    rexp: i8,
) -> Vec<u8> {
    let mut body = vec![
        0x20, 0, num, 0x03, 1, 0x7f, 0x68, stype, 0x01, 0, 0, 0, 0, 0, 0, units1, unit, 0, 0,
    ];
    body.extend([
        m as u8,
        (((m >> 8) & 3) as u8) << 6,
        b as u8,
        (((b >> 8) & 3) as u8) << 6,
        0,
        ((rexp as u8) & 0x0f) << 4,
        0,
        0,
        0,
        0,
        0xff,
        0,
    ]);
    body.extend([0; 11]);
    body.push(0xc0 | name.len() as u8);
    body.extend(name.as_bytes());
    let mut r = vec![num, 0, 0x51, 0x01, body.len() as u8];
    r.extend(body);
    r
}

/// A compact sensor record (type 2), discrete.
fn compact_sdr(num: u8, stype: u8, event: u8, name: &str) -> Vec<u8> {
    let mut body = vec![
        0x20, 0, num, 0x17, 1, 0x7f, 0x40, stype, event, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
    ];
    body.push(0xc0 | name.len() as u8);
    body.extend(name.as_bytes());
    let mut r = vec![num, 0, 0x51, 0x02, body.len() as u8];
    r.extend(body);
    r
}

/// (SDR, sensor_add args, initial value command) for each sensor.
pub fn sensors() -> Vec<(Vec<u8>, String, String)> {
    let v = |n: u8, val: u8| format!("sensor_set_value 0x20 0 {n} {val} 0");
    vec![
        (
            full_sdr(1, 0x01, "CPU Temp", 0, 1, 1, 0, 0),
            "1 0x01 0x01".into(),
            v(1, 45),
        ),
        (
            full_sdr(2, 0x02, "12V", 0, 4, 6, 0, -2),
            "2 0x02 0x01".into(),
            v(2, 201),
        ),
        (
            full_sdr(3, 0x04, "Fan 1", 0, 18, 50, 0, 0),
            "3 0x04 0x01".into(),
            v(3, 90),
        ),
        // Two's complement: 0xfb is -5.
        (
            full_sdr(4, 0x01, "Inlet Temp", 0x80, 1, 1, 0, 0),
            "4 0x01 0x01".into(),
            v(4, 0xfb),
        ),
        (
            full_sdr(5, 0x03, "PSU Power", 0, 6, 2, 0, 0),
            "5 0x03 0x01".into(),
            v(5, 100),
        ),
        (
            compact_sdr(6, 0x05, 0x6f, "Chassis Intru"),
            "6 0x05 0x6f".into(),
            "sensor_set_bit 0x20 0 6 0 1 0".into(),
        ),
    ]
}

fn hexbytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("0x{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A free UDP port on loopback: bind port 0, read it, let it go.
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    s.local_addr().expect("local addr").port()
}

fn port_taken(port: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", port)).is_err()
}

impl IpmiSim {
    pub fn start() -> IpmiSim {
        Self::start_sol(None)
    }

    /// A BMC whose Serial-over-LAN is connected to `device` (e.g. `tcp:127.0.0.1:PORT`).
    pub fn start_sol(device: Option<&str>) -> IpmiSim {
        super::need(&[("ipmi_sim", "openipmi"), ("ipmitool", "ipmitool")]);
        for _ in 0..5 {
            if let Some(s) = Self::try_start(free_port(), device) {
                return s;
            }
        }
        panic!("ipmi_sim did not start on any of 5 free ports");
    }

    fn try_start(port: u16, sol: Option<&str>) -> Option<IpmiSim> {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("state")).expect("state dir");
        std::fs::create_dir_all(d.join("chassis")).expect("chassis dir");
        std::fs::write(d.join("chassis/power"), "0\n").expect("power file");
        let script = d.join("chassiscontrol.sh");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
# ipmi_sim calls: <mc> get power|boot …  |  <mc> set power 0|1 | reset 1 | boot <dev> | …
D={chassis}; echo "$*" >> $D/calls.log
dev=$1; op=$2; shift 2
case $op in
get) for p in "$@"; do
        case $p in
        power) echo "power:$(cat $D/power 2>/dev/null || echo 0)";;
        boot)  echo "boot:$(cat $D/boot 2>/dev/null || echo default)";;
        *) exit 1;;
        esac; done;;
set) while [ $# -ge 2 ]; do
        case $1 in
        power) echo $2 > $D/power;;
        reset) echo 1 > $D/power; echo $(( $(cat $D/resets 2>/dev/null || echo 0) + 1 )) > $D/resets;;
        boot)  echo $2 > $D/boot;;
        *) echo $2 > $D/$1;;
        esac; shift 2; done;;
*) exit 1;;
esac
exit 0
"#,
                chassis = d.join("chassis").display()
            ),
        )
        .expect("chassis script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        std::fs::write(
            d.join("lan.conf"),
            format!(
                r#"name "bhsim{port}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
{sol}  chassis_control "{script} 0x20"
  user 2 true  "{USER}"   "{PASSWORD}"  admin    10       none md2 md5 straight
  user 3 true  "oper"    "operpass1"  operator 10       none md2 md5 straight
"#,
                script = script.display(),
                sol = sol
                    .map(|d| format!("  sol \"{d}\" 115200\n"))
                    .unwrap_or_default()
            ),
        )
        .expect("lan.conf");
        let mut emu = String::from(
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\n",
        );
        let fru = fru_image();
        emu.push_str(&format!(
            "mc_add_fru_data 0x20 0 {} data {}\n",
            fru.len(),
            hexbytes(&fru)
        ));
        for (sdr, add, set) in sensors() {
            emu.push_str(&format!("main_sdr_add 0x20 {}\n", hexbytes(&sdr)));
            emu.push_str(&format!("sensor_add 0x20 0 {add}\n{set}\n"));
        }
        emu.push_str("mc_enable 0x20\n");
        std::fs::write(d.join("bmc.emu"), emu).expect("bmc.emu");
        let log = std::fs::File::create(d.join("ipmi_sim.log")).expect("log");
        let mut child = Command::new("ipmi_sim")
            .args(["-c", "lan.conf", "-f", "bmc.emu", "-s", "state", "-n", "-p"])
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start ipmi_sim");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return None; // the port went to someone else first; try another
            }
            if port_taken(port) {
                return Some(IpmiSim { port, dir, child });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// `127.0.0.1:PORT`, for `ipmi.bmc`.
    pub fn bmc(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn chassis(&self, file: &str) -> PathBuf {
        self.dir.path().join("chassis").join(file)
    }

    /// What the chassis_control script recorded (`power`, `boot`, `resets`), trimmed.
    pub fn state(&self, file: &str) -> String {
        std::fs::read_to_string(self.chassis(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    pub fn set_power(&self, on: bool) {
        std::fs::write(self.chassis("power"), if on { "1\n" } else { "0\n" }).expect("power");
    }

    /// `ipmitool -I lanplus -C 3 …` against this BMC.
    pub fn ipmitool_output(&self, args: &[&str]) -> Output {
        let port = self.port.to_string();
        Command::new("ipmitool")
            .args([
                "-I",
                "lanplus",
                "-C",
                "3",
                "-H",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                USER,
                "-P",
                PASSWORD,
                "-N",
                "1",
                "-R",
                "2",
            ])
            .args(args)
            .output()
            .expect("run ipmitool")
    }

    /// Runs ipmitool, expects success, returns stdout.
    pub fn ipmitool(&self, args: &[&str]) -> String {
        let o = self.ipmitool_output(args);
        assert!(
            o.status.success(),
            "ipmitool {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ipmi_sim.log")).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
