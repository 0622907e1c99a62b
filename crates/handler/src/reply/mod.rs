//! The new text of a reply: without the quoted history below it and without the signature.
//!
//! A helpdesk that turns a customer's reply into a comment on a ticket wants what the customer
//! wrote, not the whole thread again. [`extract_reply`] (plain text) and [`extract_reply_html`]
//! (HTML) find where the quoted history starts and where the signature is, in the shapes the
//! common clients write, in the languages they ship in:
//!
//! - Outlook (desktop, on the web, mobile): the header block (`From: … Sent: … To: …
//!   Subject: …`, `Von: … Gesendet: …`, `De : … Envoyé : …`, `差出人: … 送信日時: …` and the
//!   other languages), the underscore line above it, `-----Original Message-----` and its
//!   translations; in HTML, `divRplyFwdMsg`, the reference-message container and Word's
//!   border-top division;
//! - Gmail, Apple Mail, Thunderbird: the attribution line (`On … wrote:`, `Am … schrieb …:`,
//!   `Le … a écrit :`, `El … escribió:`, `Il giorno … ha scritto:`, `Op … schreef …:`,
//!   `Em … escreveu:`, …), also when it wraps onto a second line, and `>` quoting; in HTML,
//!   `gmail_quote`, `moz-cite-prefix` and `<blockquote type="cite">`;
//! - forwards (`---------- Forwarded message ---------`, `Begin forwarded message:`,
//!   `-------- Forwarded Message --------` and translations): the note above is the new text;
//! - signatures: the `-- ` line, the mobile clients' `Sent from my iPhone` / `Get Outlook for
//!   iOS` lines and their translations, and the signature elements of the HTML (Gmail's,
//!   Thunderbird's, Outlook's).
//!
//! A reply written below the quote gives the text below it. A message without a quote is all new
//! text (less its signature). A closing and a typed name ("Thanks,\nAnn") are part of the new
//! text: only what a client marks as a signature is taken out.
//!
//! ```
//! let reply = handler::extract_reply(
//!     "Yes, Thursday works.\n\nSent from my iPhone\n\n\
//!      On 3 Dec 2024, at 10:15, Contoso Helpdesk <helpdesk@contoso.example> wrote:\n\n\
//!      > Would Thursday suit you?\n",
//! );
//! assert_eq!(reply.new_text, "Yes, Thursday works.");
//! assert_eq!(reply.signature.as_deref(), Some("Sent from my iPhone"));
//! assert_eq!(reply.quote_start, Some(handler::QuoteStart::Attribution));
//! ```
//!
//! `cargo xtask bench --replies` measures it on the labelled corpus in
//! `crates/handler/testdata/replies/` side by side with quotequail and mail-parser-reply
//! (BENCHMARKS.md).

use crate::MessageContent;

/// What [`extract_reply`] found in a message's text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// What the sender wrote: the text above the quoted history (or below it, when they answered
    /// below the quote), without the signature; lines trimmed at the end, no leading or trailing
    /// blank lines. Empty only when the sender wrote nothing of their own (a bare forward).
    pub new_text: String,
    /// The signature taken off the new text, if one was found (without its `-- ` line).
    pub signature: Option<String>,
    /// The quoted history (or forwarded message), from its first line on, if there is one.
    pub quoted: Option<String>,
    /// What the quoted history starts with.
    pub quote_start: Option<QuoteStart>,
}

/// The mark that starts the quoted history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteStart {
    /// An attribution line: `On … wrote:` and its translations.
    Attribution,
    /// Outlook's header block (`From: … Sent: …`), or the underscore line above it.
    HeaderBlock,
    /// `-----Original Message-----` and its translations.
    OriginalMessage,
    /// A forward marker: `---------- Forwarded message ---------`, `Begin forwarded message:`.
    Forward,
    /// Lines quoted with `>`.
    Quoted,
    /// A quote element of the HTML (Outlook's `divRplyFwdMsg`, Gmail's `gmail_quote`,
    /// Thunderbird's `moz-cite-prefix`, `<blockquote type="cite">`).
    HtmlMarker,
}

