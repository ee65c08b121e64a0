//! Contact details and invitations to talk elsewhere: phone numbers, email addresses,
//! handles and links on other apps, "add me", "dm me", "what's your number".

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::{Normalized, ViewKind};
use super::{
    chars_before, find_all, find_words, rule, rules, Finding, TextDetector, TextSignalKind,
};

pub struct ContactDetector;

/// Apps people are asked to move to, as written (after normalisation) in titles.
const APPS: &str = r"snapchat|snap|sc|insta|instagram|ig|kik|telegram|tele|tg|discord|whatsapp|whats app|whtsap|whtsapp|watsap|watsapp|wa|tiktok|tik tok|skype|wechat|viber|signal|yubo|wizz|messenger|fb|facebook|twitter|line|zalo|vk|kakao|threema|session|wickr";

/// Words that make a short run of digits a phone number rather than a year or a count.
const PHONE_CUES: &str = r"call|text|txt|number|num|nmbr|#|ph|phone|tel|cell|mobile|whatsapp|wa|digits|hmu|ring|sms|contact|reach|my no|telegram|viber|signal";

/// Runs of digits with the separators phone numbers are written with.
static PHONE_RUN: LazyLock<Regex> =
    LazyLock::new(|| rule(r"\+?\(?\d(?:[\d()\-./_,]|\s(?:\s)?){5,}\d"));
/// A date inside a run of digits: `2024-06-21`, `21.06.2024`.
static DATE: LazyLock<Regex> =
    LazyLock::new(|| rule(r"(?:19|20)\d\d[-./]\d\d?[-./]\d\d?|\d\d?[-./]\d\d?[-./](?:19|20)\d\d"));
/// Words that make a long run of digits a record's catalogue number, unless a phone cue
/// says otherwise ("Sony 88985 41235 2").
static CATALOGUE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:cat|cat no|catalog|catalogue|catalogus|katalog|ref|isbn|ean|upc|barcode|matrix|sony|emi|decca|columbia|rca|atlantic|warner|universal|polydor|capitol|naxos|reissue|pressing|remastered|lp|cd|vinyl)\b",
    )
});
static PHONE_CUE: LazyLock<Regex> =
    LazyLock::new(|| rule(&format!(r"(?:^|\W)(?:{PHONE_CUES})(?:\W|$)")));
/// Words that invite the reader to use the number or address beside them, or name the
/// messenger it is for: with one, the number is an invitation as well as a number.
const INVITING_CUES: &str = r"call|text|txt|sms|ring|hmu|whatsapp|wa|wsp|zap|whats|telegram|tele|tg|viber|signal|kakao|write|msg|message|dm|mail|email|e-mail|escribe|send|llamame|llamar|escribeme|appelle|appelez|texte|ecris|ruf|anrufen|schreib|ligue|liga|zadzwon|napisz";
static INVITING_CUE: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"(?:^|\W)(?:{INVITING_CUES})(?:\W|$)|電話|でんわ|連絡|전화|연락|카톡"
    ))
});

const AT: &str =
    r"\s?@\s?|\s?\(at\)\s?|\s?\[at\]\s?|\s?\{at\}\s?|\sat\s|\sarroba\s|\smalpa\s|\sarobase\s";
const DOT: &str = r"\s?\.\s?|\s?\(dot\)\s?|\s?\[dot\]\s?|\s?\{dot\}\s?|\sdot\s|\spunto\s|\spoint\s|\sponto\s|\skropka\s";
const PROVIDERS: &str =
    r"gmail|googlemail|yahoo|hotmail|outlook|icloud|aol|proton|protonmail|live|msn|gmx|yandex|qq";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"[a-z0-9][a-z0-9._%+\-]*(?:{AT})[a-z0-9\-]+(?:(?:{DOT})(?:[a-z]{{2,}}))+\b|[a-z0-9][a-z0-9._%+\-]*(?:{AT})(?:{PROVIDERS})\b"
    ))
});
/// An address spelled out letter by letter, on the compact view.
static COMPACT_EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"[a-z0-9][a-z0-9._%+\-]*@(?:[a-z0-9\-]+(?:\.[a-z]{{2,}})+|(?:{PROVIDERS})\b)"
    ))
});
/// "my gmail is lily.k", "hotmail: jay2011".
static PROVIDER_NAMED: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"\b(?:{PROVIDERS})\s?(?:is|:|=|-)\s?[a-z0-9][a-z0-9._]{{2,}}"
    ))
});

