//! The one parser of a screening's ids and context, for every entry point: the
//! `/v1/screen` query string and JSON body, backfill manifests and the CLI.
//!
//! It refuses whatever it does not understand, naming the field. A lenient
//! reading fails open: `owner_is_minor=TRUE` read as false drops the strict
//! profile, and an upload without `owner_id` can never be taken down.

use serde_json::Value;

use crate::screening::context::ScreenContext;

pub const ARTWORK_ID: &str = "artwork_id";
pub const OWNER_ID: &str = "owner_id";
pub const SURFACE: &str = "surface";
pub const OWNER_IS_MINOR: &str = "owner_is_minor";
pub const PLAYLIST_TRACK_COUNT: &str = "playlist_track_count";
pub const DEADLINE_MS: &str = "deadline_ms";
pub const TITLE: &str = "title";
pub const DESCRIPTION: &str = "description";

/// Longest id or surface accepted.
pub const MAX_ID_LEN: usize = 128;

/// Longest title and description accepted, in characters: well above what streaming
/// platforms allow (100 to 300), far below what could cost the text rules real time.
pub const MAX_TITLE_CHARS: usize = 1_000;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

/// Why a field was refused; `field` names it as the caller spelt it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{field} is required")]
    Missing { field: String },
    /// A JSON request with neither a URL nor words to screen.
    #[error("url is required, or a title or description to screen words alone")]
    NothingToScreen,
    #[error("{field} is given more than once (or in both the query and the body)")]
    Duplicate { field: String },
    #[error("unknown field {field:?}")]
    Unknown { field: String },
    #[error("{field} {value:?} is not a boolean: give exactly true, false, 1 or 0")]
    NotABool { field: String, value: String },
    #[error("{field} {value:?} is not a whole number of 0 or more")]
    NotACount { field: String, value: String },
    #[error("{field} {value:?} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")]
    BadId { field: String, value: String },
    #[error("{field} is longer than {max} characters, or holds a control character other than tab or newline")]
    BadText { field: String, max: usize },
    #[error("{field} must be {expected}, not {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
}

impl FieldError {
    /// The field refused.
    pub fn field(&self) -> &str {
        match self {
            FieldError::Missing { field }
            | FieldError::Duplicate { field }
            | FieldError::Unknown { field }
            | FieldError::NotABool { field, .. }
            | FieldError::NotACount { field, .. }
            | FieldError::BadId { field, .. }
            | FieldError::BadText { field, .. }
            | FieldError::WrongType { field, .. } => field,
            FieldError::NothingToScreen => "url",
        }
    }

    /// What is wrong with the value, without the field's name or value.
    pub fn problem(&self) -> &'static str {
        match self {
            FieldError::Missing { .. } => "is required",
            FieldError::NothingToScreen => {
                "is required, or a title or description to screen words alone"
            }
            FieldError::Duplicate { .. } => "is given more than once",
            FieldError::Unknown { .. } => "is not a known field",
            FieldError::NotABool { .. } => "is not a boolean (exactly true, false, 1 or 0)",
            FieldError::NotACount { .. } => "is not a whole number of 0 or more",
            FieldError::BadId { .. } => {
                "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'"
            }
            FieldError::BadText { .. } => {
                "is too long or holds a control character other than tab or newline"
            }
            FieldError::WrongType { .. } => "has the wrong JSON type",
        }
    }
}

/// A boolean: exactly `true`, `false`, `1` or `0`.
pub fn parse_bool(field: &str, text: &str) -> Result<bool, FieldError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(FieldError::NotABool {
            field: field.to_string(),
            value: text.to_string(),
        }),
    }
}

