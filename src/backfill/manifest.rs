//! Backfill manifests: the list of already-published artwork to screen again.
//!
//! A manifest is CSV with a header row, or JSON Lines (one object a line). The
//! format comes from the file's extension (`.csv`, `.jsonl`, `.ndjson`) unless
//! the caller names it. Every row has:
//!
//! | field | |
//! | --- | --- |
//! | `artwork_id` | required: 1 to 128 characters of `[A-Za-z0-9._:-]` |
//! | `url` or `path` | at most one: an `http`/`https` URL, or a file path. A relative path is taken from the manifest's directory. With neither, the row's `title` and `description` are screened alone (a playlist without a cover), and one of them is required |
//! | `owner_id` | required, as `artwork_id`: an artwork without its owner can never be taken down with the account |
//! | `surface` | optional (`playlist_cover`, `track_art`, …), as `artwork_id` |
//! | `owner_is_minor` | optional; exactly `true`, `false`, `1` or `0` (JSON `true`/`false` too) |
//! | `playlist_track_count` | optional whole number, 0 or more (digits only) |
//! | `title`, `description` | optional: the playlist's or track's words, read by the text rules |
//!
//! The ids and context go through [`crate::screening::context::parse`], the parser of every
//! entry point, so a row is refused for what `/v1/screen` would refuse.
//!
//! An empty CSV cell, or a JSON `null`, means the field is absent. CSV cells are
//! trimmed of surrounding spaces; JSON strings are taken as written.
//!
//! **Unknown fields are rejected**, in the CSV header and on any JSON line. A
//! misspelt `owner_is_minor` would otherwise be dropped in silence, and the
//! item screened without the strict profile it needed: failing closed means
//! failing loudly here.
//!
//! Reading streams: [`ManifestReader`] is an iterator over a [`BufRead`] that
//! holds one row at a time. A bad row yields a [`ManifestError`] naming its line
//! and field, and reading goes on with the next row, so a caller can list every
//! bad line at once. Only an I/O error ends the iteration.
//!
//! The reader does not look for repeated artwork ids: that needs memory for
//! every id, and what to do is the caller's choice. [`DuplicateIds`] finds them.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::screening::context::parse::{json_kind, FieldError, FieldSet};

/// What the upload's context says, as the screening service takes it.
pub type ItemContext = crate::screening::context::ScreenContext;

/// One row of a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The line the row starts on (1-based; a CSV header is line 1).
    pub line: u64,
    pub artwork_id: String,
    pub source: ItemSource,
    pub owner_id: Option<String>,
    pub context: ItemContext,
}

/// Where the artwork's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemSource {
    /// An `http://` or `https://` URL, as written in the manifest.
    Url(String),
    /// A file; a relative path in the manifest is already joined to the
    /// manifest's directory.
    Path(PathBuf),
    /// No image: the row's title and description are screened alone.
    Words,
}

/// The two manifest formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestFormat {
    Csv,
    Jsonl,
}

impl ManifestFormat {
    /// The format named by a file's extension: `.csv`, or `.jsonl` / `.ndjson`
    /// (any case).
    pub fn from_path(path: &Path) -> Result<Self, ManifestError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(ManifestFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(ManifestFormat::Jsonl),
            _ => Err(ManifestError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A manifest that cannot be read, or one bad row of it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot open manifest {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "cannot tell the format of manifest {path} from its name: name it .csv, .jsonl or \
         .ndjson, or give the format explicitly"
    )]
    UnknownFormat { path: PathBuf },
    #[error("line {line}: cannot read the manifest: {source}")]
    Io { line: u64, source: io::Error },
    #[error("line {line}: malformed CSV: {source}")]
    Csv { line: u64, source: csv::Error },
    #[error("line {line}: malformed JSON: {source}")]
    Json {
        line: u64,
        source: serde_json::Error,
    },
    #[error("line {line}: expected a JSON object (one item a line), found {found}")]
    NotAnObject { line: u64, found: &'static str },
    #[error(
        "the CSV manifest is empty: its first line must be a header naming the columns ({FIELDS})"
    )]
    NoHeader,
    #[error("line 1: the CSV header has no {column} column; the columns are {FIELDS}")]
    MissingColumn { column: &'static str },
    #[error("line {line}: field {field:?} is given twice")]
    DuplicateField { line: u64, field: String },
    #[error("line {line}: unknown field {field:?}; the fields are {FIELDS}")]
    UnknownField { line: u64, field: String },
    #[error("line {line}: {field} is missing or empty")]
    MissingField { line: u64, field: &'static str },
    #[error(
        "line {line}: neither url nor path is set, nor a title or description to screen \
         alone; give one"
    )]
    MissingSource { line: u64 },
    #[error("line {line}: both url and path are set; give exactly one")]
    BothUrlAndPath { line: u64 },
    #[error("line {line}: {field} {value}: {problem}")]
    InvalidField {
        line: u64,
        field: &'static str,
        /// The value as written (JSON values in JSON syntax).
        value: String,
        problem: &'static str,
    },
}

