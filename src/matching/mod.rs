//! Match stage internals: PDQ entry tables (with their index and change delta), the
//! thresholds of each signal, and matching an image's robust signals.

pub mod image_entries;
pub mod params;
pub mod pdq_table;
pub mod robust;
pub mod signal;