impl MessageContent {
    /// The new text of this message as a reply (see [`extract_reply`]): from the HTML when the
    /// message has HTML (its quote and signature elements are the surest marks), else from the
    /// text. `None` when the message has neither.
    pub fn reply(&self) -> Option<Reply> {
        if let Some(html) = &self.html {
            return Some(extract_reply_html(html));
        }
        self.text.as_deref().map(extract_reply)
    }
}

/// Marks the HTML converter leaves for the extractor: a line holding only one of them.
const MARK: char = '\u{E000}';
const QUOTE_MARK: &str = "\u{E000}q";
const SIGNATURE_MARK: &str = "\u{E000}s";
/// The end of a quote element (a cited `blockquote`): an answer below it is the new text.
const QUOTE_END_MARK: &str = "\u{E000}e";

/// The new text of a plain-text reply, its signature and its quoted history.
pub fn extract_reply(text: &str) -> Reply {
    // Marks are the HTML converter's; a plain text cannot forge them.
    let text: String = text
        .replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\r' => '\n',
            MARK => ' ',
            c => c,
        })
        .collect();
    extract(&text)
}

/// The new text of an HTML reply: the quote and signature elements of Outlook, Gmail, Apple
/// Mail and Thunderbird mark where the history and the signature start; the HTML is then made
/// into text ([`html_to_text`]) and read as [`extract_reply`] reads plain text.
pub fn extract_reply_html(html: &str) -> Reply {
    extract(&convert(html, true))
}

/// HTML made into text for reading: blocks (`div`, `p`, `br`, list items, table rows) become
/// lines, paragraphs other than Word's are set apart by a blank line, `pre` keeps its line
/// breaks, entities are decoded, `head`, `style` and `script` are left out.
pub fn html_to_text(html: &str) -> String {
    convert(html, false)
}

/// How many quote blocks with nothing above them are looked past for an answer below (an
/// answer under the second or third quote of an interleaved reply): more would let a hostile
/// message of many tiny quotes cost quadratic time.
const MAX_QUOTES_PASSED: u8 = 4;

fn extract(text: &str) -> Reply {
    let lines: Vec<&str> = text.split('\n').collect();
    extract_lines(&lines, MAX_QUOTES_PASSED)
}

fn extract_lines(lines: &[&str], quotes_left: u8) -> Reply {
    let Some((cut, kind)) = quote_start(lines) else {
        let (new_text, signature) = split_signature(lines);
        return Reply {
            new_text,
            signature,
            quoted: None,
            quote_start: None,
        };
    };
    let above = &lines[..cut];
    let (mut new_text, mut signature) = split_signature(above);
    let mut quoted_end = lines.len();
    if new_text.is_empty() && signature.is_none() && quotes_left > 0 {
        // Nothing above the quote: the answer may be below it.
        let end = match kind {
            QuoteStart::Attribution | QuoteStart::Quoted => end_of_quoted(lines, cut),
            QuoteStart::HtmlMarker => end_of_quote_element(lines, cut),
            _ => None,
        };
        if let Some(end) = end {
            let below = extract_lines(&lines[end..], quotes_left - 1);
            new_text = below.new_text;
            signature = below.signature;
            quoted_end = end;
        }
    }
    let quoted = join_trimmed(
        lines[cut..quoted_end]
            .iter()
            .copied()
            .filter(|l| !is_mark(l)),
    );
    Reply {
        new_text,
        signature,
        quoted: (!quoted.is_empty()).then_some(quoted),
        quote_start: Some(kind),
    }
}

/// Where the answer below a quote starts: the first line after the quoted block (attribution
/// and `>` lines) that is neither quoted nor blank.
fn end_of_quoted(lines: &[&str], cut: usize) -> Option<usize> {
    let mut i = cut;
    // The attribution itself, up to three lines when it wraps.
    if !is_quoted(lines[i]) {
        i += attribution_len(lines, i).unwrap_or(1);
    }
    let mut saw_quote = false;
    while i < lines.len() {
        let l = lines[i];
        if is_quoted(l) {
            saw_quote = true;
        } else if !clean(l).is_empty() {
            return saw_quote.then_some(i);
        }
        i += 1;
    }
    None
}

