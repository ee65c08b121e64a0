//! Screening: what one file is judged on, and what follows from it.
//!
//! [`analyse`] decodes and hashes (and `Screener` finishes a `scan`); [`scheduler`] batches
//! inference; [`policy`] turns matches, scores and words into a verdict under the
//! [`context`]; [`pipeline`] screens with consequences for the service and backfill.

pub mod analyse;
pub mod context;
pub(crate) mod evidence;
pub mod owner_pattern;
pub mod pipeline;
pub mod policy;
pub mod record;
pub mod redecide;
pub mod rematch;
pub mod scheduler;
pub mod text;
pub mod text_only;
pub mod views;
