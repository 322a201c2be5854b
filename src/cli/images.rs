//! The image commands: `copycds`, `genimage`, `packimage`, `rmimage` (over [`crate::image`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::DbOpt;
use crate::image::{copycds, genimage, pack, rmimage};

#[derive(Debug, Args)]
pub struct CopycdsArgs {
    /// ISO images, tar files or directories holding distribution media
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Name the distribution (e.g. rhels9.4) instead of reading it from the media
    #[arg(short = 'n', long = "name", visible_alias = "osver")]
    name: Option<String>,
    /// The media's architecture (x86_64, ppc64le, aarch64…) when the media do not say
    #[arg(short = 'a', long = "arch")]
    arch: Option<String>,
    /// Copy to this directory instead of <installdir>/<distname>/<arch>
    #[arg(short = 'p', long = "path")]
    path: Option<PathBuf>,
    /// Only identify the media: DISTNAME, ARCH, DISCNO
    #[arg(short = 'i', long = "inspection")]
    inspection: bool,
    /// Do not create the osimage definitions
    #[arg(short = 'o', long = "noosimage")]
    noosimage: bool,
    /// Skip media already copied (by their fingerprint)
    #[arg(short = 'w', long = "nonoverwrite")]
    nonoverwrite: bool,
}

pub fn copycds(db: &DbOpt, a: CopycdsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    if a.inspection && (a.name.is_some() || a.arch.is_some()) {
        crate::errln!("Warning: copycds: option --inspection specified, argument specified with option --name or --arch is ignored");
    }
    let req = copycds::Request {
        name: a.name.clone().filter(|_| !a.inspection),
        arch: a.arch.clone().filter(|_| !a.inspection),
        path: a.path.clone(),
        inspect: a.inspection,
        no_osimage: a.noosimage,
        nonoverwrite: a.nonoverwrite,
    };
    let mut failed = false;
    for f in &a.files {
        let mut say = |l: &str| crate::outln!("{l}");
        if let Err(e) = copycds::copy(&store, f, &req, &mut say) {
            crate::errln!("Error: {}", super::chain(&e));
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct GenimageArgs {
    /// The osimage to build (provmethod netboot or statelite)
    image: String,
    /// NIC drivers to add to the initramfs (comma-separated), recorded in linuximage.netdrivers
    #[arg(short = 'n', long = "netdrivers", value_delimiter = ',')]
    netdrivers: Vec<String>,
    /// Kernel version to use when the image holds several
    #[arg(short = 'k', long = "kernelver")]
    kernelver: Option<String>,
    /// Only rebuild the initramfs from the existing root
    #[arg(long = "onlyinitrd")]
    onlyinitrd: bool,
    /// Do not upgrade the packages after installing them
    #[arg(long = "noupdate")]
    noupdate: bool,
    /// Say what would be installed, change nothing
    #[arg(long = "dryrun")]
    dryrun: bool,
    /// Accepted for xCAT compatibility: bootherd never asks questions
    #[arg(long = "interactive", hide = true)]
    interactive: bool,
    /// Accepted for xCAT compatibility
    #[arg(long = "ignorekernelchk", hide = true)]
    ignorekernelchk: bool,
}

pub fn genimage(db: &DbOpt, a: GenimageArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    if !a.netdrivers.is_empty() && !a.dryrun {
        let audit = crate::store::Audit {
            command: "genimage".into(),
            noderange: String::new(),
            args: format!("-n {} {}", a.netdrivers.join(","), a.image),
        };
        let d = a.netdrivers.join(",");
        if store.get("osimage", &[&a.image])?.is_some() {
            store.write(Some(&audit), |tx| {
                tx.set("linuximage", &[&a.image], &[("netdrivers", Some(&d))])
            })?;
        }
    }
    let req = genimage::Request {
        // Recorded above, so the build reads them from the definition.
        netdrivers: Vec::new(),
        kernelver: a.kernelver,
        onlyinitrd: a.onlyinitrd,
        noupdate: a.noupdate,
        dryrun: a.dryrun,
    };
    let _ = (a.interactive, a.ignorekernelchk);
    match genimage::genimage(&store, &a.image, &req, false) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Debug, Args)]
pub struct PackimageArgs {
    /// The osimage to pack (provmethod netboot)
    image: String,
    /// Archive method: cpio (default), tar or squashfs
    #[arg(short = 'm', long = "method", default_value = "cpio")]
    method: String,
    /// Compression: gzip (default; pigz when installed), pigz, xz or zstd
    #[arg(short = 'c', long = "compress", default_value = "gzip")]
    compress: String,
    /// Accepted for xCAT compatibility (synclists are not applied by packimage here)
    #[arg(long = "nosyncfiles", hide = true)]
    nosyncfiles: bool,
}

pub fn packimage(db: &DbOpt, a: PackimageArgs) -> anyhow::Result<ExitCode> {
    let method = pack::Method::parse(&a.method)?;
    let compress = pack::Compress::parse(&a.compress)?;
    let _ = a.nosyncfiles;
    let store = db.open()?;
    let mut say = |l: &str| crate::outln!("{l}");
    match pack::packimage(&store, &a.image, method, compress, &mut say) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Debug, Args)]
pub struct RmimageArgs {
    /// The osimage whose files to remove
    image: Option<String>,
    /// Also remove the osimage definition
    #[arg(long = "xcatdef", short = 'g')]
    xcatdef: bool,
    /// OS version (with -a and -p, instead of an image name)
    #[arg(short = 'o', long = "osver")]
    osver: Option<String>,
    /// Architecture
    #[arg(short = 'a', long = "arch")]
    arch: Option<String>,
    /// Profile
    #[arg(short = 'p', long = "profile")]
    profile: Option<String>,
    /// Accepted for xCAT compatibility
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
}

pub fn rmimage(db: &DbOpt, a: RmimageArgs) -> anyhow::Result<ExitCode> {
    let image = match (&a.image, &a.osver, &a.arch, &a.profile) {
        (Some(i), None, None, None) => i.clone(),
        (Some(_), ..) => {
            bail!("-o, -p and -a options are not allowed when an image name is specified")
        }
        (None, Some(o), Some(ar), Some(p)) => format!("{o}-{ar}-netboot-{p}"),
        _ => bail!("Usage: rmimage [-V|--verbose] imagename [--xcatdef]"),
    };
    let _ = a.verbose;
    let store = db.open()?;
    let mut say = |l: &str| crate::outln!("{l}");
    match rmimage::rmimage(&store, &image, a.xcatdef, &mut say) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Debug, Args)]
