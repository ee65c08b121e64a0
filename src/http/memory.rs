//! Gives memory back to the system after bursts of large request bodies.
//!
//! glibc keeps freed memory in its arenas (and raises its mmap threshold after large frees),
//! so a burst of 30 MiB bodies would leave the process gigabytes larger for good. After body
//! traffic, `malloc_trim` returns free pages; it runs on a timer, off the request path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Body bytes read since the last trim.
static READ_SINCE_TRIM: AtomicUsize = AtomicUsize::new(0);

/// Below this much body traffic a trim is not worth its walk over the arenas.
const TRIM_AFTER_BYTES: usize = 8 * 1024 * 1024;
const TICK: Duration = Duration::from_secs(1);

/// Records that a request body of `bytes` was read (and will be freed with its request).
pub fn note_body(bytes: usize) {
    READ_SINCE_TRIM.fetch_add(bytes, Ordering::Relaxed);
}

/// Trims once a tick after enough body traffic, and once more on the tick after, since the
/// bodies of requests still running at the first trim are freed later.
pub fn spawn_trimmer(
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut again = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
            let busy = READ_SINCE_TRIM.swap(0, Ordering::Relaxed) >= TRIM_AFTER_BYTES;
            if busy || again {
                let _ = tokio::task::spawn_blocking(trim).await;
            }
            again = busy;
        }
    })
}

/// Returns free heap pages to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
