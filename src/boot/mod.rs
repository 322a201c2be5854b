//! Boot intent → boot files. `nodeset` records what a node should do next (chain.currstate,
//! nodetype.provmethod = its osimage); this room turns that into the exact bytes each boot loader
//! asks for — pxelinux, iPXE/xNBA (BIOS, UEFI, elilo), grub2, yaboot, petitboot — at the paths xCAT
//! would have written them, when they are asked for. Nothing is written to disk, so nothing goes stale.
//!
//! [`state`]: the boot states and chain logic (`nodeset`, `next`); [`render`]: facts → file bytes
//! and TFTP path → file; [`templates`]: the formats, from `netboot-templates/boot/`.

pub mod callback;
pub mod nodeset;
pub mod postscripts;
pub mod render;
pub mod state;
pub mod template;
pub mod templates;
