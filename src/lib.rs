//! coverguard screens cover artwork (playlist and track images) before and after
//! it is published.
//!
//! The pipeline runs one way, one module per stage:
//! [`fetch`] → [`decode`] → [`hash`] → [`bank`] (match) → [`classify`] → [`decide`],
//! tied together by [`screen`]. [`provision`] fetches the pinned model and ONNX
//! Runtime on first use. [`review`] holds what a reviewer's decision writes.
//!
//! Failing closed is the rule: an input that cannot be screened is an error with
//! a kind ([`screen::ScreenError::kind`]), never an `allow`.
pub mod act;
pub mod app;
pub mod backfill;
pub mod bank;
pub mod bank_index;
pub mod build_info;
pub mod classify;
pub mod config;
pub mod context;
pub mod decide;
pub mod decode;
pub mod error_chain;
pub mod fetch;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod hash;
pub mod http;
pub mod matching;
pub mod names;
pub mod provision;
pub mod review;
pub mod scheduler;
pub mod screen;
pub mod screening;
pub mod service;
pub mod store;
pub mod text;
#[doc(hidden)]
pub mod testing;
