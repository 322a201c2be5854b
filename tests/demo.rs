//! `tools/demo.sh`, the first-run lab, runs to completion and leaves nothing behind: its network
//! namespace, its VM and appliance processes and its temporary directory are gone, and the
//! machine's own interfaces are the same before and after. Interrupted half-way (Ctrl-C), it
//! cleans up the same way.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(|n| n.to_string()))
        .collect();
    names.sort();
    names.join(" ")
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                found.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// The lab's temporary directory, from the script's last line.
fn lab_dir(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("/tmp/bootherd-demo."))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the demo named no lab directory:\n{out}"))
}

fn demo(id: &str) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new("bash");
    c.arg(root.join("tools/demo.sh"))
        .env("BOOTHERD", env!("CARGO_BIN_EXE_bootherd"))
        .env("BOOTHERD_DEMO_ID", id)
        .env("BOOTHERD_DEMO_TIMEOUT", "180")
        .stdin(Stdio::null());
    c
}

fn assert_nothing_left(id: &str, dir: &str, links_before: &str) {
    let ns = format!("bhdemo-{id}");
    assert!(!netns_exists(&ns), "namespace {ns} is left behind");
    assert!(!Path::new(dir).exists(), "{dir} is left behind");
    let procs = processes_with(dir);
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
    assert_eq!(links(), links_before, "the machine's interfaces changed");
}

#[test]
fn the_demo_boots_a_vm_end_to_end_and_leaves_nothing_behind() {
    let id = format!("t{}", std::process::id());
    let before = links();
    let t = Instant::now();
    let out = demo(&id).output().expect("tools/demo.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the demo failed:\n{text}");
    // Each milestone it explains, seen in the appliance's log or on the VM's console.
    for step in [
        "offers 10.213.0.11",
        "the lease is recorded in the store",
        "fetched pxelinux.0 over TFTP",
        "fetched its configuration by MAC",
        "loaded the image's kernel",
        "the node is running the image bootherd chose for it",
        "console: DEMO-NODE: kernel command line from bootherd: BOOT_IMAGE=xcat/osimage/demo-x86_64-netboot-compute/vmlinuz",
        "inst.ks=http://10.213.0.1:80/install/autoinst/demo01",
        "demo01: boot",
        "booted end to end through bootherd",
    ] {
        assert!(text.contains(step), "the demo did not show {step:?}:\n{text}");
    }
    let dir = lab_dir(&text);
    assert_nothing_left(&id, &dir, &before);
    eprintln!("demo: {:.1?}", t.elapsed());
}

#[test]
fn an_interrupted_demo_cleans_up_too() {
    let id = format!("i{}", std::process::id());
    let before = links();
    let log = std::env::temp_dir().join(format!("bootherd-demo-{id}.log"));
    let mut child = demo(&id)
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("tools/demo.sh");
    // Interrupt once the appliance and the VM run.
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("6. Power on the VM") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120) && child.try_wait().ok().flatten().is_none(),
            "the demo did not get to the VM:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let status = child.wait().expect("wait");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(!status.success(), "an interrupted demo reported success");
    assert!(
        text.contains("cleaned up"),
        "no clean-up on Ctrl-C:\n{text}"
    );
    assert_nothing_left(&id, &lab_dir(&text), &before);
}
