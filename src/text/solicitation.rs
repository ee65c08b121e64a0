//! Requests for pictures of the reader and sexual solicitation, on the letters view
//! (leetspeak undone, spaced letters joined).

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::Normalized;
use super::{find_words, rules, Finding, TextDetector, TextSignalKind};

pub struct SolicitationDetector;

const PICTURES: &str = r"pic|pics|pix|picture|pictures|photo|photos|foto|fotos|selfie|selfies|vid|vids|video|videos|snaps|nude|nudes|noods|nudez|noodz";
// Plural only: "Nude" is a song title, "send nudes" is not.
const NUDES: &str = r"nudes|noods|nudez|noodz|nudies";

static IMAGE_REQUESTS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    rules(&[
        // "send pics", "send me a selfie", "snd me ur pic"
        format!(
            r"\b(?:send|snd|sendme|text|dm|share|post|trade|swap|drop|snap|snapchat|kik)\s?(?:me\s|me)?(?:a |an |some |more |ur |your |u |the |1 |one |any )?(?:cute |cutest |pretty |prettiest |hottest |best |new |private |ur |your )?(?:{PICTURES})\b"
        ),
        // "pic of u?", "pics of urself"
        format!(r"\b(?:{PICTURES}) (?:of|from) (?:u|urself|ur self|ur|yourself)\b|\b(?:{PICTURES}) (?:in|wearing) (?:ur|your)\b"),
        // "can i get a pic", "lemme see a selfie"
        format!(
            r"\b(?:can|could|may) (?:i|we) (?:get|see|have) (?:a |an |some |ur |your |another )?(?:{PICTURES})\b|\b(?:lemme|let me) (?:get|see|have) (?:a |some |ur |your )?(?:{PICTURES})\b"
        ),
        // "show me what you look like", "show me ur face"
        r"\bshow (?:me )?(?:what (?:you|u|ur|you're|youre|u r|r u|ya) (?:look like|wearing|wear|have on|got on)|(?:ur|your|yo) (?:face|self|pic|pics|outfit|fit|room)|face\b|urself|yourself|u\b)".to_string(),
        r"\b(?:want|wanna|need|gotta|tryna) (?:to )?see (?:u|ur|urself|you)\b|\bwhat (?:do )?(?:you|u) look like\b|\b(?:can|could|may) (?:i|we) see (?:u|you|ur|urself)\b|\b(?:lemme|let me) see (?:u|ur|urself)\b|\bface ?reveal\b|\bturn (?:ur|your|on ur|on your) (?:cam|camera)\b|\bon cam\s?\?".to_string(),
        // "show me", "montre-moi", "ensename", "zeig mir", "pokaz sie"
        r"\b(?:montre[- ]?moi|montre[- ]?toi|ensename|muestrame|mostra[- ]?me|me mostra|zeig mir|zeig dich|pokaz sie|pokaz mi)\b".to_string(),
        // Other languages: French, Spanish, Portuguese, German, Polish (accents folded).
        r"\b(?:envoie|envoies|envoi)(?:[- ]?moi)? (?:une |des |ta |tes )?(?:photo|photos|selfie|video|nudes|pic|pics)s?\b|\b(?:mandame|manda|me manda|enviame|me envia|me envie|mandame) (?:una |unas |uma |umas |tu |tus |sua |suas )?(?:foto|fotos|selfie|nudes|pack)\b|\bschick(?:e|st)? (?:mir )?(?:mal )?(?:ein |eine |dein |deine )?(?:nackt)?(?:bild|bilder|foto|fotos|selfie|selfies)\b|\bwyslij(?: mi)? (?:swoje |swoja |twoje )?(?:zdjecie|zdjecia|fotke|fotki|selfie)\b".to_string(),
        format!(r"\b(?:{PICTURES}) (?:pls|plz|please)\b|\b(?:{PICTURES})\s?\?"),
        format!(
            r"\b(?:{PICTURES}) (?:for|4) (?:{PICTURES})\b|\bsend (?:one|1|sum|some|it) back\b|\b(?:ur|your) turn (?:to )?(?:pic|selfie|show|send)|\b(?:bild|foto|fotos|bilder) von dir\b|\b(?:foto|fotograf|fotografini|fotografin|resim|resmini) at\b|\bskin'? (?:foto|fotku|fotochku)\b"
        ),
        format!(r"\bowe me (?:a |an |some |one )?(?:{PICTURES})\b"),
        // Dutch and Italian: "stuur eens een foto van jezelf", "mandami una foto di te".
        r"\b(?:stuur|stuurt|mandami|inviami|mandameli)\b.{0,20}\b(?:foto|fotos|foto's|fotootje|selfie|selfies|pic|pics)\b|\b(?:foto|fotos|foto's|selfie) (?:van jezelf|van je|di te|tua|de voce|de toi|sua)\b".to_string(),
        // "post ur face", "snap me ur face", "send ur outfit": a sending verb, then the
        // reader's own face, body or clothes.
        r"\b(?:post|drop|show|snap|send|sned|snd) (?:me )?(?:ur|your|yo) (?:face|body|pic|pics|selfie|outfit|fit|room)\b".to_string(),
        // "selfie swap? u first", "i'll pay 4 pics"
        format!(r"\b(?:{PICTURES}) (?:swap|trade|exchange)\b|\b(?:pay|paying|pay u|pay you) (?:4|for) (?:ur |your |a |some )?(?:{PICTURES}|feet)\b"),
        r"\b(?:would love|i'd love|id love|i'd like|id like) to see (?:u|you|ur face|your face)\b|\blook (?:cute|hot|pretty|good)\b.{0,10}\bprove it\b".to_string(),
        format!(r"\b(?:{PICTURES}|face|proof) or (?:ur|you're|youre|u r|ure|you are|your|u) (?:fake|lying|a liar|a bot|a catfish|cap)\b"),
        r"(?:사진|셀카)\s?(?:보내줘|보내|보여줘|줘)".to_string(),
        // Tagalog "pakita ng pic mo" (show your picture), Indonesian "kirim foto", "pap dong".
        r"\bpakita\b.{0,20}\b(?:pic|pics|picture|litrato|larawan|mukha|katawan|selfie|photo|video)\b|\b(?:pic|pics|picture|litrato|larawan|selfie) mo\b|\b(?:kirim|kirimin|kirimkan|minta|bagi)\b.{0,10}\b(?:foto|fotomu|fotonya|selfie|video|vidio|pap)\b|\bpap (?:dong|donk|dulu|kak|sayang|say)\b".to_string(),
        // Japanese: "send a photo", "show me a selfie".
        r"(?:写真|自撮り|画像|しゃしん)(?:を)?(?:送って|おくって|送れ|ちょうだい|見せて|みせて|ください|下さい)".to_string(),
        // "got any pics of u", "u have a pic?", "trade pics with me"
        format!(
            r"\b(?:send|show|post|want|need|got|have|get|see|trade|swap|share)\b.{{0,20}}\b(?:{PICTURES})\b.{{0,12}}\b(?:u|ur|urself|you|yourself|me)\b|\b(?:u|you) (?:got|have|has) (?:a |any |some )?(?:{PICTURES})\b|\b(?:trade|swap) (?:{PICTURES})\b"
        ),
    ])
});

