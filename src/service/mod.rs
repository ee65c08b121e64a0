//! The screening service's long-lived parts around the HTTP API: [`metrics`] keeps the
//! counters, histograms and gauges that `/metrics` renders in the Prometheus text format.
pub mod metrics;