impl ManifestError {
    /// The line this error is about, where it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            ManifestError::Open { .. }
            | ManifestError::UnknownFormat { .. }
            | ManifestError::NoHeader => None,
            ManifestError::MissingColumn { .. } => Some(1),
            ManifestError::Io { line, .. }
            | ManifestError::Csv { line, .. }
            | ManifestError::Json { line, .. }
            | ManifestError::NotAnObject { line, .. }
            | ManifestError::DuplicateField { line, .. }
            | ManifestError::UnknownField { line, .. }
            | ManifestError::MissingField { line, .. }
            | ManifestError::MissingSource { line }
            | ManifestError::BothUrlAndPath { line }
            | ManifestError::InvalidField { line, .. } => Some(*line),
        }
    }
}

const FIELDS: &str =
    "artwork_id, url, path, owner_id, surface, owner_is_minor, playlist_track_count";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ArtworkId,
    Url,
    Path,
    OwnerId,
    Surface,
    OwnerIsMinor,
    PlaylistTrackCount,
    Title,
    Description,
}

impl Field {
    const ALL: [Field; 9] = [
        Field::ArtworkId,
        Field::Url,
        Field::Path,
        Field::OwnerId,
        Field::Surface,
        Field::OwnerIsMinor,
        Field::PlaylistTrackCount,
        Field::Title,
        Field::Description,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::ArtworkId => "artwork_id",
            Field::Url => "url",
            Field::Path => "path",
            Field::OwnerId => "owner_id",
            Field::Surface => "surface",
            Field::OwnerIsMinor => "owner_is_minor",
            Field::PlaylistTrackCount => "playlist_track_count",
            Field::Title => "title",
            Field::Description => "description",
        }
    }

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One cell as read, before it is typed. CSV gives text, JSON gives values.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Text(&'a str),
    Json(&'a Value),
}

/// A row's cells, indexed by `Field as usize`.
type Cells<'a> = [Option<Raw<'a>>; Field::ALL.len()];

/// Streams the items of a manifest. See the [module docs](self).
pub struct ManifestReader<R> {
    inner: Inner<R>,
    base_dir: PathBuf,
    /// Set after an I/O error: the stream position is unknown, so stop.
    failed: bool,
}

enum Inner<R> {
    Csv {
        reader: csv::Reader<LineCounter<R>>,
        /// The field of each column, in header order.
        columns: Vec<Field>,
        record: csv::StringRecord,
    },
    Jsonl {
        reader: R,
        line: u64,
        buf: Vec<u8>,
    },
}

/// Opens a manifest file. The format comes from the extension unless `format`
/// names it; relative `path`s in it are taken from the file's directory.
pub fn open(
    path: &Path,
    format: Option<ManifestFormat>,
) -> Result<ManifestReader<BufReader<File>>, ManifestError> {
    let format = match format {
        Some(f) => f,
        None => ManifestFormat::from_path(path)?,
    };
    let file = File::open(path).map_err(|source| ManifestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    ManifestReader::new(BufReader::new(file), format, base_dir)
}

impl<R: BufRead> ManifestReader<R> {
    /// Reads a manifest from `reader`. Relative `path`s are joined to
    /// `base_dir`. A CSV header is read and checked here.
    pub fn new(
        reader: R,
        format: ManifestFormat,
        base_dir: impl Into<PathBuf>,
    ) -> Result<Self, ManifestError> {
        let inner = match format {
            ManifestFormat::Csv => {
                // Cells are trimmed in next_csv, not by csv: a trimmed
                // quoted newline would throw the line count off.
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .trim(csv::Trim::Headers)
                    .from_reader(LineCounter::new(reader));
                let columns = csv_columns(&mut reader)?;
                Inner::Csv {
                    reader,
                    columns,
                    record: csv::StringRecord::new(),
                }
            }
            ManifestFormat::Jsonl => Inner::Jsonl {
                reader,
                line: 0,
                buf: Vec::new(),
            },
        };
        Ok(ManifestReader {
            inner,
            base_dir: base_dir.into(),
            failed: false,
        })
    }
}

fn csv_columns<R: io::Read>(
    reader: &mut csv::Reader<LineCounter<R>>,
) -> Result<Vec<Field>, ManifestError> {
    let header = reader.headers().map_err(|source| csv_error(1, source))?;
    if header.iter().all(str::is_empty) {
        return Err(ManifestError::NoHeader);
    }
    let mut columns = Vec::with_capacity(header.len());
    for name in header {
        let field = Field::parse(name).ok_or_else(|| ManifestError::UnknownField {
            line: 1,
            field: name.to_string(),
        })?;
        if columns.contains(&field) {
            return Err(ManifestError::DuplicateField {
                line: 1,
                field: name.to_string(),
            });
        }
        columns.push(field);
    }
    for (field, column) in [
        (Field::ArtworkId, "artwork_id"),
        (Field::OwnerId, "owner_id"),
    ] {
        if !columns.contains(&field) {
            return Err(ManifestError::MissingColumn { column });
        }
    }
    let sources = [Field::Url, Field::Path, Field::Title, Field::Description];
    if !sources.iter().any(|f| columns.contains(f)) {
        return Err(ManifestError::MissingColumn {
            column: "url, path, title or description",
        });
    }
    Ok(columns)
}

/// csv's I/O errors become [`ManifestError::Io`], the rest [`ManifestError::Csv`].
fn csv_error(line: u64, source: csv::Error) -> ManifestError {
    match source.kind() {
        // csv keeps the io::Error inside; a copy of its kind and text is what
        // a caller needs, and the csv::Error can then be dropped whole.
        csv::ErrorKind::Io(e) => ManifestError::Io {
            line,
            source: io::Error::new(e.kind(), e.to_string()),
        },
        _ => ManifestError::Csv { line, source },
    }
}

impl<R: BufRead> Iterator for ManifestReader<R> {
    type Item = Result<ManifestItem, ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = match &mut self.inner {
            Inner::Csv {
                reader,
                columns,
                record,
            } => next_csv(reader, columns, record, &self.base_dir)?,
            Inner::Jsonl { reader, line, buf } => next_jsonl(reader, line, buf, &self.base_dir)?,
        };
        if matches!(result, Err(ManifestError::Io { .. })) {
            self.failed = true;
        }
        Some(result)
    }
}

