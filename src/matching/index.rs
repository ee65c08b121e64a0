//! The in-memory bank index screening matches against: built from the store's banks and
//! swapped atomically when they change.
//!
//! Screening takes [`SharedBankIndex::current`] (an `Arc` clone under a lock held only for that
//! clone) and keeps that one index from match to decision, so a request sees a single bank
//! version however many refreshes happen meanwhile. [`SharedBankIndex::refresh`] builds the next
//! index from one consistent store snapshot without holding that lock, then swaps the pointer:
//! nobody waits for a rebuild and nobody sees a half-built index.
//!
//! A change of single entries (add, remove, disable) is applied to the installed index as a
//! delta read from the store's change log ([`bank_changes_since`]), which every process
//! reads the same way, so replicas converge by version without rebuilding. A version the log
//! does not describe (bank settings, an import, a large add) or a delta grown past
//! [`MAX_DELTA`] rebuilds from a snapshot instead. Screening never waits for a rebuild of a
//! large index: it keeps the installed one while the rebuild runs in the background.
//!
//! The store's bank settings (action, PDQ threshold, allow-list) are the live configuration
//! the admin API changes, so they win over a policy file's `[banks.<name>]` for the same name;
//! [`BankIndex::policy_with_banks`] applies them to a policy.
//!
//! [`bank_changes_since`]: crate::store::BankStore::bank_changes_since

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use crate::matching::bank::{
    Bank, BankMatch, BankSet, MatchParams, ParsedEntry, SignalType, Signals,
};
use crate::screening::policy::{BankAction, BankRule, Policy, MAX_PDQ_THRESHOLD};
use crate::store::{BankRow, BankSnapshot, EntryChange, EntryWrite, Store, StoreError};

/// Changed entries an index carries beside its shared ones before the next change rebuilds
/// it (each screening checks them, and each delta application clones them).
pub const MAX_DELTA: usize = 10_000;

/// Screening rebuilds inline only an index this small (a rebuild then takes well under a
/// screening's deadline); a larger one is rebuilt in the background.
pub const INLINE_REBUILD_MAX: i64 = 50_000;

/// Full index builds by every [`SharedBankIndex`] in this process (a metric).
static FULL_BUILDS: AtomicU64 = AtomicU64::new(0);

/// Full index builds by this process so far.
pub fn full_builds() -> u64 {
    FULL_BUILDS.load(Ordering::Relaxed)
}

/// A bank's settings from the store, as screening applies them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BankRules {
    /// `Allow` for an allow-list bank, whatever else the row says.
    pub action: BankAction,
    pub pdq_threshold: u32,
    pub allow_list: bool,
    /// Carried for review priority; no effect on the verdict.
    pub severity: i64,
    /// Carried for reports (a `csam` bank's hits make a CyberTipline payload); no effect on
    /// the verdict.
    pub category: Option<String>,
}

impl BankRules {
    fn from_row(row: &BankRow) -> Self {
        let spec = &row.spec;
        // The store refuses inconsistent or too-wide specs now; rows written before that are
        // read the safe way: an allow-list flag never turns into a block, and a threshold is
        // never wider than the policy allows.
        let action = if spec.allow_list {
            BankAction::Allow
        } else {
            spec.action
        };
        let pdq_threshold = u32::try_from(spec.pdq_threshold.max(0))
            .unwrap_or(MAX_PDQ_THRESHOLD)
            .min(MAX_PDQ_THRESHOLD);
        if i64::from(pdq_threshold) != spec.pdq_threshold {
            tracing::warn!(
                bank = %spec.name,
                stored = spec.pdq_threshold,
                applied = pdq_threshold,
                "bank PDQ threshold outside the policy's range; clamped"
            );
        }
        BankRules {
            action,
            pdq_threshold,
            allow_list: spec.allow_list || spec.action == BankAction::Allow,
            severity: spec.severity,
            category: spec.category.clone(),
        }
    }

    /// The policy's view of this bank.
    pub fn policy_rule(&self) -> BankRule {
        BankRule {
            action: self.action,
            pdq_threshold: self.pdq_threshold,
        }
    }
}

/// A stored entry the index could not use (it can match nothing), reported instead of
/// failing the whole build: one bad row must not freeze every other bank change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    pub bank: String,
    pub signal: String,
    pub hash: String,
    pub reason: String,
}

/// Banks, their entries and their rules at one store version. Immutable once built.
#[derive(Debug)]
pub struct BankIndex {
    banks_version: i64,
    set: BankSet,
    rules: BTreeMap<String, BankRules>,
    skipped: Vec<SkippedEntry>,
}

impl BankIndex {
    /// The version of an index built from no store: older than any store version, so the
    /// first refresh always replaces it.
    pub const EMPTY_VERSION: i64 = i64::MIN;

