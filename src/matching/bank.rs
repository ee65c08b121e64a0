//! Match stage: known-bad (and allow-list) hash banks.
//!
//! Bank files use HMA's import format: one `<signal_type> <hash> [id]` per line,
//! `#` starts a comment, the bank's name is the file stem. Exact signals (`md5`,
//! `sha256`) match by equality; `pdq` matches when the Hamming distance to any of
//! the image's eight dihedral hashes is within the bank's threshold, and only for
//! hashes of quality >= the policy's gate (a low-quality PDQ of a flat image
//! matches far too much).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hash::robust::Region;
use crate::hash::{ExactHashes, PdqHash, PdqOutput};
pub use crate::matching::params::{MatchParams, SignalThresholds};
use crate::matching::pdq_table::PdqTable;
pub use crate::matching::pdq_table::{Entry, PDQ_INDEX_FROM};
use crate::matching::robust;
pub use crate::matching::signal::SignalType;

/// One malformed line of a bank file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("cannot read bank file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bank file {path} has no usable name (the bank is named after the file stem)")]
    NoName { path: PathBuf },
    #[error("bank file {path} was not loaded: {}", format_bad_lines(path, lines))]
    Malformed { path: PathBuf, lines: Vec<BadLine> },
    #[error("two bank files are both named {name}: {first} and {second}")]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

fn format_bad_lines(path: &Path, lines: &[BadLine]) -> String {
    const SHOWN: usize = 10;
    let mut out: Vec<String> = lines
        .iter()
        .take(SHOWN)
        .map(|b| format!("{}:{}: {}", path.display(), b.line, b.detail))
        .collect();
    if lines.len() > SHOWN {
        out.push(format!(
            "... and {} more malformed lines",
            lines.len() - SHOWN
        ));
    }
    format!("{} malformed line(s)\n  {}", lines.len(), out.join("\n  "))
}

/// One entry of an HMA import file, validated and normalised (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedEntry {
    pub signal: SignalType,
    pub hash: String,
    /// The optional third column.
    pub external_id: Option<String>,
    /// 1-based line number in the import text.
    pub line: usize,
}

/// Parse HMA import text into entries without building a [`Bank`] (bulk import into
/// the store); the whole text or nothing, every malformed line reported.
pub fn parse_entries(text: &str) -> Result<Vec<ParsedEntry>, Vec<BadLine>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if text.len() < PARALLEL_PARSE_BYTES || threads == 1 {
        return parse_lines(text, 0);
    }
    parse_in_chunks(text, threads)
}

/// [`parse_entries`] on `threads` threads, each over a run of whole lines.
fn parse_in_chunks(text: &str, threads: usize) -> Result<Vec<ParsedEntry>, Vec<BadLine>> {
    // Chunks end just after a newline, so each holds whole lines; a chunk's first line
    // number is the count of newlines before it.
    let mut chunks = Vec::with_capacity(threads);
    let (mut start, mut first_line) = (0, 0);
    for k in 1..=threads {
        let mut end = text.len() * k / threads;
        if k < threads {
            end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        }
        if end <= start {
            continue;
        }
        let chunk = &text[start..end];
        chunks.push((chunk, first_line));
        first_line += chunk.bytes().filter(|&b| b == b'\n').count();
        start = end;
    }
    let parsed: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|&(chunk, first)| scope.spawn(move || parse_lines(chunk, first)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for chunk in parsed {
        match chunk {
            Ok(mut found) if bad.is_empty() => entries.append(&mut found),
            Ok(_) => {}
            Err(mut lines) => bad.append(&mut lines),
        }
    }
    if bad.is_empty() {
        Ok(entries)
    } else {
        Err(bad)
    }
}

/// Bank texts from this size on are parsed on every core: a 1M-line file (70 MB) takes
/// about a second on one, and `scan --bank` pays it before its first image.
const PARALLEL_PARSE_BYTES: usize = 4 << 20;

/// [`parse_entries`] of whole lines, the first of which is line `first_line + 1`.
fn parse_lines(text: &str, first_line: usize) -> Result<Vec<ParsedEntry>, Vec<BadLine>> {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = first_line + index + 1;
        match parse_line(raw) {
            Ok(None) => {}
            Ok(Some((signal, hash, external_id))) => entries.push(ParsedEntry {
                signal,
                hash,
                external_id,
                line,
            }),
            Err(detail) => bad.push(BadLine { line, detail }),
        }
    }
    if bad.is_empty() {
        Ok(entries)
    } else {
        Err(bad)
    }
}

