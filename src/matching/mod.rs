//! Match stage internals: PDQ entry tables (with their index and change delta), the
//! thresholds of each signal, matching an image's robust signals, and where bank work runs.

pub mod bank_work;
pub mod image_entries;
pub mod params;
pub mod pdq_table;
pub mod robust;
pub mod signal;