/// `snap: lily_2010`, `ig @lily`, `kik = lily`, `discord is lily`.
static APP_HANDLE: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"\b(?:{APPS})\s?(?:id|name|username|user)?\s?(?:[:=]|->|\bis\b|@)\s?@?([a-z0-9][a-z0-9._]{{2,}})"
    ))
});
/// `snap lily_2010`: a handle with the marks of one (a digit, `_` or `.` inside).
static APP_MARKED_HANDLE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:snapchat|snap|sc|insta|instagram|ig|kik|telegram|discord|tiktok|skype|wechat)\s@?([a-z][a-z0-9]*(?:[._][a-z0-9._]+|[0-9]{2,}))\b",
    )
});
/// An app named anywhere in the text, and a token with a handle's marks anywhere else.
static STRONG_APP: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:snapchat|snap|sc|insta|instagram|ig|kik|telegram|tg|discord|whatsapp|tiktok|skype|wechat|signal|wickr|session|threema)\b",
    )
});
static HANDLE_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"@[a-z0-9][a-z0-9._]{2,}|\b[a-z][a-z0-9]{2,}[._][a-z0-9._]*[a-z0-9]\b|\b[a-z]{3,}_?[0-9]{2,4}\b|\b[a-z][a-z0-9]* (?:underscore|dot) [a-z0-9]+\b",
    )
});
/// `@lily_2010`, `@mia.xo`: an at-handle with a handle's marks needs no app named.
static AT_HANDLE: LazyLock<Regex> =
    LazyLock::new(|| rule(r"(?:^|\s)@[a-z0-9]*[._0-9][a-z0-9._]*[a-z0-9]"));
/// Abbreviations that look like handles in ordinary titles.
static NOT_A_HANDLE: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"^(?:vol|feat|prod|remix|mix|edit|pt|part|op|no|ft|mr|mrs|dr|st|vs|www|com|top|hits|best|side|track|disc|cd|lp|ep)[._0-9]",
    )
});
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    rule(
        r"\b(?:t\.me|wa\.me|kik\.me|discord\.gg|discord\.com/invite|snapchat\.com/add|instagram\.com|tiktok\.com/@|telegram\.me)/?\S+",
    )
});
static DISCORD_TAG: LazyLock<Regex> = LazyLock::new(|| rule(r"\b[a-z0-9_.]{2,32}#\d{4}\b"));
static DISCORD_CUE: LazyLock<Regex> = LazyLock::new(|| rule(r"\b(?:discord|disc|dc)\b"));

