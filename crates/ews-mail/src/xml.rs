//! A small, defensive XML layer over quick-xml: a size-capped, DOCTYPE-refusing reader that
//! builds a namespace-agnostic element tree, and a string writer for request envelopes.
//!
//! Why a tree instead of quick-xml's serde support: EWS responses from real servers deviate from
//! the schema in small ways (missing optional children, empty values, unexpected prefixes), and
//! the operations only need a handful of fields. Reading a tree and picking fields by local name
//! tolerates all of that, while serde derives would reject whole responses for one odd field.
//! Elements are matched by *local name*: servers differ in the prefixes they use, and the EWS
//! element names the client reads are unambiguous within their parent.

use std::fmt;

use quick_xml::events::Event;

/// The largest response the client reads by default (64 MiB: a batch of MIME messages).
pub const DEFAULT_MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Deepest element nesting accepted; EWS responses are far shallower.
const MAX_DEPTH: usize = 128;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The document declares a DOCTYPE (or entities); refused to rule out entity expansion and
    /// external references.
    #[error("the XML declares a DOCTYPE or entities, which EWS never does; refused")]
    DocType,
    /// The document is larger than the configured cap.
    #[error("the XML response is larger than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Nested deeper than any EWS document.
    #[error("the XML nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    /// Not well-formed, or an unknown entity reference.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The document has no root element.
    #[error("the XML document is empty")]
    Empty,
}

/// One element: local name, attributes (by local name) and children; text is concatenated.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Attributes by local name, in document order (namespace declarations left out).
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Character data directly inside this element.
    pub text: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can hold MIME: show the shape, not the content.
        f.debug_struct("Element")
            .field("name", &self.name)
            .field("attrs", &self.attrs)
            .field("children", &self.children.len())
            .field("text_bytes", &self.text.len())
            .finish()
    }
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of local names from this element.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut cur = self;
        for n in names {
            cur = cur.child(n)?;
        }
        Some(cur)
    }

    /// An attribute's value by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of a child, if the child exists and is not empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The first descendant (depth first) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        for c in &self.children {
            if c.name == name {
                return Some(c);
            }
            if let Some(d) = c.find(name) {
                return Some(d);
            }
        }
        None
    }
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().position(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

fn start_element(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::Malformed(err.to_string()))?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let v = a
            .unescape_value()
            .map_err(|err| XmlError::Malformed(err.to_string()))?;
        el.attrs.push((local(key), v.into_owned()));
    }
    Ok(el)
}

/// Parses a whole document into its root element, refusing DOCTYPEs and documents over `limit`.
pub fn parse(doc: &[u8], limit: usize) -> Result<Element, XmlError> {
    if doc.len() > limit {
        return Err(XmlError::TooLarge { limit });
    }
    let mut reader = quick_xml::Reader::from_reader(doc);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match ev {
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(start_element(&e)?);
            }
            Event::Empty(e) => {
                let el = start_element(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(XmlError::Malformed("two root elements".into())),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(XmlError::Malformed("two root elements".into())),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    cur.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    let s = t.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                    cur.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| XmlError::Malformed(e.to_string()))?;
                let resolved: String = if let Some(c) = r
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?
                {
                    c.to_string()
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&name) {
                    s.to_string()
                } else {
                    return Err(XmlError::Malformed(format!("unknown entity &{name};")));
                };
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or(XmlError::Empty)
}

/// Writes XML text: elements with escaped attributes and text. The caller keeps tags
/// balanced; [`Writer::finish`] checks.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    open: Vec<&'static str>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&quick_xml::escape::escape(*v));
            self.out.push('"');
        }
    }

    /// Opens `<name attrs…>`.
    pub fn start(&mut self, name: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push('>');
        self.open.push(name);
        self
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    /// Writes `<name attrs…/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str("/>");
        self
    }

    /// Writes `<name>text</name>`.
    pub fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&quick_xml::escape::escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Appends raw, already well-formed markup.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// The text written, closing any element left open.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_attributes_entities_and_cdata() {
        let doc = br#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body><m:A m:Id="1&amp;2" xmlns:m="y">a &lt;b&gt; &#65;<![CDATA[<c>]]></m:A><B/></s:Body></s:Envelope>"#;
        let root = parse(doc, 1 << 20).unwrap();
        assert_eq!(root.name, "Envelope");
        let a = root.path(&["Body", "A"]).unwrap();
        assert_eq!(a.attr("Id"), Some("1&2"));
        assert_eq!(a.text, "a <b> A<c>");
        assert!(root.path(&["Body", "B"]).is_some());
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let doc = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>"#;
        assert_eq!(parse(doc, 1 << 20), Err(XmlError::DocType));
        // An undeclared entity without a DOCTYPE is refused too.
        assert!(matches!(
            parse(b"<x>&e;</x>", 1 << 20),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn caps_size_and_depth() {
        assert_eq!(
            parse(b"<x>0123456789</x>", 8),
            Err(XmlError::TooLarge { limit: 8 })
        );
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes(), 1 << 20), Err(XmlError::TooDeep));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [&b""[..], b"<a>", b"<a></b>", b"<a/><b/>", b"</a>"] {
            assert!(
                parse(bad, 1 << 20).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn writer_escapes_and_closes() {
        let mut w = Writer::new();
        w.start("t:A", &[("Id", "a\"<&")])
            .text_element("t:B", "x<y&z");
        w.empty("t:C", &[]);
        let s = w.finish();
        assert_eq!(
            s,
            "<t:A Id=\"a&quot;&lt;&amp;\"><t:B>x&lt;y&amp;z</t:B><t:C/></t:A>"
        );
        let back = parse(s.as_bytes(), 1 << 20).unwrap();
        assert_eq!(back.attr("Id"), Some("a\"<&"));
        assert_eq!(back.child_text("B"), Some("x<y&z"));
    }
}
