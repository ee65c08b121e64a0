//! Screening: what one file is judged on.

pub mod context;
pub(crate) mod evidence;
pub mod rematch;
pub mod text;
pub mod views;
