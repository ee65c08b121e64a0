//! coverguard: screens cover artwork before and after it is published.
pub mod classify;
pub mod provision;
