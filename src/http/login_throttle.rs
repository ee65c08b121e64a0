//! Slows password guessing at the console login, per user name. The count lives in the
//! store ([`update_login_count`](crate::store::ConsoleUserStore::update_login_count)), so
//! every replica behind a load balancer throttles the same count, and a guesser gains
//! nothing by spreading guesses over replicas.
//!
//! The first [`FREE_FAILURES`] failures cost nothing; each further one locks the name for
//! twice as long as the last (1 s, 2 s, 4 s ... up to 15 min), and while it is locked every
//! attempt is refused unchecked, right password or not, so guessing gains nothing from the
//! lock. Attempts still being checked count as failures until they are settled: a burst of
//! concurrent guesses gets [`FREE_FAILURES`] checks, not one per request. An attempt whose
//! replica died before settling it stops counting after [`ATTEMPT_TIMEOUT`]. A success, or 15
//! minutes without a failure, forgets the name. Unknown names count like real ones: the
//! throttle does not tell which names exist.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::{now_utc, LoginCount, Store, StoreResult};

/// Failures allowed before the name is locked.
pub const FREE_FAILURES: u32 = 5;
const LONGEST_LOCK: TimeDelta = TimeDelta::seconds(15 * 60);
const FORGET_AFTER: TimeDelta = TimeDelta::seconds(15 * 60);
/// How long an admitted attempt counts as in flight when it is never settled (its replica
/// died): far longer than checking a password takes.
pub const ATTEMPT_TIMEOUT: TimeDelta = TimeDelta::seconds(60);
/// How long a refused attempt is told to wait while other attempts on its name are checked.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

/// Stands for a login name that cannot be a user name: it can never log in, and every such
/// name shares one count, so a caller cannot fill the store with long names.
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

/// The name as the throttle counts it.
fn key(username: &str) -> String {
    let trimmed = username.trim();
    let name = (trimmed.len() <= 64).then(|| trimmed.to_ascii_lowercase());
    match name {
        Some(name) if crate::store::valid_username(&name) => name,
        _ => NOT_A_USER_NAME.to_string(),
    }
}

/// Admits one more attempt on a name with `count`, or says how long to wait; returns the count
/// to store either way.
fn admit(mut count: LoginCount, now: DateTime<Utc>) -> (LoginCount, Result<(), Duration>) {
    if count.in_flight > 0 && count.in_flight_until.is_none_or(|until| until <= now) {
        count.in_flight = 0;
        count.in_flight_until = None;
    }
    if count.in_flight == 0 && count.last_at.is_none_or(|last| now - last >= FORGET_AFTER) {
        count.failures = 0;
        count.locked_until = None;
    }
    if let Some(until) = count.locked_until.filter(|until| *until > now) {
        return (count, Err((until - now).to_std().unwrap_or(IN_FLIGHT_WAIT)));
    }
    // Until they are settled, attempts in flight may all be failures.
    if count.in_flight > 0 && count.failures + count.in_flight >= FREE_FAILURES {
        return (count, Err(IN_FLIGHT_WAIT));
    }
    count.in_flight += 1;
    count.in_flight_until = Some(now + ATTEMPT_TIMEOUT);
    count.last_at = Some(now);
    (count, Ok(()))
}

/// Ends one admitted attempt on a name with `count`.
fn settle(mut count: LoginCount, outcome: Outcome, now: DateTime<Utc>) -> LoginCount {
    count.in_flight = count.in_flight.saturating_sub(1);
    if count.in_flight == 0 {
        count.in_flight_until = None;
    }
    match outcome {
        Outcome::Abandoned => {}
        Outcome::Succeeded => {
            count.failures = 0;
            count.locked_until = None;
        }
        Outcome::Failed => {
            count.failures += 1;
            count.last_at = Some(now);
            if count.failures > FREE_FAILURES {
                let doublings = (count.failures - FREE_FAILURES - 1).min(20);
                let lock = TimeDelta::seconds(1 << doublings).min(LONGEST_LOCK);
                count.locked_until = Some(now + lock);
            }
        }
    }
    count
}

/// A count quiet this long is empty whatever it held: its failures are forgotten and its
/// attempts in flight have timed out.
fn forget_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - FORGET_AFTER - ATTEMPT_TIMEOUT
}

/// An admitted attempt. Unless settled, it settles as [`Outcome::Abandoned`] when dropped
/// (in a task of its own), so a request that goes away leaves nothing counted as in flight.
pub struct Attempt {
    store: Arc<dyn Store>,
    name: Option<String>,
}

impl Attempt {
    /// Admits one attempt on `username`, or says how long to wait before trying again.
    pub async fn begin(
        store: &Arc<dyn Store>,
        username: &str,
    ) -> StoreResult<Result<Self, Duration>> {
        let name = key(username);
        // A name that is locked is refused from a plain read: a flood of guesses at it
        // costs the store no writes, and is refused even while another writer holds it.
        if let (_, Err(wait)) = admit(store.login_count(&name).await?, now_utc()) {
            return Ok(Err(wait));
        }
        let mut admitted = Ok(());
        store
            .update_login_count(&name, forget_before(now_utc()), &mut |count| {
                let (count, verdict) = admit(count, now_utc());
                admitted = verdict;
                count
            })
            .await?;
        Ok(admitted.map(|()| Attempt {
            store: Arc::clone(store),
            name: Some(name),
        }))
    }

