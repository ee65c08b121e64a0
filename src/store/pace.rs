//! How long a bulk write holds the write lock: it measures what its rows cost to write and
//! to commit as it goes, and sizes each step so that a batch, commit included, fits a time
//! budget. A fixed row count would hold the lock ten times longer on a machine ten times
//! slower, and a screening waiting for the lock would wait that long.

use std::time::Duration;

/// Fewest rows a step writes: every batch makes progress, however slow the rows.
const MIN_STEP: usize = 50;
/// Most rows a step writes between looks at the clock.
const MAX_STEP: usize = 1_000;

/// The measured cost of a row, per phase, and the budget a batch must fit.
#[derive(Debug, Clone)]
pub(crate) struct WritePace {
    budget: Duration,
    insert_per_row: Option<Duration>,
    commit_per_row: Option<Duration>,
}

impl WritePace {
    pub(crate) fn new(budget: Duration) -> Self {
        WritePace {
            budget,
            insert_per_row: None,
            commit_per_row: None,
        }
    }

    /// Rows for the next step of a batch that has held the lock for `held` with `written`
    /// rows in it; 0 when the batch should commit now.
    pub(crate) fn next_step(&self, held: Duration, written: usize) -> usize {
        let Some(insert) = self.insert_per_row else {
            // Nothing measured yet: one small step tells what a row costs.
            return if written == 0 { MIN_STEP } else { 0 };
        };
        // Until a commit is measured, assume it costs what writing the rows did.
        let commit = self.commit_per_row.unwrap_or(insert);
        let owed = held + commit.saturating_mul(written as u32);
        let left = self.budget.saturating_sub(owed);
        let per_row = (insert + commit).as_nanos().max(1);
        let fits = usize::try_from(left.as_nanos() / per_row).unwrap_or(usize::MAX);
        match fits.min(MAX_STEP) {
            rows if written == 0 => rows.max(MIN_STEP),
            rows if rows < MIN_STEP => 0,
            rows => rows,
        }
    }

    /// A step wrote `rows` rows in `took`.
    pub(crate) fn wrote(&mut self, rows: usize, took: Duration) {
        Self::learn(&mut self.insert_per_row, rows, took);
    }

    /// A batch of `rows` rows committed in `took`.
    pub(crate) fn committed(&mut self, rows: usize, took: Duration) {
        Self::learn(&mut self.commit_per_row, rows, took);
    }

    /// A rise is believed at once, a fall a quarter at a time: a machine that slowed down
    /// must not hold the lock for long, one that sped up once may slow again.
    fn learn(estimate: &mut Option<Duration>, rows: usize, took: Duration) {
        if rows == 0 {
            return;
        }
        let measured = took / rows as u32;
        *estimate = Some(match *estimate {
            Some(before) if measured < before => before - (before - measured) / 4,
            _ => measured,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_millis(200);

    /// Writes `rows` rows in batches at the given costs per row, in microseconds to write
    /// and to commit; how long each batch held the lock, commit included, and its rows.
    fn batches(
        pace: &mut WritePace,
        mut rows: usize,
        (insert, commit): (u64, u64),
    ) -> Vec<(Duration, usize)> {
        let (insert, commit) = (Duration::from_micros(insert), Duration::from_micros(commit));
        let mut held = Vec::new();
        while rows > 0 {
            let (mut clock, mut written) = (Duration::ZERO, 0);
            loop {
                let step = pace.next_step(clock, written).min(rows);
                if step == 0 {
                    break;
                }
                let took = insert * step as u32;
                pace.wrote(step, took);
                (clock, written, rows) = (clock + took, written + step, rows - step);
            }
            let took = commit * written as u32;
            pace.committed(written, took);
            held.push((clock + took, written));
        }
        held
    }

    fn assert_each_fits(held: &[(Duration, usize)]) {
        for (took, rows) in held {
            assert!(
                *took <= BUDGET,
                "a batch of {rows} rows held the lock {took:?}"
            );
        }
    }

    #[test]
    fn batches_on_a_slow_machine_fit_the_budget_commit_included() {
        // What a loaded machine showed: 2,000 rows written in 600 ms, committed in 300 ms.
        let mut pace = WritePace::new(BUDGET);
        let held = batches(&mut pace, 20_000, (300, 150));
        assert!(held.len() > 10, "{held:?}");
        assert_each_fits(&held);
    }

    #[test]
    fn a_machine_that_slows_down_mid_import_shortens_the_next_batch() {
        let mut pace = WritePace::new(BUDGET);
        let fast = batches(&mut pace, 50_000, (10, 5));
        // On a fast machine the steps grow to the largest, and a batch to thousands of rows.
        assert_eq!(pace.next_step(Duration::ZERO, 0), MAX_STEP);
        assert!(fast.iter().any(|(_, rows)| *rows > 5_000), "{fast:?}");
        // Ten times slower: the first batch after the change overruns by one step at most,
        // the next ones fit again.
        let slow = batches(&mut pace, 20_000, (100, 50));
        let one_step = Duration::from_micros(150) * MAX_STEP as u32;
        assert!(slow[0].0 <= BUDGET + one_step, "{slow:?}");
        assert_each_fits(&slow[1..]);
    }

    #[test]
    fn every_batch_writes_some_rows_however_slow_a_row_is() {
        let mut pace = WritePace::new(BUDGET);
        let held = batches(&mut pace, 500, (10_000, 5_000));
        assert_eq!(held.iter().map(|(_, rows)| rows).sum::<usize>(), 500);
        assert!(held.iter().all(|(_, rows)| *rows >= MIN_STEP), "{held:?}");
        assert_eq!(held.len(), 500 / MIN_STEP);
    }

    #[test]
    fn a_faster_measurement_lowers_the_estimate_by_a_quarter_of_the_gap() {
        let mut pace = WritePace::new(BUDGET);
        pace.wrote(100, Duration::from_millis(100));
        pace.wrote(100, Duration::from_millis(20));
        assert_eq!(pace.insert_per_row, Some(Duration::from_micros(800)));
        pace.wrote(100, Duration::from_millis(200));
        assert_eq!(pace.insert_per_row, Some(Duration::from_millis(2)));
        pace.wrote(0, Duration::from_secs(1));
        assert_eq!(pace.insert_per_row, Some(Duration::from_millis(2)));
    }
}
