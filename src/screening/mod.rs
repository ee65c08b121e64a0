//! Screening: what one file is judged on.

pub mod context;
pub(crate) mod evidence;
pub mod owner_pattern;
pub mod pipeline;
pub mod redecide;
pub mod rematch;
pub mod text;
pub mod text_only;
pub mod views;
