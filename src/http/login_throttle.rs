//! Slows password guessing at the console login, per user name, behind a small trait so
//! replicas can later share one count through the store.
//!
//! The first [`FREE_FAILURES`] failures cost nothing; each further one locks the name for
//! twice as long as the last (1 s, 2 s, 4 s ... up to 15 min), and while it is locked every
//! attempt is refused unchecked, right password or not, so guessing gains nothing from the
//! lock. Attempts still being checked count as failures until they are settled: a burst of
//! concurrent guesses gets [`FREE_FAILURES`] checks, not one per request. A success, or 15
//! minutes without a failure, forgets the name. Unknown names count like real ones: the
//! throttle does not tell which names exist.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Failures allowed before the name is locked.
pub const FREE_FAILURES: u32 = 5;
const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// How long a refused attempt is told to wait while other attempts on its name are checked.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);
/// Names remembered at once; beyond it the longest-quiet name is forgotten first.
const CAPACITY: usize = 10_000;

/// Stands for a login name that cannot be a user name: it can never log in, and every such
/// name shares one count, so a caller cannot fill memory with long names.
pub const NOT_A_USER_NAME: &str = "(not a valid user name)";

/// How an admitted attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Wrong password or unknown name.
    Failed,
    /// Never checked (the request went away, or the check itself failed).
    Abandoned,
}

/// An admitted attempt, as the throttle knows it.
#[derive(Debug)]
pub struct AttemptKey(String);

pub trait LoginThrottle: Send + Sync + std::fmt::Debug {
    /// Admits one attempt on `username`, or says how long to wait before trying again.
    fn admit(&self, username: &str, now: Instant) -> Result<AttemptKey, Duration>;
    /// Ends an admitted attempt.
    fn settle(&self, attempt: AttemptKey, outcome: Outcome, now: Instant);
}

/// An admitted attempt that settles as [`Outcome::Abandoned`] unless told otherwise, so a
/// dropped request never leaves its name counted as in flight.
pub struct Attempt<'a> {
    throttle: &'a dyn LoginThrottle,
    key: Option<AttemptKey>,
}

impl<'a> Attempt<'a> {
    pub fn begin(throttle: &'a dyn LoginThrottle, username: &str) -> Result<Self, Duration> {
        let key = throttle.admit(username, Instant::now())?;
        Ok(Attempt {
            throttle,
            key: Some(key),
        })
    }

    pub fn settle(mut self, outcome: Outcome) {
        if let Some(key) = self.key.take() {
            self.throttle.settle(key, outcome, Instant::now());
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.throttle
                .settle(key, Outcome::Abandoned, Instant::now());
        }
    }
}

/// The throttle of one process.
#[derive(Debug, Default)]
pub struct MemoryLoginThrottle {
    names: std::sync::Mutex<HashMap<String, Name>>,
}

#[derive(Clone, Copy, Debug)]
struct Name {
    failures: u32,
    in_flight: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The name as the throttle remembers it.
fn key(username: &str) -> String {
    let trimmed = username.trim();
    let name = (trimmed.len() <= 64).then(|| trimmed.to_ascii_lowercase());
    match name {
        Some(name) if crate::store::valid_username(&name) => name,
        _ => NOT_A_USER_NAME.to_string(),
    }
}

impl MemoryLoginThrottle {
    fn make_room(names: &mut HashMap<String, Name>, now: Instant) {
        if names.len() < CAPACITY {
            return;
        }
        names.retain(|_, n| n.in_flight > 0 || now.duration_since(n.last) < FORGET_AFTER);
        if names.len() >= CAPACITY {
            let quietest = names
                .iter()
                .filter(|(_, n)| n.in_flight == 0)
                .min_by_key(|(_, n)| n.last)
                .map(|(k, _)| k.clone());
            if let Some(quietest) = quietest {
                names.remove(&quietest);
            }
        }
    }
}

impl LoginThrottle for MemoryLoginThrottle {
    fn admit(&self, username: &str, now: Instant) -> Result<AttemptKey, Duration> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let key = key(username);
        if !names.contains_key(&key) {
            Self::make_room(&mut names, now);
        }
        let name = names.entry(key.clone()).or_insert(Name {
            failures: 0,
            in_flight: 0,
            last: now,
            locked_until: None,
        });
        if name.in_flight == 0 && now.duration_since(name.last) >= FORGET_AFTER {
            name.failures = 0;
            name.locked_until = None;
        }
        if let Some(until) = name.locked_until.filter(|until| *until > now) {
            return Err(until - now);
        }
        // Until they are settled, attempts in flight may all be failures.
        if name.in_flight > 0 && name.failures + name.in_flight >= FREE_FAILURES {
            return Err(IN_FLIGHT_WAIT);
        }
        name.in_flight += 1;
        name.last = now;
        Ok(AttemptKey(key))
    }

