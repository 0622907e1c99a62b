//! One delta round: its pages, a resync when the saved state is gone, and the raw helper.

use connector::{ConnectionLog, Error};
use url::Url;

use super::{DeltaState, state_key};
use crate::api::{self, DeltaItem, DeltaPage, GraphOperation, MessageMeta};
use crate::client::GraphClient;
use httpcore::StateStore;

/// The outcome of one delta round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaChanges {
    /// Messages that appeared or changed.
    pub changed: Vec<MessageMeta>,
    /// Ids of messages that left the folder.
    pub removed: Vec<String>,
    /// The saved state was gone (`syncStateNotFound` / `resyncRequired`, or a link to another
    /// host) and this round is a full resync: `changed` lists the whole folder.
    pub resynced: bool,
}

/// Most pages one round follows (a guard against a server that never ends a round).
pub const MAX_PAGES: usize = 10_000;

pub(super) fn is_resync(e: &Error) -> bool {
    e.response()
        .and_then(|r| r.server_code.as_deref())
        .is_some_and(|c| {
            c.eq_ignore_ascii_case("syncStateNotFound") || c.eq_ignore_ascii_case("resyncRequired")
        })
}

/// One complete round: its items in order, the new delta link, and whether it listed the whole
/// folder because the saved link was missing, expired or foreign.
pub(crate) struct Round {
    pub(crate) items: Vec<DeltaItem>,
    pub(crate) delta_link: String,
    pub(crate) full: bool,
    pub(crate) resynced: bool,
}

pub(crate) async fn run_round(
    client: &GraphClient,
    saved_link: Option<&str>,
    folder: &str,
    log: Option<&ConnectionLog>,
) -> Result<Round, Error> {
    let ep = client.endpoint();
    let usable = saved_link.filter(|l| Url::parse(l).is_ok_and(|u| ep.owns(&u)));
    if let Some(link) = usable {
        match pages(client, &api::FollowDeltaLink::new(link), log).await {
            Ok((items, delta_link)) => {
                return Ok(Round {
                    items,
                    delta_link,
                    full: false,
                    resynced: false,
                });
            }
            Err(e) if is_resync(&e) => {
                tracing::info!(folder, "delta state expired on the server: full resync");
            }
            Err(e) => return Err(e),
        }
    } else if saved_link.is_some() {
        tracing::warn!(
            folder,
            "the saved delta link is not under this endpoint's Graph base: full resync"
        );
    }
    let (items, delta_link) = pages(client, &api::Delta::new(folder), log).await?;
    Ok(Round {
        items,
        delta_link,
        full: true,
        resynced: saved_link.is_some(),
    })
}

/// Runs `first` and follows its next links up to the delta link: at most [`MAX_PAGES`]
/// requests.
async fn pages(
    client: &GraphClient,
    first: &(dyn GraphOperation<Output = DeltaPage> + Sync),
    log: Option<&ConnectionLog>,
) -> Result<(Vec<DeltaItem>, String), Error> {
    let mut items = Vec::new();
    let mut next: Option<api::FollowDeltaLink> = None;
    for _ in 0..MAX_PAGES {
        let page = match &next {
            None => client.execute_logged(first, log).await?,
            Some(op) => client.execute_logged(op, log).await?,
        };
        items.extend(page.items);
        match (page.next_link, page.delta_link) {
            (Some(link), _) => next = Some(api::FollowDeltaLink::new(link)),
            (None, Some(delta)) => return Ok((items, delta)),
            (None, None) => return Err(Error::bad_response("a delta page without links")),
        }
    }
    Err(Error::bad_response(format!(
        "a delta round did not end within {MAX_PAGES} pages"
    )))
}

/// Runs one delta round of `folder`, following next links to the delta link and saving it
/// under [`state_key`]. An expired state is discarded and the round restarts as a full
/// resync. The state is saved only when the round completed, so a failed round is repeated,
/// never skipped.
///
/// This is the raw helper; do not share its store keys with a delta-mode
/// [`GraphSource`](crate::GraphSource) (which keeps more in the state than the link).
pub async fn sync_folder(
    client: &GraphClient,
    store: &dyn StateStore<DeltaState>,
    folder: &str,
) -> Result<DeltaChanges, Error> {
    let key = state_key(client.endpoint(), folder);
    let mut state = store.load(&key).await?.unwrap_or_default();
    let round = run_round(client, state.delta_link.as_deref(), folder, None).await?;
    state.delta_link = Some(round.delta_link);
    store.save(&key, &state).await?;
    let mut out = DeltaChanges {
        resynced: round.resynced,
        ..DeltaChanges::default()
    };
    for item in round.items {
        match item {
            DeltaItem::Changed(m) => out.changed.push(m),
            DeltaItem::Removed { id, .. } => out.removed.push(id),
        }
    }
    Ok(out)
}
