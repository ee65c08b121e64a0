//! Text signals: what a title, a description or the words in the artwork say that a
//! moderator must see (contact details, invitations off the platform, requests for
//! pictures, sexual solicitation, a child's age), found by rules over normalised views
//! of the text ([`normalize`]) and by a team's own keyword list ([`keywords`]).
//!
//! Rules and lists, not a model: no open classifier for grooming text is fit for
//! production, and a rule says exactly why it fired. Detectors sit behind
//! [`TextDetector`] so that a model can join them later.

pub mod age;
pub mod contact;
#[cfg(test)]
mod evaluation;
pub mod keywords;
pub mod normalize;
pub mod ocr;
pub mod solicitation;
pub mod song_titles;
pub mod spelled_out;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::names::named_enum;
use normalize::{Normalized, ViewKind};

named_enum!(
    /// Where a text came from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TextSource ("text source") {
        /// Read from the artwork's pixels.
        Ocr => "ocr",
        /// The playlist's or track's title, from the caller.
        Title => "title",
        /// The playlist's or track's description, from the caller.
        Description => "description",
    }
);

named_enum!(
    /// What a text signal is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[derive(Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TextSignalKind ("text signal kind") {
        /// A phone number, or a request for one.
        Phone => "phone",
        /// An email address.
        Email => "email",
        /// A handle or invitation on another app (Snapchat, Instagram, Telegram, WhatsApp,
        /// Kik, Discord, ...), or an invitation to talk privately.
        ContactHandle => "contact_handle",
        /// A request for pictures or video of the reader.
        ImageRequest => "image_request",
        /// Sexual solicitation or sexualised talk aimed at the reader.
        Sexual => "sexual",
        /// Someone stating an age under 18.
        Age => "age",
        /// A term of the loaded keyword list (its category is on the signal).
        Keyword => "keyword",
    }
);

impl TextSignalKind {
    /// Contact details or an invitation to talk elsewhere.
    pub fn is_contact(self) -> bool {
        matches!(
            self,
            TextSignalKind::Phone | TextSignalKind::Email | TextSignalKind::ContactHandle
        )
    }

    /// A request for pictures or sexual solicitation.
    pub fn is_solicitation(self) -> bool {
        matches!(self, TextSignalKind::ImageRequest | TextSignalKind::Sexual)
    }
}

/// One thing found in one text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextSignal {
    pub kind: TextSignalKind,
    /// The matched span as written.
    #[serde(rename = "match")]
    pub matched: String,
    pub source: TextSource,
    /// Character offsets of the span in the source text.
    pub start: usize,
    pub end: usize,
    /// The keyword list's category, for [`TextSignalKind::Keyword`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The handle, number or address a contact signal names, normalised (lower case,
    /// plain letters, digits only for a number), so that two texts naming the same
    /// recipient can be told apart from two that merely both invite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

/// What a screening's record says of text: the signals found in the title and
/// description (and, with OCR, in the artwork).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextRecord {
    #[serde(default)]
    pub signals: Vec<TextSignal>,
    /// The lines read in the artwork, top to bottom (with OCR on). Signals with source
    /// `ocr` give character offsets into these lines joined by newlines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr: Vec<ocr::OcrLine>,
    /// When this upload completed an owner pattern (several of one owner's empty
    /// playlists asking for contact or pictures): those artworks, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_pattern: Vec<String>,
}

impl TextRecord {
    /// Nothing found: the record leaves `text` out, so a record without words reads as
    /// it always did.
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty() && self.ocr.is_empty() && self.owner_pattern.is_empty()
    }

    /// The artwork's text as the rules read it: its lines joined by newlines.
    pub fn ocr_text(&self) -> String {
        self.ocr
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A detector's finding, in the coordinates of the view it searched.
#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: TextSignalKind,
    pub view: ViewKind,
    pub bytes: Range<usize>,
    pub category: Option<String>,
    pub recipient: Option<String>,
}

impl Finding {
    pub fn new(kind: TextSignalKind, view: ViewKind, bytes: Range<usize>) -> Finding {
        Finding {
            kind,
            view,
            bytes,
            category: None,
            recipient: None,
        }
    }
}

/// Finds signals in one normalised text.
pub trait TextDetector: Send + Sync {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>);
}

