//! Screening: what one file is judged on.

pub mod views;
