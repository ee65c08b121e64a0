//! coverguard screens cover artwork (playlist and track images) before and after
//! it is published.
//!
//! The pipeline runs one way, one module per stage:
//! [`fetch`] → [`decode`] → [`hash`] → [`matching`] → [`classify`] (and [`text`]) →
//! [`screening::policy`] (decide) → [`act`], tied together in [`screening`]: its
//! `analyse` for `scan` and its `pipeline` for the service and backfill. [`store`] keeps
//! every record behind small traits; [`http`] is the service: the API, the console and
//! the edge they sit behind; [`backfill`] rescans stored art; [`review`] holds what a
//! reviewer's decision writes. [`app`] loads the pieces once for `serve` and `backfill`.
//! [`provision`] fetches the pinned models and ONNX Runtime on first use.
//!
//! Failing closed is the rule: an input that cannot be screened is an error with
//! a kind ([`screening::analyse::ScreenError::kind`]), never an `allow`.
pub mod act;
pub mod app;
pub mod backfill;
pub mod build_info;
pub mod classify;
pub mod config;
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
pub mod screening;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod text;