/// Where the answer below an HTML quote starts: after the end of the outermost cited
/// `blockquote` that follows the quote mark, when text follows it.
fn end_of_quote_element(lines: &[&str], cut: usize) -> Option<usize> {
    let end = (cut..lines.len())
        .rev()
        .find(|&j| lines[j].trim() == QUOTE_END_MARK)?;
    let after = end + 1;
    let has_text = lines[after..]
        .iter()
        .any(|l| !is_mark(l) && !clean(l).is_empty());
    has_text.then_some(after)
}

fn is_mark(line: &str) -> bool {
    line.trim().starts_with(MARK)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('>')
}

/// A line with the odd spaces made plain and trimmed.
fn clean(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\u{a0}' | '\u{202f}' | '\u{2007}' | '\t' | '\u{3000}' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The first line of the quoted history and what it is.
fn quote_start(lines: &[&str]) -> Option<(usize, QuoteStart)> {
    for i in 0..lines.len() {
        let raw = lines[i];
        if raw.trim() == QUOTE_MARK {
            return Some((i, QuoteStart::HtmlMarker));
        }
        let l = clean(raw);
        if l.is_empty() || is_mark(raw) {
            continue;
        }
        if let Some(kind) = dashed_marker(&l) {
            return Some((i, kind));
        }
        if is_forward_line(&l) {
            return Some((i, QuoteStart::Forward));
        }
        if l.len() >= 10
            && l.chars().all(|c| c == '_')
            && header_block_at(lines, next_text(lines, i + 1))
        {
            return Some((i, QuoteStart::HeaderBlock));
        }
        if header_block_at(lines, Some(i)) {
            return Some((i, QuoteStart::HeaderBlock));
        }
        if attribution_len(lines, i).is_some() {
            return Some((i, QuoteStart::Attribution));
        }
        if is_quoted(raw) {
            // An attribution line without a date ("Ann wrote:") right above the quote.
            if let Some(p) = prev_text(lines, i)
                && i - p <= 2
                && ends_like_attribution(&clean(lines[p]).to_lowercase())
            {
                return Some((p, QuoteStart::Attribution));
            }
            return Some((i, QuoteStart::Quoted));
        }
    }
    None
}

fn next_text(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&j| !clean(lines[j]).is_empty())
}

fn prev_text(lines: &[&str], before: usize) -> Option<usize> {
    (0..before).rev().find(|&j| !clean(lines[j]).is_empty())
}

/// `-----Original Message-----`, `---------- Forwarded message ---------` and the like: text
/// between runs of at least three dashes (or `=`/`_` in a few clients).
fn dashed_marker(l: &str) -> Option<QuoteStart> {
    let inner = l.trim_start_matches(['-', '=']);
    let lead = l.len() - inner.len();
    let core = inner.trim_end_matches(['-', '=']);
    let trail = inner.len() - core.len();
    let core = core.trim();
    if lead < 3 || trail < 3 || core.is_empty() || core.chars().count() > 60 {
        return None;
    }
    let lower = core.to_lowercase();
    // A customer's own "--- Steps to reproduce ---" is text: only the clients' words count.
    const ORIGINAL: &[&str] = &[
        "original message",
        "original-nachricht",
        "ursprüngliche nachricht",
        "message d'origine",
        "message d\u{2019}origine",
        "mensaje original",
        "messaggio originale",
        "oorspronkelijk bericht",
        "origineel bericht",
        "mensagem original",
        "ursprungligt meddelande",
        "oryginalna wiadomość",
        "wiadomość oryginalna",
        "原始邮件",
        "元のメッセージ",
        "original meddelelse",
        "opprinnelig melding",
        "alkuperäinen viesti",
        "původní zpráva",
        "исходное сообщение",
        "eredeti üzenet",
        "reply message",
    ];
    const FORWARD: &[&str] = &[
        "forward",
        "weitergeleitet",
        "transféré",
        "transfere",
        "reenviado",
        "inoltrat",
        "doorgestuurd",
        "encaminhada",
        "reencaminhada",
        "vidarebefordra",
        "przekazan",
        "転送",
        "转发",
        "videresend",
        "välitetty",
        "přeposlan",
        "пересыла",
    ];
    if FORWARD.iter().any(|w| lower.contains(w)) {
        Some(QuoteStart::Forward)
    } else if ORIGINAL.iter().any(|w| lower.contains(w)) {
        Some(QuoteStart::OriginalMessage)
    } else {
        None
    }
}