/// Requests for sexual pictures: both a request for pictures and sexual solicitation.
static SEXUAL_PICTURE_REQUESTS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    rules(&[
        format!(r"\b(?:{NUDES})\b"),
        r"\bsend (?:me )?(?:something|smth|sth|sumn|sum|some|a|an|ur|your|u) (?:spicy|sexy|naughty|hot|dirty|lewd|nsfw)\b".to_string(),
        r"\b(?:sexy|naked|nude|dirty|spicy|lewd|hot|private|body|bikini|underwear|bra) (?:pic|pics|pix|photo|photos|selfie|selfies|vid|vids|video|videos|snaps)\b".to_string(),
        r"\bshow me (?:ur|your|yo) (?:body|boobs|tits|chest|butt|ass|bra|panties|underwear|bum)\b".to_string(),
        // Pictures of the body, or without clothes: "pics of ur abs", "a pic without ur shirt".
        format!(r"\b(?:{PICTURES}) (?:of|from) (?:ur|your) (?:abs|body|chest|legs|feet|butt|ass|boobs|bum)\b|\b(?:boobs|tits|ass|butt|feet|body) (?:pic|pics|pix|photo|photos|vid|vids)\b|\b(?:{PICTURES})\b.{{0,25}}\b(?:without|w/o|no|sans|sin|sem|ohne|bez) (?:ur |your |a |any |tu |ta |sua |deine? )?(?:shirt|top|clothes|ropa|roupa|vetements|kleidung|ubrania|bra|pants)\b|\b(?:{PICTURES}) de toi (?:toute |tout )?nue?s?\b|\bshow (?:u|you) mine if (?:u|you) show (?:me )?(?:urs|yours)\b|\bshow feet\b|\bpokaz (?:mi )?(?:sie|sie mi) bez ubrania\b|\bmanda nude\b|\bnudeski\b|(?:えっちな|エッチな|エロい)(?:写真|画像|自撮り)"),
        // "snap me ur sexiest pose", "show more skin"
        r"\b(?:snap|send|sned|snd|show) (?:me )?(?:ur |your |a |u )?(?:sexiest|sexy|hottest|naughtiest|naughty|spicy|spiciest) (?:pose|poses|side|angle|outfit)\b|\b(?:show|zeig|zeig mir|montre|muestra|mostra)\b.{0,8}\b(?:more skin|mehr haut|plus de peau|mas piel|mais pele|piu pelle)\b".to_string(),
        // Spanish "pack": a set of nudes.
        r"\b(?:manda|pasa|mandame|pasame|vendo) (?:el |tu |un )?pack\b".to_string(),
    ])
});

