//! An unread fetch in FindItem pages listed in parallel ([`EwsSource::with_item_chunk`]):
//! the listings first, each page's GetItem following its listing, several requests in flight,
//! and no acknowledgement while the pages are listed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use connector::{Batch, Cursor, Error, ErrorKind};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::download::{Answer, Fetched, item_results};
use super::{EwsSource, copy_error};
use crate::ops::{FindItem, FindItemPage, GetItem};
use crate::types::{Item, ItemId};

/// The waiting hint's value when the count is not known.
pub(super) const NO_HINT: u64 = u64::MAX;

/// One page of a fetch: its place, its listing, and the answer to the GetItem of its ids.
struct Page {
    index: usize,
    listing: Result<FindItemPage, Error>,
    ids: Vec<ItemId>,
    download: Answer,
}

impl EwsSource {
    /// Lowers the waiting hint by `n` messages that left the unread listing.
    pub(super) fn forget_waiting(&self, n: u64) {
        self.acked.fetch_add(n, Ordering::Relaxed);
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
    /// listed from the offsets one FindItem of `max` would have used, and each page's GetItem
    /// follows its listing, all through the source's `fetch_concurrency` slots: every listing
    /// asks for its slot before any download does, so the listings go first, in page order,
    /// and the downloads take the slots as the listings end. A page past the end comes back
    /// empty.
    ///
    /// While the fetch lists, no acknowledgement of this source runs (`acknowledge_many`
    /// waits, and the fetch waits for those running): marking a message read takes it out of
    /// the unread listing and would shift the pages listed after it, which would then pass
    /// over messages (left for a later fetch) or list some twice. A listing that fails ends the
    /// batch before its page, so that the cursor continues there and no page is handed over
    /// twice in a pass; the pages after it that were not yet listed are not. The first listing
    /// failing, or every download failing, fails the fetch as one FindItem and GetItem would.
    ///
    /// Each page is handed over (`hand_over`, with its place: `usize::MAX` for failures held to
    /// the end) as soon as it is downloaded and the listings of
    /// the pages before it succeeded, whatever the order the downloads end in (a slow first
    /// page holds back no other); the fetch's next cursor is returned at the end. A page whose
    /// GetItem failed as a whole is handed over as failures with the next page that has
    /// messages, or fails the fetch if none does.
    pub(super) async fn fetch_in_pages(
        &self,
        offset: u32,
        max: usize,
        chunk: usize,
        hand_over: &(dyn Fn(usize, Batch) + Send + Sync),
    ) -> Result<Option<Cursor>, Error> {
        // No acknowledgement runs while this fetch lists (and it waits for those running).
        let gate = self.order.write().await;
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
        // Fewer waiting than pages of `chunk` would keep every request slot busy with:
        // smaller pages, about one for each slot, so that none of them waits on another's
        // larger page (not for a first page already listed).
        let chunk = if listed_first {
            chunk
        } else {
            chunk.min(want.div_ceil(self.fetch_concurrency)).max(1)
        };
        let mut first = first;
        let starts: Vec<usize> = (0..want.max(1)).step_by(chunk).collect();
        // What each page's listing said, as the listings end (`None` while one is in flight):
        // a page is handed over only once every listing before it succeeded.
        let listed: Mutex<Vec<Option<Listed>>> = Mutex::new(starts.iter().map(|_| None).collect());
        let listed = &listed;
        // The acknowledgements wait until the last listing answered (`gate`): the folder's
        // unread listing stays as it was for every page's offset. The first failure
        // (`cut`) ends the listing: the pages after it, not yet listed, are not.
        let to_list = AtomicUsize::new(starts.len());
        let (gate, cut) = (Mutex::new(Some(gate)), Mutex::new(None::<Error>));
        let (to_list, gate, cut) = (&to_list, &gate, &cut);
        let mut pages: FuturesUnordered<_> = starts
            .iter()
            .enumerate()
            .map(|(index, &start)| {
                let known = if start == 0 { first.take() } else { None };
                let folder = folder.clone();
                async move {
                    let listing = match known {
                        Some(page) => Ok(page),
                        None => {
                            // Every page asks for its slot at once, before any download does:
                            // the slots go to the listings first, in page order, and to the
                            // downloads as the listings end, so that no slot waits on a
                            // slower listing.
                            let _slot = self.slots.acquire().await.ok();
                            let after_failure = lock(cut).as_ref().map(copy_error);
                            match after_failure {
                                Some(e) => Err(e),
                                None => {
                                    let n = chunk.min(want - start) as u32;
                                    let at = offset.saturating_add(start as u32);
                                    self.client.call(&FindItem::unread(folder, at, n)).await
                                }
                            }
                        }
                    };
                    let acked = self.acked.load(Ordering::Relaxed);
                    lock(listed)[index] = Some(match &listing {
                        Ok(l) => Listed::Ok {
                            items: l.items.len() as u32,
                            ends: l.includes_last,
                            total: l.total.map(|total| Count { total, acked }),
                        },
                        Err(e) => {
                            lock(cut).get_or_insert_with(|| copy_error(e));
                            Listed::Failed
                        }
                    });
                    if to_list.fetch_sub(1, Ordering::AcqRel) == 1 {
                        lock(gate).take();
                    }
                    let ids: Vec<ItemId> = match &listing {
                        Ok(l) => listing_ids(l).collect(),
                        Err(_) => Vec::new(),
                    };
                    // A page after a failed listing never goes: it is not downloaded.
                    let download = if ids.is_empty() || failed_before(&lock(listed), index) {
                        None
                    } else {
                        Some(self.call(&GetItem::with_mime(ids.clone())).await)
                    };
                    Page {
                        index,
                        listing,
                        ids,
                        download,
                    }
                }
            })
            .collect();
        let mut handing = HandOver::default();
        let mut held: BTreeMap<usize, Page> = BTreeMap::new();
        let mut arrived = vec![false; starts.len()];
        while let Some(page) = pages.next().await {
            arrived[page.index] = true;
            match &page.listing {
                // Without a hint the first listing failing fails the fetch; so it does with
                // one. A refused sign-in fails it wherever it comes.
                Err(e)
                    if (page.index == 0 && !listed_first)
                        || e.kind() == ErrorKind::Authentication =>
                {
                    return Err(copy_error(e));
                }
                _ => {}
            }
            held.insert(page.index, page);
            // Every held page whose earlier listings all succeeded goes now; one after a
            // failed listing never goes (the cursor comes back to that listing's offset).
            let states = lock(listed).clone();
            let ready: Vec<usize> = held
                .keys()
                .copied()
                .filter(|k| {
                    states[..=*k]
                        .iter()
                        .all(|s| matches!(s, Some(Listed::Ok { .. })))
                })
                .collect();
            held.retain(|k, _| !failed_before(&states, *k + 1));
            for k in ready {
                if let Some(page) = held.remove(&k) {
                    self.hand_over_page(page, &mut handing, hand_over).await?;
                }
            }
            // Once a listing failed and every page before it is in, nothing later can go:
            // the pages still in flight or not yet begun are dropped, not fetched for nothing.
            if let Some(cut) = states
                .iter()
                .position(|s| matches!(s, Some(Listed::Failed)))
                && arrived[..cut].iter().all(|a| *a)
            {
                break;
            }
        }
        drop(pages);
        if !handing.answered {
            if let Some(e) = handing.first_error {
                return Err(e);
            }
        } else if !handing.failed.is_empty() {
            let failed = std::mem::take(&mut handing.failed);
            let (ids, results) = failed.into_iter().unzip();
            hand_over(usize::MAX, self.assemble(ids, results, None, None).await?);
        }
        // What was listed, up to the first listing that failed.
        let (mut count, mut last_page_ends, mut cut, mut waiting) =
            (0u32, false, false, None::<u64>);
        let acked_now = self.acked.load(Ordering::Relaxed);
        for state in lock(listed).iter() {
            match state {
                Some(Listed::Ok {
                    items,
                    ends,
                    total: t,
                }) => {
                    count += items;
                    last_page_ends = *ends;
                    // What this listing says is waiting now: its count less what was
                    // acknowledged since it answered.
                    if let Some(c) = t {
                        let now = c.total.saturating_sub(acked_now.saturating_sub(c.acked));
                        waiting = Some(waiting.map_or(now, |w| w.min(now)));
                    }
                }
                _ => {
                    cut = true;
                    break;
                }
            }
        }
        // The lowest of the listings' counts, each less what was acknowledged since it
        // answered: acknowledgements of this fetch's first pages may run while later pages are
        // listed, so a raw count is too high by them. Too low costs a later listing; too high,
        // a fetch of empty pages.
        if let Some(w) = waiting {
            self.waiting_hint.store(w, Ordering::Relaxed);
        }
        Ok(if (last_page_ends && !cut) || count == 0 {
            None
        } else {
            Some(Cursor::new(offset.saturating_add(count).to_string()))
        })
    }

    /// Hands over one downloaded `page` whose listing, and every listing before it, succeeded
    /// (see [`fetch_in_pages`](Self::fetch_in_pages)), keeping count in `handing`.
    async fn hand_over_page(
        &self,
        page: Page,
        handing: &mut HandOver,
        hand_over: &(dyn Fn(usize, Batch) + Send + Sync),
    ) -> Result<(), Error> {
        let Some(download) = page.download else {
            return Ok(());
        };
        let ids = page.ids.clone();
        let fetched = match item_results(vec![(page.ids, Some(download))]) {
            Ok(fetched) => fetched,
            Err(e) if e.kind() == ErrorKind::Authentication => return Err(e),
            Err(e) => {
                // The page's GetItem failed as a whole: its items fail, unless no page answers.
                handing
                    .failed
                    .extend(ids.into_iter().map(|id| (id, Err(copy_error(&e)))));
                handing.first_error.get_or_insert(e);
                return Ok(());
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
            hand_over(page.index, self.assemble(ids, results, None, None).await?);
        }
        Ok(())
    }
}

/// What a page's listing said.
#[derive(Clone, Copy)]
enum Listed {
    /// It listed `items`; `ends`: the folder ends there; `total`: the folder's count.
    Ok {
        items: u32,
        ends: bool,
        total: Option<Count>,
    },
    /// It failed.
    Failed,
}

/// A listing's count of the folder's unread messages, and how many messages had been
/// acknowledged when it answered.
#[derive(Clone, Copy)]
struct Count {
    total: u64,
    acked: u64,
}

/// Whether a listing before the page at `index` failed.
fn failed_before(states: &[Option<Listed>], index: usize) -> bool {
    states[..index]
        .iter()
        .any(|s| matches!(s, Some(Listed::Failed)))
}

/// The page states, whatever a panicking holder left.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a fetch in pages has handed over so far.
#[derive(Default)]
struct HandOver {
    /// Some page's GetItem answered.
    answered: bool,
    /// The first GetItem that failed as a whole.
    first_error: Option<Error>,
    /// Items of pages whose GetItem failed, waiting to go with a page that has messages.
    failed: Vec<Fetched>,
    /// Ids handed over.
    seen: HashSet<String>,
}

/// The ids of a page's listing.
fn listing_ids(listing: &FindItemPage) -> impl Iterator<Item = ItemId> + '_ {
    listing.items.iter().filter_map(|i| i.id.clone())
}
