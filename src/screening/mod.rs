//! Screening: what one file is judged on.

pub mod context;
pub(crate) mod evidence;
pub mod owner_pattern;
pub mod rematch;
pub mod text;
pub mod views;
