//! Views of one text that undo the usual ways of hiding words from a filter, each
//! keeping, for every character, the span of the original text it came from, so a match
//! in any view is reported as written.
//!
//! - **base**: lower case; look-alike and styled letters (Cyrillic `а`, full-width `Ｓ`,
//!   mathematical `𝐬`, accents) folded to their plain Latin letter by `decancer`'s
//!   confusables table (symbols only to symbols: `🎉` is no `k`); keycap emoji (`1️⃣`) to
//!   their digit; the few emoji that stand for a word here (`👻` Snapchat, `📸` a
//!   picture) to that word; invisible characters dropped; every run of white space one
//!   space.
//! - **leet**: base, with leetspeak undone in words that hold a letter (`5n4p` →
//!   `snap`).
//! - **letters**: leet, with letters spaced or dotted apart joined again (`s n a p`,
//!   `s.n.a.p`), a wider gap than one space between them kept as a word break
//!   (`a d d  m e` → `add me`). Joining also fuses short words (`r u a virgin` →
//!   `rua virgin`), so word rules run on both leet and letters.
//! - **digits**: base, with number words written as digits (`five` → `5`,
//!   `thirteen` → `13`, `oh` and the letter `o` among digits → `0`), for phone numbers
//!   and ages.
//! - **letter digits**: letters, with number words written as digits, for ages written
//!   in leetspeak or spelled out letter by letter (`1m 12 y34rs 0ld`, `t h i r t e e n`).
//! - **compact**: base without spaces, for addresses spelled out letter by letter.

use std::ops::Range;

/// One view of a text: its characters and, for each, the source characters it stands for.
#[derive(Clone, Debug, Default)]
pub struct View {
    text: String,
    /// Per character of `text`, in order: its byte offset in `text` and its source span
    /// (character offsets into the original text).
    pieces: Vec<(usize, Range<usize>)>,
}

impl View {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn push(&mut self, c: char, source: Range<usize>) {
        self.pieces.push((self.text.len(), source));
        self.text.push(c);
    }

    fn chars(&self) -> impl Iterator<Item = (char, Range<usize>)> + '_ {
        self.text
            .chars()
            .zip(self.pieces.iter().map(|(_, source)| source.clone()))
    }

    /// The source characters that the bytes `bytes` of this view came from, without
    /// white space at either end; `None` when they came from none.
    pub fn source_span(&self, bytes: Range<usize>) -> Option<Range<usize>> {
        let first = self.pieces.partition_point(|(at, _)| *at < bytes.start);
        let last = self.pieces.partition_point(|(at, _)| *at < bytes.end);
        let covered = &self.pieces[first..last];
        let start = covered.iter().map(|(_, s)| s.start).min()?;
        let end = covered.iter().map(|(_, s)| s.end).max()?;
        Some(start..end)
    }
}

/// A text in its three views, with the original characters for reporting spans.
#[derive(Clone, Debug)]
pub struct Normalized {
    source: Vec<char>,
    pub base: View,
    pub leet: View,
    pub letters: View,
    pub digits: View,
    pub letter_digits: View,
    pub compact: View,
}

/// Which view a match was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    Base,
    Leet,
    Letters,
    Digits,
    LetterDigits,
    Compact,
}

impl Normalized {
    pub fn new(text: &str) -> Normalized {
        let source: Vec<char> = text.chars().collect();
        let base = base_view(&source);
        let leet = undo_leetspeak(&base);
        let letters = join_spaced_letters(&leet, &source);
        let digits = number_words_to_digits(&base);
        let letter_digits = number_words_to_digits(&letters);
        let compact = without_spaces(&base);
        Normalized {
            source,
            base,
            leet,
            letters,
            digits,
            letter_digits,
            compact,
        }
    }

    pub fn view(&self, kind: ViewKind) -> &View {
        match kind {
            ViewKind::Base => &self.base,
            ViewKind::Leet => &self.leet,
            ViewKind::Letters => &self.letters,
            ViewKind::Digits => &self.digits,
            ViewKind::LetterDigits => &self.letter_digits,
            ViewKind::Compact => &self.compact,
        }
    }

    /// The source span (trimmed of white space) of `bytes` in a view, and its text as
    /// written.
    pub fn source_of(&self, view: ViewKind, bytes: Range<usize>) -> Option<(Range<usize>, String)> {
        let mut span = self.view(view).source_span(bytes)?;
        while span.start < span.end && self.source[span.start].is_whitespace() {
            span.start += 1;
        }
        while span.end > span.start && self.source[span.end - 1].is_whitespace() {
            span.end -= 1;
        }
        (span.start < span.end).then(|| (span.clone(), self.source[span].iter().collect()))
    }

