//! The work waiting for the inference workers: a queue shared by every worker thread.
//!
//! A request brings one piece of work per stage (its classification and, with OCR on,
//! its reading), and a worker takes either a batch of classifications or one reading.
//! The two stages of one image are independent, so an idle service runs them on two
//! workers at once, and a batch being gathered passes over readings instead of
//! swallowing them, leaving them to the next free worker.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// How a job is taken.
pub trait Queued {
    /// The model inputs it brings to a batch, or `None` when it runs alone.
    fn batch_inputs(&self) -> Option<usize>;
}

/// Jobs waiting, shared by the workers. Hand-written rather than a channel: a worker
/// gathering a batch takes the batchable jobs from anywhere in the queue and leaves the
/// others in their place, which a channel's receiver cannot do.
pub struct WorkQueue<J> {
    waiting: Mutex<Waiting<J>>,
    ready: Condvar,
}

struct Waiting<J> {
    jobs: VecDeque<J>,
    closed: bool,
}

/// The queue no longer takes work.
#[derive(Debug, PartialEq)]
pub struct Closed;

impl<J: Queued> Default for WorkQueue<J> {
    fn default() -> Self {
        WorkQueue {
            waiting: Mutex::new(Waiting {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<J: Queued> WorkQueue<J> {
    /// Queues `jobs` together (one request's stages), in order.
    pub fn push(&self, jobs: impl IntoIterator<Item = J>) -> Result<(), Closed> {
        let mut waiting = self.lock();
        if waiting.closed {
            return Err(Closed);
        }
        let before = waiting.jobs.len();
        waiting.jobs.extend(jobs);
        for _ in before..waiting.jobs.len() {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Takes no more work; the workers finish what is queued, then [`WorkQueue::take`]
    /// answers `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Blocks until there is work: the oldest job, and when it is batchable, the other
    /// batchable jobs after it while the batch holds fewer than `max_inputs` inputs.
    /// `None` once the queue is closed and empty.
    pub fn take(&self, max_inputs: usize) -> Option<Vec<J>> {
        let mut waiting = self.lock();
        loop {
            if let Some(first) = waiting.jobs.pop_front() {
                let Some(mut inputs) = first.batch_inputs() else {
                    return Some(vec![first]);
                };
                let mut batch = vec![first];
                let mut i = 0;
                while inputs < max_inputs && i < waiting.jobs.len() {
                    match waiting.jobs[i].batch_inputs() {
                        Some(more) => {
                            inputs += more;
                            batch.extend(waiting.jobs.remove(i));
                        }
                        None => i += 1,
                    }
                }
                return Some(batch);
            }
            if waiting.closed {
                return None;
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<J>> {
        // A worker that panicked holding the lock left the queue whole: every change
        // to it is one call that cannot panic half-way.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug, PartialEq)]
    enum Job {
        Classify(&'static str, usize),
        Read(&'static str),
    }
    use Job::*;

    impl Queued for Job {
        fn batch_inputs(&self) -> Option<usize> {
            match self {
                Classify(_, inputs) => Some(*inputs),
                Read(_) => None,
            }
        }
    }

    fn queue(jobs: Vec<Job>) -> WorkQueue<Job> {
        let queue = WorkQueue::default();
        queue.push(jobs).unwrap();
        queue
    }

    #[test]
    fn a_batch_passes_over_the_readings_and_leaves_them_in_order() {
        let q = queue(vec![
            Classify("a", 1),
            Read("a"),
            Classify("b", 1),
            Read("b"),
            Classify("c", 1),
        ]);
        assert_eq!(
            q.take(8),
            Some(vec![Classify("a", 1), Classify("b", 1), Classify("c", 1)])
        );
        assert_eq!(q.take(8), Some(vec![Read("a")]));
        assert_eq!(q.take(8), Some(vec![Read("b")]));
    }

    #[test]
    fn the_oldest_job_goes_first_and_a_reading_is_taken_alone() {
        let q = queue(vec![Read("a"), Classify("b", 1), Read("b")]);
        assert_eq!(q.take(8), Some(vec![Read("a")]));
        assert_eq!(q.take(8), Some(vec![Classify("b", 1)]));
        assert_eq!(q.take(8), Some(vec![Read("b")]));
    }

    #[test]
    fn a_batch_stops_once_it_holds_the_inputs_allowed() {
        // An image with two views brings three inputs.
        let q = queue(vec![Classify("a", 3), Classify("b", 1), Classify("c", 1)]);
        assert_eq!(q.take(4), Some(vec![Classify("a", 3), Classify("b", 1)]));
        assert_eq!(q.take(4), Some(vec![Classify("c", 1)]));
        // One job over the limit still runs, alone in its batch.
        let q = queue(vec![Classify("big", 9), Classify("d", 1)]);
        assert_eq!(q.take(4), Some(vec![Classify("big", 9)]));
    }

    #[test]
    fn a_closed_queue_refuses_work_and_is_drained_before_the_workers_stop() {
        let q = queue(vec![Read("a")]);
        q.close();
        assert_eq!(q.push([Read("b")]), Err(Closed));
        assert_eq!(q.take(8), Some(vec![Read("a")]));
        assert_eq!(q.take(8), None);
    }

    #[test]
    fn a_waiting_worker_wakes_for_work_and_for_closing() {
        let q = Arc::new(WorkQueue::<Job>::default());
        let worker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let mut took = Vec::new();
                while let Some(work) = q.take(8) {
                    took.push(work);
                }
                took
            })
        };
        q.push([Read("a")]).unwrap();
        q.close();
        // Whether the worker was already waiting or not, it takes the job and stops.
        assert_eq!(worker.join().unwrap(), vec![vec![Read("a")]]);
    }
}
