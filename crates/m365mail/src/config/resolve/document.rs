//! Where a value stands in the configuration's text: toml's document keeps the span of every
//! value, and a key's path through it gives the line a problem is reported at.

use toml::de::{DeTable, DeValue};

/// One step of a key's path in the document.
#[derive(Debug, Clone, Copy)]
pub(super) enum At<'k> {
    /// A key of a table.
    Key(&'k str),
    /// An element of an array (of tables).
    Index(usize),
}

/// The parsed document, for the lines of its values.
pub(super) struct Document<'t> {
    pub(super) text: &'t str,
    pub(super) root: DeTable<'t>,
}

impl Document<'_> {
    /// The line of the value at `path`; when the rest of the path is not written (a default),
    /// the line of the last table on the way (an `[[apps]]` header, say).
    pub(super) fn line(&self, path: &[At<'_>]) -> Option<usize> {
        let mut start = None;
        let mut here: Option<&DeValue<'_>> = None;
        for step in path {
            let next = match (step, here) {
                (At::Key(k), None) => lookup(&self.root, k),
                (At::Key(k), Some(DeValue::Table(t))) => lookup(t, k),
                (At::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            start = Some(next.span().start);
            here = Some(next.get_ref());
        }
        let before = self.text.get(..start?)?;
        Some(before.matches('\n').count() + 1)
    }
}

fn lookup<'a, 't>(table: &'a DeTable<'t>, key: &str) -> Option<&'a toml::Spanned<DeValue<'t>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}