/// Apple Mail's `Begin forwarded message:` and its translations.
fn is_forward_line(l: &str) -> bool {
    let lower = l
        .to_lowercase()
        .replace(['：', '\u{a0}'], ":")
        .replace(" :", ":");
    const LINES: &[&str] = &[
        "begin forwarded message:",
        "anfang der weitergeleiteten nachricht:",
        "anfang der weitergeleiteten e-mail:",
        "début du message réexpédié:",
        "début du message transféré:",
        "inicio del mensaje reenviado:",
        "inizio messaggio inoltrato:",
        "begin doorgestuurd bericht:",
        "início da mensagem encaminhada:",
        "início da mensagem reencaminhada:",
        "転送されたメッセージ:",
        "vidarebefordrat brev:",
        "początek przekazywanej wiadomości:",
        "转发的邮件:",
        "videresendt meddelelse:",
    ];
    LINES.contains(&lower.as_str())
}

/// The kind of header a line of a header block starts with, if it does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    From,
    Date,
    To,
    Subject,
    Cc,
}

fn header_label(line: &str) -> Option<Header> {
    let l = clean(line);
    let l = l.trim_start_matches(['*', ' ']);
    let colon = l.find([':', '：'])?;
    let label = l[..colon]
        .trim_end_matches(['*', ' ', '\u{a0}'])
        .trim()
        .to_lowercase();
    if label.is_empty() || label.chars().count() > 20 {
        return None;
    }
    const FROM: &[&str] = &[
        "from",
        "von",
        "de",
        "da",
        "van",
        "差出人",
        "发件人",
        "寄件者",
        "från",
        "od",
        "fra",
        "mittente",
        "lähettäjä",
        "от",
        "kimden",
        "feladó",
        "보낸 사람",
    ];
    const DATE: &[&str] = &[
        "sent",
        "date",
        "gesendet",
        "datum",
        "envoyé",
        "enviado",
        "enviado el",
        "enviada",
        "enviada em",
        "fecha",
        "inviato",
        "data",
        "verzonden",
        "送信日時",
        "日付",
        "发送时间",
        "日期",
        "寄件日期",
        "skickat",
        "wysłano",
        "sendt",
        "lähetetty",
        "отправлено",
        "gönderildi",
        "날짜",
        "보낸 날짜",
    ];
    const TO: &[&str] = &[
        "to",
        "an",
        "à",
        "a",
        "para",
        "aan",
        "宛先",
        "收件人",
        "till",
        "do",
        "til",
        "pour",
        "vastaanottaja",
        "кому",
        "kime",
        "받는 사람",
    ];
    const SUBJECT: &[&str] = &[
        "subject",
        "betreff",
        "objet",
        "sujet",
        "asunto",
        "oggetto",
        "onderwerp",
        "assunto",
        "件名",
        "主题",
        "主旨",
        "ämne",
        "temat",
        "emne",
        "aihe",
        "тема",
        "konu",
        "제목",
    ];
    const CC: &[&str] = &[
        "cc", "kopie", "kopia", "dw", "抄送", "副本", "cco", "bcc", "kopio", "참조",
    ];
    let is = |set: &[&str]| set.contains(&label.as_str());
    if is(FROM) {
        Some(Header::From)
    } else if is(DATE) {
        Some(Header::Date)
    } else if is(TO) {
        Some(Header::To)
    } else if is(SUBJECT) {
        Some(Header::Subject)
    } else if is(CC) {
        Some(Header::Cc)
    } else {
        None
    }
}