pub struct ImgexportArgs {
    /// The osimage to export
    image: String,
    /// The bundle to write (a file name, or a directory for <image>.tgz; default ./<image>.tgz)
    destination: Option<PathBuf>,
    /// Extra files to carry, as file:dir (put in dir on import); repeatable
    #[arg(short = 'e', long = "extra")]
    extra: Vec<String>,
    /// Not supported by bootherd: the postscripts of a node
    #[arg(short = 'p', long = "postscripts")]
    postscripts: Option<String>,
    /// Not supported by bootherd: export to a remote host
    #[arg(short = 'R', long = "remotehost")]
    remotehost: Option<String>,
    /// Print each step
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

pub fn imgexport(db: &DbOpt, a: ImgexportArgs) -> anyhow::Result<ExitCode> {
    if a.postscripts.is_some() || a.remotehost.is_some() {
        bail!("imgexport: -p and -R are not supported by bootherd; copy the bundle with scp");
    }
    let store = db.open()?;
    let verbose = a.verbose;
    let mut say = |l: &str| {
        if verbose || !l.starts_with('/') {
            crate::outln!("{l}")
        }
    };
    match crate::image::port::export(
        &store,
        &a.image,
        a.destination.as_deref(),
        &a.extra,
        &mut say,
    ) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Debug, Args)]
pub struct ImgimportArgs {
    /// The image bundle (.tgz) made by imgexport (bootherd's or xCAT's)
    bundle: PathBuf,
    /// Import under a new profile name (the image is renamed <os>-<arch>-<provmethod>-<profile>)
    #[arg(short = 'f', long = "profile")]
    profile: Option<String>,
    /// Not supported by bootherd: set the postscripts of nodes
    #[arg(short = 'p', long = "postscripts")]
    postscripts: Option<String>,
    /// Not supported by bootherd: import from a remote host
    #[arg(short = 'R', long = "remotehost")]
    remotehost: Option<String>,
    /// Accepted for xCAT compatibility (bundles are always gzipped tar files)
    #[arg(short = 'n', long = "nozip")]
    nozip: bool,
    /// Print each step
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

pub fn imgimport(db: &DbOpt, a: ImgimportArgs) -> anyhow::Result<ExitCode> {
    if a.postscripts.is_some() || a.remotehost.is_some() {
        bail!("imgimport: -p and -R are not supported by bootherd");
    }
    let _ = (a.nozip, a.verbose);
    let store = db.open()?;
    let mut say = |l: &str| crate::outln!("{l}");
    match crate::image::port::import(&store, &a.bundle, a.profile.as_deref(), &mut say) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(Debug, Args)]
pub struct ImgcaptureArgs {
    /// The golden node to capture
    node: String,
    /// sysclone (capture the node's disk for cloning); diskless is not supported by bootherd
    #[arg(short = 't', long = "type")]
    kind: Option<String>,
    /// The osimage to create (or re-capture incrementally)
    #[arg(short = 'o', long = "osimage")]
    osimage: Option<String>,
    /// Files of rsync exclude patterns (comma-separated; recorded in linuximage.exlist)
    #[arg(short = 'e', long = "exlist", value_delimiter = ',')]
    exlist: Vec<PathBuf>,
    /// ssh user
    #[arg(long = "user", default_value = "root")]
    user: String,
    /// Extra ssh options (repeatable), e.g. -o Port=2222
    #[arg(long = "ssh-option", value_name = "OPT")]
    ssh_options: Vec<String>,
    /// Accepted for xCAT compatibility
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
}

pub fn imgcapture(db: &DbOpt, a: ImgcaptureArgs) -> anyhow::Result<ExitCode> {
    let _ = a.verbose;
    match a.kind.as_deref() {
        Some("sysclone") => {}
        Some("diskless") | None => bail!(
            "imgcapture: bootherd captures only sysclone images (-t sysclone -o <osimage>); \
             for diskless nodes build the image with genimage instead of capturing a node"
        ),
        Some(other) => bail!("imgcapture: unknown type '{other}' (sysclone)"),
    }
    let Some(image) = a.osimage.clone() else {
        bail!("imgcapture: -t sysclone needs -o <osimage>");
    };
    let store = db.open()?;
    let req = crate::image::sysclone::CaptureReq {
        node: a.node.clone(),
        image,
        user: a.user.clone(),
        ssh_options: a.ssh_options.clone(),
        exlist: a.exlist.clone(),
    };
    let mut say = |l: &str| crate::outln!("{l}");
    match crate::image::sysclone::capture(&store, &req, &mut say) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            crate::errln!("Error: {}", super::chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}
