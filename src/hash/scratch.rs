//! Reused `f32` buffers for PDQ's planes. A fresh buffer the size of a luma plane comes
//! from the kernel as untouched pages, and faulting them in on every image cost the
//! robust hashing of a 640 px photo half a millisecond or more; the process keeps the few
//! buffers it used last instead. One pool for all threads, so its memory is bounded however many
//! threads hash: at most [`KEPT`] buffers of at most [`MAX_KEPT_LEN`] floats (larger
//! planes are not kept; there the filtering dwarfs the faults).

use std::sync::Mutex;

/// How many buffers the process keeps.
const KEPT: usize = 6;
/// The largest buffer kept, in floats (2 MiB: a plane of about 720 x 720).
const MAX_KEPT_LEN: usize = 1 << 19;

static POOL: Mutex<Pool> = Mutex::new(Pool::new(KEPT, MAX_KEPT_LEN));

/// An empty buffer with room for `len` floats: the smallest kept one that fits, else a
/// new one.
pub(crate) fn take(len: usize) -> Vec<f32> {
    let kept = POOL.lock().ok().and_then(|mut pool| pool.take(len));
    kept.unwrap_or_else(|| Vec::with_capacity(len))
}

/// A buffer of `len` zeros, from [`take`].
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    let mut buffer = take(len);
    buffer.resize(len, 0.0);
    buffer
}

/// Hands a buffer back for a later [`take`].
pub(crate) fn give(buffer: Vec<f32>) {
    if let Ok(mut pool) = POOL.lock() {
        pool.give(buffer);
    }
}

struct Pool {
    kept: Vec<Vec<f32>>,
    max_kept: usize,
    max_len: usize,
}

impl Pool {
    const fn new(max_kept: usize, max_len: usize) -> Pool {
        Pool {
            kept: Vec::new(),
            max_kept,
            max_len,
        }
    }

    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let best = (0..self.kept.len())
            .filter(|&i| self.kept[i].capacity() >= len)
            .min_by_key(|&i| self.kept[i].capacity())?;
        Some(self.kept.swap_remove(best))
    }

    /// Keeps `buffer`, emptied, unless it is too large; the smallest kept goes when more
    /// than `max_kept` are held.
    fn give(&mut self, mut buffer: Vec<f32>) {
        if buffer.capacity() == 0 || buffer.capacity() > self.max_len {
            return;
        }
        buffer.clear();
        self.kept.push(buffer);
        if self.kept.len() > self.max_kept {
            let smallest = (0..self.kept.len())
                .min_by_key(|&i| self.kept[i].capacity())
                .expect("the pool is not empty");
            self.kept.swap_remove(smallest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_and_the_smallest_that_fits() {
        let mut pool = Pool::new(4, 1000);
        let (small, large) = (vec![1.0f32; 100], vec![2.0f32; 500]);
        let (small_at, large_at) = (small.as_ptr(), large.as_ptr());
        pool.give(large);
        pool.give(small);
        let taken = pool.take(80).expect("a kept buffer fits");
        assert_eq!(taken.as_ptr(), small_at);
        assert!(taken.is_empty() && taken.capacity() >= 100);
        let taken = pool.take(200).expect("the larger one fits");
        assert_eq!(taken.as_ptr(), large_at);
        assert!(pool.take(1).is_none(), "nothing is left");
        pool.give(vec![0.0; 10]);
        assert!(pool.take(11).is_none(), "none fits");
    }

    #[test]
    fn the_pool_keeps_few_and_never_the_largest_planes() {
        let mut pool = Pool::new(4, 1000);
        for len in [10, 20, 30, 40, 50] {
            pool.give(Vec::with_capacity(len));
        }
        pool.give(Vec::with_capacity(1001));
        let mut kept: Vec<usize> = pool.kept.iter().map(|b| b.capacity()).collect();
        kept.sort();
        assert_eq!(kept.len(), 4);
        assert!(kept[0] >= 20, "the smallest went first: {kept:?}");
        assert!(kept.iter().all(|&c| c <= 1000), "{kept:?}");
    }

    #[test]
    fn zeroed_buffers_are_zero_whatever_they_held() {
        give(vec![9.0; 300]);
        assert!(zeroed(300).iter().all(|&v| v == 0.0));
    }
}
