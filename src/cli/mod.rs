//! Subcommands of the `coverguard` binary, one file each.

pub mod hash;
pub mod scan;