/// [`parse_entries`] for an uploaded or local file: errors name `source` (the file
/// name) and each bad line, as [`Bank::load`] does.
pub fn parse_import(source: impl AsRef<Path>, text: &str) -> Result<Vec<ParsedEntry>, BankError> {
    parse_entries(text).map_err(|lines| BankError::Malformed {
        path: source.as_ref().to_path_buf(),
        lines,
    })
}

/// One line of bank text: `Ok(None)` for blank and comment-only lines.
fn parse_line(raw: &str) -> Result<Option<(SignalType, String, Option<String>)>, String> {
    let line = match raw.find('#') {
        Some(i) => &raw[..i],
        None => raw,
    }
    .trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut parts = line.splitn(3, char::is_whitespace);
    let signal_text = parts.next().unwrap_or_default();
    let signal = SignalType::parse(signal_text).ok_or_else(|| {
        let known: Vec<&str> = SignalType::ALL.iter().map(SignalType::as_str).collect();
        format!(
            "unknown signal type {signal_text:?} (expected {})",
            known.join(", ")
        )
    })?;
    let hash = parts
        .next()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{signal} line has no hash"))?;
    let hash = normalise_hash(signal, hash)?;
    let external_id = parts
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    // A region hash is one of several lines of one image; without the id they share, a
    // match could not be told apart from another image's.
    if signal.region().is_some() && external_id.is_none() {
        return Err(format!(
            "{signal} line has no entry id (region lines share their image's id)"
        ));
    }
    Ok(Some((signal, hash, external_id)))
}

/// Lowercase hex of the signal's length, or why not.
pub fn normalise_hash(signal: SignalType, hash: &str) -> Result<String, String> {
    let hash = hash.to_ascii_lowercase();
    if hash.len() != signal.hex_len() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{signal} hash {hash:?} must be {} hex digits",
            signal.hex_len()
        ));
    }
    Ok(hash)
}

/// One bank: its entries indexed by signal.
///
/// The entries built with [`Bank::add`] are shared (`Arc`), so a clone is cheap; changes made
/// afterwards with [`Bank::apply_change`] go into a small delta beside them, so one entry
/// added or removed in a bank of millions costs a clone of the delta, not a rebuild of the
/// PDQ index.
#[derive(Clone, Debug, Default)]
pub struct Bank {
    pub name: String,
    /// Whole-image PDQ entries.
    pdq: PdqTable,
    /// Region PDQ entries, per region (only banks built from images have them).
    regions: BTreeMap<Region, PdqTable>,
    exact: Arc<HashMap<(SignalType, String), Vec<Entry>>>,
    exact_delta: ExactDelta,
}

/// Changes over a bank's shared exact entries.
#[derive(Clone, Debug, Default)]
struct ExactDelta {
    hidden: HashSet<(SignalType, String)>,
    /// How many shared entries `hidden` hides, for [`Bank::len`].
    hidden_shared: usize,
    added: HashMap<(SignalType, String), Vec<Entry>>,
}

impl Bank {
    /// The whole-image PDQ hashes of the entries.
    pub fn pdq_hashes(&self) -> impl Iterator<Item = &PdqHash> {
        self.pdq.hashes()
    }