/// A header block starts at line `at`: at least two header lines in a row, one of them the
/// sender and another the date or subject (Outlook: From/Sent/To/Subject; Apple's and
/// Thunderbird's forwards: From/Subject/Date/To in some order).
fn header_block_at(lines: &[&str], at: Option<usize>) -> bool {
    let Some(at) = at else { return false };
    let mut kinds = Vec::new();
    let mut from_has_address = false;
    for l in &lines[at..] {
        match header_label(l) {
            Some(h) => {
                from_has_address |= h == Header::From && (l.contains('@') || l.contains("mailto:"));
                kinds.push(h);
            }
            None => break,
        }
        if kinds.len() >= 6 {
            break;
        }
    }
    let has = |h: Header| kinds.contains(&h);
    // Without an address, only a whole block (sender, date and subject) counts: "Da: Milano /
    // A: Roma / Data: 3 dicembre" is a customer's itinerary, not a quote.
    kinds.len() >= 2
        && has(Header::From)
        && (has(Header::Date) || has(Header::Subject))
        && (kinds[0] == Header::From || kinds.len() >= 3)
        && (from_has_address || (has(Header::Date) && has(Header::Subject) && kinds.len() >= 3))
}

/// Suffixes of attribution lines (lower case).
const WROTE: &[&str] = &[
    "wrote:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
    "schreef:",
    "geschreven:",
    "escreveu:",
    "のメール:",
    "書きました:",
    "napisał(a):",
    "napisała:",
    "napisał:",
    "pisze:",
    "写道:",
    "写道：",
    "skrev:",
    "kirjoitti:",
    "napsal(a):",
    "написал(а):",
    "написал:",
    "yazdı:",
    "írta:",
    "작성:",
];

fn ends_like_attribution(lower: &str) -> bool {
    let l = lower.replace('\u{a0}', " ");
    WROTE.iter().any(|w| l.ends_with(w))
}

/// Whether `l` (cleaned) is a whole attribution line.
fn is_attribution(l: &str) -> bool {
    let chars = l.chars().count();
    if !(8..=320).contains(&chars) || !l.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let lower = l.to_lowercase();
    if !(lower.ends_with(':') || lower.ends_with('：')) {
        return false;
    }
    if ends_like_attribution(&lower) {
        // "My colleague Tom (ext. 4411) wrote:" is text; the clients' English attribution
        // starts with "On" or names an address.
        return !lower.ends_with("wrote:") || lower.starts_with("on ") || lower.contains('@');
    }
    // "Am 03.12.2024 um 10:15 schrieb Ann <ann@…>:", "Op … schreef Ann <…>:",
    // "Den … skrev Ann <…>:".
    let starts = |p: &[&str]| p.iter().any(|s| lower.starts_with(s));
    if [" schrieb ", " schreef ", " skrev ", " napisał"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return true;
    }
    // Gmail in Japanese: "2024年12月3日(火) 10:15 Ann <ann@…>:".
    if lower.contains('年') && lower.contains('@') && lower.ends_with(">:") {
        return true;
    }
    // Apple Mail in Polish: "Wiadomość napisana przez Ann <…> w dniu … o godz. 10:15:".
    starts(&["wiadomość napisana przez"])
}

