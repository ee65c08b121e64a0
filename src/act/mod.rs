//! Act stage: what the service does after a verdict that needs action.
//!
//! - [`quarantine`]: the original bytes of a blocked (or, if configured,
//!   reviewed) upload, kept encrypted at rest behind [`quarantine::QuarantineVault`].
//! - [`report`]: hit reports and CyberTipline-shaped payloads, and their
//!   delivery to webhooks behind [`report::ReportSink`].
//!
//! Neither needs the database: the store records which objects and reports
//! exist, and these modules do the file and network work.
pub mod quarantine;
pub mod report;
