//! Small RFC 822 test messages.

/// A text message, its header fields in the order given, CRLF line ends.
#[derive(Debug, Clone, Default)]
pub struct Mime {
    fields: Vec<(String, String)>,
    body: String,
}

impl Mime {
    /// A message whose `Message-ID` is `<id>`.
    pub fn new(id: &str) -> Self {
        Mime::default().header("Message-ID", format!("<{id}>"))
    }

    /// With a `From`.
    pub fn from(self, from: &str) -> Self {
        self.header("From", from)
    }

    /// With a `To`.
    pub fn to(self, to: &str) -> Self {
        self.header("To", to)
    }

    /// With a `Subject`.
    pub fn subject(self, subject: &str) -> Self {
        self.header("Subject", subject)
    }

    /// With this header field too.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    /// With this body (a CRLF is added after it).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// The message as text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.push_str(&self.body);
        s.push_str("\r\n");
        s
    }

    /// The message as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.text().into_bytes()
    }
}

/// A message from `from` to `to` with `subject` and the body `x`, ready to send (its envelope
/// the same addresses).
pub fn outgoing(from: &str, to: &str, subject: &str) -> connector::OutgoingMessage {
    connector::OutgoingMessage::raw(
        connector::Envelope::new(from, vec![to.to_owned()]),
        format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nx\r\n").into_bytes(),
    )
}

/// `text` with whitespace that does not count for comparing mail text taken out: runs of
/// spaces within a line, the line ends' kind, runs of blank lines, leading and trailing blank
/// lines. The reply-text test and the reply bench compare extracted text this way.
pub fn normalise(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_count() {
        assert_eq!(normalise("\r\n\n a  b \t\r\n\n\n c\n\n"), "a b\n\nc");
    }
}