/// Every detector, run over each text.
#[derive(Clone)]
pub struct TextScreener {
    detectors: Vec<Arc<dyn TextDetector>>,
}

impl std::fmt::Debug for TextScreener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextScreener")
            .field("detectors", &self.detectors.len())
            .finish()
    }
}

impl Default for TextScreener {
    fn default() -> Self {
        TextScreener::builtin()
    }
}

impl TextScreener {
    /// The built-in rules: contact details, solicitation, age statements and messages
    /// spelled out letter by letter.
    pub fn builtin() -> TextScreener {
        TextScreener {
            detectors: vec![
                Arc::new(contact::ContactDetector),
                Arc::new(solicitation::SolicitationDetector),
                Arc::new(age::AgeDetector),
                Arc::new(spelled_out::SpelledOutDetector),
            ],
        }
    }

    /// The built-in rules, with the keyword list at `path` when one is given.
    pub fn with_keyword_file(
        path: Option<&std::path::Path>,
    ) -> Result<TextScreener, keywords::KeywordListError> {
        let screener = TextScreener::builtin();
        Ok(match path {
            Some(path) => screener.with_keywords(keywords::KeywordList::load(path)?),
            None => screener,
        })
    }

    /// The built-in rules and a keyword list.
    pub fn with_keywords(mut self, list: keywords::KeywordList) -> TextScreener {
        self.detectors.push(Arc::new(list));
        self
    }

    pub fn with_detector(mut self, detector: Arc<dyn TextDetector>) -> TextScreener {
        self.detectors.push(detector);
        self
    }

    /// The signals in one text, in order of position; of overlapping findings of one kind
    /// only the first and longest is kept.
    pub fn scan(&self, source: TextSource, text: &str) -> Vec<TextSignal> {
        if text.trim().is_empty() {
            return Vec::new();
        }
        let normalized = Normalized::new(text);
        let mut found = Vec::new();
        for detector in &self.detectors {
            detector.detect(&normalized, &mut found);
        }
        let mut signals: Vec<TextSignal> = found
            .into_iter()
            .filter_map(|f| {
                let (span, matched) = normalized.source_of(f.view, f.bytes)?;
                Some(TextSignal {
                    kind: f.kind,
                    matched,
                    source,
                    start: span.start,
                    end: span.end,
                    category: f.category,
                    recipient: f.recipient,
                })
            })
            .collect();
        for title in song_titles::famous_titles(&normalized) {
            signals.retain(|s| {
                let phrase = s.recipient.is_none()
                    && matches!(
                        s.kind,
                        TextSignalKind::ContactHandle
                            | TextSignalKind::ImageRequest
                            | TextSignalKind::Sexual
                    );
                !(phrase && title.start <= s.start && s.end <= title.end)
            });
        }
        signals.sort_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.kind).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.kind,
            ))
        });
        let mut kept: Vec<TextSignal> = Vec::with_capacity(signals.len());
        for signal in signals {
            let overlaps = kept.iter().any(|k| {
                k.kind == signal.kind
                    && k.category == signal.category
                    && k.start < signal.end
                    && signal.start < k.end
            });
            if !overlaps {
                kept.push(signal);
            }
        }
        kept
    }
}