/// A count: ASCII digits only (no sign, no spaces), within `i64`.
pub fn parse_count(field: &str, text: &str) -> Result<i64, FieldError> {
    let refused = || FieldError::NotACount {
        field: field.to_string(),
        value: text.to_string(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    text.parse::<i64>().map_err(|_| refused())
}

/// An artwork or owner id (also a surface name): 1 to 128 of `[A-Za-z0-9._:-]`, so it
/// can go into a URL, a queue message id or a log line as it is.
pub fn parse_id(field: &str, text: &str) -> Result<String, FieldError> {
    let ok = (1..=MAX_ID_LEN).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(FieldError::BadId {
            field: field.to_string(),
            value: text.to_string(),
        })
    }
}

/// A title or description: at most `max` characters, no control characters but tab and
/// newline (they would hide text from a reviewer's screen, not from the rules).
pub fn parse_text(field: &str, text: &str, max: usize) -> Result<String, FieldError> {
    let ok = text.chars().count() <= max
        && text
            .chars()
            .all(|c| !c.is_control() || c == '\t' || c == '\n');
    if ok {
        Ok(text.to_string())
    } else {
        Err(FieldError::BadText {
            field: field.to_string(),
            max,
        })
    }
}

/// A screening's fields as they arrive, one `(name, text)` pair at a time from any
/// source. Every pair is seen, so a repeated field is refused rather than the last one
/// winning in silence.
#[derive(Debug, Default)]
pub struct FieldSet {
    artwork_id: Option<String>,
    owner_id: Option<String>,
    surface: Option<String>,
    owner_is_minor: Option<bool>,
    playlist_track_count: Option<i64>,
    deadline_ms: Option<u64>,
    title: Option<String>,
    description: Option<String>,
    /// Every name given so far, a JSON `null` included.
    seen: Vec<String>,
}

/// A screening's ids and context, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScreenFields {
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    pub context: ScreenContext,
    pub deadline_ms: Option<u64>,
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one field. Unknown names, repeated names and bad values are refused.
    pub fn push(&mut self, name: &str, text: &str) -> Result<(), FieldError> {
        self.mark_given(name)?;
        match name {
            ARTWORK_ID => self.artwork_id = Some(parse_id(name, text)?),
            OWNER_ID => self.owner_id = Some(parse_id(name, text)?),
            SURFACE => self.surface = Some(parse_id(name, text)?),
            OWNER_IS_MINOR => self.owner_is_minor = Some(parse_bool(name, text)?),
            PLAYLIST_TRACK_COUNT => self.playlist_track_count = Some(parse_count(name, text)?),
            TITLE => self.title = Some(parse_text(name, text, MAX_TITLE_CHARS)?),
            DESCRIPTION => self.description = Some(parse_text(name, text, MAX_DESCRIPTION_CHARS)?),
            _ => self.deadline_ms = Some(parse_count(name, text)? as u64),
        }
        Ok(())
    }

    /// Takes one JSON field. JSON says its types: a boolean is `true` or `false`, a count
    /// a whole number, an id a string; a string `"true"` or a number for a boolean is a
    /// producer's bug, refused. `null` means absent, but still counts as given.
    pub fn push_json(&mut self, name: &str, value: &Value) -> Result<(), FieldError> {
        let wrong = |expected: &'static str| FieldError::WrongType {
            field: name.to_string(),
            expected,
            found: json_kind(value),
        };
        match (name, value) {
            (_, Value::Null) => self.mark_given(name),
            (OWNER_IS_MINOR, Value::Bool(b)) => self.push(name, if *b { "true" } else { "false" }),
            (OWNER_IS_MINOR, _) => {
                self.mark_given(name)?;
                Err(wrong("true or false"))
            }
            // Numbers through the text rules: -1 and 2.0 are refused there.
            (PLAYLIST_TRACK_COUNT | DEADLINE_MS, Value::Number(n)) => {
                self.push(name, &n.to_string())
            }
            (PLAYLIST_TRACK_COUNT | DEADLINE_MS, _) => {
                self.mark_given(name)?;
                Err(wrong("a whole number"))
            }
            (_, Value::String(text)) => self.push(name, text),
            _ => {
                self.mark_given(name)?;
                Err(wrong("a string"))
            }
        }
    }

    /// Refuses an unknown name, or one given before.
    fn mark_given(&mut self, name: &str) -> Result<(), FieldError> {
        if !matches!(
            name,
            ARTWORK_ID
                | OWNER_ID
                | SURFACE
                | OWNER_IS_MINOR
                | PLAYLIST_TRACK_COUNT
                | DEADLINE_MS
                | TITLE
                | DESCRIPTION
        ) {
            return Err(FieldError::Unknown {
                field: name.to_string(),
            });
        }
        if self.seen.iter().any(|s| s == name) {
            return Err(FieldError::Duplicate {
                field: name.to_string(),
            });
        }
        self.seen.push(name.to_string());
        Ok(())
    }

    /// The fields, with `artwork_id` and `owner_id` required when `require_ids`.
    pub fn finish(self, require_ids: bool) -> Result<ScreenFields, FieldError> {
        if require_ids {
            for (name, value) in [(ARTWORK_ID, &self.artwork_id), (OWNER_ID, &self.owner_id)] {
                if value.is_none() {
                    return Err(FieldError::Missing {
                        field: name.to_string(),
                    });
                }
            }
        }
        Ok(ScreenFields {
            artwork_id: self.artwork_id,
            owner_id: self.owner_id,
            context: ScreenContext {
                surface: self.surface,
                owner_is_minor: self.owner_is_minor.unwrap_or(false),
                playlist_track_count: self.playlist_track_count,
                title: self.title,
                description: self.description,
            },
            deadline_ms: self.deadline_ms,
        })
    }
}

/// Every pair of a URL query string, in order, repeats included.
pub fn push_query(fields: &mut FieldSet, query: &str) -> Result<(), FieldError> {
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        fields.push(&name, &value)?;
    }
    Ok(())
}

/// `--owner-is-minor` and the like on the command line, through the same rules.
pub fn cli_bool(text: &str) -> Result<bool, String> {
    parse_bool(OWNER_IS_MINOR, text).map_err(|e| e.to_string())
}

