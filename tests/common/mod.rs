//! Shared test harness: the real `bootherd` binary against a throwaway store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory with its own table store.
pub struct Bh {
    pub dir: tempfile::TempDir,
    pub db: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bootherd")
}

impl Bh {
    pub fn new() -> Bh {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite:{}", dir.path().join("bootherd.db").display());
        Bh { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("BOOTHERD_DB", &self.db)
            .env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run bootherd")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "bootherd {:?} failed ({}):\nstdout: {}\nstderr: {}",
            args,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf8 stdout")
    }

    /// Runs and expects failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "bootherd {:?} should have failed:\nstdout: {}\nstderr: {}",
            args,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).expect("utf8 stderr")
    }

    /// Writes a file in the scratch directory and returns its path as a string.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p.display().to_string()
    }

    /// Every table dumped, for "the store is unchanged" checks (auditlog excluded: reads don't audit,
    /// and failed writes must not either, but its time stamps would make a diff noisy).
    pub fn snapshot(&self) -> String {
        let tables = self.ok(&["tabdump"]);
        let mut all = String::new();
        for t in tables.lines().filter(|t| *t != "auditlog") {
            all.push_str(&self.ok(&["tabdump", t]));
        }
        all
    }
}

pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}