fn next_csv<R: io::Read>(
    reader: &mut csv::Reader<LineCounter<R>>,
    columns: &[Field],
    record: &mut csv::StringRecord,
    base_dir: &Path,
) -> Option<Result<ManifestItem, ManifestError>> {
    let result = reader.read_record(record);
    // The reader now stands just past the row's terminator; the row's last
    // line is the one that terminator ends.
    let end = reader.position().byte().saturating_sub(1);
    let last_line = reader.get_mut().newlines_before(end) + 1;
    match result {
        Ok(false) => None,
        // A bad row's own line breaks are unknown; this is right for a row on one line.
        Err(source) => Some(Err(csv_error(last_line, source))),
        Ok(true) => {
            let embedded: usize = record.iter().map(|f| f.matches('\n').count()).sum();
            let line = last_line.saturating_sub(embedded as u64);
            let mut cells: Cells = [None; Field::ALL.len()];
            for (field, value) in columns.iter().zip(record.iter()) {
                cells[*field as usize] = Some(Raw::Text(value.trim()));
            }
            Some(build_item(line, &cells, base_dir))
        }
    }
}

/// Notes where the line breaks are in the bytes it passes on, so that rows
/// get their true line numbers: csv's own count lags behind on CRLF files
/// and after blank lines. It holds only the breaks csv has read ahead of the
/// current row.
struct LineCounter<R> {
    inner: R,
    offset: u64,
    ahead: VecDeque<u64>,
    passed: u64,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            offset: 0,
            ahead: VecDeque::new(),
            passed: 0,
        }
    }

    /// Line breaks before byte `pos`. `pos` must not go backwards.
    fn newlines_before(&mut self, pos: u64) -> u64 {
        while self.ahead.front().is_some_and(|&at| at < pos) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed
    }
}

impl<R: io::Read> io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.offset;
        self.ahead.extend(
            buf[..n]
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| start + i as u64),
        );
        self.offset += n as u64;
        Ok(n)
    }
}

fn next_jsonl<R: BufRead>(
    reader: &mut R,
    line: &mut u64,
    buf: &mut Vec<u8>,
    base_dir: &Path,
) -> Option<Result<ManifestItem, ManifestError>> {
    loop {
        buf.clear();
        *line += 1;
        match reader.read_until(b'\n', buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(source) => {
                return Some(Err(ManifestError::Io {
                    line: *line,
                    source,
                }))
            }
        }
        let mut bytes: &[u8] = buf;
        if *line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        // Blank lines (a trailing newline, a CRLF file's "\r") carry no item.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(source) => {
                return Some(Err(ManifestError::Json {
                    line: *line,
                    source,
                }))
            }
        };
        return Some(json_item(*line, &value, base_dir));
    }
}

fn json_item(line: u64, value: &Value, base_dir: &Path) -> Result<ManifestItem, ManifestError> {
    let Value::Object(map) = value else {
        return Err(ManifestError::NotAnObject {
            line,
            found: json_kind(value),
        });
    };
    let mut cells: Cells = [None; Field::ALL.len()];
    for (key, value) in map {
        let field = Field::parse(key).ok_or_else(|| ManifestError::UnknownField {
            line,
            field: key.clone(),
        })?;
        cells[field as usize] = Some(Raw::Json(value));
    }
    build_item(line, &cells, base_dir)
}

fn build_item(line: u64, cells: &Cells, base_dir: &Path) -> Result<ManifestItem, ManifestError> {
    // The ids and context through the parser `/v1/screen` uses, the ids required there too.
    let mut fields = FieldSet::new();
    for field in [
        Field::ArtworkId,
        Field::OwnerId,
        Field::Surface,
        Field::OwnerIsMinor,
        Field::PlaylistTrackCount,
        Field::Title,
        Field::Description,
    ] {
        push_cell(&mut fields, line, field, cells[field as usize])?;
    }
    let fields = fields
        .finish(true)
        .map_err(|e| match Field::parse(e.field()) {
            Some(field) => ManifestError::MissingField {
                line,
                field: field.name(),
            },
            None => ManifestError::UnknownField {
                line,
                field: e.field().to_string(),
            },
        })?;
    let missing = |field: Field| ManifestError::MissingField {
        line,
        field: field.name(),
    };
    let artwork_id = fields.artwork_id.ok_or_else(|| missing(Field::ArtworkId))?;
    let owner_id = fields.owner_id.ok_or_else(|| missing(Field::OwnerId))?;
    let text = |field: Field| text_cell(line, field, cells[field as usize]);
    let source = match (text(Field::Url)?, text(Field::Path)?) {
        (Some(_), Some(_)) => return Err(ManifestError::BothUrlAndPath { line }),
        (None, None) if fields.context.title.is_some() || fields.context.description.is_some() => {
            ItemSource::Words
        }
        (None, None) => return Err(ManifestError::MissingSource { line }),
        (Some(url), None) => ItemSource::Url(check_url(line, url)?),
        (None, Some(path)) => ItemSource::Path(base_dir.join(path)),
    };
    Ok(ManifestItem {
        line,
        artwork_id,
        source,
        owner_id: Some(owner_id),
        context: fields.context,
    })
}

