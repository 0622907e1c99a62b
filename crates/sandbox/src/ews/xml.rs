//! A small, defensive XML layer over quick-xml for the EWS endpoint: a size-capped,
//! DOCTYPE-refusing reader that builds a namespace-agnostic element tree, and a string writer.
//!
//! Deliberately independent of the `ews-mail` client crate (same approach, separate code) so the
//! client is not tested against its own parser.
//!
//! Why a tree instead of quick-xml's serde support: EWS requests from real clients from real servers deviate from
//! the schema in small ways (missing optional children, empty values, unexpected prefixes), and
//! the endpoint only reads a handful of fields. Reading a tree and picking fields by local name
//! tolerates all of that, while serde derives would reject whole responses for one odd field.
//! Elements are matched by *local name*: servers differ in the prefixes they use, and the EWS
//! element names the client reads are unambiguous within their parent.

use std::fmt;

use quick_xml::events::Event;

/// The largest request body read (64 MiB).
pub(crate) const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Deepest element nesting accepted; EWS requests are far shallower.
const MAX_DEPTH: usize = 128;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
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
pub(crate) struct Element {
    /// Local name (prefix removed).
    pub(crate) name: String,
    /// Attributes by local name, in document order (namespace declarations left out).
    pub(crate) attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub(crate) children: Vec<Element>,
    /// Character data directly inside this element.
    pub(crate) text: String,
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
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of local names from this element.
    pub(crate) fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut cur = self;
        for n in names {
            cur = cur.child(n)?;
        }
        Some(cur)
    }

    /// An attribute's value by local name.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of a child, if the child exists and is not empty.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
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
pub(crate) fn parse(doc: &[u8], limit: usize) -> Result<Element, XmlError> {
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
pub(crate) struct Writer {
    out: String,
    open: Vec<String>,
}

impl Writer {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `bytes` of output (a response carrying MIME is megabytes:
    /// growing by doubling copied it several times).
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            out: String::with_capacity(bytes),
            open: Vec::new(),
        }
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
    pub(crate) fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push('>');
        self.open.push(name.to_string());
        self
    }

    /// Closes the innermost open element.
    pub(crate) fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
        self
    }

    /// Writes `<name attrs…/>`.
    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str("/>");
        self
    }

    /// Writes `<name>text</name>`.
    pub(crate) fn text_element(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&quick_xml::escape::escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Writes `<name>base64 of data</name>`, encoding straight into the output: base64 needs no
    /// escaping, and MIME content is the bulk of a GetItem answer.
    pub(crate) fn base64_element(&mut self, name: &str, data: &[u8]) -> &mut Self {
        use base64::Engine as _;
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Appends raw, already well-formed markup.
    pub(crate) fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// The text written, closing any element left open.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}
