//! The screening service's long-lived parts around the HTTP API: [`outbox`] delivers the report
//! rows that screenings write to the configured sinks until each is acknowledged, and
//! [`metrics`] keeps the counters, histograms and gauges that `/metrics` renders in the
//! Prometheus text format.
pub mod metrics;
pub mod outbox;