/// Invitations, on the letters view (leetspeak undone, spaced letters joined).
static INVITATIONS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    rules(&[
        // "add me on snap", "hit me up on insta", "find me @ kik", "lets talk on whatsapp"
        format!(
            r"\b(?:add|follow|dm|message|msg|pm|hmu|hit me up|text|txt|snap|call|ping|talk|talk to|chat with|chat|speak|find|contact|reach|facetime|ft|move|continue|send|sent)\s?(?:me|us|to me|with me)?\b.{{0,12}}?\b(?:on|at|via|in|over|@)\s?(?:{APPS})\b"
        ),
        // "add me", "addme", "dm me", "d.m me", "inbox me", "snap me", "whatsapp me", "hmu"
        format!(
            r"\badd\s?me\b|\bquick ?add\b|\b(?:d\.?m|p\.?m|inbox|e-?mail|{APPS})\s?me\b|\bhmu\b|\bdms? (?:are )?open\b|\bslide (?:in|into) (?:my|ur|your|the) dms?\b"
        ),
        // Other languages: "escribeme", "agregame al snap", "ajoute moi", "schreib mir",
        // "me adiciona", "napisz do mnie" (accents folded)
        r"\b(?:escribeme|escribime|hablame|agregame|agrega ?me|mandame (?:un )?(?:mensaje|msj|dm|md)|me adiciona|adiciona ?me|me chama|chama no|me manda (?:mensagem|msg|dm)|schreib(?:t)? mir|schreib mich an|adde mich|add mich|fug mich hinzu|ajoute[- ]?moi|ajoutez[- ]?moi|ecris[- ]?moi|ecrivez[- ]?moi|contacte[- ]?moi|napisz do mnie|napisz mi|dodaj mnie|pisz do mnie|ライン交換|line交換)".to_string(),
        // "snap?", "insta??", "got kik?"
        r"\b(?:snap|snapchat|sc|insta|ig|kik|discord|whatsapp|telegram|tele|number|num|digits)\s?\?".to_string(),
        // "facetime me", "wanna video call?"
        r"\bface\s?time me\b|\b(?:wanna|want to|lets|let's|can we|we can|u wanna) (?:video ?call|video ?chat|facetime|vc|call)\b".to_string(),
        // "text me", but not "Text Me Merry Christmas": only where a request ends
        r"\b(?:text|txt|call|ring|msg|message|write)\s?me\b\s?(?:$|[?!.]|pls|plz|please|now|rn|asap|at|on|@|\d|back|babe|hun|bby|if|when u|ok|x+\b|:|there|here|tonight|later|l8r|tmrw|tomorrow|sometime|after|before|or)".to_string(),
        r"\bhit me up\b|\b(?:move|take|continue) (?:this |it |the chat |our chat )?(?:to|on|over to) (?:snap|sc|snapchat|insta|ig|kik|telegram|tele|whatsapp|discord|signal|threema|wickr|session|line|wechat|viber|zalo)\b|\b(?:can|could|may) (?:i|we) (?:have|get|grab) (?:ur|your|yo|u) (?:number|num|nmbr|numbr|digits|snap|sc|insta|ig|kik|discord|email|phone|cell|whatsapp|telegram)\b|\bface ?time\s?\?".to_string(),
        r"\b(?:can|could|will|would|pls|plz|please) (?:u|you|ya) (?:call|text|txt|message|msg|dm|snap|facetime|ft|ring) me\b".to_string(),
        // A bare "dm" closing a title after a pause: "h0rny? dm", "sugar daddy, dm".
        r"(?:[?!.,;:~-]|\blol|\blmao|\brn|[^\x00-\x7f])\s?(?:dm|pm|hmu)(?: me| it| pls| plz)?\s?[!.]*$".to_string(),
        r"\b(?:send|show|sent|envoie|envoi|envoyer|manda|mandame|schick)\b.{0,30}\b(?:on|sur|por|no|en|auf|per|na) (?:snap|sc|snapchat|kik|insta|ig|telegram|tele|whatsapp|discord)\b".to_string(),
        r"\b(?:the )?(?:yellow|ghost) app\b|\b(?:move|go|talk|chat|continue) (?:this )?(?:to )?(?:somewhere|smwhere|some place|someplace) (?:more )?private\b|\b(?:no|en|por|al|pelo|na|w|v) (?:privado|priv|pv|privat)\b|\b(?:pishi|napishi|pisz)\b|\badd my (?:snap|sc|snapchat|insta|ig|kik|discord|telegram)\b|(?:카톡|카카오톡|kakao ?talk|kakao)\s?(?:아이디|id|알려줘|추가|해|ㄱ)".to_string(),
        r"\bnapisz(?: do mnie| mi|\s?:)|(?:\bline|ライン)\s?(?:やってる|交換|id)|id\s?交換".to_string(),
        // Dutch "app me" (WhatsApp me), Brazilian "zap", Indonesian "wa", Turkish "yaz
        // bana" / "dm at", Italian "scrivimi", Tagalog "pm mo ako" / "chat tayo", Russian
        // "lichka" (the private messages), Japanese "DMして".
        r"\b(?:app|stuur)\s?me\b.{0,12}\b(?:een )?(?:appje|berichtje|dm|dmpje|bericht)\b|\bapp me\b|\b(?:chat|hubungi|wa) (?:aku|saya|gue|gw)\b|\b(?:di|lewat|via) wa\b|\b(?:yaz|yazsana|ulas) bana\b|\bbana (?:yaz|dm|ulas)\b|\bdm(?:den)? at\b|\bscrivimi\b|\b(?:pm|dm|chat|text|txt|itext|i-text|tawagan|message) mo (?:ako|me)\b|\bchat (?:tayo|kami)\b|\bfacetime (?:me\b|\+|\?|tonight\b|rn\b|now\b)|\b(?:in|nel|sul) privato\b|\bv lichk[ua]\b|\b(?:dm|ｄｍ)\s?(?:きて|来て|して|ちょうだい|ください)|(?:インスタ|insta)の\s?dm".to_string(),
        // "what's your snap", "whats ur number", "send me your number"
        r"\bwh?at'?s?\s?(?:is\s)?(?:ur|your|yo|u)\s?(?:snap|sc|snapchat|insta|ig|number|num|nmbr|digits|#|kik|discord|whatsapp|wa|email|addy|phone|cell|tele|telegram|user|username|handle)\b|\bwh?at'?s?\s?(?:is\s)?(?:ur|your|yo|u)\s?[@#]|\b(?:ur|your) (?:numbr|numba|numero)\s?\?|\b(?:u|you|ya) (?:got|have|has|use|on) (?:a |an )?(?:snap|sc|snapchat|insta|ig|kik|discord|whatsapp|telegram|tiktok|zap)\b|\b(?:lets|let's|let us|we can|we could|can we) (?:go|move|talk|chat|continue) (?:to|in|on|into) (?:the )?(?:dms?|pms?|private|priv)\b|\b(?:drop|send|give|gimme|lmk|tell me) (?:ur|your|yo|u) @".to_string(),
        r"\b(?:send|give|gimme|gimmie|drop|dm|tell|text|leave|post|lmk|pasame|pasa|dame|mandame|passa|me passa|manda|me manda)\s?(?:me\s)?(?:ur|your|yo|u|tu|teu|seu|o teu|o seu)\s?(?:zap|whats|cel|numero|number|num|nmbr|numbr|digits|snap|sc|snapchat|insta|ig|kik|discord|email|addy|phone|cell|whatsapp|wa|telegram|user|username|handle|address)\b".to_string(),
        // "ur snap?", "your number?", "add me back pls"
        r"\b(?:ur|your|yo|u)\s?(?:snap|sc|snapchat|insta|ig|number|num|nmbr|digits|kik|discord|whatsapp|wa|email|addy|phone|cell|telegram|user|username|handle)\s?\?|\b(?:add|follow|dm|hmu)\s?(?:me\s)?(?:back|pls|plz|please|asap)\b|\b(?:message|msg|text|snap)\s?me\s(?:back|pls|plz|please|asap)\b|\b(?:message|msg|text)\s(?:pls|plz|please|asap)\b".to_string(),
        // "my snap is", "my insta:"
        // "my number is" names a number (a phone signal), not an app to move to.
        r"\bmy\s(?:snap|sc|snapchat|insta|ig|kik|discord|telegram|whatsapp|tiktok|user|username|handle)\s?(?:is\b|:|=|-)".to_string(),
        // "message me privately", "private chat"
        r"\b(?:message|msg|talk|chat|text|dm|pm|write)\s?(?:me|to me)?\s?(?:privately|in private|in priv|on priv|private|in dms?)\b|\bprivate\s(?:chat|message|msg|convo)\b".to_string(),
    ])
});