    /// The MD5 and SHA-256 hex of the entries.
    pub fn exact_hashes(&self) -> impl Iterator<Item = &str> {
        self.exact
            .keys()
            .filter(|key| !self.exact_delta.hidden.contains(*key))
            .chain(self.exact_delta.added.keys())
            .map(|(_, hash)| hash.as_str())
    }

    /// The entries of one exact hash.
    fn exact_entries(&self, key: &(SignalType, String)) -> impl Iterator<Item = &Entry> {
        let shared = if self.exact_delta.hidden.contains(key) {
            None
        } else {
            self.exact.get(key)
        };
        shared
            .into_iter()
            .chain(self.exact_delta.added.get(key))
            .flatten()
    }

    /// Makes an entry match as `matched_as` (`Some`) or stop matching (`None`), over the
    /// shared entries, without touching them. For banks built from a store snapshot, where
    /// (signal, hash) is unique per bank.
    pub fn apply_change(
        &mut self,
        signal: SignalType,
        hash: &str,
        matched_as: Option<&str>,
    ) -> Result<(), String> {
        let hash = normalise_hash(signal, hash)?;
        if signal.is_pdq() {
            let pdq = PdqHash::from_hex(&hash).map_err(|e| e.to_string())?;
            let table = match signal.region() {
                Some(region) => self.regions.entry(region).or_default(),
                None => &mut self.pdq,
            };
            table.apply_change(pdq, matched_as);
            return Ok(());
        }
        let key = (signal, hash);
        let delta = &mut self.exact_delta;
        if !delta.hidden.contains(&key) {
            if self.exact.contains_key(&key) {
                delta.hidden_shared += 1;
            }
            delta.hidden.insert(key.clone());
        }
        delta.added.remove(&key);
        if let Some(id) = matched_as {
            delta.added.insert(key, vec![Entry { id: id.to_string() }]);
        }
        Ok(())
    }

    /// Entries changed by [`Bank::apply_change`] since the shared entries were built.
    pub fn delta_len(&self) -> usize {
        self.pdq.delta_len()
            + self
                .regions
                .values()
                .map(PdqTable::delta_len)
                .sum::<usize>()
            + self.exact_delta.hidden.len()
            + self.exact_delta.added.len()
    }

