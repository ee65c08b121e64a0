//! The words of a screening's context (title, description) and those read in its
//! artwork read for text signals, and what they decide. Applied after the image is decided, on the upload path, in backfill
//! redecisions and in `scan`, so a cached or re-derived image verdict never skips them.

use crate::screening::context::ScreenContext;
use crate::screening::policy::{Policy, Verdict};
use crate::screening::record::ScreeningRecord;
use crate::text::{TextRecord, TextScreener, TextSignal, TextSignalKind, TextSource};

/// What words can change in a decided record, an image's or a text-only one's: the
/// verdict, its reasons and the text found.
pub struct Decision<'a> {
    pub verdict: &'a mut Verdict,
    pub reasons: &'a mut Vec<String>,
    pub text: &'a mut TextRecord,
}

impl<'a> From<&'a mut ScreeningRecord> for Decision<'a> {
    fn from(record: &'a mut ScreeningRecord) -> Self {
        Decision {
            verdict: &mut record.verdict,
            reasons: &mut record.reasons,
            text: &mut record.text,
        }
    }
}

impl Decision<'_> {
    /// Raise the verdict to at least `verdict`.
    pub fn raise(&mut self, verdict: Verdict) {
        *self.verdict = (*self.verdict).max(verdict);
    }

    /// The same borrows for a shorter while, to pass on and use again after.
    pub fn reborrow(&mut self) -> Decision<'_> {
        Decision {
            verdict: &mut *self.verdict,
            reasons: &mut *self.reasons,
            text: &mut *self.text,
        }
    }
}

/// The signals in the context's title and description, in that order.
pub fn context_signals(context: &ScreenContext, screener: &TextScreener) -> Vec<TextSignal> {
    [
        (TextSource::Title, &context.title),
        (TextSource::Description, &context.description),
    ]
    .into_iter()
    .filter_map(|(source, text)| text.as_deref().map(|t| screener.scan(source, t)))
    .flatten()
    .collect()
}

/// Adds the text signals of the context and of the words read in the artwork to
/// `record` and raises its verdict to what the policy sets for each kind found (review
/// by default), with a reason per kind and source.
pub fn apply<'a>(
    record: impl Into<Decision<'a>>,
    context: &ScreenContext,
    policy: &Policy,
    screener: &TextScreener,
) {
    let mut record = record.into();
    let mut signals = context_signals(context, screener);
    if !record.text.ocr.is_empty() {
        signals.extend(screener.scan(TextSource::Ocr, &record.text.ocr_text()));
    }
    let mut said: Vec<(TextSignalKind, TextSource)> = Vec::new();
    for signal in &signals {
        let action = policy.text.action(signal.kind);
        if action == Verdict::Allow || said.contains(&(signal.kind, signal.source)) {
            continue;
        }
        said.push((signal.kind, signal.source));
        record.reasons.push(reason(action, signal));
        record.raise(action);
    }
    record.text.signals = signals;
}

/// What a screening's context adds to a decided record, wherever it is screened: the
/// signals of its words, then the strict profile's note.
pub fn apply_context<'a>(
    record: impl Into<Decision<'a>>,
    context: &ScreenContext,
    policy: &Policy,
    screener: &TextScreener,
) {
    let mut record = record.into();
    apply(record.reborrow(), context, policy, screener);
    if let Some(reason) = context.strict_reason() {
        record.reasons.push(format!("strict profile: {reason}"));
    }
}