    /// No banks at all.
    pub fn empty() -> Self {
        BankIndex {
            banks_version: Self::EMPTY_VERSION,
            set: BankSet::default(),
            rules: BTreeMap::new(),
            skipped: Vec::new(),
        }
    }

    /// Builds the index of one snapshot. Entries are identified in matches by their external
    /// id (the HMA file's third column) or else the store's entry id.
    pub fn from_snapshot(snapshot: &BankSnapshot) -> Self {
        let mut banks: BTreeMap<&str, Bank> = snapshot
            .banks
            .iter()
            .map(|row| (row.spec.name.as_str(), Bank::new(row.spec.name.clone())))
            .collect();
        let rules = snapshot
            .banks
            .iter()
            .map(|row| (row.spec.name.clone(), BankRules::from_row(row)))
            .collect();
        let mut skipped = Vec::new();
        for entry in &snapshot.entries {
            let outcome = match (
                banks.get_mut(entry.bank.as_str()),
                SignalType::parse(&entry.signal),
            ) {
                (None, _) => Err("the snapshot has no such bank".to_string()),
                (Some(_), None) => Err(format!(
                    "signal type {:?} is not matched (pdq, md5 and sha256 are)",
                    entry.signal
                )),
                (Some(bank), Some(signal)) => {
                    let id = entry.external_id.as_deref().unwrap_or(&entry.id);
                    bank.add(signal, &entry.hash, id)
                }
            };
            if let Err(reason) = outcome {
                skipped.push(SkippedEntry {
                    bank: entry.bank.clone(),
                    signal: entry.signal.clone(),
                    hash: entry.hash.clone(),
                    reason,
                });
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                banks_version = snapshot.banks_version,
                skipped = skipped.len(),
                first = ?skipped.first(),
                "bank entries that cannot match were left out of the index"
            );
        }
        BankIndex {
            banks_version: snapshot.banks_version,
            set: BankSet::from_banks(banks.into_values().collect()),
            rules,
            skipped,
        }
    }

    /// This index with `changes` applied, at `banks_version`; `None` when they name a bank the
    /// index does not have or would grow the delta past [`MAX_DELTA`] (then rebuild). Entries
    /// whose signal or hash cannot match are left out, as a build leaves them out.
    pub fn with_changes(&self, banks_version: i64, changes: &[EntryChange]) -> Option<Self> {
        let mut set = self.set.clone();
        for change in changes {
            let bank = set.bank_mut(&change.bank)?;
            let Some(signal) = SignalType::parse(&change.signal) else {
                continue;
            };
            if bank
                .apply_change(signal, &change.hash, change.matched_as.as_deref())
                .is_err()
            {
                continue;
            }
            if bank.delta_len() > MAX_DELTA {
                return None;
            }
        }
        Some(BankIndex {
            banks_version,
            set,
            rules: self.rules.clone(),
            skipped: self.skipped.clone(),
        })
    }

    /// The store's bank version this index was built from (part of the verdict cache key).
    pub fn banks_version(&self) -> i64 {
        self.banks_version
    }

    pub fn bank_set(&self) -> &BankSet {
        &self.set
    }

    /// Rules of one bank, if the store has it.
    pub fn rules(&self, bank: &str) -> Option<&BankRules> {
        self.rules.get(bank)
    }

    pub fn all_rules(&self) -> &BTreeMap<String, BankRules> {
        &self.rules
    }

    pub fn skipped(&self) -> &[SkippedEntry] {
        &self.skipped
    }

    /// Entries in the index (skipped ones not counted).
    pub fn entry_count(&self) -> usize {
        self.set.banks().iter().map(Bank::len).sum()
    }

    /// The store's threshold for its banks, the policy's for any other; the quality gate is
    /// always the policy's.
    pub fn match_params(&self, policy: &Policy, bank: &str) -> MatchParams {
        MatchParams {
            pdq_threshold: self
                .rules
                .get(bank)
                .map(|r| r.pdq_threshold)
                .unwrap_or_else(|| policy.bank_rule(bank).pdq_threshold),
            pdq_min_quality: policy.pdq_min_quality,
            signals: policy.signal_thresholds,
        }
    }

    /// Every match of the image in this index, with the store's per-bank thresholds.
    pub fn match_signals(&self, signals: Signals<'_>, policy: &Policy) -> Vec<BankMatch> {
        self.set
            .match_signals(signals, |bank| self.match_params(policy, bank))
    }

    /// `base` with this index's bank rules in place of any it has for the same banks, so
    /// `decide` applies the actions configured in the store. The result's `version()` changes
    /// with those rules, as the verdict cache needs. Cheap (the policy is small), but callers
    /// on a hot path may keep one per `banks_version`.
    pub fn policy_with_banks(&self, base: &Policy) -> Policy {
        let mut policy = base.clone();
        policy.banks.extend(
            self.rules
                .iter()
                .map(|(name, rules)| (name.clone(), rules.policy_rule())),
        );
        policy
    }
}

