//! Act stage: what the service does after a verdict that needs action.
//!
//! - [`quarantine`]: the original bytes of a blocked (or, if configured,
//!   reviewed) upload, kept encrypted at rest behind [`quarantine::QuarantineVault`]
//!   under a [`quarantine::QuarantineKey`].
//! - [`report`]: hit reports and CyberTipline-shaped payloads in their delivery envelope;
//!   [`delivery`] says what an answer means and when to retry, behind
//!   [`delivery::ReportSink`]; [`webhook`] POSTs them, signed.
//! - [`outbox`]: the worker that sends the store's due reports through a sink, with the
//!   retry schedule kept in the store.
//!
//! Only the outbox worker reads the database: the store records which objects and reports
//! exist, and these modules do the file and network work.
pub mod delivery;
pub mod outbox;
pub mod quarantine;
pub mod report;
#[cfg(test)]
mod test_webhook;
pub mod webhook;
