//! Screening: what one file is judged on.

pub mod context;
pub mod rematch;
pub mod views;
