//! The case's own pattern across uploads: one owner's empty playlists whose titles (or
//! descriptions) ask for contact details or pictures, several within a short time. Each
//! such cover is already held for its words; the pattern is what says they are one
//! conversation, so the owner is put in front of a reviewer as a whole.

use chrono::{DateTime, Utc};

use crate::screening::context::ScreenContext;
use crate::text::{TextSignal, TextSource};

/// When an owner's uploads make the pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerPatternSettings {
    /// How far back an owner's uploads are read.
    pub window: chrono::Duration,
    /// Empty playlists with such words, within the window, that make the pattern.
    pub min_playlists: usize,
}

impl Default for OwnerPatternSettings {
    fn default() -> Self {
        OwnerPatternSettings {
            window: chrono::Duration::days(7),
            min_playlists: 3,
        }
    }
}

/// One upload of the owner, as the pattern reads it.
#[derive(Clone, Debug)]
pub struct Upload<'a> {
    pub artwork_id: &'a str,
    pub at: DateTime<Utc>,
    pub context: &'a ScreenContext,
    pub signals: &'a [TextSignal],
}

impl Upload<'_> {
    /// An empty playlist whose caller-given words ask for contact details or pictures.
    /// Second-person address alone is no signal (song titles end in "you"): only the
    /// rules' contact and solicitation kinds count.
    pub fn counts(&self) -> bool {
        self.context.playlist_track_count == Some(0)
            && self.signals.iter().any(|s| {
                s.source != TextSource::Ocr && (s.kind.is_contact() || s.kind.is_solicitation())
            })
    }
}

/// An upload read back from the store: what [`Upload`] borrows.
#[derive(Clone, Debug)]
pub struct StoredUpload {
    pub artwork_id: String,
    pub at: DateTime<Utc>,
    pub context: ScreenContext,
    pub signals: Vec<TextSignal>,
}

impl StoredUpload {
    /// A stored screening as an upload; `None` for one without an artwork id or with a
    /// context this version cannot read (it cannot be part of the pattern then).
    pub fn from_row(row: crate::store::ScreeningRow) -> Option<StoredUpload> {
        let context = serde_json::from_value(row.facts.context).ok()?;
        let signals = row
            .facts
            .record
            .get("text")
            .and_then(|t| t.get("signals"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        Some(StoredUpload {
            artwork_id: row.facts.artwork_id?,
            at: row.created_at,
            context,
            signals,
        })
    }

    pub fn upload(&self) -> Upload<'_> {
        Upload {
            artwork_id: &self.artwork_id,
            at: self.at,
            context: &self.context,
            signals: &self.signals,
        }
    }
}

/// The uploads that make the pattern, oldest first (one per artwork: its latest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerPattern {
    pub artworks: Vec<(String, DateTime<Utc>)>,
}

impl OwnerPattern {
    /// The reason recorded on the screening that completed the pattern. Titles are not
    /// quoted: they may hold a child's contact details, and reasons travel in webhooks.
    pub fn reason(&self, settings: &OwnerPatternSettings) -> String {
        let ids: Vec<&str> = self.artworks.iter().map(|(id, _)| id.as_str()).collect();
        format!(
            "review: owner pattern: {} empty playlists within {} days ask for contact or pictures ({})",
            ids.len(),
            settings.window.num_days(),
            ids.join(", ")
        )
    }
}

