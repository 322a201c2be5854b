//! xCAT's table notifications (`regnotif`): for every committed change to a table named in a
//! `notification` row whose `tableops` include the change's kind (`a` add, `u` update, `d`
//! delete), the row's command runs with the change on its standard input, in xCAT's format
//! (NotifHandler.pm):
//!
//! ```text
//! a
//! nodelist
//! [old data]
//! [new data]
//! node,groups,…
//! n1,all,…
//! ```
//!
//! Commands run one at a time, in change-log order, through `sh -c`; a failure is logged and the
//! next one runs. Perl modules (`*.pm`) are xCAT's in-process plugins and are skipped with a log
//! line. The old row is not kept by the change log, so `[old data]` is always empty.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use super::ChangeBatch;
use crate::store::{is_disabled, table_spec, Change, ChangeOp, Store};

/// One registration.
struct Reg {
    command: String,
    tables: Vec<String>,
    ops: String,
}

fn registrations(store: &Store) -> Vec<Reg> {
    let Ok(spec) = table_spec("notification") else {
        return Vec::new();
    };
    let rows = match store.rows("notification") {
        Ok(r) => r,
        Err(e) => {
            warn!("cannot read the notification table: {e}");
            return Vec::new();
        }
    };
    rows.into_iter()
        .filter(|r| !is_disabled(spec, r))
        .filter_map(|r| {
            let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let command = get(0);
            if command.trim().is_empty() {
                return None;
            }
            let ops = get(2);
            Some(Reg {
                command,
                tables: get(1)
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
                ops: if ops.trim().is_empty() {
                    "a,d,u".into()
                } else {
                    ops
                },
            })
        })
        .collect()
}

fn action(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Upsert => "a",
        ChangeOp::Update => "u",
        ChangeOp::Delete | ChangeOp::Clear => "d",
    }
}

/// What the command reads: action, table, the old rows (none kept), the new row's columns and values.
fn message(store: &Store, c: &Change) -> String {
    let mut s = format!("{}\n{}\n[old data]\n[new data]\n", action(c.op), c.table);
    if matches!(c.op, ChangeOp::Delete | ChangeOp::Clear) {
        return s;
    }
    let Ok(spec) = table_spec(&c.table) else {
        return s;
    };
    let pairs: Vec<(&str, &str)> = c
        .key
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let key: Vec<&str> = spec
        .keys
        .iter()
        .map(|k| {
            pairs
                .iter()
                .find(|(c, _)| c == k)
                .map(|(_, v)| *v)
                .unwrap_or("")
        })
        .collect();
    if let Ok(Some(row)) = store.get(&c.table, &key) {
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        for (name, v) in spec.cols.iter().zip(&row) {
            if let Some(v) = v {
                cols.push(*name);
                vals.push(v.as_str());
            }
        }
        s.push_str(&cols.join(","));
        s.push('\n');
        s.push_str(&vals.join(","));
        s.push('\n');
    }
    s
}

fn run_one(command: &str, input: &str) {
    if command.ends_with(".pm") {
        info!(
            command,
            "notification: Perl modules are xCAT plugins; skipped"
        );
        return;
    }
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warn!(command, "notification command cannot start: {e}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    match child.wait_with_output() {
        Ok(o) if o.status.success() => info!(command, "notification command ran"),
        Ok(o) => warn!(
            command,
            status = %o.status,
            stderr = %String::from_utf8_lossy(&o.stderr).trim(),
            "notification command failed"
        ),
        Err(e) => warn!(command, "notification command: {e}"),
    }
}

fn handle(store: &Store, batch: &ChangeBatch, regs: &[Reg]) {
    for c in &batch.changes {
        let act = action(c.op);
        for r in regs {
            if r.tables.contains(&c.table) && r.ops.split(',').any(|o| o.trim() == act) {
                run_one(&r.command, &message(store, c));
            }
        }
    }
}

/// Follows the daemon's change batches and runs the registered commands, serially.
pub async fn run(
    store: Arc<Store>,
    mut changes: broadcast::Receiver<Arc<ChangeBatch>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut regs: Option<Arc<Vec<Reg>>> = None;
    loop {
        let batch = tokio::select! {
            b = changes.recv() => b,
            _ = shutdown.changed() => return,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!("notification runner fell {n} change batches behind; those changes are not notified");
                // A change of the registrations may be among them.
                regs = None;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !batch.changes.iter().any(|c| c.table != "auditlog") {
            continue;
        }
        // The registrations are read again only when the notification table changed (the
        // daemon's own lease commits arrive hundreds of times a second under load).
        if regs.is_none() || batch.touches(&["notification"]) {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || registrations(&s)).await {
                Ok(r) => regs = Some(Arc::new(r)),
                Err(e) => {
                    warn!("notification runner failed: {e}");
                    continue;
                }
            }
        }
        let Some(r) = regs.clone().filter(|r| !r.is_empty()) else {
            continue;
        };
        let s = store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || handle(&s, &batch, &r)).await {
            warn!("notification runner failed: {e}");
        }
    }
}