    /// Whether the source of `bytes` in a view is written other than in plain ASCII
    /// digits and separators: number words, keycaps, circled or full-width digits.
    pub fn disguised_digits(&self, view: ViewKind, bytes: Range<usize>) -> bool {
        self.view(view).source_span(bytes).is_some_and(|span| {
            // Letters (number words), non-ASCII digits (circled, full-width) and keycaps;
            // a typographic dash or space is no disguise.
            self.source[span]
                .iter()
                .any(|c| (c.is_alphanumeric() && !c.is_ascii_digit()) || *c == KEYCAP)
        })
    }
}

const KEYCAP: char = '\u{20E3}';
const VARIATION_SELECTOR_16: char = '\u{FE0F}';

fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}' | '\u{00AD}'
    )
}

fn base_view(source: &[char]) -> View {
    let mut view = View::default();
    let mut last_space = true;
    let mut i = 0;
    while i < source.len() {
        let c = source[i];
        // A keycap emoji is a digit, an optional VS16 and U+20E3.
        if c.is_ascii_digit() {
            let mut end = i + 1;
            if source.get(end) == Some(&VARIATION_SELECTOR_16) {
                end += 1;
            }
            if source.get(end) == Some(&KEYCAP) {
                view.push(c, i..end + 1);
                last_space = false;
                i = end + 1;
                continue;
            }
        }
        let span = i..i + 1;
        i += 1;
        if c.is_whitespace() {
            if !last_space {
                view.push(' ', span);
                last_space = true;
            }
            continue;
        }
        if invisible(c) || c == KEYCAP {
            continue;
        }
        last_space = false;
        if c.is_ascii() {
            view.push(c.to_ascii_lowercase(), span);
            continue;
        }
        // Full-width ASCII (`＠`, `．`, `Ｓ`) is ASCII: the confusables table reads `＠` as `a`.
        if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
            let ascii = char::from_u32(c as u32 - 0xFEE0).expect("full-width maps to ASCII");
            view.push(ascii.to_ascii_lowercase(), span);
            continue;
        }
        if let Some(word) = emoji_word(c) {
            word.chars().for_each(|w| view.push(w, span.clone()));
            continue;
        }
        if unfolded_script(c) {
            view.push(c, span);
            continue;
        }
        match decancer::cure_char(c, decancer::Options::default()) {
            // The confusables table maps some symbols and emoji to letters (`🎉` to `k`):
            // only a letter or digit may become one.
            decancer::Translation::Character(cured)
                if !c.is_alphanumeric() && cured.is_alphanumeric() =>
            {
                view.push(c, span);
            }
            decancer::Translation::String(cured)
                if !c.is_alphanumeric() && cured.chars().any(char::is_alphanumeric) =>
            {
                view.push(c, span);
            }
            decancer::Translation::Character(cured) => {
                for lower in cured.to_lowercase() {
                    view.push(lower, span.clone());
                }
            }
            decancer::Translation::String(cured) => {
                for lower in cured.chars().flat_map(char::to_lowercase) {
                    view.push(lower, span.clone());
                }
            }
            decancer::Translation::None => {}
        }
    }
    view
}

/// Letters of scripts with no Latin look-alikes to undo, which the confusables table would
/// still turn into Latin letters (`て` into `c`): Hebrew to Indic and Thai, Hangul, kana
/// and CJK ideographs are kept as written.
fn unfolded_script(c: char) -> bool {
    matches!(
        c,
        '\u{0590}'..='\u{0EFF}'
            | '\u{1100}'..='\u{11FF}'
            | '\u{2E80}'..='\u{2FFF}'
            | '\u{3040}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7AF}'
            | '\u{F900}'..='\u{FAFF}'
    )
}

/// Emoji written for a word that a rule reads: Snapchat's ghost, cameras, a phone.
fn emoji_word(c: char) -> Option<&'static str> {
    Some(match c {
        '👻' => "snap",
        '📸' | '📷' => "pic",
        '🤳' => "selfie",
        '📞' | '☎' => "call",
        '📱' => "phone",
        '📧' | '✉' => "email",
        _ => return None,
    })
}

fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' | '€' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        _ => return None,
    })
}