static SEXUAL: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    rules(&[
        r"\bsext(?:ing|s)?\b|\bdick ?pics?\b|\bonlyfans\b|\bnackt(?:bilder|bild|fotos|foto|pics|selfies?)\b".to_string(),
        r"\b(?:u|you|ya) (?:ever )?been kissed\b|\bhorny\s?\?|\bhorny (?:rn|now|af|asf|tonight|anyone)\b|\b(?:sex|seks|secks)\s?\?|\bsend ?(?:nudes|noods|nudez)\b|\b(?:wanna|want to|lets|let's|u wanna) (?:do )?(?:something |smth |sth |stuff |things )?(?:naughty|dirty|sexy|spicy|kinky)\b|\b(?:naughty|dirty|kinky|sexy) (?:stuff|things|games?|talk|chat|fun) (?:with|w/|w) (?:me|u|you)\b|\b(?:want to|wanna|gonna|let me|lemme) touch (?:u|you|ur|your)\b|\bget (?:naughty|dirty|freaky|frisky|kinky|intimate)\b|\bbe intimate\b|\b(?:sleep|hook up|hookup) with (?:u|you|me)\b|\bmit mir schlafen\b|\b(?:u|you) ever hooked up\b|\b(?:wanna|want to|lets|let's|can we|u wanna) (?:chat|talk|text|sext) (?:dirty|sexy)\b|\bhorny\s?,|\bsexy (?:girl|girls|boy|boys|teen|teens|gurl|grl)\b|\b(?:t'?es|tu es|t es) (?:trop |tellement |si )?(?:sexy|bonne|chaude)\b|\bmake (?:u|you) feel good\b|\bsecret (?:gf|bf|girlfriend|boyfriend)\b|\b(?:u|you) ever (?:made out|kissed anyone|had sex|done it)\b|\bi (?:can|could) teach (?:u|you)\b|\b(?:wanna|want to|gonna) kiss (?:u|you) (?:all over|everywhere)\b|\btrucs? coquins?\b|\b(?:what|wat) (?:color|colour|kind)\b.{0,10}(?:underwear|panties|bra|boxers)\b|\b(?:in|wearing) (?:ur|your) (?:bikini|underwear|bra|panties|swimsuit)\b|\bciplak\b|야한|\b(?:looking for|need|want|seeking|wanna be|be my) (?:a |an |my |ur |your )?sugar ?(?:daddy|daddies|baby|babe|mommy)\b".to_string(),
        r"\b(?:are|r) (?:you|u) (?:a )?virgin\b|\b(?:are|r) (?:you|u) (?:horny|wet|naked|hard)\b|\b(?:im|i'm|i am|got) (?:so )?horny\b".to_string(),
        r"\b(?:u|ur|u r|r u|you're|youre)\s(?:so |rly |really |very )?(?:sexy|hot|horny|naked|wet)\b|\b(?:u|you) look (?:so |rly |really )?(?:sexy|hot)\b|\b(?:u|you) (?:a )?virgin\s?\?".to_string(),
        r"\b(?:see|show|be|get|send) (?:me |u |you |urself |yourself )?naked\b|\b(?:wanna|want to|lets|let's|let us|can we|we could|do u|do you|u like to|you like to) (?:talk dirty|dirty talk)\b|\btalk(?:ing)? dirty (?:with|w/|w|2|to) (?:me|u|you)\b|\bmake me (?:hard|wet)\b|\b(?:bra|cup) size\b|\b(?:desnuda|desnudo|nackt|nackte|nago|naga|pelada|pelado)\b".to_string(),
        r"\b(?:take|took|tak) (?:ur|your|it|them) (?:clothes|shirt|top|bra|pants) off\b|\b(?:without|no) (?:ur |your |any )?clothes\b|\bstrip for me\b|\bsin ropa\b|\bsem roupa\b|\bohne kleidung\b|\bsans vetements\b|\bkinky (?:chat|fun|talk|pics|stuff|games?|rp)\b|\b(?:fun|play|naughty|something) on (?:cam|camera|webcam)\b|\btouch (?:yourself|urself)\b".to_string(),
        r"\b(?:wanna|want to|lets|let's|let us|wana) (?:have sex|hook ?up|fuck|bang|sext|make out|do it|do stuff|do things)\b|\bsex with (?:me|u|you)\b|\bwhat (?:r|are) (?:u|you) wearing\b".to_string(),
        r"\b(?:send|show|flash) (?:me )?(?:ur |your |yo )?(?:boobs|tits|pussy|dick|body|bum|butt)\b".to_string(),
        // Dirty talk and naughty things in Spanish, Italian, Portuguese, German, Dutch,
        // Polish, Turkish, Indonesian, Japanese.
        r"\b(?:hacer|fare|fazer) (?:cosas|cose|coisas) (?:sucias|sporche|safadas)\b|\bsafadeza\b|\b(?:versaute|versauten|geile|hete|sexy|niegrzeczne|niegrzecznie) (?:chat|chats|chatten|gesprache|praat|gesprekken|rozmowy|rozmowe|gadki)\b|\bsexten\b|\bseks sohbet\w*|\b(?:seninle|benimle) yatmak\b|\bkamu seksi\b|\bmau ml\b|エッチ|えっち".to_string(),
        // "kik me for naughty chat", "let's play a naughty game"
        r"\b(?:for|4|play) (?:a |some )?(?:naughty|dirty|kinky) (?:chat|chats|talk|fun|games?)\b".to_string(),
        // Talking dirty, asked of the reader: Spanish "hablar cochino", Italian "parliamo di
        // cose sporche"; "are you a virgin" in French, Spanish, Italian, Portuguese, German;
        // Russian in Latin letters, "hochesh seks" (do you want sex).
        r"\b(?:hablar|hablemos|hablamos|parlare|parliamo|parlons|falar|falamos|reden|praten)\b.{0,8}\b(?:cochino|cochinadas|sucio|guarro|guarradas|sporco|cose sporche|sconcezze|cochon|cochonneries|safado|sacanagem|putaria|schmutzig|versaut|vies|viezigheid)\b|\b(?:tu es|t'es|t es|es-tu|es tu|eres|sei|voce e|vc e|bist du)\s(?:encore |ainda |todavia |ancora |noch )?(?:vierge|virgen|vergine|virgem|jungfrau)\b|\b(?:hochesh|khochesh|xochesh)\b.{0,8}\b(?:seks|sex|seksa|sexa|virt)\b|\bseks po (?:perepiske|skaipu|telefonu)\b".to_string(),
    ])
});