/// `review: contact details in title ("add me on snap")`. A match that names a number,
/// address or handle is not quoted: reasons travel in webhooks and reports, and the
/// contact details may be a child's.
fn reason(action: Verdict, signal: &TextSignal) -> String {
    let what = match signal.kind {
        TextSignalKind::Phone => "a phone number".to_string(),
        TextSignalKind::Email => "an email address".to_string(),
        TextSignalKind::ContactHandle => "contact details".to_string(),
        TextSignalKind::ImageRequest => "a request for pictures".to_string(),
        TextSignalKind::Sexual => "sexual solicitation".to_string(),
        TextSignalKind::Age => "an age under 18".to_string(),
        TextSignalKind::Keyword => format!(
            "a listed term ({})",
            signal.category.as_deref().unwrap_or("keyword")
        ),
    };
    let names_someone = signal.recipient.is_some()
        || matches!(signal.kind, TextSignalKind::Phone | TextSignalKind::Email);
    let quoted = if names_someone {
        "redacted".to_string()
    } else {
        // Words read over several lines of the artwork quote as one line.
        let short: String = signal
            .matched
            .chars()
            .take(60)
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        format!("{short:?}")
    };
    format!("{action}: {what} in {} ({quoted})", signal.source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::policy::Policy;

    fn record() -> ScreeningRecord {
        serde_json::from_value(serde_json::json!({
            "source": "t", "sha256": "00", "md5": "00", "format": "png", "width": 1, "height": 1,
            "pdq": {"hash": "00", "quality": 0, "dihedral": []}, "phash": null, "detections": [],
            "matches": [], "verdict": "allow", "reasons": [], "model": "m", "policy": "p"
        }))
        .expect("a minimal record")
    }

    fn titled(title: &str) -> ScreenContext {
        ScreenContext {
            title: Some(title.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn text_signals_hold_an_allowed_image_for_review_with_a_reason() {
        let mut r = record();
        apply(
            &mut r,
            &titled("add me on snap"),
            &Policy::builtin(&[]),
            &TextScreener::builtin(),
        );
        assert_eq!(r.verdict, Verdict::Review);
        assert_eq!(
            r.reasons,
            ["review: contact details in title (\"add me on snap\")"]
        );
        assert_eq!(r.text.signals.len(), 1);
        assert_eq!(r.text.signals[0].source, TextSource::Title);
    }

    #[test]
    fn contact_details_are_not_quoted_in_reasons() {
        let mut r = record();
        let context = ScreenContext {
            description: Some("text me 555 123 4567, sc: lily_2010".into()),
            ..Default::default()
        };
        apply(
            &mut r,
            &context,
            &Policy::builtin(&[]),
            &TextScreener::builtin(),
        );
        assert!(!r.reasons.is_empty());
        for reason in &r.reasons {
            assert!(
                !reason.contains("555") && !reason.contains("lily"),
                "{reason}"
            );
        }
        assert!(r
            .text
            .signals
            .iter()
            .any(|s| s.matched.contains("555 123 4567")));
    }

    #[test]
    fn a_policy_sets_the_action_per_kind_and_never_lowers_a_verdict() {
        let policy = Policy::from_toml(
            "[text]\nage = \"block\"\ncontact_handle = \"allow\"\n",
            &[],
            &[],
        )
        .unwrap();
        assert_ne!(policy.version(), Policy::builtin(&[]).version());
        let mut r = record();
        apply(
            &mut r,
            &titled("im 12, dm me"),
            &policy,
            &TextScreener::builtin(),
        );
        assert_eq!(r.verdict, Verdict::Block);
        assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
        let mut blocked = record();
        blocked.verdict = Verdict::Block;
        apply(
            &mut blocked,
            &titled("dm me"),
            &Policy::builtin(&[]),
            &TextScreener::builtin(),
        );
        assert_eq!(blocked.verdict, Verdict::Block);
        assert!(Policy::from_toml("[text]\nnope = \"block\"\n", &[], &[]).is_err());
    }

    #[test]
    fn the_default_text_rules_leave_the_policy_version_as_it_was() {
        let policy = Policy::from_toml("[text]\nphone = \"review\"\n", &[], &[]).unwrap();
        assert_eq!(policy.version(), Policy::builtin(&[]).version());
    }

    #[test]
    fn words_read_in_the_artwork_are_screened_with_their_source() {
        let mut r = record();
        let line = |text: &str| crate::text::ocr::OcrLine {
            quad: [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]],
            text: text.into(),
            score: 0.9,
            view: None,
        };
        // A number split over two lines is still one number.
        r.text.ocr = vec![line("Summer Hits"), line("text me 555 123"), line("4567")];
        apply(
            &mut r,
            &titled("Summer Hits"),
            &Policy::builtin(&[]),
            &TextScreener::builtin(),
        );
        assert_eq!(r.verdict, Verdict::Review);
        let phone = r
            .text
            .signals
            .iter()
            .find(|s| s.kind == TextSignalKind::Phone)
            .expect("the number is found");
        assert_eq!(phone.source, TextSource::Ocr);
        let text = r.text.ocr_text();
        let chars: Vec<char> = text.chars().collect();
        let span: String = chars[phone.start..phone.end].iter().collect();
        assert_eq!(span, phone.matched);
        assert!(
            r.reasons.iter().any(|r| r.contains("in ocr")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn a_match_over_two_lines_of_the_artwork_is_quoted_on_one() {
        let signal = TextSignal {
            kind: TextSignalKind::Age,
            matched: "im 12\nSUMMER".into(),
            source: TextSource::Ocr,
            start: 0,
            end: 12,
            category: None,
            recipient: None,
        };
        assert_eq!(
            reason(Verdict::Review, &signal),
            "review: an age under 18 in ocr (\"im 12 SUMMER\")"
        );
    }

    #[test]
    fn innocent_titles_change_nothing() {
        let mut r = record();
        apply(
            &mut r,
            &titled("Call Me Maybe"),
            &Policy::builtin(&[]),
            &TextScreener::builtin(),
        );
        assert_eq!(r.verdict, Verdict::Allow);
        assert!(r.reasons.is_empty() && r.text.signals.is_empty());
    }
}
