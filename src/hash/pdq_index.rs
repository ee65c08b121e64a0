//! Exact PDQ range search by multi-index hashing (Norouzi et al.), for large banks.
//!
//! A PDQ hash is cut into 16 substrings of 16 bits. If two hashes are within distance `t`,
//! then by the pigeonhole principle at least one substring differs in at most `t / 16` bits
//! (integer division). So every hash within `t` of a query is found by looking up, in each
//! substring's table, the query's substring and all values within that radius of it: for the
//! bank thresholds used in practice (`t <= 31`) that is the value itself and its 16 one-bit
//! neighbours, 272 bucket lookups per query. Every candidate is then checked on the full 256
//! bits, so the answer is exactly a linear scan's, only without touching most of the bank.
//! Thresholds up to 63 (the policy's maximum) search radius 3; past that it scans.
//!
//! Each table is a counting-sorted array of positions with bucket offsets (no hashing, no
//! per-bucket allocation): memory is the hashes (32 bytes each), 16 positions (4 bytes each)
//! per hash, and 16 × 65,537 offsets.

use super::PdqHash;

/// Substrings per hash and bits per substring.
pub const SUBSTRINGS: usize = 16;
const SUBSTRING_BITS: u32 = 16;
const BUCKETS: usize = 1 << SUBSTRING_BITS;
/// Largest radius searched per substring (threshold 63 / 16); wider thresholds scan.
const MAX_RADIUS: u32 = 3;

fn substring(words: &[u64; 4], index: usize) -> usize {
    ((words[index / 4] >> (16 * (index % 4))) & 0xffff) as usize
}

fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// Asks Linux to back `buffer` with 2 MiB pages. A 10M-hash index is ~1 GB read at random:
/// with 4 KiB pages nearly every candidate check is a TLB miss, which dominates the query
/// time. Advice only: where it is refused or unsupported, nothing changes but speed.
fn advise_huge_pages<T>(buffer: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buffer.as_ptr() as usize;
        let end = start + buffer.capacity() * std::mem::size_of::<T>();
        let aligned = (start + HUGE - 1) & !(HUGE - 1);
        if end > aligned + HUGE {
            let len = (end - aligned) & !(HUGE - 1);
            // SAFETY: the range lies inside `buffer`'s own allocation, which outlives the
            // call; MADV_HUGEPAGE changes how pages are backed, never their contents.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

#[inline(always)]
fn prefetch(hash: &[u64; 4]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no architectural effect; the pointer is valid.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            (hash as *const [u64; 4]).cast::<i8>(),
            std::arch::x86_64::_MM_HINT_T0,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = hash;
}

/// Every 16-bit mask with at most `radius` bits set, fewest bits first.
fn flip_masks(radius: u32) -> Vec<u16> {
    let mut masks: Vec<u16> = (0..=u16::MAX)
        .filter(|m| m.count_ones() <= radius)
        .collect();
    masks.sort_by_key(|m| m.count_ones());
    masks
}

/// More hashes than `u32` positions can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} PDQ hashes are more than one index holds (under 2^32)")]
pub struct TooManyHashes(pub usize);

/// An immutable index over a list of PDQ hashes; positions are indices into that list.
pub struct PdqIndex {
    hashes: Vec<[u64; 4]>,
    /// `offsets[t * (BUCKETS + 1) + v]..offsets[t * (BUCKETS + 1) + v + 1]` is bucket `v` of
    /// table `t` in `positions[t * len..]`.
    offsets: Vec<u32>,
    positions: Vec<u32>,
    /// Flip masks per radius 0..=MAX_RADIUS, computed once.
    masks: [Vec<u16>; MAX_RADIUS as usize + 1],
}

impl std::fmt::Debug for PdqIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdqIndex")
            .field("hashes", &self.hashes.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl PdqIndex {
    /// Builds the index in O(16 n). Positions are `u32`, so it holds under 2^32 hashes.
    pub fn new(hashes: &[PdqHash]) -> Result<PdqIndex, TooManyHashes> {
        let len = hashes.len();
        if u32::try_from(len).is_err() {
            return Err(TooManyHashes(len));
        }
        // Advised before the first write, so the pages are faulted in huge.
        let mut words_of = Vec::with_capacity(len);
        advise_huge_pages(&words_of);
        words_of.extend(hashes.iter().map(PdqHash::words));
        let hashes = words_of;
        let mut offsets = vec![0u32; SUBSTRINGS * (BUCKETS + 1)];
        let mut positions = Vec::with_capacity(SUBSTRINGS * len);
        advise_huge_pages(&positions);
        positions.resize(SUBSTRINGS * len, 0u32);
        for table in 0..SUBSTRINGS {
            let offsets = &mut offsets[table * (BUCKETS + 1)..(table + 1) * (BUCKETS + 1)];
            for hash in &hashes {
                offsets[substring(hash, table) + 1] += 1;
            }
            for v in 0..BUCKETS {
                offsets[v + 1] += offsets[v];
            }
            let mut next: Vec<u32> = offsets[..BUCKETS].to_vec();
            let positions = &mut positions[table * len..(table + 1) * len];
            for (position, hash) in hashes.iter().enumerate() {
                let bucket = substring(hash, table);
                positions[next[bucket] as usize] = position as u32;
                next[bucket] += 1;
            }
        }
        Ok(PdqIndex {
            hashes,
            offsets,
            positions,
            masks: std::array::from_fn(|r| flip_masks(r as u32)),
        })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Heap bytes held by the index, hashes included.
    pub fn memory_bytes(&self) -> usize {
        self.hashes.len() * std::mem::size_of::<[u64; 4]>()
            + self.offsets.len() * std::mem::size_of::<u32>()
            + self.positions.len() * std::mem::size_of::<u32>()
    }

    /// Every indexed hash within `threshold` of `query`, as `(position, distance)` sorted by
    /// position, each position once. Appends to `out` after clearing it.
    pub fn within(&self, query: &PdqHash, threshold: u32, out: &mut Vec<(u32, u32)>) {
        out.clear();
        let query = query.words();
        let radius = threshold / SUBSTRINGS as u32;
        if radius > MAX_RADIUS {
            for (position, hash) in self.hashes.iter().enumerate() {
                let d = distance(&query, hash);
                if d <= threshold {
                    out.push((position as u32, d));
                }
            }
            return;
        }
        let len = self.hashes.len();
        for table in 0..SUBSTRINGS {
            let offsets = &self.offsets[table * (BUCKETS + 1)..(table + 1) * (BUCKETS + 1)];
            let positions = &self.positions[table * len..(table + 1) * len];
            let value = substring(&query, table);
            for &mask in &self.masks[radius as usize] {
                let bucket = value ^ usize::from(mask);
                let (start, end) = (offsets[bucket] as usize, offsets[bucket + 1] as usize);
                let bucket = &positions[start..end];
                // Ask for every candidate's hash before checking the first: the loads then
                // overlap instead of each waiting on memory in turn.
                for &position in bucket {
                    prefetch(&self.hashes[position as usize]);
                }
                for &position in bucket {
                    let d = distance(&query, &self.hashes[position as usize]);
                    if d <= threshold {
                        out.push((position, d));
                    }
                }
            }
        }
        // A near hash is found once per substring close enough: keep one.
        out.sort_unstable();
        out.dedup_by_key(|(position, _)| *position);
    }

    /// [`within`](Self::within) for many queries (a backfill page against a bank).
    pub fn within_each(&self, queries: &[PdqHash], threshold: u32) -> Vec<Vec<(u32, u32)>> {
        queries
            .iter()
            .map(|q| {
                let mut out = Vec::new();
                self.within(q, threshold, &mut out);
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64* stream.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn hash(&mut self) -> PdqHash {
            let mut bytes = [0u8; 32];
            for chunk in bytes.chunks_exact_mut(8) {
                chunk.copy_from_slice(&self.next().to_le_bytes());
            }
            PdqHash(bytes)
        }

        /// `hash` with `bits` distinct bits flipped.
        fn near(&mut self, hash: &PdqHash, bits: u32) -> PdqHash {
            let mut out = *hash;
            let mut flipped = std::collections::HashSet::new();
            while flipped.len() < bits as usize {
                let bit = (self.next() % 256) as usize;
                if flipped.insert(bit) {
                    out.0[bit / 8] ^= 1 << (bit % 8);
                }
            }
            out
        }
    }

    fn linear(hashes: &[PdqHash], query: &PdqHash, threshold: u32) -> Vec<(u32, u32)> {
        hashes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let d = h.distance(query);
                (d <= threshold).then_some((i as u32, d))
            })
            .collect()
    }

    #[test]
    fn finds_exactly_what_a_linear_scan_finds_at_every_threshold() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut hashes: Vec<PdqHash> = (0..3000).map(|_| rng.hash()).collect();
        // Planted neighbours at distances around every radius boundary, and duplicates.
        let anchors: Vec<PdqHash> = hashes[..20].to_vec();
        for (i, anchor) in anchors.iter().enumerate() {
            for bits in [0, 1, 15, 16, 17, 31, 32, 47, 48, 63, 64, 80] {
                hashes.push(rng.near(anchor, (bits + i as u32) % 90));
            }
        }
        let index = PdqIndex::new(&hashes).unwrap();
        assert_eq!(index.len(), hashes.len());
        let mut out = Vec::new();
        for (q, anchor) in anchors.iter().enumerate() {
            for query in [
                *anchor,
                rng.near(anchor, 7),
                rng.near(anchor, 20),
                rng.hash(),
            ] {
                for threshold in [0, 1, 15, 16, 31, 32, 47, 63, 64, 90] {
                    index.within(&query, threshold, &mut out);
                    assert_eq!(
                        out,
                        linear(&hashes, &query, threshold),
                        "query {q}, threshold {threshold}"
                    );
                }
            }
        }
        let batch = index.within_each(&anchors, 31);
        for (anchor, found) in anchors.iter().zip(&batch) {
            assert_eq!(found, &linear(&hashes, anchor, 31));
        }
    }

    #[test]
    fn an_empty_index_finds_nothing_and_counts_its_memory() {
        let index = PdqIndex::new(&[]).unwrap();
        assert!(index.is_empty());
        let mut out = vec![(1, 1)];
        index.within(&PdqHash::ZERO, 31, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            index.memory_bytes(),
            SUBSTRINGS * (BUCKETS + 1) * 4,
            "only the offsets"
        );
    }
}
