//! An unread fetch in FindItem pages listed in parallel ([`EwsSource::with_item_chunk`]):
//! each page's GetItem follows its listing at once, several pages in flight.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use connector::{Batch, Cursor, Error, ErrorKind};
use futures_util::stream::{self, StreamExt};

use super::download::{Answer, Fetched, item_results};
use super::{EwsSource, copy_error};
use crate::ops::{FindItem, FindItemPage, GetItem};
use crate::types::{Item, ItemId};

/// The waiting hint's value when the count is not known.
pub(super) const NO_HINT: u64 = u64::MAX;

/// One page of a fetch: its listing, and the answer to the GetItem of its ids.
struct Page {
    listing: Result<FindItemPage, Error>,
    ids: Vec<ItemId>,
    download: Answer,
}

impl EwsSource {
    /// Lowers the waiting hint by `n` messages that left the unread listing.
    pub(super) fn forget_waiting(&self, n: u64) {
        let _ = self
            .waiting_hint
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                (h != NO_HINT).then(|| h.saturating_sub(n))
            });
    }

    /// Up to `max` unread messages from `offset`, listed `chunk` at a time.
    ///
    /// How many are waiting comes from the waiting hint (the last folder count or listing,
    /// less what was acknowledged since): when it says more than a page, every page is listed
    /// at once; otherwise the first FindItem says, and the other pages follow. The pages are
    /// listed from the offsets one FindItem of `max` would have used, up to
    /// `fetch_concurrency` requests in flight; a page past the end comes back empty. A listing
    /// that fails ends the batch before its page, so that the cursor continues there and no
    /// page is handed over twice in a pass; the first listing failing, or every download
    /// failing, fails the fetch as one FindItem and GetItem would.
    ///
    /// Each page is handed over (`hand_over`) once it is downloaded and every page before it
    /// was, oldest first; the fetch's next cursor is returned at the end. A page whose
    /// GetItem failed as a whole is handed over as failures with the next page that has
    /// messages, or fails the fetch if none does.
    pub(super) async fn fetch_in_pages(
        &self,
        offset: u32,
        max: usize,
        chunk: usize,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        let folder = self.access().folder(&self.folder);
        let hint = self.waiting_hint.load(Ordering::Relaxed);
        let hinted = (hint != NO_HINT)
            .then(|| usize::try_from(hint.saturating_sub(u64::from(offset))).unwrap_or(max))
            .filter(|h| *h > chunk);
        // How many this fetch lists in all (what is waiting past the offset, at most `max`),
        // and the first page if it had to be listed to know that.
        let (want, first) = match hinted {
            Some(h) => (h.min(max), None),
            None => {
                let first = self
                    .call(&FindItem::unread(folder.clone(), offset, chunk as u32))
                    .await?;
                let want = if first.includes_last {
                    first.items.len()
                } else {
                    let waiting = first
                        .total
                        .map_or(max as u64, |t| t.saturating_sub(u64::from(offset)));
                    usize::try_from(waiting)
                        .unwrap_or(max)
                        .min(max)
                        .max(first.items.len())
                };
                (want, Some(first))
            }
        };
        let listed_first = first.is_some();
        let mut first = first;
        let listings = (0..want.max(1))
            .step_by(chunk)
            .map(move |s| (s, if s == 0 { first.take() } else { None }));
        let mut pages = stream::iter(listings)
            .map(|(start, listed)| {
                let folder = folder.clone();
                async move {
                    let listing = match listed {
                        Some(page) => Ok(page),
                        None => {
                            let n = chunk.min(want - start) as u32;
                            let at = offset.saturating_add(start as u32);
                            self.call(&FindItem::unread(folder, at, n)).await
                        }
                    };
                    let ids: Vec<ItemId> = match &listing {
                        Ok(p) => p.items.iter().filter_map(|i| i.id.clone()).collect(),
                        Err(_) => Vec::new(),
                    };
                    let download = if ids.is_empty() {
                        None
                    } else {
                        Some(self.call(&GetItem::with_mime(ids.clone())).await)
                    };
                    Page {
                        listing,
                        ids,
                        download,
                    }
                }
            })
            .buffered(self.fetch_concurrency);
        let mut handing = HandOver::default();
        let mut first_page = true;
        while let Some(page) = pages.next().await {
            if let Ok(total) = page.listing.as_ref().map(|l| l.total) {
                handing.total = handing.total.max(total);
            }
            if first_page
                && !listed_first
                && let Err(e) = &page.listing
            {
                // Without a hint the first listing failing fails the fetch; so it does with one.
                return Err(copy_error(e));
            }
            first_page = false;
            if !self.hand_over_page(page, &mut handing, hand_over).await? {
                break;
            }
        }
        // The newest count any listing gave.
        if let Some(total) = handing.total {
            self.waiting_hint.store(total, Ordering::Relaxed);
        }
        if !handing.answered {
            if let Some(e) = handing.first_error {
                return Err(e);
            }
        } else if !handing.failed.is_empty() {
            let failed = std::mem::take(&mut handing.failed);
            let (ids, results) = failed.into_iter().unzip();
            hand_over(self.assemble(ids, results, None, None).await?);
        }
        let listed = handing.listed;
        Ok(if (handing.last_page_ends && !handing.cut) || listed == 0 {
            None
        } else {
            Some(Cursor::new(offset.saturating_add(listed).to_string()))
        })
    }

    /// Hands over one downloaded `page` (see [`fetch_in_pages`](Self::fetch_in_pages)),
    /// keeping count in `handing`; `false` when its listing failed and the fetch ends before
    /// it.
    async fn hand_over_page(
        &self,
        page: Page,
        handing: &mut HandOver,
        hand_over: &(dyn Fn(Batch) + Send + Sync),
    ) -> Result<bool, Error> {
        let listing = match page.listing {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::Authentication => return Err(e),
            Err(_) => {
                // The later pages were listed from offsets past this one: handing them over
                // now would hand them over again when the cursor comes back here.
                handing.cut = true;
                return Ok(false);
            }
        };
        handing.listed += listing.items.len() as u32;
        handing.last_page_ends = listing.includes_last;
        let Some(download) = page.download else {
            return Ok(true);
        };
        let fetched = match item_results(vec![(page.ids, Some(download))]) {
            Ok(fetched) => fetched,
            Err(e) if e.kind() == ErrorKind::Authentication => return Err(e),
            Err(e) => {
                // The page's GetItem failed as a whole: its items fail, unless no page answers.
                handing
                    .failed
                    .extend(listing_ids(&listing).map(|id| (id, Err(copy_error(&e)))));
                handing.first_error.get_or_insert(e);
                return Ok(true);
            }
        };
        handing.answered = true;
        // Failures held from earlier pages go with this one; a message listed on two pages
        // (the folder changed between listings) is handed over once.
        let (ids, results): (Vec<ItemId>, Vec<Result<Item, Error>>) =
            std::mem::take(&mut handing.failed)
                .into_iter()
                .chain(fetched)
                .filter(|(id, _)| handing.seen.insert(id.id.clone()))
                .unzip();
        if !ids.is_empty() {
            hand_over(self.assemble(ids, results, None, None).await?);
        }
        Ok(true)
    }
}

/// What a fetch in pages has handed over so far.
#[derive(Default)]
struct HandOver {
    /// Messages listed by the pages up to now.
    listed: u32,
    /// The last page listed says it is the folder's end.
    last_page_ends: bool,
    /// A listing failed: the fetch ends before its page.
    cut: bool,
    /// Some page's GetItem answered.
    answered: bool,
    /// The first GetItem that failed as a whole.
    first_error: Option<Error>,
    /// Items of pages whose GetItem failed, waiting to go with a page that has messages.
    failed: Vec<Fetched>,
    /// Ids handed over.
    seen: HashSet<String>,
    /// The newest count a listing gave.
    total: Option<u64>,
}

/// The ids of a page's listing.
fn listing_ids(listing: &FindItemPage) -> impl Iterator<Item = ItemId> + '_ {
    listing.items.iter().filter_map(|i| i.id.clone())
}