/// The pattern in `uploads` (any order) as of `now`, if they make one.
pub fn find(
    uploads: &[Upload<'_>],
    now: DateTime<Utc>,
    settings: &OwnerPatternSettings,
) -> Option<OwnerPattern> {
    let since = now - settings.window;
    let mut latest: Vec<&Upload<'_>> = Vec::new();
    for upload in uploads.iter().filter(|u| u.at >= since) {
        match latest
            .iter_mut()
            .find(|u| u.artwork_id == upload.artwork_id)
        {
            Some(kept) if kept.at <= upload.at => *kept = upload,
            Some(_) => {}
            None => latest.push(upload),
        }
    }
    let mut counted: Vec<(String, DateTime<Utc>)> = latest
        .into_iter()
        .filter(|u| u.counts())
        .map(|u| (u.artwork_id.to_string(), u.at))
        .collect();
    counted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    (counted.len() >= settings.min_playlists).then_some(OwnerPattern { artworks: counted })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TextScreener;

    struct Scripted {
        artwork: String,
        at: DateTime<Utc>,
        context: ScreenContext,
        signals: Vec<TextSignal>,
    }

    fn upload(artwork: &str, hours: i64, title: &str, tracks: i64) -> Scripted {
        let context = ScreenContext {
            title: Some(title.to_string()),
            playlist_track_count: Some(tracks),
            ..Default::default()
        };
        let signals = crate::screening::text::context_signals(&context, &TextScreener::builtin());
        Scripted {
            artwork: artwork.to_string(),
            at: DateTime::from_timestamp(1_764_000_000 + hours * 3600, 0).unwrap(),
            context,
            signals,
        }
    }

    fn pattern(script: &[Scripted], now_hours: i64) -> Option<OwnerPattern> {
        let uploads: Vec<Upload<'_>> = script
            .iter()
            .map(|s| Upload {
                artwork_id: &s.artwork,
                at: s.at,
                context: &s.context,
                signals: &s.signals,
            })
            .collect();
        let now = DateTime::from_timestamp(1_764_000_000 + now_hours * 3600, 0).unwrap();
        find(&uploads, now, &OwnerPatternSettings::default())
    }

    #[test]
    fn a_conversation_in_empty_playlist_titles_is_one_pattern_in_time_order() {
        let script = [
            upload("p1", 0, "hi there 👋", 0),
            upload("p2", 5, "how old r u?", 0),
            upload("p3", 9, "whats ur snap", 0),
            upload("p4", 30, "add me: jay_k99 on sc", 0),
        ];
        assert_eq!(
            pattern(&script[..3], 10),
            None,
            "one asking title is not a pattern"
        );
        let after = upload("p5", 40, "send me a pic of u", 0);
        let mut all: Vec<Scripted> = script.into_iter().collect();
        all.push(after);
        let found = pattern(&all, 41).expect("the pattern");
        let ids: Vec<&str> = found.artworks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["p3", "p4", "p5"]);
        let reason = found.reason(&OwnerPatternSettings::default());
        assert!(
            reason.contains("3 empty playlists within 7 days") && !reason.contains("jay_k99"),
            "{reason}"
        );
    }

    #[test]
    fn innocent_titles_busy_playlists_old_uploads_and_retitled_covers_do_not_count() {
        let innocent = [
            upload("a", 0, "Summer Vibes", 0),
            upload("b", 1, "Call Me Maybe", 0),
            upload("c", 2, "Songs that ask you questions", 0),
        ];
        assert_eq!(pattern(&innocent, 3), None);
        let busy = [
            upload("a", 0, "whats ur snap", 12),
            upload("b", 1, "dm me", 12),
            upload("c", 2, "send pics", 12),
        ];
        assert_eq!(
            pattern(&busy, 3),
            None,
            "playlists with tracks are not the pattern"
        );
        let spread = [
            upload("a", 0, "whats ur snap", 0),
            upload("b", 24 * 8, "dm me", 0),
            upload("c", 24 * 16, "send pics", 0),
        ];
        assert_eq!(pattern(&spread, 24 * 16 + 1), None, "older than the window");
        // One cover retitled three times is one playlist, judged by its latest title.
        let retitled = [
            upload("a", 0, "whats ur snap", 0),
            upload("a", 1, "dm me", 0),
            upload("a", 2, "send pics", 0),
            upload("b", 3, "dm me", 0),
        ];
        assert_eq!(pattern(&retitled, 4), None);
    }
}