/// Splits a view into runs of non-space characters and the spaces between them.
fn words(view: &View) -> Vec<Vec<(char, Range<usize>)>> {
    let mut out: Vec<Vec<(char, Range<usize>)>> = vec![Vec::new()];
    for (c, span) in view.chars() {
        if c == ' ' {
            out.push(vec![(c, span)]);
            out.push(Vec::new());
        } else {
            out.last_mut().expect("never empty").push((c, span));
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Leetspeak only inside a word that holds a letter and either does not end in two or
/// more digits or has a leet character between letters: `5n4p`, `h0rny` and `s3lf13`
/// are words, `lily2010`, `12` and `2024` are not.
fn undo_leetspeak(view: &View) -> View {
    let mut out = View::default();
    for word in words(view) {
        let has_letter = word.iter().any(|(c, _)| c.is_alphabetic());
        let trailing_digits = word
            .iter()
            .rev()
            .take_while(|(c, _)| c.is_ascii_digit())
            .count();
        let leet_between_letters = word
            .windows(3)
            .any(|w| w[0].0.is_alphabetic() && leet(w[1].0).is_some() && w[2].0.is_alphabetic());
        // '@' opens a handle and '!' or '$' may close a word: only between letters are they leet.
        let leet_word = has_letter && (trailing_digits < 2 || leet_between_letters);
        for (k, (c, span)) in word.iter().enumerate() {
            let letter = |i: Option<usize>| {
                i.and_then(|i| word.get(i))
                    .is_some_and(|(c, _)| c.is_alphanumeric())
            };
            let inner = letter(k.checked_sub(1)) && letter(Some(k + 1));
            let mapped = match c {
                '@' | '!' | '|' | '$' if !inner => None,
                _ if leet_word => leet(*c),
                _ => None,
            };
            out.push(mapped.unwrap_or(*c), span.clone());
        }
    }
    out
}

fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '.' | '-' | '_' | '*' | ',' | '+' | '/' | '~' | '·' | '•'
    )
}

/// Letters set apart one by one (`s n a p`, `s.n.a.p`, `a-d-d m-e`) joined into words:
/// three or more single letters each followed by one separator. A space that stood for
/// more than one white space character in `source` is a break between two such words.
fn join_spaced_letters(view: &View, source: &[char]) -> View {
    let chars: Vec<(char, Range<usize>)> = view.chars().collect();
    let single = |i: usize| {
        let c = chars[i].0;
        c.is_alphanumeric()
            && (i == 0 || !chars[i - 1].0.is_alphanumeric())
            && (i + 1 == chars.len() || !chars[i + 1].0.is_alphanumeric())
    };
    let mut out = View::default();
    let mut i = 0;
    while i < chars.len() {
        // A run: single, separator, single, separator, single ...
        let mut end = i;
        let mut letters = 0;
        while end < chars.len() && single(end) {
            letters += 1;
            if end + 2 < chars.len() && is_separator(chars[end + 1].0) && single(end + 2) {
                end += 2;
            } else {
                end += 1;
                break;
            }
        }
        if letters >= 3 {
            let mut k = i;
            while k < end {
                let (c, span) = &chars[k];
                let wide_gap = *c == ' ' && source.get(span.end).is_some_and(|n| n.is_whitespace());
                if c.is_alphanumeric() || wide_gap {
                    out.push(*c, span.clone());
                }
                k += 1;
            }
            i = end;
        } else {
            out.push(chars[i].0, chars[i].1.clone());
            i += 1;
        }
    }
    out
}

/// English number words, and the teens of the other languages the rules read (ages are
/// what they are for; Spanish `once` is left out, being English "once").
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
    ("eleven", "11"),
    ("twelve", "12"),
    ("thirteen", "13"),
    ("fourteen", "14"),
    ("fifteen", "15"),
    ("sixteen", "16"),
    ("seventeen", "17"),
    ("elf", "11"),
    ("zwolf", "12"),
    ("dreizehn", "13"),
    ("vierzehn", "14"),
    ("funfzehn", "15"),
    ("sechzehn", "16"),
    ("siebzehn", "17"),
    ("doce", "12"),
    ("trece", "13"),
    ("catorce", "14"),
    ("quince", "15"),
    ("dieciseis", "16"),
    ("diecisiete", "17"),
    ("onze", "11"),
    ("douze", "12"),
    ("treize", "13"),
    ("quatorze", "14"),
    ("quinze", "15"),
    ("seize", "16"),
    ("jedenascie", "11"),
    ("dwanascie", "12"),
    ("trzynascie", "13"),
    ("czternascie", "14"),
    ("pietnascie", "15"),
    ("szesnascie", "16"),
    ("siedemnascie", "17"),
    ("twaalf", "12"),
    ("dertien", "13"),
    ("veertien", "14"),
    ("vijftien", "15"),
    ("zestien", "16"),
    ("zeventien", "17"),
    ("doze", "12"),
    ("treze", "13"),
    ("catorze", "14"),
    ("dezesseis", "16"),
    ("dezasseis", "16"),
    ("dezessete", "17"),
    ("dezassete", "17"),
    ("undici", "11"),
    ("dodici", "12"),
    ("tredici", "13"),
    ("quattordici", "14"),
    ("quindici", "15"),
    ("sedici", "16"),
    ("diciassette", "17"),
    ("sebelas", "11"),
    // Digits, for numbers read out one by one. Words that are also common words of
    // another language the rules read are left out ("un", "een", "ein", "due", "sei").
    ("cero", "0"),
    ("uno", "1"),
    ("dos", "2"),
    ("tres", "3"),
    ("cuatro", "4"),
    ("cinco", "5"),
    ("seis", "6"),
    ("siete", "7"),
    ("ocho", "8"),
    ("nueve", "9"),
    ("dois", "2"),
    ("quatro", "4"),
    ("sete", "7"),
    ("oito", "8"),
    ("nove", "9"),
    ("null", "0"),
    ("eins", "1"),
    ("zwei", "2"),
    ("drei", "3"),
    ("vier", "4"),
    ("funf", "5"),
    ("sechs", "6"),
    ("sieben", "7"),
    ("acht", "8"),
    ("neun", "9"),
    ("deux", "2"),
    ("trois", "3"),
    ("quatre", "4"),
    ("cinq", "5"),
    ("huit", "8"),
    ("neuf", "9"),
    ("jeden", "1"),
    ("dwa", "2"),
    ("trzy", "3"),
    ("cztery", "4"),
    ("piec", "5"),
    ("szesc", "6"),
    ("siedem", "7"),
    ("osiem", "8"),
    ("dziewiec", "9"),
];