impl TextDetector for ContactDetector {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>) {
        phones(text, found);
        for (regex, view) in [
            (&*EMAIL, ViewKind::Base),
            (&*EMAIL, ViewKind::Leet),
            (&*COMPACT_EMAIL, ViewKind::Compact),
            (&*PROVIDER_NAMED, ViewKind::Base),
        ] {
            let written = text.view(view).as_str();
            for m in regex.find_iter(written) {
                let address: String = m.as_str().chars().filter(|c| !c.is_whitespace()).collect();
                // The address itself may hold a cue word ("mail@..."): only its surroundings count.
                let near = &written[cue_window(written, &m.range())];
                let invited = INVITING_CUE.is_match(&near.replace(m.as_str(), " "));
                push_contact(
                    found,
                    TextSignalKind::Email,
                    view,
                    m.range(),
                    address,
                    invited,
                );
            }
        }
        for (view, regex) in [
            (ViewKind::Base, &*APP_HANDLE),
            (ViewKind::Letters, &*APP_HANDLE),
            (ViewKind::Base, &*APP_MARKED_HANDLE),
        ] {
            for caps in regex.captures_iter(text.view(view).as_str()) {
                let whole = caps.get(0).expect("group 0").range();
                let handle = caps.get(1).map_or("", |h| h.as_str());
                found.push(named(
                    TextSignalKind::ContactHandle,
                    view,
                    whole,
                    handle.into(),
                ));
            }
        }
        let app_named =
            STRONG_APP.is_match(text.leet.as_str()) || STRONG_APP.is_match(text.letters.as_str());
        let base = text.base.as_str();
        let handles = HANDLE_LIKE
            .find_iter(base)
            .filter(|m| app_named && !NOT_A_HANDLE.is_match(m.as_str()))
            .chain(AT_HANDLE.find_iter(base));
        for m in handles {
            let handle = m.as_str().trim().to_string();
            found.push(named(
                TextSignalKind::ContactHandle,
                ViewKind::Base,
                m.range(),
                handle,
            ));
        }
        find_all(
            &LINK,
            text,
            ViewKind::Base,
            TextSignalKind::ContactHandle,
            found,
        );
        if DISCORD_CUE.is_match(text.letters.as_str()) {
            find_all(
                &DISCORD_TAG,
                text,
                ViewKind::Base,
                TextSignalKind::ContactHandle,
                found,
            );
        }
        for regex in INVITATIONS.iter() {
            find_words(regex, text, TextSignalKind::ContactHandle, found);
        }
    }
}