/// Gives one cell to the shared parser. An empty (or blank) cell and a JSON `null` are
/// absent; what the parser refuses is refused naming the line, field and value.
fn push_cell(
    fields: &mut FieldSet,
    line: u64,
    field: Field,
    raw: Option<Raw>,
) -> Result<(), ManifestError> {
    let Some(raw) = raw else {
        return Ok(());
    };
    let pushed = match raw {
        Raw::Json(Value::Null) => return Ok(()),
        Raw::Text(s) if s.trim().is_empty() => return Ok(()),
        Raw::Json(Value::String(s)) if s.trim().is_empty() => return Ok(()),
        Raw::Text(s) => fields.push(field.name(), s),
        Raw::Json(value) => fields.push_json(field.name(), value),
    };
    pushed.map_err(|e| refused(line, field, raw, &e))
}

fn refused(line: u64, field: Field, raw: Raw, error: &FieldError) -> ManifestError {
    let problem = match (error, field) {
        (FieldError::WrongType { .. }, Field::OwnerIsMinor) => "is not a boolean (true or false)",
        (FieldError::WrongType { .. }, Field::PlaylistTrackCount) => "is not a whole number",
        (FieldError::WrongType { .. }, _) => "is not a string (quote numeric ids)",
        (error, _) => error.problem(),
    };
    invalid(line, field, raw, problem)
}

fn invalid(line: u64, field: Field, raw: Raw, problem: &'static str) -> ManifestError {
    let value = match raw {
        Raw::Text(s) => format!("{s:?}"),
        Raw::Json(v) => v.to_string(),
    };
    ManifestError::InvalidField {
        line,
        field: field.name(),
        value,
        problem,
    }
}

/// A string field; empty and null are absent.
fn text_cell(line: u64, field: Field, raw: Option<Raw>) -> Result<Option<String>, ManifestError> {
    match raw {
        None | Some(Raw::Json(Value::Null)) => Ok(None),
        Some(Raw::Text(s)) => Ok((!s.is_empty()).then(|| s.to_string())),
        Some(Raw::Json(Value::String(s))) => Ok((!s.is_empty()).then(|| s.clone())),
        Some(raw) => Err(invalid(
            line,
            field,
            raw,
            "is not a string (quote numeric ids)",
        )),
    }
}

fn check_url(line: u64, url: String) -> Result<String, ManifestError> {
    let raw = Raw::Text(&url);
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url),
        Ok(_) => Err(invalid(
            line,
            Field::Url,
            raw,
            "is not an http:// or https:// URL",
        )),
        Err(_) => Err(invalid(line, Field::Url, raw, "is not a valid URL")),
    }
}

/// A repeated artwork id, found by [`DuplicateIds`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub artwork_id: String,
    /// The line the id first appeared on.
    pub first_line: u64,
    /// The line it appears on again.
    pub line: u64,
}

/// Finds artwork ids that a manifest lists more than once.
///
/// The reader yields every row, repeats included: nothing is dropped there.
/// But the queue names each message `<job_id>:<artwork_id>` so that JetStream
/// can drop re-enqueues, so a repeated id that reaches the queue **is** dropped
/// there, whatever its url or context says. Check before enqueueing, and decide:
/// refuse the manifest, or keep the first row and report the rest.
///
/// It keeps every id it has seen, so its memory grows with the manifest.
#[derive(Debug, Default)]
pub struct DuplicateIds {
    first_line: HashMap<String, u64>,
}