/// Numbers written as two words: Turkish teens ("on iki"), Indonesian ("dua belas").
const TWO_WORD_NUMBERS: &[(&str, &str, &str)] = &[
    ("on", "bir", "11"),
    ("on", "iki", "12"),
    ("on", "uc", "13"),
    ("on", "dort", "14"),
    ("on", "bes", "15"),
    ("on", "alti", "16"),
    ("on", "yedi", "17"),
    ("dua", "belas", "12"),
    ("tiga", "belas", "13"),
    ("empat", "belas", "14"),
    ("lima", "belas", "15"),
    ("enam", "belas", "16"),
    ("tujuh", "belas", "17"),
];

fn without_spaces(view: &View) -> View {
    let mut out = View::default();
    for (c, span) in view.chars().filter(|(c, _)| *c != ' ') {
        out.push(c, span);
    }
    out
}

fn number_word(word: &str) -> Option<&'static str> {
    NUMBER_WORDS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, digits)| *digits)
}

fn numeric(word: &str) -> bool {
    number_word(word).is_some() || word.chars().all(|c| c.is_ascii_digit()) && !word.is_empty()
}

/// A number written as words: its digits, each mapped to the words' whole span, then
/// the marks that trailed them (`rest`).
fn push_number(out: &mut View, digits: &str, span: Range<usize>, rest: &[(char, Range<usize>)]) {
    for d in digits.chars() {
        out.push(d, span.clone());
    }
    for (c, s) in rest {
        out.push(*c, s.clone());
    }
}