impl From<ParsedEntry> for EntryWrite {
    fn from(entry: ParsedEntry) -> Self {
        EntryWrite {
            signal: entry.signal.as_str().to_string(),
            hash: entry.hash,
            external_id: entry.external_id,
        }
    }
}

/// The index screening reads, swapped whole when the banks change.
#[derive(Debug, Clone)]
pub struct SharedBankIndex {
    /// Held only to clone or replace the `Arc`, never across a build or an await.
    current: Arc<RwLock<Arc<BankIndex>>>,
    /// One refresh at a time: a second caller waits and then finds the index already current
    /// instead of reading the same snapshot again.
    refresh_turn: Arc<tokio::sync::Mutex<()>>,
    /// Full builds from a snapshot (delta applications not counted).
    rebuilds: Arc<AtomicU64>,
}

/// What the change log allowed.
enum CatchUp {
    Current,
    Applied,
    /// A full rebuild is needed; the store holds this many enabled entries.
    Rebuild {
        enabled_entries: i64,
    },
}

impl Default for SharedBankIndex {
    fn default() -> Self {
        Self::new(BankIndex::empty())
    }
}

impl SharedBankIndex {
    pub fn new(index: BankIndex) -> Self {
        SharedBankIndex {
            current: Arc::new(RwLock::new(Arc::new(index))),
            refresh_turn: Arc::new(tokio::sync::Mutex::new(())),
            rebuilds: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Full builds from a store snapshot so far; a change applied as a delta does not count.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// The index of the store's current banks (for start-up; readiness waits on it).
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let shared = Self::default();
        shared.refresh(store).await?;
        Ok(shared)
    }

    /// The index to screen one request with. Never waits for a rebuild.
    pub fn current(&self) -> Arc<BankIndex> {
        // The lock only guards a pointer clone or swap, which cannot panic midway, so a
        // poisoned lock still holds a whole index.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Brings the index to the store's bank version, from the change log when it describes
    /// every version in between, else by a rebuild from a fresh snapshot, and swaps the new
    /// index in. `Ok(true)` when it swapped. On error the current index stays in service.
    ///
    /// Relies on the store's bank version only ever growing (every change bumps it).
    pub async fn refresh(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let _turn = self.refresh_turn.lock().await;
        match self.catch_up(store).await? {
            CatchUp::Current => Ok(false),
            CatchUp::Applied => Ok(true),
            CatchUp::Rebuild { .. } => self.rebuild(store).await,
        }
    }

    /// [`SharedBankIndex::refresh`] for screening, which must not wait on bank work: returns
    /// at once while another refresh runs, applies a logged delta inline, and rebuilds a
    /// large index in the background (the caller screens with the installed one meanwhile).
    pub async fn refresh_without_waiting(&self, store: &Arc<dyn Store>) -> Result<(), StoreError> {
        let Ok(turn) = self.refresh_turn.clone().try_lock_owned() else {
            return Ok(());
        };
        let CatchUp::Rebuild { enabled_entries } = self.catch_up(store.as_ref()).await? else {
            return Ok(());
        };
        let installed = i64::try_from(self.current().entry_count()).unwrap_or(i64::MAX);
        if enabled_entries.max(installed) <= INLINE_REBUILD_MAX {
            self.rebuild(store.as_ref()).await?;
            return Ok(());
        }
        let (shared, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            let _turn = turn;
            if let Err(err) = shared.rebuild(store.as_ref()).await {
                tracing::warn!(error = %err.chain(), "background bank index rebuild failed; retried on the next screening");
            }
        });
        Ok(())
    }

    /// Applies the logged changes since the installed version, if the log has them all.
    /// Call with the refresh turn held.
    async fn catch_up(&self, store: &dyn Store) -> Result<CatchUp, StoreError> {
        let installed = self.current();
        if store.banks_version().await? == installed.banks_version() {
            return Ok(CatchUp::Current);
        }
        let log = store.bank_changes_since(installed.banks_version()).await?;
        if log.banks_version <= installed.banks_version() {
            return Ok(CatchUp::Current);
        }
        let patched = log
            .changes
            .as_deref()
            .and_then(|changes| installed.with_changes(log.banks_version, changes));
        match patched {
            Some(index) => {
                let swapped = self.install(Arc::new(index));
                Ok(if swapped {
                    CatchUp::Applied
                } else {
                    CatchUp::Current
                })
            }
            None => Ok(CatchUp::Rebuild {
                enabled_entries: log.enabled_entries,
            }),
        }
    }

    /// Builds the index of a fresh snapshot and swaps it in if newer. Call with the refresh
    /// turn held.
    async fn rebuild(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let installed = self.current().banks_version();
        let snapshot = store.bank_snapshot().await?;
        if snapshot.banks_version <= installed {
            return Ok(false);
        }
        // Large banks take seconds to build: off the async workers, and behind screenings.
        let index =
            crate::matching::bank_work::run("index", move || BankIndex::from_snapshot(&snapshot))
                .await
                .map_err(|err| {
                    StoreError::unavailable("the bank index build did not finish", err)
                })?;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        FULL_BUILDS.fetch_add(1, Ordering::Relaxed);
        let (version, entries, skipped) = (
            index.banks_version(),
            index.entry_count(),
            index.skipped().len(),
        );
        let swapped = self.install(Arc::new(index));
        // The snapshot and (after a swap) the old index are gone by now. The trim holds the
        // allocator's locks while it walks the heap: at normal priority, so a screening
        // waiting on them is not left behind a starved thread, and off the async workers.
        let _ = tokio::task::spawn_blocking(release_freed_memory).await;
        if swapped {
            tracing::info!(
                banks_version = version,
                entries,
                skipped,
                "bank index swapped"
            );
        }
        Ok(swapped)
    }

    /// Swaps `index` in unless the installed one is as new or newer, checked under the write
    /// lock so no interleaving of builds can move the version backwards.
    fn install(&self, index: Arc<BankIndex>) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if index.banks_version() <= current.banks_version() {
            return false;
        }
        *current = index;
        true
    }
}

