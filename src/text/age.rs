//! Someone stating an age under 18: "I'm 11", "12yo", "13 y/o", "im thirteen", "14 f".
//! Read on the digits view, where number words are digits.

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::{Normalized, ViewKind};
use super::{chars_before, rule, rules, Finding, TextDetector, TextSignalKind};

pub struct AgeDetector;

/// The youngest and oldest age a statement is flagged for: below 6 the "age" is far
/// more often a count ("I'm 2 ..." is "too"); 18 and over are adults.
const YOUNGEST: u32 = 6;
const OLDEST: u32 = 17;

/// The age is one of the [`AGE_GROUPS`]; digits may be spaced apart (`1 3`). A `next`
/// group is the word after the number, checked in code ("im 10 minutes away" is no age).
static STATEMENTS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    rules(&[
        // "i'm 11", "im 12 send pics", "i am 1 3", "age: 14", "me (15)", "just turned 12"
        r"\b(?:i'?m|i am|iam|am|me|my age is|age|aged|turning|just turned|turned|ich bin|bin|tengo|tenho|j'ai|jai|mam|jestem|sono|ho|ik ben|only|mne|mnie|aku|saya|umur|usia|mine'?s|mine is)\s?[:(]?\s?(?P<age>\d\s?\d?)\b\s?(?P<next>[a-z%:']*)",
        // "12yo", "13 y/o", "14 years old", "12 anni", "1 2 yo"
        r"\b(?P<age>\d\s?\d?)\s?(?:yo|y/o|y\.o\.?|y o|yrs? old|years? old|yr old|year old|jahre alt|jahre|anos|años|ans|lat|sai|anni|jaar|yasinda|yasindayim|yas|let|thn|tahun|anyos|taon|taong gulang)\b\.?\s?(?P<next>[a-z%:']*)",
        // "only 13", "just 12", "13 and lonely", "12 girl here"
        r"\b(?:only|just|barely)\s(?P<age>\d{1,2})\b|\b(?P<age2>\d{1,2})\s(?:and|n|&)\s(?:bored|lonely|single|alone|sad)\b|\b(?P<age3>\d{1,2})\s?(?:girl|boy|gurl|grl|here)\b",
        // "13f", "14 m", "f13"
        r"\b(?P<age>1[0-7]|[6-9])\s?[fm]\b|\b[fm]\s?(?P<age2>1[0-7])\b\s?(?P<next>[a-z%:']*)",
        // "12 (almost 13)", "12 and a half", "still 13", "6th grade and 11", "both 13"
        r"(?:\b(?P<age>1[0-7]|[6-9]) \(?(?:almost|nearly|turning) (?:1[0-8]|[6-9])\b\)?|\b(?P<age3>1[0-7]|[6-9]) and a half\b|\bstill (?P<age4>1[0-7]|[6-9])\b|\bgrade (?:and|n|&) (?P<age2>1[0-7]|[6-9])\b|\bboth (?P<age5>1[0-7]|[6-9])\b)\s?(?P<next>[a-z%:']*)",
        // Japanese: no word boundary between the number and its counter.
        r"(?:^|\D)(?P<age>\d{1,2})\s?(?:歳|才|さい|살)",
    ])
});

/// Korean native numbers from eleven to seventeen before `살` (years of age): written
/// as words, not digits.
static KOREAN_TEEN_AGE: LazyLock<Regex> =
    LazyLock::new(|| rule(r"(?:열한|열두|열세|열네|열다섯|열여섯|열일곱)\s?살"));

/// Goods sold by their age: "Glenfiddich aged 12 years", "Highland Park 12yo".
static AGED_GOODS: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:whisky|whiskey|scotch|single malt|malt|bourbon|rum|rhum|cognac|armagnac|brandy|wine|port|tawny|cheddar|gouda|parmesan|glen[a-z]+|macallan|laphroaig|lagavulin|talisker|ardbeg|highland park|bowmore|balvenie|dalmore|jameson|bushmills|yamazaki|hibiki|distillery|cask|barrel|dram)\b|🥃",
    )
});

