//! The HTTP edge: accepting connections, request ids, trace spans and the panic guard,
//! admitting requests (token before body), API tokens in memory, the console login
//! throttle, and giving memory back after bursts.

pub mod admission;
pub mod edge;
pub mod listener;
pub mod login_throttle;
pub mod memory;
pub mod tokens;
