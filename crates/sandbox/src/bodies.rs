//! A message body in the form a client asked for: Graph's `Prefer: outlook.body-content-type`
//! and EWS's `ItemShape/BodyType` both ask for text or HTML, whatever the message holds.
//!
//! Exchange converts between the two; the sandbox does what is needed for a client to get the
//! kind it asked for: HTML to text drops the markup (tags, comments, `<head>`, `<script>` and
//! `<style>` content), turns block ends into line breaks and decodes character references;
//! text to HTML escapes the text into `<html><body><div>…</div></body></html>` with `<br>` line
//! breaks. The output is not byte for byte what Exchange writes.

use crate::store::MessageProps;

/// The kind of body a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// As stored: HTML when the message has an HTML part, else text (EWS `Best`, Graph's
    /// default).
    Best,
    /// HTML.
    Html,
    /// Plain text.
    Text,
}

/// The body in the kind asked for: `(is_html, content)`.
pub(crate) fn body(p: &MessageProps, kind: BodyKind) -> (bool, String) {
    match (kind, &p.body_html) {
        (BodyKind::Best | BodyKind::Html, Some(h)) => (true, h.clone()),
        (BodyKind::Best, None) => (false, p.body_text.clone()),
        (BodyKind::Html, None) => (true, text_to_html(&p.body_text)),
        (BodyKind::Text, Some(h)) => (false, html_to_text(h)),
        (BodyKind::Text, None) => (false, p.body_text.clone()),
    }
}

fn text_to_html(t: &str) -> String {
    let escaped = quick_xml::escape::escape(t.trim_end_matches(['\r', '\n']))
        .replace("\r\n", "\n")
        .replace('\n', "<br>\r\n");
    format!(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><div>{escaped}</div></body></html>"
    )
}

/// HTML to text: markup dropped, blocks ended with line breaks, references decoded.
fn html_to_text(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let mut rest = h;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_refs(&rest[..lt]));
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = rest[1..gt].trim().to_ascii_lowercase();
        rest = &rest[gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !tag.starts_with('/') && matches!(name.as_str(), "head" | "script" | "style") {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&close) {
                Some(i) => rest[i..].split_once('>').map_or("", |(_, r)| r),
                None => "",
            };
            continue;
        }
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
        ) && (name == "br" || tag.starts_with('/'))
        {
            out.push_str("\r\n");
        }
    }
    out.push_str(&decode_refs(rest));
    out.trim().to_string()
}

fn decode_refs(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..].find(';').filter(|i| *i <= 10).and_then(|i| {
            let name = &rest[1..=i];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, i + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text_and_text_becomes_html() {
        assert_eq!(
            html_to_text(
                "<html><head><style>p{}</style></head><body><p>Hello &amp; welcome</p><!-- x --><div>a<br>b&#33;</div></body></html>"
            ),
            "Hello & welcome\r\na\r\nb!"
        );
        let h = text_to_html("a < b\r\nc\r\n");
        assert!(h.contains("<div>a &lt; b<br>\r\nc</div>"), "{h}");
    }
}