/// Famous songs that sing an age, each with the age it sings: cited in a title, that
/// age is the song's ("Dancing Queen – young and sweet, only seventeen").
static SONGS_WITH_AN_AGE: LazyLock<Vec<(Regex, u32)>> = LazyLock::new(|| {
    [
        (r"\bdancing queen\b|\byoung and sweet\b", 17),
        (r"\bjanis ian\b", 17),
        (r"17才 (?:[-–—]|by) |南沙織|森高千里", 17),
        (r"\blukas graham\b|\bonce i was 7 years\b", 7),
        (r"\bsweet little 16\b|\bchuck berry\b", 16),
        (r"\bonly sixteen\b|\bsam cooke\b", 16),
    ]
    .into_iter()
    .map(|(pattern, age)| (rule(pattern), age))
    .collect()
});

/// The rule (index into [`STATEMENTS`]) an age followed by a unit of years is read by:
/// at a celebration it is someone's birthday, not a statement.
const YEARS_RULE: usize = 1;

/// The groups a rule may name its age by, one per alternative that states one.
const AGE_GROUPS: [&str; 5] = ["age", "age2", "age3", "age4", "age5"];

/// Words after "im 10" that make the number a count, not an age.
const UNITS: [&str; 34] = [
    "%", "k", "min", "mins", "minute", "minutes", "hour", "hours", "hrs", "sec", "secs", "seconds",
    "bpm", "songs", "song", "tracks", "track", "times", "days", "day", "weeks", "months", "miles",
    "mi", "km", "ft", "feet", "lbs", "kg", "percent", "x", "am", "pm", ":",
];

/// What else has an age in years: a whisky is "12 y.o.".
const AGED_THINGS: [&str; 12] = [
    "single", "malt", "scotch", "whisky", "whiskey", "bourbon", "rum", "cognac", "wine", "port",
    "tawny", "cheddar",
];

/// A birthday or party title: its age is the guest's, not the writer's.
static CELEBRATION: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:birthday|bday|b-day|cumpleanos|cumple|geburtstag|anniversaire|aniversario|urodziny|party|fiesta|feliz|parabens|felicidades|compleanno|auguri|verjaardag|festa|quinceanera|quinceañera|quince anos|quince años)\b|🎂|🥳",
    )
});

/// Just before an age: what a parent or an event title says about someone else's age,
/// not the writer's ("my little bro turning 9", "Emma's 10").
static ABOUT_SOMEONE_ELSE: LazyLock<Regex> =
    LazyLock::new(|| rule(r"\b(?:my|our|her|his|their|for)\s(?:[a-z]+\s){0,3}$|'s\s$"));

/// Just before a number: a seat, a flight, a part, not an age ("Flight 12F").
static NOT_AN_AGE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:flight|seat|row|gate|room|bus|apt|platform|terminal|floor|level|section|aisle|cabin|suite|unit|track|vol|volume|part|pt|ep|episode|chapter|ch|page|size|no|number)\s?#?$",
    )
});

/// A school grade said of oneself: every grade is under 18.
static GRADE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:im|i'm|i am) in (?:(?:[1-9]|1[0-2])(?:st|nd|rd|th) grade|grade (?:[1-9]|1[0-2])|middle school|year (?:[3-9]|1[01]))\b",
    )
});

impl TextDetector for AgeDetector {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>) {
        statements(text, ViewKind::Digits, found);
        // Most texts have no leet or spaced letters: the second view would only repeat
        // the first one's findings.
        if text.letter_digits.as_str() != text.digits.as_str() {
            statements(text, ViewKind::LetterDigits, found);
        }
    }
}

