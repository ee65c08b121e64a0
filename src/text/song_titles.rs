//! Famous song titles whose words the phrase rules read as a request ("Call Me",
//! "What's Your Number?"). Cited as a whole title, capitalised, alone or with an artist
//! credit, they are a song, not an invitation. Only the phrase findings inside the title
//! are dropped: a handle, number, address or age in the same text still counts, and so
//! does any request in the credit.

use std::ops::Range;

use super::normalize::{Normalized, ViewKind};

/// Titles as the base view writes them, apostrophes and end punctuation left out. Only
/// songs whose title alone a rule flags belong here.
const TITLES: &[&str] = &[
    "call me",
    "call me maybe",
    "call me if you get lost",
    "dirty talk",
    "hit me up",
    "show yourself",
    "talk dirty",
    "talk dirty to me",
    "text me merry christmas",
    "whats your number",
];

/// What may follow a title as the artist's credit.
const CREDITS: &[&str] = &[" - ", " – ", " — ", " | ", " by ", " (", " ~ "];

/// The source spans of the parts of a text, split at its credits, that are a famous
/// title ("Frozen 2 – Show Yourself": the second).
pub fn famous_titles(text: &Normalized) -> Vec<Range<usize>> {
    let base = text.base.as_str();
    let mut cuts: Vec<(usize, usize)> = CREDITS
        .iter()
        .flat_map(|credit| base.match_indices(credit).map(|(at, c)| (at, at + c.len())))
        .collect();
    cuts.sort();
    let mut parts = Vec::new();
    let mut start = 0;
    for (at, end) in cuts.into_iter().chain([(base.len(), base.len())]) {
        if at >= start {
            parts.push(start..at);
            start = end;
        }
    }
    parts
        .into_iter()
        .filter(|part| {
            let key: String = base[part.clone()]
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ')
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            TITLES.contains(&key.as_str())
        })
        .filter_map(|part| text.source_of(ViewKind::Base, part))
        // Cited as a title, capitalised; a message is typed in lower case ("talk dirty to me").
        .filter(|(_, written)| {
            written
                .chars()
                .find(|c| c.is_alphabetic())
                .is_some_and(char::is_uppercase)
        })
        .map(|(span, _)| span)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{assert_each_found, assert_nothing_found, TextSignalKind};

    #[test]
    fn a_famous_title_alone_or_credited_is_a_song() {
        assert_nothing_found(&[
            "What's Your Number? – Cypress Hill",
            "Call Me",
            "Call Me - Blondie",
            "Talk Dirty (feat. 2 Chainz)",
            "CALL ME IF YOU GET LOST by Tyler, The Creator",
            "Frozen 2 – Show Yourself",
        ]);
    }

    #[test]
    fn the_same_words_asking_more_still_count() {
        assert_each_found(&[
            ("what's your number? im 12", TextSignalKind::Age),
            ("Call Me - sc: lily_2010", TextSignalKind::ContactHandle),
            ("call me 555 0199", TextSignalKind::Phone),
            ("call me tonight", TextSignalKind::ContactHandle),
            ("Call Me - dm me", TextSignalKind::ContactHandle),
            ("whats your number and snap", TextSignalKind::ContactHandle),
            ("talk dirty to me", TextSignalKind::Sexual),
            ("call me", TextSignalKind::ContactHandle),
        ]);
    }
}
