//! Words spelled out letter by letter ("1 2 f s n a p m e", "m.a.n.d.a f.o.t.o s.u.a").
//! Joined on the letters view, the words of such a run meet with no break between them
//! ("12fsnapme"), so the phrase rules, which need word boundaries, miss them. Spelling a
//! message out is itself the disguise: inside a run, short unambiguous fragments are
//! enough.

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::{Normalized, ViewKind};
use super::{rule, Finding, TextDetector, TextSignalKind};

pub struct SpelledOutDetector;

/// The least number of characters of a run written apart (by spaces, dots, dashes).
const MIN_SINGLES: usize = 3;

/// Fragments of a run, each with the kinds it is.
static FRAGMENTS: LazyLock<Vec<(Regex, &'static [TextSignalKind])>> = LazyLock::new(|| {
    use TextSignalKind::*;
    let fragments: [(&str, &'static [TextSignalKind]); 5] = [
        (
            r"snapme|addme|dmme|textme|txtme|kikme|^hmu$",
            &[ContactHandle],
        ),
        (r"nudes|noods|nudez", &[ImageRequest, Sexual]),
        (
            r"sext|horny|naked|(?:ur|youre|your|u)(?:so|rly|really)?sexy|touch(?:u|you|urself|yourself)$",
            &[Sexual],
        ),
        (
            r"send(?:me)?(?:ur|your|a|some)?(?:pic|pics|selfie|photo|photos)|mandafoto|fotosua|picsofu|picofu",
            &[ImageRequest],
        ),
        (
            r"^(?:1[0-7]|[6-9])[fm]|^(?:eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)[fm]",
            &[Age],
        ),
    ];
    fragments
        .into_iter()
        .map(|(pattern, kinds)| (rule(pattern), kinds))
        .collect()
});

impl TextDetector for SpelledOutDetector {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>) {
        let letters = text.letters.as_str();
        let mut at = 0;
        for word in letters.split(' ') {
            let range = at..at + word.len();
            at = range.end + 1;
            if word.chars().filter(|c| c.is_alphanumeric()).count() < 4 {
                continue;
            }
            let Some((_, written)) = text.source_of(ViewKind::Letters, range.clone()) else {
                continue;
            };
            // Spelled out: mostly single characters between the separators, unlike a
            // domain or a handle ("my-site.co.uk", "lily_2010.xo").
            let pieces: Vec<&str> = written
                .split(|c: char| c.is_whitespace() || ".-_*·".contains(c))
                .filter(|p| !p.is_empty())
                .collect();
            let single = pieces.iter().filter(|p| p.chars().count() == 1).count();
            if single < MIN_SINGLES || single * 2 < pieces.len() {
                continue;
            }
            for (fragment, kinds) in FRAGMENTS.iter() {
                for m in fragment.find_iter(word) {
                    let bytes = range.start + m.start()..range.start + m.end();
                    for kind in *kinds {
                        found.push(Finding::new(*kind, ViewKind::Letters, bytes.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assert_each_found, assert_nothing_found, TextSignalKind};

    #[test]
    fn messages_spelled_out_letter_by_letter() {
        use TextSignalKind::*;
        assert_each_found(&[
            ("1 2 f s n a p m e", Age),
            ("1 2 f s n a p m e", ContactHandle),
            ("s.e.x.t w/ me? 😏", Sexual),
            ("t h i r t e e n f", Age),
            ("u r s o s e x y , c a n i t o u c h u", Sexual),
            ("m.a.n.d.a f.o.t.o s.u.a", ImageRequest),
            ("1 3 f l o n e l y", Age),
        ]);
    }

    #[test]
    fn titles_spaced_for_style_are_not_messages() {
        assert_nothing_found(&[
            "s u m m e r   v i b e s",
            "t h i r t e e n",
            "l o v e  s o n g s  2 0 2 4",
            "S E X Y B A C K",
            "Sextet in B flat",
            "d.r.e.a.m.s",
            "sext_tape.remix-2024",
        ]);
    }
}
