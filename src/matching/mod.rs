//! Match stage: HMA-format bank files and matching ([`bank`]), the installed index of every
//! bank kept current by version ([`index`]), PDQ entry tables (with their multi-index and
//! change delta), the thresholds of each signal, matching an image's robust signals, and
//! where bank work runs.

pub mod bank;
pub mod bank_work;
pub mod image_entries;
pub mod index;
pub mod params;
pub mod pdq_table;
pub mod robust;
pub mod signal;