impl DuplicateIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `item`; returns the repeat if its id was seen before.
    pub fn check(&mut self, item: &ManifestItem) -> Option<Duplicate> {
        match self.first_line.get(&item.artwork_id) {
            Some(&first_line) => Some(Duplicate {
                artwork_id: item.artwork_id.clone(),
                first_line,
                line: item.line,
            }),
            None => {
                self.first_line.insert(item.artwork_id.clone(), item.line);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: ManifestFormat, text: &str) -> Vec<Result<ManifestItem, ManifestError>> {
        ManifestReader::new(text.as_bytes(), format, "/base")
            .expect("header is valid")
            .collect()
    }

    fn items(format: ManifestFormat, text: &str) -> Vec<ManifestItem> {
        read(format, text)
            .into_iter()
            .map(|r| r.expect("row is valid"))
            .collect()
    }

    fn one_error(format: ManifestFormat, text: &str) -> ManifestError {
        let mut results = read(format, text);
        assert_eq!(results.len(), 1, "expected one row: {results:?}");
        results.remove(0).expect_err("row should be refused")
    }

    fn header_error(text: &str) -> ManifestError {
        match ManifestReader::new(text.as_bytes(), ManifestFormat::Csv, "/base") {
            Ok(_) => panic!("header {text:?} should be refused"),
            Err(e) => e,
        }
    }

    use ManifestFormat::{Csv, Jsonl};

    #[test]
    fn csv_row_with_every_field() {
        let got = items(
            Csv,
            "artwork_id,url,path,owner_id,surface,owner_is_minor,playlist_track_count,title,description\n\
             a1,https://cdn.example/a1.jpg,,u1,playlist_cover,true,0,\"sc: lily, add me\",for u\n\
             a2,,covers/a2.png,u2,,,,,\n",
        );
        assert_eq!(
            got[0],
            ManifestItem {
                line: 2,
                artwork_id: "a1".into(),
                source: ItemSource::Url("https://cdn.example/a1.jpg".into()),
                owner_id: Some("u1".into()),
                context: ItemContext {
                    surface: Some("playlist_cover".into()),
                    owner_is_minor: true,
                    playlist_track_count: Some(0),
                    title: Some("sc: lily, add me".into()),
                    description: Some("for u".into()),
                },
            }
        );
        assert_eq!(got[1].line, 3);
        assert_eq!(
            got[1].source,
            ItemSource::Path(PathBuf::from("/base/covers/a2.png"))
        );
        assert_eq!(got[1].owner_id.as_deref(), Some("u2"));
        assert_eq!(got[1].context, ItemContext::default());
    }

    #[test]
    fn absolute_paths_are_kept() {
        let got = items(
            Jsonl,
            r#"{"owner_id":"o","artwork_id":"a","path":"/srv/art/a.png"}"#,
        );
        assert_eq!(got[0].source, ItemSource::Path("/srv/art/a.png".into()));
    }

    #[test]
    fn csv_quoted_fields_keep_commas_quotes_and_newlines() {
        let got = items(
            Csv,
            "owner_id,artwork_id,path,surface\n\
             o,a1,\"dir/with, \"\"quotes\"\"\ntwo lines.png\",playlist_cover\n\
             o,a2,b.png,\n",
        );
        assert_eq!(got[0].artwork_id, "a1");
        assert_eq!(
            got[0].source,
            ItemSource::Path("/base/dir/with, \"quotes\"\ntwo lines.png".into())
        );
        assert_eq!(got[0].context.surface.as_deref(), Some("playlist_cover"));
        // The quoted newline makes the next row start on line 4.
        assert_eq!(got[1].line, 4);
    }

    #[test]
    fn byte_order_mark_and_crlf_are_accepted() {
        let csv = items(
            Csv,
            "\u{feff}owner_id,artwork_id,url\r\no,a,http://h/a\r\no,b,http://h/b\r\n",
        );
        assert_eq!(csv.len(), 2);
        assert_eq!(csv[0].artwork_id, "a");
        assert_eq!(csv[1].source, ItemSource::Url("http://h/b".into()));
        assert_eq!(csv[1].line, 3);

        // Blank CRLF lines and a quoted CRLF inside a cell: csv's own line
        // count gets both wrong.
        let mixed = items(
            Csv,
            "owner_id,artwork_id,path\r\n\r\no,a,\"x\r\ny\"\r\no,c,y\r\n",
        );
        assert_eq!(mixed[0].source, ItemSource::Path("/base/x\r\ny".into()));
        assert_eq!(mixed.iter().map(|i| i.line).collect::<Vec<_>>(), vec![3, 5]);
        let bad = read(Csv, "owner_id,artwork_id,path\r\n\r\n\r\no,a,b,c\r\n");
        assert!(
            matches!(bad[0], Err(ManifestError::Csv { line: 4, .. })),
            "{bad:?}"
        );

        let jsonl = items(
            Jsonl,
            "\u{feff}{\"owner_id\":\"o\",\"artwork_id\":\"a\",\"url\":\"http://h/a\"}\r\n{\"owner_id\":\"o\",\"artwork_id\":\"b\",\"url\":\"http://h/b\"}\r\n",
        );
        assert_eq!(jsonl.len(), 2);
        assert_eq!(jsonl[0].artwork_id, "a");
        assert_eq!(jsonl[1].line, 2);
    }

    #[test]
    fn blank_lines_are_skipped_and_still_counted() {
        let got = items(
            Jsonl,
            "\n{\"owner_id\":\"o\",\"artwork_id\":\"a\",\"path\":\"a.png\"}\n   \n\r\n{\"owner_id\":\"o\",\"artwork_id\":\"b\",\"path\":\"b.png\"}",
        );
        assert_eq!(
            got.iter().map(|i| i.line).collect::<Vec<_>>(),
            vec![2, 5],
            "no trailing newline on the last line is fine too"
        );
        let csv = items(Csv, "owner_id,artwork_id,path\n\no,a,a.png\n\n");
        assert_eq!(csv.len(), 1);
        assert_eq!(csv[0].line, 3);
    }

    #[test]
    fn csv_cells_are_trimmed_and_empty_means_absent() {
        let got = items(
            Csv,
            "artwork_id , url , owner_id , surface\n  a  , http://h/a , o ,  \n",
        );
        assert_eq!(got[0].artwork_id, "a");
        assert_eq!(got[0].source, ItemSource::Url("http://h/a".into()));
        assert_eq!(got[0].owner_id.as_deref(), Some("o"));
        assert_eq!(got[0].context.surface, None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        match header_error("artwork_id,url,owner_is_minr\n") {
            ManifestError::UnknownField { line: 1, field } => assert_eq!(field, "owner_is_minr"),
            e => panic!("wrong error: {e}"),
        }
        match one_error(
            Jsonl,
            r#"{"owner_id":"o","artwork_id":"a","url":"http://h/a","Surface":"x"}"#,
        ) {
            ManifestError::UnknownField { line: 1, field } => assert_eq!(field, "Surface"),
            e => panic!("wrong error: {e}"),
        }
    }

    #[test]
    fn bad_headers_are_refused_before_any_row() {
        assert!(matches!(header_error(""), ManifestError::NoHeader));
        assert!(matches!(
            header_error("url,owner_id\nhttp://h/a,u\n"),
            ManifestError::MissingColumn {
                column: "artwork_id"
            }
        ));
        assert!(matches!(
            header_error("artwork_id,owner_id\n"),
            ManifestError::MissingColumn {
                column: "url, path, title or description"
            }
        ));
        match header_error("artwork_id,url,url\n") {
            ManifestError::DuplicateField { line: 1, field } => assert_eq!(field, "url"),
            e => panic!("wrong error: {e}"),
        }
    }

    #[test]
    fn booleans() {
        let csv = items(
            Csv,
            "owner_id,artwork_id,path,owner_is_minor\no,a,p,true\no,b,p,0\no,c,p,1\no,d,p,false\n",
        );
        let flags: Vec<bool> = csv.iter().map(|i| i.context.owner_is_minor).collect();
        assert_eq!(flags, vec![true, false, true, false]);

        // Exactly these spellings: `TRUE` read as false would drop the strict profile.
        for bad in ["yes", "2", "t", "TRUE", "False", "on"] {
            let e = one_error(
                Csv,
                &format!("owner_id,artwork_id,path,owner_is_minor\no,a,p,{bad}\n"),
            );
            match e {
                ManifestError::InvalidField {
                    line: 2,
                    field: "owner_is_minor",
                    ref value,
                    ..
                } => assert_eq!(value, &format!("{bad:?}")),
                e => panic!("{bad}: wrong error: {e}"),
            }
        }
        // JSON takes JSON booleans only: a string or number is a producer bug.
        for bad in [r#""true""#, "1"] {
            let e = one_error(
                Jsonl,
                &format!(
                    r#"{{"owner_id":"o","artwork_id":"a","path":"p","owner_is_minor":{bad}}}"#
                ),
            );
            assert!(
                matches!(
                    e,
                    ManifestError::InvalidField {
                        field: "owner_is_minor",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn track_counts() {
        let got = items(
            Jsonl,
            r#"{"owner_id":"o","artwork_id":"a","path":"p","playlist_track_count":12}"#,
        );
        assert_eq!(got[0].context.playlist_track_count, Some(12));

        let cases = [
            (
                Csv,
                "owner_id,artwork_id,path,playlist_track_count\no,a,p,-1\n",
                "0 or more",
            ),
            (
                Csv,
                "owner_id,artwork_id,path,playlist_track_count\no,a,p,1.5\n",
                "not a whole",
            ),
            (
                Csv,
                "owner_id,artwork_id,path,playlist_track_count\no,a,p,many\n",
                "not a whole",
            ),
            (
                Csv,
                "owner_id,artwork_id,path,playlist_track_count\no,a,p,99999999999999999999\n",
                "not a whole",
            ),
            (
                Jsonl,
                r#"{"owner_id":"o","artwork_id":"a","path":"p","playlist_track_count":-3}"#,
                "0 or more",
            ),
            (
                Jsonl,
                r#"{"owner_id":"o","artwork_id":"a","path":"p","playlist_track_count":2.0}"#,
                "not a whole",
            ),
            (
                Jsonl,
                r#"{"owner_id":"o","artwork_id":"a","path":"p","playlist_track_count":"4"}"#,
                "not a whole",
            ),
        ];
        for (format, text, problem_part) in cases {
            match one_error(format, text) {
                ManifestError::InvalidField {
                    field: "playlist_track_count",
                    problem,
                    ..
                } => assert!(problem.contains(problem_part), "{text}: {problem}"),
                e => panic!("{text}: wrong error: {e}"),
            }
        }
    }

    #[test]
    fn missing_or_empty_artwork_id() {
        for text in [
            r#"{"url":"http://h/a"}"#,
            r#"{"owner_id":"o","artwork_id":null,"url":"http://h/a"}"#,
            r#"{"owner_id":"o","artwork_id":"  ","url":"http://h/a"}"#,
        ] {
            assert!(
                matches!(
                    one_error(Jsonl, text),
                    ManifestError::MissingField {
                        line: 1,
                        field: "artwork_id"
                    }
                ),
                "{text}"
            );
        }
        assert!(matches!(
            one_error(Csv, "owner_id,artwork_id,url\no,,http://h/a\n"),
            ManifestError::MissingField {
                line: 2,
                field: "artwork_id"
            }
        ));
        assert!(matches!(
            one_error(
                Jsonl,
                r#"{"owner_id":"o","artwork_id":7,"url":"http://h/a"}"#
            ),
            ManifestError::InvalidField {
                field: "artwork_id",
                ..
            }
        ));
    }

    /// `/v1/screen` requires an owner (an artwork without one can never be taken down with
    /// the account), and so does every manifest row: missing, null, empty or blank.
    #[test]
    fn a_row_without_an_owner_id_is_refused_naming_its_line() {
        for (text, line) in [
            (r#"{"artwork_id":"a","url":"http://h/a"}"#, 1),
            (
                r#"{"artwork_id":"a","owner_id":null,"url":"http://h/a"}"#,
                1,
            ),
            (r#"{"artwork_id":"a","owner_id":"","url":"http://h/a"}"#, 1),
            (
                "{\"artwork_id\":\"a\",\"owner_id\":\"o\",\"url\":\"http://h/a\"}\n\
                 {\"artwork_id\":\"b\",\"owner_id\":\"  \",\"url\":\"http://h/b\"}",
                2,
            ),
        ] {
            let errors: Vec<_> = read(Jsonl, text)
                .into_iter()
                .filter_map(Result::err)
                .collect();
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert!(
                matches!(
                    errors[0],
                    ManifestError::MissingField { line: l, field: "owner_id" } if l == line
                ),
                "{text}: {}",
                errors[0]
            );
            assert!(errors[0].to_string().contains("owner_id"));
        }
        let bad = read(
            Csv,
            "artwork_id,url,owner_id\na,http://h/a,o\nb,http://h/b,\nc,http://h/c,o\n",
        );
        assert!(bad[0].is_ok() && bad[2].is_ok(), "{bad:?}");
        assert!(
            matches!(
                bad[1],
                Err(ManifestError::MissingField {
                    line: 3,
                    field: "owner_id"
                })
            ),
            "{bad:?}"
        );
        // Without the column no row has an owner: refused at the header, before any row.
        assert!(matches!(
            header_error("artwork_id,url\na,http://h/a\n"),
            ManifestError::MissingColumn { column: "owner_id" }
        ));
        // A bad owner is refused as /v1/screen refuses it.
        for text in [
            r#"{"artwork_id":"a","owner_id":"o/1","url":"http://h/a"}"#,
            r#"{"artwork_id":"a","owner_id":7,"url":"http://h/a"}"#,
        ] {
            assert!(
                matches!(
                    one_error(Jsonl, text),
                    ManifestError::InvalidField {
                        line: 1,
                        field: "owner_id",
                        ..
                    }
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn artwork_ids_with_control_characters_are_refused() {
        for text in [
            "owner_id,artwork_id,url\no,\"a\nb\",http://h/a\n",
            "owner_id,artwork_id,url\no,\"a\tb\",http://h/a\n",
        ] {
            assert!(
                matches!(
                    one_error(Csv, text),
                    ManifestError::InvalidField {
                        line: 2,
                        field: "artwork_id",
                        ..
                    }
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn exactly_one_source() {
        assert!(matches!(
            one_error(Csv, "owner_id,artwork_id,url,path\no,a,http://h/a,a.png\n"),
            ManifestError::BothUrlAndPath { line: 2 }
        ));
        assert!(matches!(
            one_error(
                Jsonl,
                r#"{"owner_id":"o","artwork_id":"a","url":"http://h/a","path":"a.png"}"#
            ),
            ManifestError::BothUrlAndPath { line: 1 }
        ));
        assert!(matches!(
            one_error(Csv, "owner_id,artwork_id,url,path\no,a,,\n"),
            ManifestError::MissingSource { line: 2 }
        ));
        // Without an image, the words are the item; without words either, nothing is.
        let got = items(Csv, "owner_id,artwork_id,title\no,a,sc: lily\n");
        assert_eq!(got[0].source, ItemSource::Words);
        let got = items(
            Jsonl,
            r#"{"owner_id":"o","artwork_id":"a","description":"dm me"}"#,
        );
        assert_eq!(got[0].source, ItemSource::Words);
        assert!(matches!(
            one_error(Csv, "owner_id,artwork_id,title,url\no,a,,\n"),
            ManifestError::MissingSource { line: 2 }
        ));
        // null is absent, so this row has just the one source.
        let got = items(
            Jsonl,
            r#"{"owner_id":"o","artwork_id":"a","url":null,"path":"a.png"}"#,
        );
        assert_eq!(got[0].source, ItemSource::Path("/base/a.png".into()));
    }

    #[test]
    fn urls_must_be_http() {
        for bad in [
            "ftp://h/a.png",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            match one_error(Csv, &format!("owner_id,artwork_id,url\no,a,{bad}\n")) {
                ManifestError::InvalidField {
                    line: 2,
                    field: "url",
                    ..
                } => {}
                e => panic!("{bad}: wrong error: {e}"),
            }
        }
    }

    #[test]
    fn bad_rows_do_not_stop_the_rest() {
        let results = read(
            Jsonl,
            "{\"owner_id\":\"o\",\"artwork_id\":\"a\",\"path\":\"a\"}\n\
             {not json\n\
             [1,2]\n\
             {\"owner_id\":\"o\",\"artwork_id\":\"d\",\"path\":\"d\"}\n",
        );
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(ManifestError::Json { line: 2, .. })
        ));
        assert!(matches!(
            results[2],
            Err(ManifestError::NotAnObject {
                line: 3,
                found: "an array"
            })
        ));
        assert_eq!(results[3].as_ref().unwrap().artwork_id, "d");

        let results = read(Csv, "owner_id,artwork_id,path\no,a,a\no,b,b,extra\no,c,c\n");
        assert!(results[0].is_ok());
        assert!(
            matches!(results[1], Err(ManifestError::Csv { line: 3, .. })),
            "{:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn invalid_utf8_is_a_row_error() {
        let mut text = b"owner_id,artwork_id,path\n".to_vec();
        text.extend_from_slice(b"o,a\xff,a.png\no,b,b.png\n");
        let results: Vec<_> = ManifestReader::new(&text[..], Csv, "/base")
            .unwrap()
            .collect();
        assert!(matches!(
            results[0],
            Err(ManifestError::Csv { line: 2, .. })
        ));
        assert_eq!(results[1].as_ref().unwrap().artwork_id, "b");

        let results: Vec<_> = ManifestReader::new(
            &b"{\"owner_id\":\"o\",\"artwork_id\":\"\xff\",\"path\":\"p\"}\n"[..],
            Jsonl,
            "/base",
        )
        .unwrap()
        .collect();
        assert!(matches!(
            results[0],
            Err(ManifestError::Json { line: 1, .. })
        ));
    }

    /// Yields `good`, then fails like a dropped network mount.
    struct FailAfter<'a> {
        good: &'a [u8],
    }

    impl io::Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good.is_empty() {
                return Err(io::Error::other("disk went away"));
            }
            let n = buf.len().min(self.good.len());
            buf[..n].copy_from_slice(&self.good[..n]);
            self.good = &self.good[n..];
            Ok(n)
        }
    }

    #[test]
    fn an_io_error_ends_the_stream() {
        for (format, good) in [
            (
                Jsonl,
                &b"{\"owner_id\":\"o\",\"artwork_id\":\"a\",\"path\":\"a\"}\n"[..],
            ),
            (Csv, &b"owner_id,artwork_id,path\no,a,a\n"[..]),
        ] {
            let reader = BufReader::new(FailAfter { good });
            let results: Vec<_> = ManifestReader::new(reader, format, "/base")
                .unwrap()
                .collect();
            assert_eq!(results.len(), 2, "{format:?}: {results:?}");
            assert!(results[0].is_ok());
            assert!(
                matches!(results[1], Err(ManifestError::Io { .. })),
                "{format:?}: {:?}",
                results[1]
            );
        }
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = one_error(Csv, "owner_id,artwork_id,path,owner_is_minor\no,a,p,yes\n");
        assert_eq!(
            e.to_string(),
            "line 2: owner_is_minor \"yes\": is not a boolean (exactly true, false, 1 or 0)"
        );
        assert_eq!(e.line(), Some(2));
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(
            ManifestFormat::from_path(Path::new("a/b.CSV")).unwrap(),
            Csv
        );
        assert_eq!(
            ManifestFormat::from_path(Path::new("b.ndjson")).unwrap(),
            Jsonl
        );
        assert_eq!(
            ManifestFormat::from_path(Path::new("b.jsonl")).unwrap(),
            Jsonl
        );
        for bad in ["b.json", "b.txt", "manifest"] {
            assert!(matches!(
                ManifestFormat::from_path(Path::new(bad)),
                Err(ManifestError::UnknownFormat { .. })
            ));
        }
    }

    #[test]
    fn open_resolves_paths_against_the_manifest_directory() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("batch.txt");
        std::fs::write(
            &manifest,
            "{\"owner_id\":\"o\",\"artwork_id\":\"a\",\"path\":\"art/a.png\"}\n",
        )
        .unwrap();
        assert!(matches!(
            open(&manifest, None),
            Err(ManifestError::UnknownFormat { .. })
        ));
        let got: Vec<_> = open(&manifest, Some(Jsonl)).unwrap().collect();
        assert_eq!(
            got[0].as_ref().unwrap().source,
            ItemSource::Path(dir.path().join("art/a.png"))
        );
        assert!(matches!(
            open(&dir.path().join("missing.csv"), None),
            Err(ManifestError::Open { .. })
        ));
    }

    #[test]
    fn duplicate_ids_are_reported_with_both_lines() {
        let mut seen = DuplicateIds::new();
        let got = items(
            Csv,
            "owner_id,artwork_id,path\no,a,1\no,b,2\no,a,3\no,a,4\n",
        );
        let dups: Vec<_> = got.iter().filter_map(|i| seen.check(i)).collect();
        assert_eq!(
            dups,
            vec![
                Duplicate {
                    artwork_id: "a".into(),
                    first_line: 2,
                    line: 4
                },
                Duplicate {
                    artwork_id: "a".into(),
                    first_line: 2,
                    line: 5
                },
            ]
        );
        assert_eq!(got.len(), 4, "the reader drops nothing");
    }

    #[test]
    fn items_round_trip_through_json() {
        let got = items(
            Csv,
            "artwork_id,url,owner_id,owner_is_minor,playlist_track_count\na,http://h/a,u,1,3\n",
        );
        let words = items(Csv, "artwork_id,owner_id,title\nb,u,dm me\n");
        for item in [&got[0], &words[0]] {
            let json = serde_json::to_string(item).unwrap();
            let back: ManifestItem = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, item);
        }
    }
}
