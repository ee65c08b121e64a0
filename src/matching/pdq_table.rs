//! The PDQ entries of one bank and one signal type (the whole image, or one region):
//! shared entries built once, an index over them when there are many, and a small delta of
//! later changes, so one entry added or removed in a bank of millions rebuilds nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::hash::pdq_index::PdqIndex;
use crate::hash::{Dihedral, PdqHash};

/// Tables with at least this many shared entries are searched through a [`PdqIndex`];
/// smaller ones are scanned, which is as fast there and needs no index memory.
pub const PDQ_INDEX_FROM: usize = 4096;

/// A bank entry's identity as reported in matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
}

#[derive(Clone, Debug, Default)]
pub struct PdqTable {
    shared: Arc<Vec<(PdqHash, Entry)>>,
    /// Over `shared`'s hashes in order, once [`PdqTable::index`] built it; `push` drops it.
    index: Option<Arc<PdqIndex>>,
    /// Shared entries that no longer match (removed, disabled, or superseded by `added`).
    hidden: HashSet<PdqHash>,
    /// How many shared entries `hidden` hides.
    hidden_shared: usize,
    added: Vec<(PdqHash, Entry)>,
}

impl PdqTable {
    /// Adds a shared entry (while the bank is being built: unshared then, so nothing is
    /// copied).
    pub fn push(&mut self, hash: PdqHash, entry: Entry) {
        Arc::make_mut(&mut self.shared).push((hash, entry));
        self.index = None;
    }

    /// Builds the index when the table is large enough to gain from one. Matching is exact
    /// either way; without the index (small table, or too many hashes for one) it scans.
    pub fn index(&mut self, bank: &str) {
        if self.shared.len() < PDQ_INDEX_FROM || self.index.is_some() {
            return;
        }
        let hashes: Vec<PdqHash> = self.shared.iter().map(|(hash, _)| *hash).collect();
        match PdqIndex::new(&hashes) {
            Ok(index) => self.index = Some(Arc::new(index)),
            Err(e) => tracing::warn!(bank, "PDQ entries are scanned: {e}"),
        }
    }

    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    /// Entries that match.
    pub fn len(&self) -> usize {
        self.shared.len() - self.hidden_shared + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes made since the shared entries were built.
    pub fn delta_len(&self) -> usize {
        self.hidden.len() + self.added.len()
    }

    /// The hashes of the entries that match.
    pub fn hashes(&self) -> impl Iterator<Item = &PdqHash> {
        self.shared
            .iter()
            .map(|(hash, _)| hash)
            .filter(|hash| !self.hidden.contains(hash))
            .chain(self.added.iter().map(|(hash, _)| hash))
    }

    /// The entry at a position of [`PdqTable::within`]: shared entries, then added ones.
    pub fn entry(&self, position: usize) -> &Entry {
        match self.shared.get(position) {
            Some((_, entry)) => entry,
            None => &self.added[position - self.shared.len()].1,
        }
    }

    /// Makes `hash` match as `matched_as` (`Some`) or stop matching (`None`), over the
    /// shared entries, without touching them. For tables built from a store snapshot, where
    /// a hash is unique per bank and signal.
    pub fn apply_change(&mut self, hash: PdqHash, matched_as: Option<&str>) {
        if self.hidden.insert(hash) && self.shares(&hash) {
            self.hidden_shared += 1;
        }
        self.added.retain(|(h, _)| *h != hash);
        if let Some(id) = matched_as {
            self.added.push((hash, Entry { id: id.to_string() }));
        }
    }

    /// Whether the shared entries hold this hash (found through the index when built).
    fn shares(&self, hash: &PdqHash) -> bool {
        match &self.index {
            Some(index) => {
                let mut found = Vec::new();
                index.within(hash, 0, &mut found);
                !found.is_empty()
            }
            None => self.shared.iter().any(|(h, _)| h == hash),
        }
    }

    /// The entries within `threshold` of any of `hashes` (an image's eight turns, in
    /// [`Dihedral::ALL`] order, or fewer), each once at its smallest distance and the turn
    /// that gave it, in entry order (shared entries, then added ones).
    pub fn within(&self, hashes: &[PdqHash], threshold: u32) -> Vec<(usize, u32, Dihedral)> {
        let mut best: BTreeMap<usize, (u32, Dihedral)> = BTreeMap::new();
        let mut keep = |position: usize, distance: u32, transform: Dihedral| {
            let slot = best.entry(position).or_insert((distance, transform));
            if distance < slot.0 {
                *slot = (distance, transform);
            }
        };
        match &self.index {
            Some(index) => {
                let mut found = Vec::new();
                for (transform, hash) in Dihedral::ALL.iter().zip(hashes) {
                    index.within(hash, threshold, &mut found);
                    for &(position, distance) in &found {
                        let position = position as usize;
                        if !self.hidden.contains(&self.shared[position].0) {
                            keep(position, distance, *transform);
                        }
                    }
                }
            }
            None => {
                for (position, (hash, _)) in self.shared.iter().enumerate() {
                    if self.hidden.contains(hash) {
                        continue;
                    }
                    for (transform, image) in Dihedral::ALL.iter().zip(hashes) {
                        let distance = image.distance(hash);
                        if distance <= threshold {
                            keep(position, distance, *transform);
                        }
                    }
                }
            }
        }
        let shared = self.shared.len();
        for (offset, (hash, _)) in self.added.iter().enumerate() {
            for (transform, image) in Dihedral::ALL.iter().zip(hashes) {
                let distance = image.distance(hash);
                if distance <= threshold {
                    keep(shared + offset, distance, *transform);
                }
            }
        }
        best.into_iter()
            .map(|(position, (distance, transform))| (position, distance, transform))
            .collect()
    }
}