/// The age statements in one view of the text.
fn statements(text: &Normalized, kind: ViewKind, found: &mut Vec<Finding>) {
    let view = text.view(kind).as_str();
    for m in GRADE.find_iter(view) {
        found.push(Finding::new(TextSignalKind::Age, kind, m.range()));
    }
    for m in KOREAN_TEEN_AGE.find_iter(view) {
        found.push(Finding::new(TextSignalKind::Age, kind, m.range()));
    }
    let celebration = CELEBRATION.is_match(view);
    let aged_goods = AGED_GOODS.is_match(view);
    let sung: Vec<u32> = SONGS_WITH_AN_AGE
        .iter()
        .filter(|(cue, _)| cue.is_match(view))
        .map(|(_, age)| *age)
        .collect();
    for (rule, regex) in STATEMENTS.iter().enumerate() {
        // "12 años" in a birthday title is the guest's age, "12 years" beside a whisky is
        // the whisky's; "im 12" is still the writer's.
        if (celebration || aged_goods) && rule == YEARS_RULE {
            continue;
        }
        for caps in regex.captures_iter(view) {
            let Some(age) = AGE_GROUPS.iter().find_map(|group| caps.name(group)) else {
                continue;
            };
            let digits: String = age.as_str().chars().filter(char::is_ascii_digit).collect();
            let Ok(years) = digits.parse::<u32>() else {
                continue;
            };
            if !(YOUNGEST..=OLDEST).contains(&years) || sung.contains(&years) {
                continue;
            }
            if caps.name("next").is_some_and(|next| {
                UNITS.contains(&next.as_str())
                    || AGED_THINGS.contains(&next.as_str())
                    || next.as_str().starts_with(':')
            }) {
                continue;
            }
            let whole = caps.get(0).expect("group 0");
            if aged_goods && whole.as_str().starts_with("aged") {
                continue;
            }
            let tail_start = chars_before(view, whole.start(), 30);
            let before = &view[tail_start..whole.start()];
            if ABOUT_SOMEONE_ELSE.is_match(before) || NOT_AN_AGE_BEFORE.is_match(before) {
                continue;
            }
            found.push(Finding::new(TextSignalKind::Age, kind, whole.range()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{TextScreener, TextSignalKind, TextSource};

    fn has_age(title: &str) -> bool {
        TextScreener::builtin()
            .scan(TextSource::Title, title)
            .iter()
            .any(|s| s.kind == TextSignalKind::Age)
    }

    #[test]
    fn age_statements_under_18_including_disguised_ones() {
        for title in [
            "I'm 11",
            "13 taong gulang ako",
            "12 anyos lang po",
            "12yo",
            "13 y/o",
            "im thirteen",
            "i am 1 3",
            "14 f",
            "age: 15",
            "16 years old lol",
            "me (15) crying to these songs",
            "13歳です",
            "elf jahre alt",
            "j'ai treize ans",
            "t h i r t e e n   f",
            "1m 12 y34rs 0ld",
            "just turned 13 🎉",
            "12 and a half and bored",
            "12 (almost 13)",
            "fourteen next week, still 13 lol",
            "1 2 yo, h m u on discord",
            "ik ben dertien jaar",
            "on iki yaşındayım",
            "tenho doze anos",
            "ho quattordici anni",
            "aku 13 thn",
            "bin 14 und langweile mich",
            "age? mine's 12",
            "열세 살이에요",
            "dancing queen on repeat, im 13",
            "im 7 years old",
        ] {
            assert!(has_age(title), "{title}");
        }
    }

    #[test]
    fn adults_counts_and_other_peoples_ages_are_not_age_statements() {
        for title in [
            "I'm 22",
            "Only Sixteen – Sam Cooke",
            "quinceañera de Sofía 15 años",
            "festa dos 15 anos da Bia",
            "im 19 m",
            "22",
            "Sweet Sixteen",
            "17",
            "my 12 year old's favourites",
            "Emma's 10th birthday party!",
            "party songs for 10 year olds",
            "I'm 2 Sexy",
            "Track 14 from 2012",
            "7 Years",
            "10 years of hits",
            "bday mix for my little bro turning 9",
            "2013歳",
            "12 and a half hours of jazz",
            "12 (almost 13) hour road trip mix",
            "Glenfiddich aged 12 years & slow jazz",
            "Highland Park 12yo – smoky folk",
            "whisky & jazz night: 12 year old Glenfiddich",
            "on the road again",
            "Dancing Queen – young and sweet, only seventeen",
            "Once I was seven years old 🎶 7 Years – Lukas Graham",
            "17才 – 南沙織",
        ] {
            assert!(!has_age(title), "{title}");
        }
    }
}