/// The kinds the built-in rules find in a title, in order, each once: what the
/// detectors' tests check.
#[cfg(test)]
pub(crate) fn title_kinds(title: &str) -> Vec<TextSignalKind> {
    let mut kinds: Vec<TextSignalKind> = TextScreener::builtin()
        .scan(TextSource::Title, title)
        .into_iter()
        .map(|s| s.kind)
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Asserts that the built-in rules find `kind` in every one of `titles`.
#[cfg(test)]
pub(crate) fn assert_found(kind: TextSignalKind, titles: &[&str]) {
    for title in titles {
        let kinds = title_kinds(title);
        assert!(kinds.contains(&kind), "{title}: {kinds:?}");
    }
}

/// Asserts that the built-in rules find `kind` in none of `titles`.
#[cfg(test)]
pub(crate) fn assert_not_found(kind: TextSignalKind, titles: &[&str]) {
    for title in titles {
        let kinds = title_kinds(title);
        assert!(!kinds.contains(&kind), "{title}: {kinds:?}");
    }
}

/// Asserts that the built-in rules find each title's kind in it.
#[cfg(test)]
pub(crate) fn assert_each_found(cases: &[(&str, TextSignalKind)]) {
    for (title, kind) in cases {
        let kinds = title_kinds(title);
        assert!(kinds.contains(kind), "{title}: {kinds:?}");
    }
}

/// Asserts that the built-in rules find nothing in any of `titles`.
#[cfg(test)]
pub(crate) fn assert_nothing_found(titles: &[&str]) {
    for title in titles {
        let kinds = title_kinds(title);
        assert!(kinds.is_empty(), "{title}: {kinds:?}");
    }
}

/// A built-in rule: its pattern is part of the program, so a bad one is a bug.
pub(crate) fn rule(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("a valid built-in pattern")
}

/// Built-in rules, in order.
pub(crate) fn rules<S: AsRef<str>>(patterns: &[S]) -> Vec<regex::Regex> {
    patterns.iter().map(|p| rule(p.as_ref())).collect()
}

/// Where in `text` the `chars` characters before byte `at` begin (0 when there are
/// fewer): the stretch a rule looks back over, cut at a character's start.
pub(crate) fn chars_before(text: &str, at: usize, chars: usize) -> usize {
    text[..at]
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

/// Finds every match of a word rule on the leet view and on the letters view (where
/// spaced letters are joined, but short words may be fused).
pub(crate) fn find_words(
    regex: &regex::Regex,
    text: &Normalized,
    kind: TextSignalKind,
    found: &mut Vec<Finding>,
) {
    find_all(regex, text, ViewKind::Leet, kind, found);
    find_all(regex, text, ViewKind::Letters, kind, found);
}

/// Finds every match of `regex` in a view and records it as `kind`.
pub(crate) fn find_all(
    regex: &regex::Regex,
    text: &Normalized,
    view: ViewKind,
    kind: TextSignalKind,
    found: &mut Vec<Finding>,
) {
    for m in regex.find_iter(text.view(view).as_str()) {
        found.push(Finding::new(kind, view, m.range()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_carry_the_span_as_written_and_its_offsets() {
        let screener = TextScreener::builtin();
        let title = "hey ＡＤＤ ＭＥ on s n a p: lily_2010";
        let signals = screener.scan(TextSource::Title, title);
        let contact = signals
            .iter()
            .find(|s| s.kind == TextSignalKind::ContactHandle)
            .expect("a contact signal");
        let chars: Vec<char> = title.chars().collect();
        let written: String = chars[contact.start..contact.end].iter().collect();
        assert_eq!(written, contact.matched);
        assert!(contact.matched.contains("s n a p"), "{contact:?}");
        assert_eq!(contact.source, TextSource::Title);
    }

    /// Every rule slices views by byte offsets: wide characters at every position around
    /// what the rules match must never land a cut inside a character.
    #[test]
    fn wide_characters_anywhere_never_break_the_rules() {
        let screener = TextScreener::builtin();
        let seeds = [
            "call 555 0123 now",
            "im 12 send pics",
            "lily@gmail.com add me on snap: jay_99",
            "+44 7700 900123 text me",
            "whats ur number? 13 y/o",
        ];
        let wide = [
            "💕", "é", "𝐬", "５", "1️⃣", "\u{200B}", "ß", "İ", "歳", "→", "♥", "ж", "€",
        ];
        let mut checked = 0;
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for at in 0..=chars.len() {
                for w in wide {
                    for repeat in [1, 6] {
                        let mut text: String = chars[..at].iter().collect();
                        text.push_str(&w.repeat(repeat));
                        text.extend(&chars[at..]);
                        for signal in screener.scan(TextSource::Title, &text) {
                            let source: Vec<char> = text.chars().collect();
                            let span: String = source[signal.start..signal.end].iter().collect();
                            assert_eq!(span, signal.matched, "{text:?}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn an_empty_text_has_no_signals() {
        assert!(TextScreener::builtin()
            .scan(TextSource::Title, "  ")
            .is_empty());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in TextSignalKind::ALL {
            assert_eq!(kind.as_str().parse::<TextSignalKind>(), Ok(kind));
        }
        assert!("nope".parse::<TextSignalKind>().is_err());
    }
}