    fn settle(&self, attempt: AttemptKey, outcome: Outcome, now: Instant) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let Some(name) = names.get_mut(&attempt.0) else {
            return;
        };
        name.in_flight = name.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Abandoned => {}
            Outcome::Succeeded => {
                name.failures = 0;
                name.locked_until = None;
            }
            Outcome::Failed => {
                name.failures += 1;
                name.last = now;
                if name.failures > FREE_FAILURES {
                    let doublings = (name.failures - FREE_FAILURES - 1).min(20);
                    let lock = Duration::from_secs(1u64 << doublings).min(LONGEST_LOCK);
                    name.locked_until = Some(now + lock);
                }
            }
        }
        if name.in_flight == 0 && name.failures == 0 {
            names.remove(&attempt.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &MemoryLoginThrottle, name: &str, now: Instant) {
        let attempt = throttle.admit(name, now).expect("admitted");
        throttle.settle(attempt, Outcome::Failed, now);
    }

    #[test]
    fn a_name_is_locked_for_doubling_times_after_five_failures() {
        let throttle = MemoryLoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            fail(&throttle, "Ana", t0);
        }
        fail(&throttle, "ana", t0);
        assert_eq!(
            throttle.admit("ANA", t0).unwrap_err(),
            Duration::from_secs(1)
        );
        assert!(
            throttle.admit("bo", t0).is_ok(),
            "other names are not affected"
        );
        // Names that cannot exist share one entry, however many and however long.
        for i in 0..100 {
            let _ = throttle.admit(&format!("{}{i}", "X".repeat(100)), t0);
        }
        assert_eq!(throttle.names.lock().unwrap().len(), 3);
        let t1 = t0 + Duration::from_secs(1);
        fail(&throttle, "ana", t1);
        assert_eq!(
            throttle.admit("ana", t1).unwrap_err(),
            Duration::from_secs(2)
        );
        // Doubling stops at 15 minutes.
        let mut t = t1;
        let mut lock = throttle.admit("ana", t).unwrap_err();
        while lock < LONGEST_LOCK {
            t += lock;
            fail(&throttle, "ana", t);
            lock = throttle.admit("ana", t).unwrap_err();
        }
        assert_eq!(lock, LONGEST_LOCK);
        // The longest lock ends with the name forgotten: its count starts again.
        t += lock;
        fail(&throttle, "ana", t);
        assert!(throttle.admit("ana", t).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_until_settled() {
        let throttle = MemoryLoginThrottle::default();
        let now = Instant::now();
        let admitted: Vec<_> = (0..FREE_FAILURES)
            .map(|_| throttle.admit("cy", now).expect("the free attempts"))
            .collect();
        // A sixth concurrent attempt is not checked while five are in flight.
        assert_eq!(throttle.admit("cy", now).unwrap_err(), IN_FLIGHT_WAIT);
        for attempt in admitted {
            throttle.settle(attempt, Outcome::Failed, now);
        }
        // One more failure locks the name; only one attempt at a time is admitted now.
        let sixth = throttle.admit("cy", now).unwrap();
        assert_eq!(throttle.admit("cy", now).unwrap_err(), IN_FLIGHT_WAIT);
        throttle.settle(sixth, Outcome::Failed, now);
        assert_eq!(
            throttle.admit("cy", now).unwrap_err(),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_dropped_attempt_is_abandoned_and_a_success_forgets_the_name() {
        let throttle = MemoryLoginThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            fail(&throttle, "di", now);
        }
        {
            let _dropped = Attempt::begin(&throttle, "di").unwrap();
            assert!(
                Attempt::begin(&throttle, "di").is_err(),
                "four failed, one in flight"
            );
        }
        Attempt::begin(&throttle, "di")
            .unwrap()
            .settle(Outcome::Succeeded);
        assert!(throttle.names.lock().unwrap().is_empty());
    }
}