fn number_words_to_digits(view: &View) -> View {
    let mut out = View::default();
    let words = words(view);
    let cores: Vec<String> = words
        .iter()
        .map(|w| {
            let text: String = w.iter().map(|(c, _)| *c).collect();
            text.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_string()
        })
        .collect();
    // The word before and after, skipping the spaces between.
    let neighbour_numeric = |k: usize| {
        (k >= 2 && numeric(&cores[k - 2])) || (k + 2 < cores.len() && numeric(&cores[k + 2]))
    };
    let mut skip_to = 0;
    for (k, word) in words.iter().enumerate() {
        if k < skip_to {
            continue;
        }
        let core = cores[k].as_str();
        // "on iki": the first word and the second, up to its own trailing marks.
        let pair = TWO_WORD_NUMBERS.iter().find(|(first, second, _)| {
            *first == core && cores.get(k + 2).is_some_and(|next| next == second)
        });
        if let Some((_, second, digits)) = pair {
            let last = &words[k + 2];
            let span = word[0].1.start..last[second.chars().count() - 1].1.end;
            push_number(&mut out, digits, span, &last[second.chars().count()..]);
            skip_to = k + 3;
            continue;
        }
        // "555 o1o4": the letter o among digits is a zero; "oh seven seven oh" too.
        let zeroed = core.contains(|c: char| c.is_ascii_digit())
            && core.contains('o')
            && core
                .chars()
                .all(|c| c.is_ascii_digit() || c == 'o' || "-./()".contains(c));
        if zeroed || (core == "oh" && neighbour_numeric(k)) {
            let count = core.chars().count();
            if core == "oh" {
                out.push('0', word[0].1.start..word[count - 1].1.end);
            } else {
                for (c, span) in &word[..count] {
                    out.push(if *c == 'o' { '0' } else { *c }, span.clone());
                }
            }
            for (c, s) in &word[count..] {
                out.push(*c, s.clone());
            }
            continue;
        }
        match NUMBER_WORDS.iter().find(|(name, _)| *name == core) {
            Some((_, digits)) => {
                let span = word[0].1.start..word[core.chars().count() - 1].1.end;
                push_number(&mut out, digits, span, &word[core.chars().count()..]);
            }
            None => {
                for (c, s) in word {
                    out.push(*c, s.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of(n: &Normalized, view: ViewKind, needle: &str) -> String {
        let at = n.view(view).as_str().find(needle).expect("needle in view");
        n.source_of(view, at..at + needle.len())
            .expect("a source span")
            .1
    }

    #[test]
    fn styled_and_look_alike_letters_fold_to_plain_latin() {
        // Full-width, mathematical bold, Cyrillic а/р, an accent.
        let n = Normalized::new("ＡＤＤ me on 𝐬𝐧𝐚𝐩 sпаp snäp");
        assert_eq!(n.base.as_str(), "add me on snap snap snap");
        assert_eq!(source_of(&n, ViewKind::Base, "snap"), "𝐬𝐧𝐚𝐩");
    }

    #[test]
    fn leetspeak_is_undone_only_inside_words() {
        let n = Normalized::new("5n4p me h0rny lily2010 12 @jay 2024! p!c snap!! wh@t");
        assert_eq!(
            n.letters.as_str(),
            "snap me horny lily2010 12 @jay 2024! pic snap!! what"
        );
    }

    #[test]
    fn spaced_letters_join_and_map_back_to_what_was_written() {
        let n = Normalized::new("add me on s n a p or s.n.a.p, a b");
        assert_eq!(n.letters.as_str(), "add me on snap or snap, a b");
        assert_eq!(source_of(&n, ViewKind::Letters, "snap"), "s n a p");
    }

    #[test]
    fn number_words_and_keycaps_become_digits() {
        let n = Normalized::new("im Thirteen, call five five five 1️⃣2️⃣");
        assert_eq!(n.digits.as_str(), "im 13, call 5 5 5 12");
        assert_eq!(source_of(&n, ViewKind::Digits, "13"), "Thirteen");
        assert_eq!(source_of(&n, ViewKind::Digits, "12"), "1️⃣2️⃣");
        let n = Normalized::new("on iki yaşındayım, dua belas! seis cuatro");
        assert_eq!(n.digits.as_str(), "12 yasindayim, 12! 6 4");
        assert_eq!(source_of(&n, ViewKind::Digits, "12 "), "on iki");
        // "on" alone is a word.
        assert_eq!(Normalized::new("on and on").digits.as_str(), "on and on");
    }

    #[test]
    fn other_scripts_and_emoji_are_not_read_as_latin_letters() {
        let n = Normalized::new("写真送って 13歳です 사진 보내줘 أرسل صورة 🎉");
        assert_eq!(
            n.base.as_str(),
            "写真送って 13歳です 사진 보내줘 أرسل صورة 🎉"
        );
        let n = Normalized::new("ｚｏｅ．ｍ＠ｇｍａｉｌ．ｃｏｍ my 👻 📸");
        assert_eq!(n.base.as_str(), "zoe.m@gmail.com my snap pic");
        assert_eq!(source_of(&n, ViewKind::Base, "snap"), "👻");
    }

    #[test]
    fn letters_spaced_apart_keep_wider_gaps_as_word_breaks() {
        let n = Normalized::new("a d d   m e   o n   s n a p");
        assert_eq!(n.letters.as_str(), "add me on snap");
        let n = Normalized::new("t h i r t e e n   f and 1m 12 y34rs 0ld s3lf13");
        assert_eq!(n.letter_digits.as_str(), "13 f and im 12 years old selfie");
    }

    #[test]
    fn invisible_characters_and_space_runs_do_not_split_words() {
        let n = Normalized::new("s\u{200B}nap   me\t\tnow");
        assert_eq!(n.base.as_str(), "snap me now");
    }
}
