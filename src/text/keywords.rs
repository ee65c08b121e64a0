//! A team's own keyword list (for example a licensed industry list), one term or
//! pattern per line:
//!
//! ```text
//! # comment
//! grooming<TAB>secret friend
//! csam<TAB>re:\bpt?hc\b
//! ```
//!
//! A plain term matches as whole words on the letters view, after the same
//! normalisation as the text (so `secret friend` also finds `S3CRET  fr1end`); a `re:`
//! pattern is a regular expression run on the letters view as it is.

use std::path::Path;

use regex::Regex;

use super::normalize::{Normalized, ViewKind};
use super::{Finding, TextDetector, TextSignalKind};

#[derive(Debug, thiserror::Error)]
pub enum KeywordListError {
    #[error("cannot read the keyword list {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    category: String,
    regex: Regex,
}

/// The loaded list.
#[derive(Clone, Debug, Default)]
pub struct KeywordList {
    entries: Vec<Entry>,
}

impl KeywordList {
    pub fn load(path: &Path) -> Result<KeywordList, KeywordListError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeywordListError::Read {
            path: path.display().to_string(),
            source,
        })?;
        KeywordList::parse(&text, &path.display().to_string())
    }

    /// Parses a list; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<KeywordList, KeywordListError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let error = |reason: String| KeywordListError::Line {
                path: origin.to_string(),
                line: index + 1,
                reason,
            };
            let (category, term) = line
                .split_once('\t')
                .ok_or_else(|| error("expected `category<TAB>term`".to_string()))?;
            let category = category.trim();
            if category.is_empty() || term.trim().is_empty() {
                return Err(error(
                    "the category and the term must not be empty".to_string(),
                ));
            }
            let regex = match term.strip_prefix("re:") {
                Some(pattern) => Regex::new(pattern)
                    .map_err(|e| error(format!("not a regular expression: {e}")))?,
                None => {
                    let normalized = Normalized::new(term.trim());
                    let words: Vec<String> = normalized
                        .letters
                        .as_str()
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .map(regex::escape)
                        .collect();
                    // Words of the term may be run together or set apart in the text.
                    Regex::new(&format!(r"(?:^|\b|\W){}(?:\b|\W|$)", words.join(r"\W*")))
                        .map_err(|e| error(format!("cannot match this term: {e}")))?
                }
            };
            entries.push(Entry {
                category: category.to_string(),
                regex,
            });
        }
        Ok(KeywordList { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl TextDetector for KeywordList {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>) {
        let view = text.letters.as_str();
        for entry in &self.entries {
            for m in entry.regex.find_iter(view) {
                let mut finding =
                    Finding::new(TextSignalKind::Keyword, ViewKind::Letters, m.range());
                finding.category = Some(entry.category.clone());
                found.push(finding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{TextScreener, TextSignalKind, TextSource};
    use super::*;

    #[test]
    fn terms_match_through_the_same_disguises_as_the_rules() {
        let list = KeywordList::parse(
            "# a team's list\ngrooming\tsecret friend\ncsam\tre:\\bpt?hc\\b\n",
            "list.txt",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        let screener = TextScreener::builtin().with_keywords(list);
        let signals = screener.scan(TextSource::Description, "our S3CRET  fr1end club, pthc");
        let found: Vec<(&str, &str)> = signals
            .iter()
            .filter(|s| s.kind == TextSignalKind::Keyword)
            .map(|s| (s.category.as_deref().unwrap(), s.matched.as_str()))
            .collect();
        assert_eq!(found, [("grooming", "S3CRET  fr1end"), ("csam", "pthc")]);
        assert!(screener
            .scan(TextSource::Title, "secretive friends")
            .is_empty());
    }

    #[test]
    fn bad_lines_are_named() {
        let error = KeywordList::parse("ok\tterm\nno tab here\n", "list.txt").unwrap_err();
        assert_eq!(
            error.to_string(),
            "list.txt:2: expected `category<TAB>term`"
        );
        let error = KeywordList::parse("c\tre:(\n", "list.txt").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("list.txt:1: not a regular expression"),
            "{error}"
        );
    }
}
