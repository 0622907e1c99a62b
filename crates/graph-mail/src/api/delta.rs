//! Graph delta queries on a folder's messages, and their pages.

use super::*;

/// Messages per delta page, asked for with `Prefer: odata.maxpagesize` (Graph's default is 10).
pub const DELTA_PAGE: usize = 100;

/// The `Prefer` value asking for [`DELTA_PAGE`] messages per delta page.
pub(super) const DELTA_PREFER: &str = "odata.maxpagesize=100";

fn prefer_page_size(r: OpRequest) -> OpRequest {
    // Appended: the executor adds its own `Prefer: IdType="ImmutableId"` beside it.
    r.with_header(
        http::header::HeaderName::from_static("prefer"),
        http::HeaderValue::from_static(DELTA_PREFER),
    )
}

/// `GET …/mailFolders/{folder}/messages/delta` with the listing's `$select` and
/// `Prefer: odata.maxpagesize=`[`DELTA_PAGE`]: the first call of a delta round (later calls
/// follow the links with [`FollowDeltaLink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delta {
    /// A well-known name (`inbox`) or a folder id.
    pub folder: String,
}

impl Delta {
    /// A full delta round of `folder`.
    pub fn new(folder: impl Into<String>) -> Self {
        Delta {
            folder: folder.into(),
        }
    }
}

impl GraphOperation for Delta {
    type Output = DeltaPage;

    describe_op!("reading folder changes", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let url = with_query(
            ep.mailbox_url(&["mailFolders", &self.folder, "messages", "delta"]),
            &[("$select", LIST_SELECT)],
        );
        Ok(prefer_page_size(OpRequest::get(url)))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<DeltaPage, Error> {
        parse_delta_page(ep, response.json()?)
    }
}

/// Follows a delta round's `@odata.nextLink` or `@odata.deltaLink` as [`FollowLink`] does
/// (refusing a link outside the configured Graph base), asking for the same page size as
/// [`Delta`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowDeltaLink {
    /// The link.
    pub link: String,
}

impl FollowDeltaLink {
    /// Follows `link`.
    pub fn new(link: impl Into<String>) -> Self {
        FollowDeltaLink { link: link.into() }
    }
}

impl GraphOperation for FollowDeltaLink {
    type Output = DeltaPage;

    describe_op!("reading folder changes", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let url = checked_url(ep, &self.link)?;
        Ok(prefer_page_size(OpRequest::get(url)))
    }

    fn parse(&self, ep: &Endpoint, response: &Response) -> Result<DeltaPage, Error> {
        parse_delta_page(ep, response.json()?)
    }
}

/// One entry of a delta page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeltaItem {
    /// A message that appeared or changed in the folder.
    Changed(MessageMeta),
    /// A message that left the folder (deleted or moved out).
    Removed {
        /// Its id.
        id: String,
        /// Graph's reason (`deleted`, `changed`).
        reason: String,
    },
}

/// One page of a delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaPage {
    /// Changes on this page.
    pub items: Vec<DeltaItem>,
    /// More pages follow: continue here.
    pub next_link: Option<String>,
    /// The round is complete: start the next round here.
    pub delta_link: Option<String>,
}

/// Parses a delta page: exactly one of `@odata.nextLink` / `@odata.deltaLink` must be present.
pub fn parse_delta_page(ep: &Endpoint, body: &[u8]) -> Result<DeltaPage, Error> {
    let raw: RawPage = parse_json("a delta page", body)?;
    if raw.value.len() > MAX_PAGE {
        return Err(bad("a delta page", "too many items"));
    }
    let next_link = checked_link(ep, raw.next_link)?;
    let delta_link = checked_link(ep, raw.delta_link)?;
    if next_link.is_some() == delta_link.is_some() {
        return Err(bad(
            "a delta page",
            "it must carry exactly one of @odata.nextLink and @odata.deltaLink",
        ));
    }
    let items = raw
        .value
        .into_iter()
        .map(|m| match &m.removed {
            Some(r) => Ok(DeltaItem::Removed {
                reason: r
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("deleted")
                    .to_owned(),
                id: m.id,
            }),
            None => MessageMeta::try_from(m).map(DeltaItem::Changed),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeltaPage {
        items,
        next_link,
        delta_link,
    })
}