/// Where cue words are looked for around a match: 25 characters before it and up to 16
/// bytes after it, cut back to a character's start.
fn cue_window(view: &str, at: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    chars_before(view, at.start, 25)..view.floor_char_boundary(at.end + 16)
}

/// A number or address of `kind`, and, when a cue word beside it invites the reader to
/// use it, the same span as a contact invitation too.
fn push_contact(
    found: &mut Vec<Finding>,
    kind: TextSignalKind,
    view: ViewKind,
    bytes: std::ops::Range<usize>,
    recipient: String,
    invited: bool,
) {
    if invited {
        found.push(named(
            TextSignalKind::ContactHandle,
            view,
            bytes.clone(),
            recipient.clone(),
        ));
    }
    found.push(named(kind, view, bytes, recipient));
}

/// A finding that names its recipient (without a leading `@`).
fn named(
    kind: TextSignalKind,
    view: ViewKind,
    bytes: std::ops::Range<usize>,
    recipient: String,
) -> Finding {
    let mut finding = Finding::new(kind, view, bytes);
    finding.recipient = Some(recipient.trim_start_matches('@').to_string());
    finding
}

/// A run of 7 to 15 digits is a phone number when it starts with `+`, when it holds 10
/// or more digits and is not a list of years or a count, or when a contact word stands
/// near it; the shorter ones alone are too often catalogue numbers and song titles.
fn phones(text: &Normalized, found: &mut Vec<Finding>) {
    let digits_view = text.digits.as_str();
    for m in PHONE_RUN.find_iter(digits_view) {
        // Digits glued to a word are part of a name or a file name ("promo_20240611_0412")
        // unless a cue says otherwise ("whatsapp+447700900123").
        let glued = digits_view[..m.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let run = m.as_str();
        let digits: String = run.chars().filter(char::is_ascii_digit).collect();
        let n = digits.len();
        if !(7..=15).contains(&n) {
            continue;
        }
        let groups: Vec<&str> = run
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .collect();
        let years = groups
            .iter()
            .filter(|g| g.len() == 4 && (g.starts_with("19") || g.starts_with("20")))
            .count();
        let values: Vec<Option<u64>> = groups.iter().map(|g| g.parse().ok()).collect();
        let counting = groups.len() >= 4
            && (values.windows(2).all(|w| w[1] == w[0].map(|v| v + 1))
                || values.windows(2).all(|w| w[0] == w[1].map(|v| v + 1)));
        if counting || DATE.is_match(run) {
            continue;
        }
        let near = &digits_view[cue_window(digits_view, &m.range())];
        let invited = INVITING_CUE.is_match(near);
        let cued = PHONE_CUE.is_match(near) || invited;
        if glued && !cued {
            continue;
        }
        let international = run.starts_with('+');
        // Digits written as words, keycaps or circled digits are hiding from a filter.
        // Styled digits around a year are a styled title ("ＴＯＰ １００ ２０１９").
        let disguised = years == 0 && text.disguised_digits(ViewKind::Digits, m.range());
        // A toll-free line is an organisation's, not a person's; only an invitation makes
        // it contact.
        let toll_free = [
            "1800", "1888", "1877", "1866", "1855", "1844", "1833", "0800",
        ]
        .iter()
        .any(|prefix| digits.starts_with(prefix));
        // Commas part a list ("1, 5, 9, 12"); only spelled-out or invited digits are read
        // through them ("five five five, zero one four two").
        let listed = run.contains(',') && !(cued || disguised);
        let plausible = if toll_free {
            invited
        } else {
            let catalogue = !cued && CATALOGUE_CUE.is_match(near);
            !listed
                && (international
                    || cued
                    || disguised
                    || (n >= 10 && years * 2 < groups.len() && !catalogue))
        };
        if plausible {
            push_contact(
                found,
                TextSignalKind::Phone,
                ViewKind::Digits,
                m.range(),
                digits,
                invited,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        assert_found, assert_not_found, assert_nothing_found, title_kinds as kinds, TextScreener,
        TextSignalKind, TextSource,
    };

    #[test]
    fn phone_numbers_in_national_and_international_forms() {
        assert_found(
            TextSignalKind::Phone,
            &[
                "text me 555 123 4567",
                "+44 7700 900123",
                "whatsapp+447700900123",
                "(212) 555-0199 call me",
                "07700900123",
                "my number is five five five zero one nine nine",
                "five five five, zero one four two",
                "call 555.0199",
                "＋１ ５５５ ０１９９ ２２３",
                "mi número es seis cuatro seis, cinco cinco cinco, cero uno nueve ocho",
                "numer: zero sześć trzy dziewięć dziewięć osiem jeden jeden dwa dwa",
            ],
        );
    }

    #[test]
    fn numbers_that_are_not_phones() {
        assert_not_found(
            TextSignalKind::Phone,
            &[
                "867-5309/Jenny",
                "Best of 2019 2020 2021",
                "1 2 3 4 5 6 7 8 9 10 countdown",
                "Top 100 2023",
                "128 BPM running mix",
                "Vol. 3 Track 07",
                "Track 1, 5, 9, 12, 15, 18",
                "promo_master_20240611_0412",
                "1-800-273-8255 – Logic",
                "ＴＯＰ １００ ２０１９",
                "Sony 88985 41235 2 – remastered reissue",
                "Deutsche Grammophon cat. 0289 479 8334",
                "Die drei ??? – Folge 12",
            ],
        );
    }

    #[test]
    fn emails_plain_and_spelled_out() {
        assert_found(
            TextSignalKind::Email,
            &[
                "lily.k2011@gmail.com",
                "mail me lily at gmail dot com",
                "jay [at] yahoo (dot) com",
            ],
        );
        assert!(kinds("love at first sight").is_empty());
    }

    #[test]
    fn handles_invitations_and_their_disguises() {
        assert_found(
            TextSignalKind::ContactHandle,
            &[
                "sc: lily_2010",
                "add me on snap",
                "ＡＤＤ ＭＥ",
                "a d d m e on 5n4p",
                "snap jake.h99",
                "whats ur snap",
                "my insta is @lily",
                "kik = lilyk",
                "dm me",
                "message me privately",
                "t.me/lily2010",
                "discord lily#1234",
                "text me pls",
                "stuur me een appje",
                "ik ben 14, stuur me een dm",
                "aku 13 thn, chat aku di wa ya",
                "13 yaşındayım, insta'dan yaz bana",
                "dm at bana",
                "ho quattordici anni, scrivimi in privato",
                "13歳だよ、インスタのDMきて",
            ],
        );
    }

    #[test]
    fn a_number_or_address_beside_an_invitation_or_a_messenger_is_also_an_invitation() {
        for title in [
            "whatsapp +44 7700 900123",
            "appelle-moi 06 39 98 12 34",
            "(646) 555-0107 txt",
            "write me! lily.k[at]outlook[dot]com",
            "ruf mich an: null sieben sieben null null – neun null null – sechs vier zwei",
        ] {
            let kinds = kinds(title);
            assert!(
                kinds.contains(&TextSignalKind::ContactHandle)
                    && (kinds.contains(&TextSignalKind::Phone)
                        || kinds.contains(&TextSignalKind::Email)),
                "{title}: {kinds:?}"
            );
        }
        assert_eq!(kinds("my cell: 212.555.0119"), [TextSignalKind::Phone]);
    }

    #[test]
    fn invitations_in_more_words_and_languages() {
        assert_found(
            TextSignalKind::ContactHandle,
            &[
                "gimme ur number",
                "h0rny? dm",
                "face reveal pls, dm it",
                "can u call me tonight?",
                "threema ABCD1234, msg me there",
                "a d d   m e   o n   s n a p",
                "my 👻 is ryan.k.04",
                "lily underscore 2010 on snap",
                "napisz: ola_k małpa wp kropka pl",
                "LINEやってる？ID交換しよ",
                "send me something on snap",
                "chat tayo sa telegram",
                "facetime tonight? 🥺",
                "pm mo me pag gising ka na",
                "ur numbr? mine is five five five, zero one eight eight",
                "u got snap or nah",
                "this chat is bad lets go to dms",
                "w a t s ur # ?",
                "me passa teu z4p",
                "t€xt m€ 555-0157",
                "threema K7PX2M9A, hit me up there",
                "lets move this to whatsapp",
                "can i have ur number",
                "facetime?",
                "llámame 555 0109",
                "t\u{200b}e\u{200b}x\u{200b}t m\u{200b}e after school",
            ],
        );
        assert!(kinds("napisz: ola_k małpa wp kropka pl").contains(&TextSignalKind::Email));
    }

    #[test]
    fn song_titles_that_only_look_like_invitations() {
        assert_nothing_found(&[
            "Oh Snap!",
            "Snap Out Of It",
            "Call Me Maybe",
            "Text Me Merry Christmas",
            "Telegram Sam",
            "Hit Me Baby One More Time",
            "Mix#2024",
            "Signal Fire",
            "snap back to reality",
            "DMX – Ruff Ryders' Anthem",
            "Call Me When You're Sober",
            "message me when the stars align (song)",
        ]);
    }

    #[test]
    fn a_contact_signal_names_its_recipient() {
        let signals = TextScreener::builtin().scan(TextSource::Title, "sc: Lily_2010");
        let handle = signals
            .iter()
            .find(|s| s.kind == TextSignalKind::ContactHandle)
            .unwrap();
        assert_eq!(handle.recipient.as_deref(), Some("lily_2010"));
        let signals = TextScreener::builtin().scan(TextSource::Title, "call (212) 555-0199");
        let phone = signals
            .iter()
            .find(|s| s.kind == TextSignalKind::Phone)
            .unwrap();
        assert_eq!(phone.recipient.as_deref(), Some("2125550199"));
    }
}
