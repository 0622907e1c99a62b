//! An unread fetch in FindItem pages listed in parallel ([`EwsSource::with_item_chunk`]):
//! each page's GetItem follows its listing at once, several pages in flight.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use connector::{Batch, Cursor, Error, ErrorKind};
use futures_util::stream::{self, StreamExt};

use super::download::{Answer, item_results};
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
    pub(super) async fn fetch_in_pages(
        &self,
        offset: u32,
        max: usize,
        chunk: usize,
    ) -> Result<Batch, Error> {
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
        let pages: Vec<Page> = stream::iter(listings)
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
            .buffered(self.fetch_concurrency)
            .collect()
            .await;
        // The newest count any listing gave.
        if let Some(total) = pages
            .iter()
            .filter_map(|p| p.listing.as_ref().ok().and_then(|l| l.total))
            .max()
        {
            self.waiting_hint.store(total, Ordering::Relaxed);
        }
        if !listed_first
            && let Some(Page {
                listing: Err(e), ..
            }) = pages.first()
        {
            // Without a hint the first listing failing fails the fetch; so it does with one.
            return Err(copy_error(e));
        }
        self.hand_over(offset, pages).await
    }

    /// The batch of a fetch's `pages`, in listing order.
    async fn hand_over(&self, offset: u32, pages: Vec<Page>) -> Result<Batch, Error> {
        let (mut listed, mut last_page_ends, mut cut) = (0u32, false, false);
        let mut answers = Vec::with_capacity(pages.len());
        for page in pages {
            let listing = match page.listing {
                Ok(l) => l,
                Err(e) if e.kind() == ErrorKind::Authentication => return Err(e),
                Err(_) => {
                    // The later pages were listed from offsets past this one: handing them
                    // over now would hand them over again when the cursor comes back here.
                    cut = true;
                    break;
                }
            };
            listed += listing.items.len() as u32;
            last_page_ends = listing.includes_last;
            if page.download.is_some() {
                answers.push((page.ids, page.download));
            }
        }
        // The pages' GetItems, as one download's chunks; a message listed on two pages (the
        // folder changed between listings) is handed over once.
        let mut seen: HashSet<String> = HashSet::new();
        let (ids, results): (Vec<ItemId>, Vec<Result<Item, Error>>) = item_results(answers)?
            .into_iter()
            .filter(|(id, _)| seen.insert(id.id.clone()))
            .unzip();
        let next = if (last_page_ends && !cut) || listed == 0 {
            None
        } else {
            Some(Cursor::new(offset.saturating_add(listed).to_string()))
        };
        if ids.is_empty() {
            return Ok(Batch::new(Vec::new(), next));
        }
        self.assemble(ids, results, next, None).await
    }
}
