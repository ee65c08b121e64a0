//! Bank work that takes seconds of CPU at size (parsing a bulk import, decoding a store
//! snapshot, building the index of a million entries) runs on a thread of its own at the
//! low CPU priority. On a small machine it would otherwise take a core from screenings
//! for its whole duration, and a screening's own threads (decode, hash, the model's) then
//! wait their turn: a 1M-entry rebuild held one for over a second. Screenings never wait
//! for bank work to finish, so starving it only makes the new banks match a little later.

use std::thread;

use thiserror::Error;

/// The nice value of bank work threads: a tenth of a normal thread's share of a busy core
/// (19, the lowest, left a 1M-line import parsing for minutes on a saturated machine).
const NICE: libc::c_int = 10;

#[derive(Debug, Error)]
pub enum BankWorkError {
    #[error("cannot start a bank work thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the bank work thread ended without an answer")]
    Lost,
}

/// Runs `work` on a new thread at low CPU priority and waits for its answer without
/// holding an async worker. A panic in `work` resumes in the caller, as `spawn_blocking`'s
/// callers see it.
pub async fn run<T, F>(name: &str, work: F) -> Result<T, BankWorkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel();
    thread::Builder::new()
        .name(format!("bank-{name}"))
        .spawn(move || {
            lower_this_threads_priority();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The caller may have gone (its request was dropped): the work is simply lost.
            let _ = answer.send(result);
        })
        .map_err(BankWorkError::Spawn)?;
    match answered.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(BankWorkError::Lost),
    }
}

/// Raises the calling thread's nice value to [`NICE`] (on Linux a thread's own, not the
/// process's); a thread already nicer is left so. Best effort: where it fails the work runs
/// at the priority it had.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        if this_threads_nice() >= NICE {
            return;
        }
        // SAFETY: gettid and setpriority take no pointers.
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
        };
        if result != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "bank work runs at normal priority"
            );
        }
    }
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn this_threads_nice() -> libc::c_int {
    // SAFETY: gettid and getpriority take no pointers. A nice of -1 reads as an error
    // value too; it only makes the thread look less nice than it is, so it is lowered.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_answers_from_a_thread_of_low_priority() {
        #[cfg(target_os = "linux")]
        {
            let caller = this_threads_nice();
            let (nice, name) = run("test", || {
                (
                    this_threads_nice(),
                    thread::current().name().map(str::to_string),
                )
            })
            .await
            .unwrap();
            assert_eq!(nice, NICE.max(caller), "never raised, only lowered");
            assert_eq!(name.as_deref(), Some("bank-test"));
            assert_eq!(
                this_threads_nice(),
                caller,
                "the caller's priority is unchanged"
            );
        }
        #[cfg(not(target_os = "linux"))]
        assert_eq!(run("test", || 2 + 2).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_panic_in_the_work_reaches_the_caller() {
        let outcome = tokio::spawn(run("panics", || -> u8 { panic!("bad bank line") })).await;
        let panic = outcome.expect_err("the task panicked").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"bad bank line"));
    }
}
