//! `rmimage <osimage> [--xcatdef]`: removes an image's files as xCAT's `rmimage.pm` does —
//! `rootimg/`, the kernel, the initrds, the packed images and `<tftpdir>/xcat/osimage/<image>` —
//! leaving the rootimgdir itself (it may hold other images' files); `--xcatdef` (or `-g`) also
//! drops the osimage and linuximage rows. Anything still mounted under the root is unmounted
//! first, and a mount that will not go stops the removal rather than delete through it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use super::spec::{ImageSpec, PACKED_NAMES};
use crate::store::{Audit, Store};

/// Mount points at or under `root`, deepest first (from /proc/self/mountinfo).
fn mounts_under(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let r = root.display().to_string();
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &r || m.starts_with(&format!("{r}/")))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v
}

pub fn rmimage(
    store: &Store,
    image: &str,
    xcatdef: bool,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let spec = ImageSpec::load(store, image)?;
    if spec.provmethod() == "sysclone" {
        super::sysclone::remove(&spec.installdir, image, say)?;
        return finish(store, image, xcatdef, say);
    }
    let rootimgdir = spec.rootimgdir()?;
    let root = rootimgdir.join("rootimg");
    if rootimgdir.exists() {
        let _lock = super::genimage::lock_image(&rootimgdir)?;
        for m in mounts_under(&root) {
            let st = Command::new("umount").arg("-l").arg(&m).status();
            if !st.is_ok_and(|s| s.success()) {
                bail!("rmimage: cannot unmount {m}; nothing was removed");
            }
        }
        if root.exists() {
            say(&format!("Removing directory {}", root.display()));
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("cannot remove {}", root.display()))?;
        }
        let _ = std::fs::remove_dir_all(rootimgdir.join(".rootimg.new"));
        let _ = std::fs::remove_dir_all(rootimgdir.join(".rootimg.old"));
        let mut files: Vec<String> = PACKED_NAMES.iter().map(|s| s.to_string()).collect();
        files.extend(
            [
                "kernel",
                "initrd-stateless.gz",
                "initrd-statelite.gz",
                "rootimg-statelite.gz",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        for f in files {
            let p = rootimgdir.join(&f);
            if p.exists() {
                say(&format!("Removing file {}", p.display()));
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        let _ = std::fs::remove_file(rootimgdir.join(".genimage.lock"));
    }
    let tftp = spec.tftp_image_dir();
    if tftp.exists() {
        say(&format!("Removing directory {}", tftp.display()));
        std::fs::remove_dir_all(&tftp)
            .with_context(|| format!("cannot remove {}", tftp.display()))?;
    }
    finish(store, image, xcatdef, say)
}

fn finish(
    store: &Store,
    image: &str,
    xcatdef: bool,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    if xcatdef {
        let audit = Audit {
            command: "rmimage".into(),
            noderange: String::new(),
            args: format!("--xcatdef {image}"),
        };
        store.write(Some(&audit), |tx| {
            tx.delete("osimage", &[image])?;
            tx.delete("linuximage", &[image])?;
            Ok(())
        })?;
        say(&format!("Removing the definition of {image}"));
    }
    say("Image files have been removed successfully from this management node.");
    Ok(())
}
