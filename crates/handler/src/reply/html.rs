//! HTML to text for reply extraction: block elements become line breaks, hidden elements are
//! dropped, entities decoded, and (with marks) the quote and signature elements of the common
//! clients become private-use marker lines that the text algorithm cuts at.

use super::{MARK, QUOTE_END_MARK, QUOTE_MARK, SIGNATURE_MARK, join_trimmed};

/// What the converter does with an element.
struct Tag<'a> {
    name: String,
    closing: bool,
    attrs: &'a str,
}

fn parse_tag(inner: &str) -> Tag<'_> {
    let inner = inner.trim_start();
    let (closing, rest) = match inner.strip_prefix('/') {
        Some(r) => (true, r.trim_start()),
        None => (false, inner),
    };
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    Tag {
        name: rest[..end].to_ascii_lowercase(),
        closing,
        attrs: &rest[end..],
    }
}

/// The value of attribute `name` (lower-cased), if present.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(k) = lower[from..].find(name) {
        let at = from + k;
        from = at + name.len();
        let before_ok = at == 0
            || lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || c == '"' || c == '\'');
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(value.to_owned());
    }
    None
}

/// Where a quote element starts, by its attributes.
fn is_quote_element(tag: &Tag<'_>) -> bool {
    let id = attr(tag.attrs, "id").unwrap_or_default();
    let class = attr(tag.attrs, "class").unwrap_or_default();
    if id.contains("divrplyfwdmsg")
        || id.contains("mail-editor-reference-message-container")
        || id.contains("olk_src_body_section")
        || class.contains("gmail_quote")
        || class.contains("moz-cite-prefix")
        || class.contains("moz-forward-container")
        || class.contains("yahoo_quoted")
    {
        return true;
    }
    if tag.name == "blockquote" && attr(tag.attrs, "type").as_deref() == Some("cite") {
        return true;
    }
    if tag.name == "div" {
        // Word's reply header: "border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt …".
        let style: String = attr(tag.attrs, "style")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if style.contains("border-top:solid#e1e1e1") || style.contains("border-top:solid#b5c4df") {
            return true;
        }
    }
    false
}

fn is_signature_element(tag: &Tag<'_>) -> bool {
    let id = attr(tag.attrs, "id").unwrap_or_default();
    let class = attr(tag.attrs, "class").unwrap_or_default();
    id == "signature"
        || id.ends_with("_signature")
        || id == "ms-outlook-mobile-signature"
        || id == "applemailsignature"
        || id == "linebreakatbeginningofsignature"
        || class.contains("gmail_signature")
        || class.contains("moz-signature")
}

const BLOCKS: &[&str] = &[
    "div",
    "p",
    "blockquote",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "pre",
    "center",
    "section",
    "article",
    "header",
    "footer",
    "dl",
    "dt",
    "dd",
    "address",
];

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["head", "style", "script", "title", "template", "xml"];

struct Writer {
    out: String,
    /// The current line has text.
    in_line: bool,
    /// The last thing written was a space (collapse runs).
    space: bool,
}

impl Writer {
    fn newline(&mut self) {
        if self.in_line {
            self.out.push('\n');
        }
        self.in_line = false;
        self.space = false;
    }

    fn br(&mut self) {
        self.out.push('\n');
        self.in_line = false;
        self.space = false;
    }

    /// Ends the line and leaves one blank line after it (a paragraph).
    fn paragraph(&mut self) {
        self.newline();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn mark(&mut self, mark: &str) {
        self.newline();
        self.out.push_str(mark);
        self.out.push('\n');
    }

    fn text(&mut self, s: &str, pre: bool) {
        for c in s.chars() {
            if pre {
                if c == '\n' {
                    self.br();
                } else if c != '\r' {
                    self.out.push(if c == '\u{a0}' { ' ' } else { c });
                    self.in_line = true;
                }
                continue;
            }
            if c.is_whitespace() && c != '\u{a0}' {
                if self.in_line && !self.space {
                    self.out.push(' ');
                    self.space = true;
                }
                continue;
            }
            self.out.push(if c == '\u{a0}' { ' ' } else { c });
            self.in_line = true;
            self.space = false;
        }
    }
}

/// Decodes the entities of a run of text.
fn decode_entities(run: &str) -> String {
    let mut out = String::with_capacity(run.len());
    let mut rest = run;
    while let Some(k) = rest.find('&') {
        out.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        let len = after
            .char_indices()
            .take(32)
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|(n, c)| (n, c == ';'));
        match len {
            Some((n, true)) if n > 0 => {
                // An ASCII token "&name;": mail-parser's table decodes it (or keeps it as is).
                let token = &rest[k..k + n + 2];
                mail_parser::decoders::html::add_html_token(&mut out, token.as_bytes(), false);
                rest = &after[n + 1..];
            }
            _ => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace(MARK, " ")
}

pub(super) fn convert(html: &str, marks: bool) -> String {
    let mut w = Writer {
        out: String::with_capacity(html.len() / 2),
        in_line: false,
        space: false,
    };
    let mut hidden: Option<String> = None;
    let mut pre = 0usize;
    let mut word_paragraph = false;
    // For each open blockquote: whether it is a quote element (its end is marked).
    let mut blockquotes: Vec<bool> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if hidden.is_none() {
                w.text(&decode_entities(rest), pre > 0);
            }
            break;
        };
        if lt > 0 && hidden.is_none() {
            w.text(&decode_entities(&rest[..lt]), pre > 0);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |k| &after[k + 3..]);
            continue;
        }
        // The end of the tag, not counting a '>' inside a quoted attribute.
        let mut quote = None;
        let mut end = None;
        for (k, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    end = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let tag = parse_tag(&rest[1..end]);
        rest = &rest[end + 1..];
        if let Some(h) = &hidden {
            if tag.closing && &tag.name == h {
                hidden = None;
            }
            continue;
        }
        if !tag.closing
            && HIDDEN.contains(&tag.name.as_str())
            && !tag.attrs.trim_end().ends_with('/')
        {
            hidden = Some(tag.name);
            continue;
        }
        let quote_element = !tag.closing && is_quote_element(&tag);
        if marks && !tag.closing {
            if quote_element {
                w.mark(QUOTE_MARK);
            } else if is_signature_element(&tag) {
                w.mark(SIGNATURE_MARK);
            }
        }
        if tag.name == "blockquote" {
            if !tag.closing {
                blockquotes.push(quote_element);
            } else if blockquotes.pop() == Some(true) && marks {
                w.mark(QUOTE_END_MARK);
            }
        }
        match tag.name.as_str() {
            "br" => w.br(),
            "p" if tag.closing => {
                if word_paragraph {
                    w.newline();
                } else {
                    w.paragraph();
                }
            }
            "p" => {
                word_paragraph = attr(tag.attrs, "class").is_some_and(|c| c.contains("mso"));
                w.newline();
            }
            "pre" => {
                if tag.closing {
                    pre = pre.saturating_sub(1);
                } else {
                    pre += 1;
                }
                w.newline();
            }
            "td" | "th" if tag.closing => w.text(" ", false),
            name if BLOCKS.contains(&name) => w.newline(),
            _ => {}
        }
    }
    join_trimmed(w.out.split('\n'))
}