/// Hands freed heap back to the kernel. glibc keeps freed memory in its arenas, and a
/// rebuild frees a whole snapshot (hundreds of bytes per entry): without this, loading a
/// 1M-entry bank left the server at 2.2 GB resident for a few hundred MB of live data.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{
        exact_hashes, pdq::pdq_from_rgb8, Dihedral, ExactHashes, PdqHash, PdqOutput,
    };
    use crate::matching::bank::parse_entries;
    use crate::screening::policy::Verdict;
    use crate::store::{BankSpec, EntryRow};

    const SIDE: u32 = 128;

    /// A deterministic image with structure at several scales, so its PDQ quality passes the
    /// policy's gate and its hash is stable.
    fn texture(seed: u32) -> Vec<u8> {
        let mut state = seed;
        let mut rgb = Vec::with_capacity((SIDE * SIDE * 3) as usize);
        for y in 0..SIDE {
            for x in 0..SIDE {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = f64::from(state >> 28);
                let (fx, fy) = (f64::from(x), f64::from(y));
                let wave = 60.0 * (fx / 9.0 + f64::from(seed)).sin() * (fy / 13.0).cos()
                    + 40.0 * ((fx + 2.0 * fy) / 23.0).sin()
                    + if (x / 32 + y / 16) % 3 == 0 {
                        50.0
                    } else {
                        0.0
                    };
                let v = (120.0 + wave + noise).clamp(0.0, 255.0) as u8;
                rgb.extend_from_slice(&[v, v.wrapping_add(17), 255 - v]);
            }
        }
        rgb
    }

    /// The image turned a quarter clockwise.
    fn rotate90(rgb: &[u8]) -> Vec<u8> {
        let n = SIDE as usize;
        let mut out = vec![0; rgb.len()];
        for y in 0..n {
            for x in 0..n {
                let (nx, ny) = (n - 1 - y, x);
                out[(ny * n + nx) * 3..][..3].copy_from_slice(&rgb[(y * n + x) * 3..][..3]);
            }
        }
        out
    }

    fn flip_bits(hash: &PdqHash, count: usize) -> PdqHash {
        let mut out = *hash;
        for k in 0..count {
            out.0[k] ^= 0x01;
        }
        out
    }

    struct Image {
        exact: ExactHashes,
        pdq: PdqOutput,
    }

    impl Image {
        fn new(seed: u32) -> Self {
            let rgb = texture(seed);
            Image {
                exact: exact_hashes(&rgb),
                pdq: pdq_from_rgb8(SIDE, SIDE, &rgb).unwrap(),
            }
        }
        fn signals(&self) -> Signals<'_> {
            Signals {
                exact: Some(&self.exact),
                pdq: Some(&self.pdq),
            }
        }
    }

    fn explicit() -> Vec<String> {
        vec!["BUTTOCKS_EXPOSED".to_string()]
    }

    fn policy() -> Policy {
        Policy::builtin(&explicit())
    }

    fn spec(name: &str, action: BankAction, pdq_threshold: i64) -> BankSpec {
        BankSpec {
            name: name.into(),
            signal_types: vec!["pdq".into(), "md5".into()],
            pdq_threshold,
            action,
            allow_list: action == BankAction::Allow,
            severity: 1,
            category: None,
        }
    }

    fn entry(signal: &str, hash: &str, external_id: Option<&str>) -> EntryWrite {
        EntryWrite {
            signal: signal.into(),
            hash: hash.into(),
            external_id: external_id.map(str::to_string),
        }
    }

    async fn sqlite_store() -> (tempfile::TempDir, Arc<dyn Store>) {
        store_with_banks(&[]).await
    }

    /// A fresh SQLite store holding the banks `(name, action, pdq_threshold)` of [`spec`].
    async fn store_with_banks(
        banks: &[(&str, BankAction, i64)],
    ) -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("banks.db");
        let store = crate::store::open(path.to_str().unwrap()).await.unwrap();
        for &(name, action, threshold) in banks {
            store
                .create_bank(&spec(name, action, threshold))
                .await
                .unwrap();
        }
        (dir, store)
    }

    fn entries_of(matches: &[BankMatch]) -> Vec<(&str, &str)> {
        matches
            .iter()
            .map(|m| (m.bank.as_str(), m.entry.as_str()))
            .collect()
    }

    #[test]
    fn the_test_image_is_hashable_and_distinct() {
        let (a, b) = (Image::new(1), Image::new(2));
        assert!(
            a.pdq.quality >= policy().pdq_min_quality,
            "{}",
            a.pdq.quality
        );
        assert!(a.pdq.hash.distance(&b.pdq.hash) > 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn added_entries_match_after_refresh() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let shared = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let image = Image::new(1);
        assert!(shared
            .current()
            .match_signals(image.signals(), &policy())
            .is_empty());

        // The bank holds the hash of the image turned a quarter (as someone re-uploading it
        // rotated would produce), and the md5 of the bytes.
        let rotated = pdq_from_rgb8(SIDE, SIDE, &rotate90(&texture(1))).unwrap();
        let change = store
            .add_entries(
                "known-bad",
                &[
                    entry("pdq", &rotated.hash.to_hex(), Some("case-17")),
                    entry("md5", &image.exact.md5.to_uppercase(), None),
                ],
            )
            .await
            .unwrap();
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        let index = shared.current();
        assert_eq!(index.banks_version(), change.banks_version);
        assert_eq!(index.entry_count(), 2);

        let matches = index.match_signals(image.signals(), &policy());
        assert_eq!(matches.len(), 2, "{matches:?}");
        let exact = matches
            .iter()
            .find(|m| m.signal == SignalType::Md5)
            .unwrap();
        assert_eq!(exact.distance, 0);
        // No external id: the store's entry id names it.
        let stored = store.list_bank_entries("known-bad").await.unwrap();
        let md5_row: &EntryRow = stored.iter().find(|e| e.signal == "md5").unwrap();
        assert_eq!(exact.entry, md5_row.id);
        let near = matches
            .iter()
            .find(|m| m.signal == SignalType::Pdq)
            .unwrap();
        assert_eq!(near.entry, "case-17");
        // Resampling a turned image moves a few coefficients across the median, so the
        // distance is small but not zero; the bank's threshold (31) absorbs it.
        assert!(near.distance <= 31, "{near:?}");
        let quarter_turns = [Dihedral::Rot90.as_str(), Dihedral::Rot270.as_str()];
        assert!(
            quarter_turns.contains(&near.transform.as_deref().unwrap()),
            "{near:?}"
        );
        // The unrotated hash is far from the bank entry: only the dihedral search found it.
        assert!(image.pdq.hash.distance(&rotated.hash) > 31);

        let decision = index
            .policy_with_banks(&policy())
            .decide(&BTreeMap::new(), &matches);
        assert_eq!(decision.verdict, Verdict::Block);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stored_pdq_threshold_applies() {
        let (_dir, store) = store_with_banks(&[
            ("tight", BankAction::Block, 8),
            ("loose", BankAction::Block, 31),
        ])
        .await;
        let image = Image::new(3);
        let ten_off = flip_bits(&image.pdq.hash, 10).to_hex();
        for bank in ["tight", "loose"] {
            store
                .add_entries(bank, &[entry("pdq", &ten_off, Some(bank))])
                .await
                .unwrap();
        }
        let shared = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let index = shared.current();
        assert_eq!(index.rules("tight").unwrap().pdq_threshold, 8);
        // The base policy's default (31) would let both match.
        let matches = index.match_signals(image.signals(), &policy());
        assert_eq!(entries_of(&matches), vec![("loose", "loose")]);
        assert_eq!(matches[0].distance, 10);
        let merged = index.policy_with_banks(&policy());
        assert_eq!(merged.match_params("tight").pdq_threshold, 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disabled_and_removed_entries_stop_matching() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let image = Image::new(4);
        let pdq = image.pdq.hash.to_hex();
        store
            .add_entries(
                "known-bad",
                &[
                    entry("pdq", &pdq, Some("p")),
                    entry("md5", &image.exact.md5, Some("m")),
                ],
            )
            .await
            .unwrap();
        let shared = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let matched = |shared: &SharedBankIndex| {
            let mut ids: Vec<String> = shared
                .current()
                .match_signals(image.signals(), &policy())
                .into_iter()
                .map(|m| m.entry)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(matched(&shared), vec!["m", "p"]);

        store
            .set_entry_disabled("known-bad", "pdq", &pdq, true)
            .await
            .unwrap();
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        assert_eq!(matched(&shared), vec!["m"]);

        store
            .remove_entry("known-bad", "md5", &image.exact.md5)
            .await
            .unwrap();
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        assert!(matched(&shared).is_empty());

        store
            .set_entry_disabled("known-bad", "pdq", &pdq, false)
            .await
            .unwrap();
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        assert_eq!(matched(&shared), vec!["p"]);
    }

    /// Sorted matches, to compare two indexes of the same entries.
    fn sorted_matches(index: &BankIndex, image: &Image) -> Vec<(String, String, u32)> {
        let mut out: Vec<_> = index
            .match_signals(image.signals(), &policy())
            .into_iter()
            .map(|m| (m.bank, m.entry, m.distance))
            .collect();
        out.sort();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_entry_changes_patch_the_index_and_every_replica_converges() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        // Enough PDQ entries for the multi-index, so the delta sits beside a real one.
        let filler: Vec<EntryWrite> = (0..crate::matching::bank::PDQ_INDEX_FROM as u64 + 10)
            .map(|n| {
                let hex: String = (0..4)
                    .map(|k| format!("{:016x}", (n * 4 + k).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
                    .collect();
                entry("pdq", &hex, None)
            })
            .collect();
        store.import_entries("known-bad", &filler).await.unwrap();
        let here = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let replica = SharedBankIndex::load(store.as_ref()).await.unwrap();
        assert_eq!((here.rebuilds(), replica.rebuilds()), (1, 1));
        assert_eq!(here.current().entry_count(), filler.len());

        let image = Image::new(11);
        let pdq = image.pdq.hash.to_hex();
        let md5 = image.exact.md5.clone();
        let steps: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("add", vec![("known-bad", "p1"), ("known-bad", "m1")]),
            ("disable pdq", vec![("known-bad", "m1")]),
            ("remove md5", vec![]),
            ("enable pdq", vec![("known-bad", "p1")]),
            ("re-add md5", vec![("known-bad", "m2"), ("known-bad", "p1")]),
        ];
        for (step, expected) in steps {
            match step {
                "add" => store
                    .add_entries(
                        "known-bad",
                        &[
                            entry("pdq", &pdq, Some("p1")),
                            entry("md5", &md5, Some("m1")),
                        ],
                    )
                    .await
                    .map(|_| ()),
                "disable pdq" => store
                    .set_entry_disabled("known-bad", "pdq", &pdq, true)
                    .await
                    .map(|_| ()),
                "remove md5" => store
                    .remove_entry("known-bad", "md5", &md5)
                    .await
                    .map(|_| ()),
                "enable pdq" => store
                    .set_entry_disabled("known-bad", "pdq", &pdq, false)
                    .await
                    .map(|_| ()),
                _ => store
                    .add_entries("known-bad", &[entry("md5", &md5, Some("m2"))])
                    .await
                    .map(|_| ()),
            }
            .unwrap();
            assert!(here.refresh(store.as_ref()).await.unwrap(), "{step}");
            let fresh = BankIndex::from_snapshot(&store.bank_snapshot().await.unwrap());
            let patched = here.current();
            assert_eq!(patched.banks_version(), fresh.banks_version(), "{step}");
            assert_eq!(patched.entry_count(), fresh.entry_count(), "{step}");
            let mut want: Vec<(String, String)> = expected
                .iter()
                .map(|(b, e)| (b.to_string(), e.to_string()))
                .collect();
            want.sort();
            let got: Vec<(String, String)> = sorted_matches(&patched, &image)
                .into_iter()
                .map(|(b, e, _)| (b, e))
                .collect();
            assert_eq!(got, want, "{step}");
            assert_eq!(
                sorted_matches(&patched, &image),
                sorted_matches(&fresh, &image),
                "{step}"
            );
        }
        // Every step was a delta, here and on the replica that catches up afterwards.
        assert_eq!(here.rebuilds(), 1);
        assert!(replica.refresh(store.as_ref()).await.unwrap());
        assert_eq!(replica.rebuilds(), 1);
        assert_eq!(
            sorted_matches(&replica.current(), &image),
            sorted_matches(&here.current(), &image)
        );

        // A change the log does not describe (new bank settings) rebuilds.
        store
            .create_bank(&spec("other", BankAction::Review, 31))
            .await
            .unwrap();
        assert!(here.refresh(store.as_ref()).await.unwrap());
        assert_eq!(here.rebuilds(), 2);
        assert!(here.current().rules("other").is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_import_leaves_nothing_visible_and_nothing_behind() {
        let (dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let version = store.banks_version().await.unwrap();
        // The first batch is written, the second is refused (the bank holds no sha256).
        let mut entries: Vec<EntryWrite> = (0..crate::store::IMPORT_BATCH as u64)
            .map(|n| entry("md5", &format!("{n:032x}"), None))
            .collect();
        entries.push(entry("sha256", &"ab".repeat(32), None));
        let err = store
            .import_entries("known-bad", &entries)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(store.banks_version().await.unwrap(), version);
        assert!(store
            .list_bank_entries("known-bad")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.bank_counts().await.unwrap()["known-bad"].entries, 0);
        use sqlx::Connection as _;
        let mut db = sqlx::SqliteConnection::connect(dir.path().join("banks.db").to_str().unwrap())
            .await
            .unwrap();
        for table in ["bank_entries", "bank_imports"] {
            let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&mut db)
                .await
                .unwrap();
            assert_eq!(left, 0, "{table}");
        }

        // The same import without the bad line is published whole, in one version.
        entries.pop();
        let change = store.import_entries("known-bad", &entries).await.unwrap();
        assert_eq!(change.changed, entries.len() as u64);
        assert_eq!(change.banks_version, version + 1);
        let counts = store.bank_counts().await.unwrap()["known-bad"];
        assert_eq!((counts.entries, counts.disabled), (entries.len() as i64, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_keeps_its_index_while_a_refresh_swaps() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let shared = Arc::new(SharedBankIndex::load(store.as_ref()).await.unwrap());
        let image = Image::new(5);

        // A request in flight holds the old index.
        let held = shared.current();
        let held_version = held.banks_version();
        store
            .add_entries("known-bad", &[entry("md5", &image.exact.md5, None)])
            .await
            .unwrap();
        let refresher = {
            let (shared, store) = (shared.clone(), store.clone());
            tokio::spawn(async move { shared.refresh(store.as_ref()).await })
        };
        // While (and after) the swap happens, the held index is unchanged and whole.
        for _ in 0..50 {
            assert_eq!(held.banks_version(), held_version);
            assert!(held.match_signals(image.signals(), &policy()).is_empty());
            tokio::task::yield_now().await;
        }
        assert!(refresher.await.unwrap().unwrap());
        assert_eq!(held.banks_version(), held_version);
        assert!(held.match_signals(image.signals(), &policy()).is_empty());
        assert!(!Arc::ptr_eq(&held, &shared.current()));
        assert_eq!(
            shared
                .current()
                .match_signals(image.signals(), &policy())
                .len(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refresh_without_change_keeps_the_same_index() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let shared = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let before = shared.current();
        assert!(!shared.refresh(store.as_ref()).await.unwrap());
        assert!(Arc::ptr_eq(&before, &shared.current()));
        // A no-op write (the entry is already there) does not bump the version either.
        store
            .add_entries("known-bad", &[entry("md5", &"ab".repeat(16), None)])
            .await
            .unwrap();
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        let after = shared.current();
        store
            .add_entries("known-bad", &[entry("md5", &"AB".repeat(16), None)])
            .await
            .unwrap();
        assert!(!shared.refresh(store.as_ref()).await.unwrap());
        assert!(Arc::ptr_eq(&after, &shared.current()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_refreshes_end_at_the_newest_version() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let shared = Arc::new(SharedBankIndex::load(store.as_ref()).await.unwrap());
        let images: Vec<ExactHashes> = (0..12u32).map(|i| exact_hashes(&i.to_le_bytes())).collect();
        let mut tasks = Vec::new();
        for (i, exact) in images.iter().enumerate() {
            let (shared, store, md5) = (shared.clone(), store.clone(), exact.md5.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .add_entries("known-bad", &[entry("md5", &md5, Some(&format!("e{i}")))])
                    .await
                    .unwrap();
                shared.refresh(store.as_ref()).await.unwrap();
                // Whatever this task saw, it never saw the version go backwards.
                shared.current().banks_version()
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap());
        }
        let newest = store.banks_version().await.unwrap();
        let index = shared.current();
        assert_eq!(index.banks_version(), newest);
        assert!(seen.iter().all(|v| *v <= newest));
        for exact in &images {
            let signals = Signals {
                exact: Some(exact),
                pdq: None,
            };
            assert_eq!(index.match_signals(signals, &policy()).len(), 1);
        }
        assert!(!shared.refresh(store.as_ref()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_build_never_replaces_a_newer_one() {
        let (_dir, store) = store_with_banks(&[("known-bad", BankAction::Block, 31)]).await;
        let older = BankIndex::from_snapshot(&store.bank_snapshot().await.unwrap());
        store
            .add_entries("known-bad", &[entry("md5", &"cd".repeat(16), None)])
            .await
            .unwrap();
        let newer = BankIndex::from_snapshot(&store.bank_snapshot().await.unwrap());
        let (older_version, newer_version) = (older.banks_version(), newer.banks_version());
        assert!(older_version < newer_version);

        // A slow build of an older snapshot finishing after a newer one was installed.
        let shared = SharedBankIndex::default();
        assert!(shared.install(Arc::new(newer)));
        assert!(!shared.install(Arc::new(older)));
        assert_eq!(shared.current().banks_version(), newer_version);
        assert_eq!(shared.current().entry_count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_bank_actions_drive_the_decision() {
        let (_dir, store) = store_with_banks(&[
            ("released", BankAction::Allow, 31),
            ("lookalikes", BankAction::Review, 31),
        ])
        .await;
        let released = Image::new(6);
        let lookalike = Image::new(7);
        store
            .add_entries(
                "released",
                &[entry("md5", &released.exact.md5, Some("rev-1"))],
            )
            .await
            .unwrap();
        store
            .add_entries(
                "lookalikes",
                &[entry("pdq", &lookalike.pdq.hash.to_hex(), Some("l-1"))],
            )
            .await
            .unwrap();
        let index = SharedBankIndex::load(store.as_ref())
            .await
            .unwrap()
            .current();
        let rules = index.rules("released").unwrap();
        assert!(rules.allow_list);
        assert_eq!(rules.action, BankAction::Allow);

        // A policy file that says otherwise about the same bank loses to the store.
        let base = Policy::from_toml(
            "[banks.released]\naction = \"block\"\n",
            &explicit(),
            &explicit(),
        )
        .unwrap();
        let merged = index.policy_with_banks(&base);
        assert_ne!(merged.version(), base.version());
        let classifier_review: BTreeMap<String, f32> =
            [("BUTTOCKS_EXPOSED".to_string(), 0.8)].into();

        let matches = index.match_signals(released.signals(), &merged);
        assert_eq!(entries_of(&matches), vec![("released", "rev-1")]);
        assert_eq!(
            base.decide(&classifier_review, &matches).verdict,
            Verdict::Block
        );
        let decision = merged.decide(&classifier_review, &matches);
        assert_eq!(decision.verdict, Verdict::Allow, "{:?}", decision.reasons);
        assert!(decision.reasons[0].contains("cleared by allow-list bank released"));

        // A review bank in the store reviews, where the built-in default would block.
        let matches = index.match_signals(lookalike.signals(), &merged);
        assert_eq!(entries_of(&matches), vec![("lookalikes", "l-1")]);
        assert_eq!(
            merged.decide(&BTreeMap::new(), &matches).verdict,
            Verdict::Review
        );
        assert_eq!(
            policy().decide(&BTreeMap::new(), &matches).verdict,
            Verdict::Block
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unusable_entries_are_skipped_and_reported() {
        let (_dir, store) = sqlite_store().await;
        let mut odd = spec("odd", BankAction::Block, 31);
        odd.signal_types = vec!["md5".into(), "sha1".into()];
        store.create_bank(&odd).await.unwrap();
        let image = Image::new(8);
        store
            .add_entries(
                "odd",
                &[
                    entry("md5", "00ff", None),
                    entry("sha1", &"ab".repeat(20), None),
                    entry("md5", &image.exact.md5, Some("good")),
                ],
            )
            .await
            .unwrap();
        let index = SharedBankIndex::load(store.as_ref())
            .await
            .unwrap()
            .current();
        assert_eq!(index.entry_count(), 1);
        let mut skipped: Vec<&str> = index.skipped().iter().map(|s| s.signal.as_str()).collect();
        skipped.sort();
        assert_eq!(skipped, vec!["md5", "sha1"]);
        assert_eq!(
            entries_of(&index.match_signals(image.signals(), &policy())),
            vec![("odd", "good")]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_hma_import_goes_into_the_store_and_matches() {
        let (_dir, store) = store_with_banks(&[("ncmec", BankAction::Block, 31)]).await;
        let shared = SharedBankIndex::load(store.as_ref()).await.unwrap();
        let image = Image::new(9);
        let text = format!(
            "# exported list\npdq {} case-9\nmd5 {}\n",
            image.pdq.hash.to_hex().to_uppercase(),
            image.exact.md5
        );
        let writes: Vec<EntryWrite> = parse_entries(&text)
            .unwrap()
            .into_iter()
            .map(EntryWrite::from)
            .collect();
        assert_eq!(
            store.add_entries("ncmec", &writes).await.unwrap().changed,
            2
        );
        assert!(shared.refresh(store.as_ref()).await.unwrap());
        assert_eq!(
            shared
                .current()
                .match_signals(image.signals(), &policy())
                .len(),
            2
        );
    }

    #[test]
    fn an_empty_index_matches_nothing_and_leaves_the_policy_alone() {
        let index = BankIndex::empty();
        let image = Image::new(1);
        assert!(index.match_signals(image.signals(), &policy()).is_empty());
        assert_eq!(index.policy_with_banks(&policy()), policy());
        assert_eq!(index.banks_version(), BankIndex::EMPTY_VERSION);
    }
}