    pub fn new(name: impl Into<String>) -> Self {
        Bank {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Parse bank text; the whole file or nothing. Lines without an id get
    /// `<name>:<line>` so a match still points at its source.
    pub fn parse(name: &str, text: &str) -> Result<Self, Vec<BadLine>> {
        let mut bank = Bank::new(name);
        let mut bad = Vec::new();
        for parsed in parse_entries(text)? {
            let id = parsed
                .external_id
                .unwrap_or_else(|| format!("{name}:{}", parsed.line));
            // The line parser already validated the hash, so this only fails if the two
            // checks drift apart; report it as that line rather than panic.
            if let Err(detail) = bank.add_normalised(parsed.signal, parsed.hash, id) {
                bad.push(BadLine {
                    line: parsed.line,
                    detail,
                });
            }
        }
        if bad.is_empty() {
            Ok(bank)
        } else {
            Err(bad)
        }
    }

    /// Load a bank file; its name is the file stem.
    pub fn load(path: &Path) -> Result<Self, BankError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BankError::NoName {
                path: path.to_path_buf(),
            })?;
        let text = std::fs::read_to_string(path).map_err(|source| BankError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Bank::parse(name, &text).map_err(|lines| BankError::Malformed {
            path: path.to_path_buf(),
            lines,
        })
    }

    /// Add one entry; the hash is validated and normalised to lowercase hex.
    pub fn add(
        &mut self,
        signal: SignalType,
        hash: &str,
        id: impl Into<String>,
    ) -> Result<(), String> {
        let hash = normalise_hash(signal, hash)?;
        self.add_normalised(signal, hash, id)
    }

    /// [`Bank::add`] of a hash [`normalise_hash`] has already checked and lower-cased.
    fn add_normalised(
        &mut self,
        signal: SignalType,
        hash: String,
        id: impl Into<String>,
    ) -> Result<(), String> {
        let entry = Entry { id: id.into() };
        if signal.is_pdq() {
            let pdq = PdqHash::from_hex(&hash).map_err(|e| e.to_string())?;
            match signal.region() {
                Some(region) => self.regions.entry(region).or_default().push(pdq, entry),
                None => self.pdq.push(pdq, entry),
            }
        } else {
            Arc::make_mut(&mut self.exact)
                .entry((signal, hash))
                .or_default()
                .push(entry);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.pdq.len()
            + self.regions.values().map(PdqTable::len).sum::<usize>()
            + self.exact.values().map(Vec::len).sum::<usize>()
            - self.exact_delta.hidden_shared
            + self.exact_delta.added.values().map(Vec::len).sum::<usize>()
    }

    /// Builds the PDQ indexes of the tables large enough to gain from one.
    pub fn index(&mut self) {
        self.pdq.index(&self.name);
        for table in self.regions.values_mut() {
            table.index(&self.name);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a bank match reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BankMatch {
    pub bank: String,
    pub signal: SignalType,
    pub distance: u32,
    /// What of the image matched (PDQ only): a dihedral transform of the reference hash
    /// (`original`, `rot90`, ...), or a robust signal: `turned:<transform>` (the turned
    /// pixels), `trimmed` or `trimmed+<transform>` (the picture inside a frame),
    /// `region:<region>` (a fixed region, against a bank entry of the same region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Matched only by a robust signal: never clears an allow-list, since the rest of the
    /// image may be anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub robust: bool,
    pub entry: String,
    /// The frame of the view that matched; absent for the reference decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub frame: Option<crate::decode::FrameId>,
    /// The rendering of the view that matched (`opaque`, `over_<rrggbb>`); absent for the
    /// reference decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub rendering: Option<crate::screening::views::Rendering>,
}

impl BankMatch {
    /// The view that matched, if not the reference decoding.
    #[must_use]
    pub fn view(&self) -> Option<crate::screening::views::ViewId> {
        Some(crate::screening::views::ViewId {
            frame: self.frame?,
            rendering: self.rendering?,
        })
    }
}

/// The image's signals, as matching needs them.
#[derive(Clone, Copy, Debug)]
pub struct Signals<'a> {
    /// The file's exact hashes; `None` for a view (a frame or rendering has no bytes of its own).
    pub exact: Option<&'a ExactHashes>,
    pub pdq: Option<&'a PdqOutput>,
}

/// All loaded banks.
#[derive(Clone, Debug, Default)]
pub struct BankSet {
    banks: Vec<Bank>,
    sources: Vec<PathBuf>,
}

impl BankSet {
    /// Load bank files; any bad file fails the whole set (no half-loaded banks).
    pub fn load(paths: &[PathBuf]) -> Result<Self, BankError> {
        let mut set = BankSet::default();
        for path in paths {
            let bank = Bank::load(path)?;
            if let Some(i) = set.banks.iter().position(|b| b.name == bank.name) {
                return Err(BankError::DuplicateName {
                    name: bank.name,
                    first: set.sources[i].clone(),
                    second: path.clone(),
                });
            }
            let mut bank = bank;
            bank.index();
            set.banks.push(bank);
            set.sources.push(path.clone());
        }
        Ok(set)
    }

    pub fn from_banks(mut banks: Vec<Bank>) -> Self {
        banks.iter_mut().for_each(Bank::index);
        let sources = banks.iter().map(|b| PathBuf::from(&b.name)).collect();
        BankSet { banks, sources }
    }

    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// The named bank, to apply changes to.
    pub fn bank_mut(&mut self, name: &str) -> Option<&mut Bank> {
        self.banks.iter_mut().find(|b| b.name == name)
    }

    /// Every match of the image in every bank: one per entry, at the entry's
    /// smallest distance over the dihedral hashes, nearest first.
    pub fn match_signals(
        &self,
        signals: Signals<'_>,
        params: impl Fn(&str) -> MatchParams,
    ) -> Vec<BankMatch> {
        let mut matches = Vec::new();
        for bank in &self.banks {
            let p = params(&bank.name);
            let exact = signals
                .exact
                .map(|e| [(SignalType::Md5, &e.md5), (SignalType::Sha256, &e.sha256)]);
            for (signal, value) in exact.into_iter().flatten() {
                {
                    let entries = bank.exact_entries(&(signal, value.clone()));
                    matches.extend(entries.map(|e| BankMatch {
                        bank: bank.name.clone(),
                        signal,
                        distance: 0,
                        transform: None,
                        robust: false,
                        entry: e.id.clone(),
                        frame: None,
                        rendering: None,
                    }));
                }
            }
            let Some(pdq) = signals.pdq else {
                continue;
            };
            for m in robust::match_pdq(&bank.pdq, &bank.regions, pdq, &p) {
                matches.push(BankMatch {
                    bank: bank.name.clone(),
                    signal: m.region.map_or(SignalType::Pdq, SignalType::of_region),
                    distance: m.distance,
                    transform: Some(m.transform),
                    robust: m.robust,
                    entry: m.entry.id.clone(),
                    frame: None,
                    rendering: None,
                });
            }
        }
        matches.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then_with(|| a.bank.cmp(&b.bank))
        });
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDQ_A: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    #[test]
    fn parses_comments_ids_and_case() {
        let text = format!(
            "# known bad\n\npdq {} case-17\nMD5 900150983CD24FB0D6963F7D28E17F72  # trailing comment\nsha256 {}\n",
            PDQ_A,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let bank = Bank::parse("known-bad", &text).unwrap();
        assert_eq!(bank.len(), 3);
        assert_eq!(bank.pdq.entry(0).id, "case-17");
        // Missing id: file and line stand in.
        let exact = &bank.exact[&(
            SignalType::Md5,
            "900150983cd24fb0d6963f7d28e17f72".to_string(),
        )];
        assert_eq!(exact[0].id, "known-bad:4");
    }

    #[test]
    fn every_malformed_line_is_reported_and_nothing_loads() {
        let text = "pdq abc\nsha1 0000\nmd5\nmd5 900150983cd24fb0d6963f7d28e17f72\npdq zz"
            .to_string()
            + "0".repeat(62).as_str();
        let bad = Bank::parse("b", &text).unwrap_err();
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 5]);
        assert!(bad[1].detail.contains("unknown signal type"));
    }

    #[test]
    fn import_entries_match_what_a_bank_parses() {
        let text = format!(
            "# header\nPDQ {} case-17\n\nmd5 900150983CD24FB0D6963F7D28E17F72\n",
            PDQ_A.to_uppercase()
        );
        let entries = parse_entries(&text).unwrap();
        assert_eq!(
            entries,
            vec![
                ParsedEntry {
                    signal: SignalType::Pdq,
                    hash: PDQ_A.to_string(),
                    external_id: Some("case-17".into()),
                    line: 2,
                },
                ParsedEntry {
                    signal: SignalType::Md5,
                    hash: "900150983cd24fb0d6963f7d28e17f72".into(),
                    // No id invented: the store gives each entry its own.
                    external_id: None,
                    line: 4,
                },
            ]
        );
        assert_eq!(Bank::parse("b", &text).unwrap().len(), entries.len());
        assert!(parse_entries("# only comments\n\n").unwrap().is_empty());
    }

    #[test]
    fn import_reports_the_same_bad_lines_as_bank_parse() {
        let text = "md5 900150983cd24fb0d6963f7d28e17f72\npdq abc\nsha1 0000\nsha256\n";
        let bad = parse_entries(text).unwrap_err();
        assert_eq!(bad, Bank::parse("b", text).unwrap_err());
        assert_eq!(
            bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let err = parse_import("upload.txt", text).unwrap_err().to_string();
        assert!(err.contains("upload.txt:2: pdq hash"), "{err}");
        assert!(err.contains("upload.txt:3: unknown signal type"), "{err}");
        assert!(
            err.contains("upload.txt:4: sha256 line has no hash"),
            "{err}"
        );
    }

    #[test]
    fn load_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csam-hashes.txt");
        std::fs::write(&path, "pdq 1234\n").unwrap();
        let err = BankSet::load(&[path]).unwrap_err().to_string();
        assert!(err.contains("csam-hashes.txt:1:"), "{err}");
    }

    #[test]
    fn a_text_parsed_in_chunks_equals_one_parsed_whole() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut lines: Vec<String> = (0..5000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let hash = format!("{:016x}", state).repeat(4);
                match i % 7 {
                    0 => format!("pdq {} e{i}\r", hash.to_uppercase()),
                    1 => "# a comment".to_string(),
                    2 => String::new(),
                    _ => format!("pdq {hash} e{i}"),
                }
            })
            .collect();
        let whole = lines.join("\n");
        for threads in [2, 3, 7] {
            assert_eq!(
                parse_in_chunks(&whole, threads),
                parse_lines(&whole, 0),
                "{threads}"
            );
        }
        // Bad lines in every chunk keep their own line numbers.
        for at in [10, 1700, 2501, 4999] {
            lines[at] = format!("pdq nothex e{at}");
        }
        let bad = parse_in_chunks(&lines.join("\n"), 3).unwrap_err();
        let numbers: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(numbers, [11, 1701, 2502, 5000]);
    }

