//! Backfill: screening artwork that was published before coverguard.
//!
//! A backfill job reads a [`manifest`] of artwork, puts one message per item on
//! a [`jetstream`] work queue, and lets any number of workers screen them.
pub mod jetstream;
pub mod job;
pub mod manifest;
pub mod run;
pub mod stale;
