//! Backfill: screening artwork that was published before coverguard (issue 4).
//!
//! A backfill job reads a [`manifest`] of artwork and screens each item.
pub mod manifest;