    #[test]
    fn duplicate_bank_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.txt");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let b = dir.path().join("sub").join("x.csv");
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        assert!(matches!(
            BankSet::load(&[a, b]),
            Err(BankError::DuplicateName { .. })
        ));
    }

    #[test]
    fn an_indexed_bank_matches_exactly_like_a_scanned_one() {
        // A real image's eight dihedral hashes, and a bank big enough to be indexed: random
        // entries plus near copies of some dihedral hashes at distances around the threshold.
        let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| ((i * 37) % 251) as u8).collect();
        let image = crate::hash::pdq::pdq_from_rgb8(64, 48, &rgb).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        };
        let mut bank = Bank::new("big");
        for i in 0..PDQ_INDEX_FROM + 500 {
            let mut hash = PdqHash([0; 32]);
            if i % 97 == 0 {
                hash = image.dihedral[i % 8];
                for _ in 0..(i / 97) % 40 {
                    let bit = (next() % 256) as usize;
                    hash.0[bit / 8] ^= 1 << (bit % 8);
                }
            } else {
                for chunk in hash.0.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&next().to_le_bytes());
                }
            }
            bank.add(SignalType::Pdq, &hash.to_hex(), format!("e{i}"))
                .unwrap();
        }
        let scanned = BankSet {
            banks: vec![bank.clone()],
            sources: Vec::new(),
        };
        let indexed = BankSet::from_banks(vec![bank]);
        assert!(indexed.banks[0].pdq.is_indexed());
        assert!(!scanned.banks[0].pdq.is_indexed());
        let exact = crate::hash::exact_hashes(b"not in the bank");
        for threshold in [0, 10, 31, 47, 63] {
            let params = |_: &str| MatchParams {
                pdq_threshold: threshold,
                pdq_min_quality: 0,
                signals: SignalThresholds::default(),
            };
            let signals = Signals {
                exact: Some(&exact),
                pdq: Some(&image),
            };
            let found = indexed.match_signals(signals, params);
            assert_eq!(
                found,
                scanned.match_signals(signals, params),
                "threshold {threshold}"
            );
            if threshold >= 31 {
                assert!(
                    found.len() > 10,
                    "planted neighbours are found: {}",
                    found.len()
                );
            }
        }
    }
}