    pub async fn settle(mut self, outcome: Outcome) -> StoreResult<()> {
        match self.name.take() {
            Some(name) => settle_name(&*self.store, &name, outcome).await,
            None => Ok(()),
        }
    }
}

async fn settle_name(store: &dyn Store, name: &str, outcome: Outcome) -> StoreResult<()> {
    store
        .update_login_count(name, forget_before(now_utc()), &mut |count| {
            settle(count, outcome, now_utc())
        })
        .await
        .map(drop)
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        // Without a runtime the attempt times out instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move {
                if let Err(e) = settle_name(&*store, &name, Outcome::Abandoned).await {
                    tracing::warn!(error = %e.chain(), "an abandoned login attempt stays counted until it times out");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn fail(count: LoginCount, now: DateTime<Utc>) -> LoginCount {
        let (count, admitted) = admit(count, now);
        admitted.expect("admitted");
        settle(count, Outcome::Failed, now)
    }

    fn wait(count: LoginCount, now: DateTime<Utc>) -> Duration {
        admit(count, now).1.expect_err("refused")
    }

    #[test]
    fn a_name_is_locked_for_doubling_times_after_five_failures() {
        let mut ana = LoginCount::default();
        for _ in 0..=FREE_FAILURES {
            ana = fail(ana, t0());
        }
        assert_eq!(wait(ana, t0()), Duration::from_secs(1));
        let t1 = t0() + TimeDelta::seconds(1);
        ana = fail(ana, t1);
        assert_eq!(wait(ana, t1), Duration::from_secs(2));
        // Doubling stops at 15 minutes.
        let mut t = t1;
        let mut lock = wait(ana, t);
        while lock < LONGEST_LOCK.to_std().unwrap() {
            t += TimeDelta::from_std(lock).unwrap();
            ana = fail(ana, t);
            lock = wait(ana, t);
        }
        assert_eq!(lock, LONGEST_LOCK.to_std().unwrap());
        // The longest lock ends with the name forgotten: its count starts again.
        t += LONGEST_LOCK;
        ana = fail(ana, t);
        assert_eq!(ana.failures, 1);
        assert!(admit(ana, t).1.is_ok());
    }

    #[tokio::test]
    async fn a_locked_name_is_refused_without_waiting_for_the_stores_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("throttle.db");
        let store = crate::store::open(path.to_str().unwrap()).await.unwrap();
        for _ in 0..=FREE_FAILURES {
            let attempt = Attempt::begin(&store, "ana").await.unwrap().unwrap();
            attempt.settle(Outcome::Failed).await.unwrap();
        }
        // Another process holds SQLite's write lock until the end of the test.
        use sqlx::Connection as _;
        let mut writer = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut writer)
            .await
            .unwrap();
        let refused = Attempt::begin(&store, "ana").await;
        assert!(
            matches!(refused, Ok(Err(wait)) if wait <= Duration::from_secs(1)),
            "{:?}",
            refused.map(|r| r.err())
        );
        sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    }

    #[test]
    fn names_that_cannot_be_user_names_share_one_count() {
        assert_eq!(key(" Ana "), "ana");
        assert_eq!(key(&"X".repeat(100)), NOT_A_USER_NAME);
        assert_eq!(key("ana smith"), NOT_A_USER_NAME);
        assert_eq!(key(&format!("{}1", "a".repeat(64))), NOT_A_USER_NAME);
    }

    #[test]
    fn attempts_in_flight_count_until_settled() {
        let now = t0();
        let mut cy = LoginCount::default();
        for _ in 0..FREE_FAILURES {
            let (count, admitted) = admit(cy, now);
            admitted.expect("the free attempts");
            cy = count;
        }
        // A sixth concurrent attempt is not checked while five are in flight.
        assert_eq!(wait(cy, now), IN_FLIGHT_WAIT);
        for _ in 0..FREE_FAILURES {
            cy = settle(cy, Outcome::Failed, now);
        }
        // One more failure locks the name; only one attempt at a time is admitted now.
        let (sixth, admitted) = admit(cy, now);
        admitted.unwrap();
        assert_eq!(wait(sixth, now), IN_FLIGHT_WAIT);
        cy = settle(sixth, Outcome::Failed, now);
        assert_eq!(wait(cy, now), Duration::from_secs(1));
    }

    #[test]
    fn attempts_never_settled_stop_counting_after_the_timeout() {
        let now = t0();
        let mut di = LoginCount::default();
        for _ in 0..FREE_FAILURES {
            di = admit(di, now).0;
        }
        assert_eq!(wait(di, now), IN_FLIGHT_WAIT);
        let later = now + ATTEMPT_TIMEOUT;
        let (di, admitted) = admit(di, later);
        admitted.expect("the dead replica's attempts timed out");
        assert_eq!(di.in_flight, 1);
    }

    #[test]
    fn an_abandoned_attempt_counts_nothing_and_a_success_forgets_the_name() {
        let now = t0();
        let mut di = LoginCount::default();
        for _ in 0..FREE_FAILURES - 1 {
            di = fail(di, now);
        }
        let (dropped, admitted) = admit(di, now);
        admitted.unwrap();
        assert_eq!(
            wait(dropped, now),
            IN_FLIGHT_WAIT,
            "four failed, one in flight"
        );
        di = settle(dropped, Outcome::Abandoned, now);
        assert_eq!(di.failures, FREE_FAILURES - 1);
        let (checked, admitted) = admit(di, now);
        admitted.unwrap();
        assert!(settle(checked, Outcome::Succeeded, now).is_empty());
    }
}
