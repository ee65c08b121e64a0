//! Subcommands of the `coverguard` binary, one file each: argument parsing and printing;
//! the work is in the library.

pub mod backfill;
pub mod banks;
pub mod hash;
pub mod models;
pub mod scan;
pub mod serve;
pub mod users;

/// The multi-threaded runtime a command runs its async work on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