impl TextDetector for SolicitationDetector {
    fn detect(&self, text: &Normalized, found: &mut Vec<Finding>) {
        for regex in IMAGE_REQUESTS.iter() {
            find_words(regex, text, TextSignalKind::ImageRequest, found);
        }
        for regex in SEXUAL.iter() {
            find_words(regex, text, TextSignalKind::Sexual, found);
        }
        for regex in SEXUAL_PICTURE_REQUESTS.iter() {
            let from = found.len();
            find_words(regex, text, TextSignalKind::ImageRequest, found);
            let sexual: Vec<Finding> = found[from..]
                .iter()
                .map(|f| Finding {
                    kind: TextSignalKind::Sexual,
                    ..f.clone()
                })
                .collect();
            found.extend(sexual);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assert_each_found, assert_found, assert_nothing_found, TextSignalKind};

    #[test]
    fn requests_for_pictures_including_disguised_ones() {
        assert_found(
            TextSignalKind::ImageRequest,
            &[
                "send pics",
                "s3nd me a selfie",
                "pic of u?",
                "show me what u look like",
                "can i get a pic",
                "wanna see u",
                "ｓｅｎｄ ｐｉｃｓ",
            ],
        );
    }

    #[test]
    fn sexual_solicitation_including_disguised_ones() {
        assert_found(
            TextSignalKind::Sexual,
            &[
                "send nudes",
                "n00dz?",
                "r u a virgin",
                "wanna sext",
                "s e x y pics",
            ],
        );
    }

    #[test]
    fn requests_in_more_words_and_languages() {
        assert_each_found(&[
            ("schick mir nacktbilder", TextSignalKind::Sexual),
            ("schick mir nacktbilder", TextSignalKind::ImageRequest),
            ("写真送って", TextSignalKind::ImageRequest),
            ("show me what ur wearing rn", TextSignalKind::ImageRequest),
            ("send me something spicy", TextSignalKind::Sexual),
            ("send me something spicy", TextSignalKind::ImageRequest),
            ("sexy pics", TextSignalKind::ImageRequest),
            ("📸 of u?", TextSignalKind::ImageRequest),
            ("snap me a pic", TextSignalKind::ImageRequest),
            ("mándame fotos sin ropa", TextSignalKind::Sexual),
            ("u ever been kissed?", TextSignalKind::Sexual),
            ("wanna talk dirty", TextSignalKind::Sexual),
            (
                "u ever made out with someone? i can teach u",
                TextSignalKind::Sexual,
            ),
            ("tu es trop sexy toi", TextSignalKind::Sexual),
            (
                "pakita mo naman yung selfie mo",
                TextSignalKind::ImageRequest,
            ),
            ("kirimin fotomu dong", TextSignalKind::ImageRequest),
            ("pap dulu kak", TextSignalKind::ImageRequest),
            ("send me ur face first", TextSignalKind::ImageRequest),
            // Every sending verb with every part of the reader, "me" or not.
            ("post ur face", TextSignalKind::ImageRequest),
            ("drop your selfie", TextSignalKind::ImageRequest),
            ("snap me ur outfit", TextSignalKind::ImageRequest),
            ("snd me yo fit", TextSignalKind::ImageRequest),
            ("post me ur room", TextSignalKind::ImageRequest),
            ("show ur body", TextSignalKind::ImageRequest),
            ("show me ur naughtiest angle", TextSignalKind::Sexual),
            ("zeig mal mehr haut", TextSignalKind::Sexual),
            ("add me 4 dirty chat", TextSignalKind::Sexual),
            ("vamos a hablar sucio", TextSignalKind::Sexual),
            ("parlare di cose sporche con te", TextSignalKind::Sexual),
            ("t'es encore vierge ?", TextSignalKind::Sexual),
            ("bist du noch jungfrau", TextSignalKind::Sexual),
            ("khochesh virt?", TextSignalKind::Sexual),
            ("pic or ur fake lol", TextSignalKind::ImageRequest),
            ("dm me if u wanna get naughty", TextSignalKind::Sexual),
            ("h0rny, wanna ch4t dirty?", TextSignalKind::Sexual),
            ("i want to sleep with u", TextSignalKind::Sexual),
            ("willst du mit mir schlafen?", TextSignalKind::Sexual),
            ("would love to see u", TextSignalKind::ImageRequest),
            ("bet u look cute, prove it", TextSignalKind::ImageRequest),
            ("u owe me a pic", TextSignalKind::ImageRequest),
            ("n u d e s", TextSignalKind::ImageRequest),
            (
                "stuur eens een foto van jezelf",
                TextSignalKind::ImageRequest,
            ),
            (
                "mandami una foto di te stasera",
                TextSignalKind::ImageRequest,
            ),
            ("post ur face in the comments", TextSignalKind::ImageRequest),
            ("selfie swap? u first", TextSignalKind::ImageRequest),
            ("snapchat me ur cutest pic", TextSignalKind::ImageRequest),
            ("send me pics of ur abs", TextSignalKind::Sexual),
            (
                "if ur cute send a pic without ur shirt",
                TextSignalKind::Sexual,
            ),
            ("envoie des photos de toi toute nue", TextSignalKind::Sexual),
            ("i'll show u mine if u show me urs", TextSignalKind::Sexual),
            (
                "quieres hacer cosas sucias conmigo?",
                TextSignalKind::Sexual,
            ),
            ("lust auf versaute chats?", TextSignalKind::Sexual),
            ("zin in een geile chat?", TextSignalKind::Sexual),
            ("bora conversar safadeza?", TextSignalKind::Sexual),
            ("エッチな話しよ？", TextSignalKind::Sexual),
            ("wyślij nudeski", TextSignalKind::Sexual),
        ]);
    }

    #[test]
    fn song_titles_that_only_look_like_requests() {
        assert_nothing_found(&[
            "Send Me On My Way",
            "Picture of You",
            "Show Me Love",
            "Like a Virgin",
            "Take It Off",
            "Photograph",
            "Kiss Me",
            "Video Killed the Radio Star",
            "Talk Dirty",
            "Dirty Talk",
            "Geile Zeit",
            "Post Malone – Circles",
            "photo booth swap meet",
        ]);
    }
}
