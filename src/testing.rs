//! Support for tests that need a service beside them (PostgreSQL, NATS JetStream). Such a
//! test runs when its services' URL variables are set; otherwise it prints
//! `skipped: <test>: <reason>` straight to stderr (libtest hides what a passing test
//! prints through `eprintln!`) and passes. `.ci/run` sets [`REQUIRE_SERVICES_VAR`], under
//! which a skip is a failure, and a test whose services are only partly configured always
//! fails: a green run then means the services were there.

use std::io::Write as _;

pub const POSTGRES_URL_VAR: &str = "COVERGUARD_TEST_POSTGRES_URL";
pub const NATS_URL_VAR: &str = "COVERGUARD_TEST_NATS_URL";
pub const REQUIRE_SERVICES_VAR: &str = "COVERGUARD_TEST_REQUIRE_SERVICES";

/// The values of `vars` (set and non-empty), or `None` after printing a skip line when
/// none is set.
///
/// # Panics
/// When some of `vars` are set and others not, or when none is and
/// [`REQUIRE_SERVICES_VAR`] is set.
pub fn service_urls<const N: usize>(vars: [&str; N]) -> Option<[String; N]> {
    let values = vars.map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    let unset: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(var, _)| *var)
        .collect();
    if unset.is_empty() {
        return Some(values.map(|v| v.expect("every variable is set")));
    }
    let test = current_test();
    assert!(
        unset.len() == N,
        "{test}: {} set but {} not: set all of them or none",
        vars.iter()
            .filter(|v| !unset.contains(v))
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
        unset.join(", ")
    );
    assert!(
        std::env::var_os(REQUIRE_SERVICES_VAR).is_none(),
        "{test} needs {} and {REQUIRE_SERVICES_VAR} is set, so it may not be skipped",
        unset.join(" and ")
    );
    skip(&format!("set {} to run it", unset.join(" and ")));
    None
}

/// Prints `skipped: <test>: <reason>` where a passing test's output still shows.
pub fn skip(reason: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {}: {reason}", current_test());
}

/// The running test's name: libtest names each test's thread after it.
fn current_test() -> String {
    std::thread::current().name().unwrap_or("a test").to_owned()
}
