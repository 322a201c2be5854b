//! Osimages on the appliance's disk. [`lite`]: the statelite lookups (`litefile`, `litetree`,
//! `statemnt`) and the rules the litefile rows must follow; [`liteimg`]: preparing a statelite
//! image root (`.default`, `.statelite/tmpfs` links, the node-side statelite script).

pub mod lite;
pub mod liteimg;