pub fn cli_count(text: &str) -> Result<i64, String> {
    parse_count(PLAYLIST_TRACK_COUNT, text).map_err(|e| e.to_string())
}

pub fn cli_surface(text: &str) -> Result<String, String> {
    parse_id(SURFACE, text).map_err(|e| e.to_string())
}

pub fn cli_title(text: &str) -> Result<String, String> {
    parse_text(TITLE, text, MAX_TITLE_CHARS).map_err(|e| e.to_string())
}

pub fn cli_description(text: &str) -> Result<String, String> {
    parse_text(DESCRIPTION, text, MAX_DESCRIPTION_CHARS).map_err(|e| e.to_string())
}

/// What a JSON value is, as an error message names it ("a string").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str, require_ids: bool) -> Result<ScreenFields, FieldError> {
        let mut fields = FieldSet::new();
        push_query(&mut fields, q)?;
        fields.finish(require_ids)
    }

    #[test]
    fn booleans_are_exactly_true_false_1_0() {
        for (text, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(parse_bool("b", text), Ok(want));
        }
        for text in ["TRUE", "True", "yes", "on", "", " true", "2", "junk"] {
            assert!(parse_bool("b", text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn counts_are_digits_only() {
        assert_eq!(parse_count("n", "0"), Ok(0));
        assert_eq!(parse_count("n", "12"), Ok(12));
        for text in ["-1", "+1", "", " 1", "1.0", "1e3", "99999999999999999999"] {
            assert!(parse_count("n", text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn ids_are_1_to_128_of_a_safe_charset() {
        assert!(parse_id("a", "art-1.v2:x_y").is_ok());
        assert!(parse_id("a", &"a".repeat(128)).is_ok());
        for text in ["", &"a".repeat(129), "a b", "a/b", "é", "a\n"] {
            assert!(parse_id("a", text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn titles_and_descriptions_are_bounded_text() {
        let ok = query(
            "artwork_id=a&owner_id=o&title=add%20me%20%F0%9F%91%BB&description=line%0Anext",
            true,
        )
        .unwrap();
        assert_eq!(ok.context.title.as_deref(), Some("add me 👻"));
        assert_eq!(ok.context.description.as_deref(), Some("line\nnext"));
        assert!(parse_text(TITLE, &"é".repeat(MAX_TITLE_CHARS), MAX_TITLE_CHARS).is_ok());
        for bad in [
            "a\u{0}b",
            "a\rb",
            "\u{1b}[2J",
            &"x".repeat(MAX_TITLE_CHARS + 1),
        ] {
            assert!(parse_text(TITLE, bad, MAX_TITLE_CHARS).is_err(), "{bad:?}");
        }
        let field = |q: &str| query(q, true).unwrap_err().field().to_string();
        assert_eq!(field("artwork_id=a&owner_id=o&title=a&title=b"), TITLE);
        let mut fields = FieldSet::new();
        assert!(fields
            .push_json(DESCRIPTION, &serde_json::json!(5))
            .is_err());
    }

    #[test]
    fn query_refuses_repeats_unknowns_and_missing_ids() {
        let ok = query(
            "artwork_id=a&owner_id=o&owner_is_minor=1&playlist_track_count=0",
            true,
        )
        .unwrap();
        assert!(ok.context.owner_is_minor);
        assert_eq!(ok.context.playlist_track_count, Some(0));
        let field = |q: &str| query(q, true).unwrap_err().field().to_string();
        assert_eq!(
            field("artwork_id=a&owner_id=o&owner_is_minor"),
            OWNER_IS_MINOR
        );
        assert_eq!(field("artwork_id=a&owner_id=o&owner_id=p"), OWNER_ID);
        assert_eq!(field("artwork_id=a&owner_id=o&colour=red"), "colour");
        assert_eq!(field("artwork_id=a"), OWNER_ID);
        assert_eq!(field("owner_id=o"), ARTWORK_ID);
        assert!(query("", false).is_ok());
    }

    #[test]
    fn json_values_follow_the_same_rules() {
        let mut fields = FieldSet::new();
        fields
            .push_json(OWNER_IS_MINOR, &Value::Bool(true))
            .unwrap();
        assert!(fields
            .push_json(OWNER_IS_MINOR, &Value::Bool(false))
            .is_err());
        let mut fields = FieldSet::new();
        for wrong in [serde_json::json!("true"), serde_json::json!(1)] {
            assert!(FieldSet::new().push_json(OWNER_IS_MINOR, &wrong).is_err());
        }
        assert!(fields
            .push_json(PLAYLIST_TRACK_COUNT, &serde_json::json!(-1))
            .is_err());
        assert!(fields
            .push_json(PLAYLIST_TRACK_COUNT, &serde_json::json!(1.5))
            .is_err());
        fields.push_json(SURFACE, &Value::Null).unwrap();
        assert!(fields.push(SURFACE, "x").is_err(), "null counts as given");
    }
}