/// How many lines (1 to 3) the attribution starting at `i` takes, if one does.
fn attribution_len(lines: &[&str], i: usize) -> Option<usize> {
    let first = clean(lines[i]);
    if first.is_empty() || is_quoted(lines[i]) {
        return None;
    }
    if is_attribution(&first) {
        return Some(1);
    }
    if first.len() > 4 * 320 {
        return None;
    }
    // Wrapped: the first part has no end of sentence, and what follows is not an attribution
    // of its own.
    if first.ends_with(['.', '!', '?', ':']) {
        return None;
    }
    let mut joined = first;
    for extra in 1..3 {
        let next = clean(lines.get(i + extra)?);
        if next.is_empty() || is_attribution(&next) || is_quoted(lines[i + extra]) {
            return None;
        }
        joined.push(' ');
        joined.push_str(&next);
        if is_attribution(&joined) {
            return Some(extra + 1);
        }
    }
    None
}

/// The new text and signature of the lines above the quote.
fn split_signature(lines: &[&str]) -> (String, Option<String>) {
    let last_text: Vec<usize> = (0..lines.len())
        .filter(|&j| !clean(lines[j]).is_empty() && !is_mark(lines[j]))
        .collect();
    let mut cut = None;
    for (j, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t == SIGNATURE_MARK || t == "--" {
            cut = Some(j);
            break;
        }
        // A mobile signature is one of the last three lines of text.
        if last_text.iter().rev().take(3).any(|&k| k == j) && is_mobile_signature(&clean(l)) {
            cut = Some(j);
            break;
        }
    }
    let Some(cut) = cut else {
        return (
            join_trimmed(lines.iter().copied().filter(|l| !is_mark(l))),
            None,
        );
    };
    let new_text = join_trimmed(lines[..cut].iter().copied().filter(|l| !is_mark(l)));
    let signature = join_trimmed(
        lines[cut..]
            .iter()
            .copied()
            .filter(|l| !is_mark(l) && l.trim() != "--"),
    );
    (new_text, (!signature.is_empty()).then_some(signature))
}

/// "Sent from my iPhone", "Get Outlook for iOS" and their translations.
fn is_mobile_signature(l: &str) -> bool {
    // "Get Outlook for iOS<https://aka.ms/o0ukef>": the link is not part of the words.
    let l = match l.find('<') {
        Some(k) if l.ends_with('>') => l[..k].trim(),
        _ => l,
    };
    if l.chars().count() > 60 {
        return false;
    }
    // Samsung's end with a full stop.
    let lower = l.trim_end_matches('.').to_lowercase();
    const PREFIXES: &[&str] = &[
        "sent from my ",
        "sent from outlook",
        "sent from mail for",
        "sent from yahoo mail",
        "sent with ",
        "get outlook for ",
        "gesendet von ",
        "envoyé de mon ",
        "envoyé depuis ",
        "envoyé à partir de ",
        "télécharger outlook pour ",
        "enviado desde mi ",
        "enviado desde outlook",
        "obtener outlook para ",
        "enviado do meu ",
        "enviado de meu ",
        "enviado do outlook",
        "obter o outlook para ",
        "inviato da ",
        "inviato dal mio ",
        "scarica outlook per ",
        "verstuurd vanaf mijn ",
        "verzonden vanaf mijn ",
        "verzonden met ",
        "skickat från min ",
        "skickat från outlook",
        "skaffa outlook för ",
        "wysłane z ",
        "pobierz aplikację outlook",
        "sendt fra min ",
        "发自我的",
    ];
    const PAIRS: &[(&str, &str)] = &[
        ("von meinem ", " gesendet"),
        ("outlook für ", " beziehen"),
        ("outlook voor ", " downloaden"),
        ("", "から送信"),
        ("", "outlook を入手"),
        ("获取 ", " outlook"),
    ];
    PREFIXES.iter().any(|p| lower.starts_with(p))
        || PAIRS
            .iter()
            .any(|(p, s)| lower.starts_with(p) && lower.ends_with(s))
}

/// Lines trimmed at the end, without leading or trailing blank lines, joined with `\n`.
fn join_trimmed<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let lines: Vec<&str> = lines.map(|l| l.trim_end()).collect();
    let Some(first) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return String::new();
    };
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(first);
    lines[first..=last].join("\n")
}

mod html;
use html::convert;

#[cfg(test)]
mod tests;
