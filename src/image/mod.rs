//! Osimages on the appliance's disk.
//!
//! - [`media`]: which distribution a medium holds (pure); [`copycds`]: copying media into the
//!   install tree with the osdistro row and the osimage definitions ([`profiles`] finds their files);
//! - [`spec`]: an osimage as the image commands read it; [`pkglist`]: xCAT's pkglist / otherpkglist
//!   / exlist formats (pure);
//! - [`genimage`]: building a netboot/statelite root, kernel and initramfs; [`pack`]: packimage;
//!   [`rmimage`]: removing an image's files; [`port`]: imgexport/imgimport bundles (xCAT's layout);
//! - [`lite`]: the statelite lookups (`litefile`, `litetree`, `statemnt`) and the rules the
//!   litefile rows must follow; [`liteimg`]: preparing a statelite image root (`.default`,
//!   `.statelite/tmpfs` links, the node-side statelite script);
//! - [`sysclone`]: imgcapture of a golden node over ssh/rsync and the deploy script genesis runs.

// Output goes through the request's sink (`crate::outln!`, `cli::stdout()`), never the
// process's own stdout: the same code answers local and remote requests.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod copycds;
pub mod genimage;
pub mod lite;
pub mod liteimg;
pub mod media;
pub mod pack;
pub mod pkglist;
pub mod port;
pub mod profiles;
pub mod rmimage;
pub mod spec;
pub mod sysclone;
