//! Downloading listed messages: GetItem requests with MIME, and what their answers mean for
//! each item. The plain fetch and the fetch in pages ([`super::pages`]) both go through
//! [`item_results`].

use connector::{Error, ErrorKind};
use tokio::task::JoinSet;

use super::{EwsSource, copy_error, item_error};
use crate::ops::{GetItem, ItemResults};
use crate::types::{Item, ItemId};

impl EwsSource {
    /// Downloads `ids` with MIME: GetItem per [`ITEM_CHUNK`](super::ITEM_CHUNK) (or the item chunk), up to `fetch_concurrency` at a
    /// time. One result per id, in order; an item EWS refused or did not answer is that item's
    /// error. A chunk whose request failed as a whole fails its items, unless the sign-in was
    /// refused or no chunk succeeded: then the fetch fails, as a single GetItem would.
    pub(super) async fn download(&self, ids: &[ItemId]) -> Result<Vec<Result<Item, Error>>, Error> {
        let chunks: Vec<Vec<ItemId>> = ids.chunks(self.chunk()).map(<[ItemId]>::to_vec).collect();
        // One slot per chunk: its GetItem's answer, empty until it finished. Each request
        // runs on its own task (its answer is parsed there, on any of the runtime's threads),
        // holding one of the source's slots, taken here in chunk order: the requests go out
        // oldest first, `fetch_concurrency` at a time.
        let mut answers: Vec<Answer> = (0..chunks.len()).map(|_| None).collect();
        let mut running = JoinSet::new();
        for (i, chunk) in chunks.iter().cloned().enumerate() {
            let slot = self.slots.clone().acquire_owned().await.ok();
            let client = self.client.clone();
            running.spawn(async move {
                let _slot = slot;
                (i, client.call(&GetItem::with_mime(chunk)).await)
            });
        }
        while let Some(joined) = running.join_next().await {
            // A panicked task leaves its slot empty: its items fail.
            if let Ok((i, answer)) = joined {
                answers[i] = Some(answer);
            }
        }
        let answered = chunks.into_iter().zip(answers).collect();
        Ok(item_results(answered)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }
}

/// One result per id asked for, in order, from GetItem requests: `answers` pairs each chunk of
/// ids with its request's answer (`None`: the request never finished).
///
/// A refused sign-in fails the whole fetch, and so does no request answering at all (the fetch
/// failed as one GetItem would have). Otherwise a failed request fails only its own items, and
/// an answer shorter than its chunk fails the items it left out. The plain fetch and the fetch
/// in pages both apply these rules through here.
pub(crate) fn item_results(answers: Vec<(Vec<ItemId>, Answer)>) -> Result<Vec<Fetched>, Error> {
    let mut first_error = None;
    let mut any_answered = false;
    for (_, answer) in &answers {
        match answer {
            Some(Ok(_)) => any_answered = true,
            Some(Err(e)) if e.kind() == ErrorKind::Authentication => return Err(copy_error(e)),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    if !any_answered && let Some(e) = first_error {
        return Err(copy_error(e));
    }
    let mut out = Vec::new();
    for (chunk, answer) in answers {
        match answer {
            Some(Ok(results)) => {
                let mut results = results.into_iter();
                out.extend(chunk.into_iter().map(|id| {
                    let r = match results.next() {
                        Some(r) => r.map_err(|e| item_error(e, "fetching a message")),
                        None => Err(Error::bad_response(
                            "EWS answered fewer GetItem response messages than items asked for",
                        )),
                    };
                    (id, r)
                }));
            }
            Some(Err(e)) => out.extend(chunk.into_iter().map(|id| (id, Err(copy_error(&e))))),
            None => out.extend(chunk.into_iter().map(|id| {
                let e = Error::bad_response("the GetItem request for this message did not finish");
                (id, Err(e))
            })),
        }
    }
    Ok(out)
}

/// A GetItem request's answer, `None` when the request never finished.
pub(crate) type Answer = Option<Result<ItemResults<Item>, Error>>;

/// One fetched item and its id.
pub(crate) type Fetched = (ItemId, Result<Item, Error>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ResponseError;

    fn ids(names: &[&str]) -> Vec<ItemId> {
        names.iter().map(|n| ItemId::new(*n)).collect()
    }

    fn item(name: &str) -> Item {
        Item {
            id: Some(ItemId::new(name)),
            ..Item::default()
        }
    }

    fn outcome(results: &[Fetched]) -> Vec<(String, bool)> {
        results
            .iter()
            .map(|(id, r)| (id.id.clone(), r.is_ok()))
            .collect()
    }

    #[test]
    fn a_failed_or_short_answer_fails_only_its_own_items() {
        let answers = vec![
            (
                ids(&["a", "b"]),
                Some(Ok(vec![Ok(item("a")), Ok(item("b"))])),
            ),
            (ids(&["c"]), Some(Err(Error::transient("busy")))),
            // Answered one of two: the other fails.
            (ids(&["d", "e"]), Some(Ok(vec![Ok(item("d"))]))),
            (
                ids(&["f"]),
                Some(Ok(vec![Err(ResponseError::new(
                    "ErrorItemNotFound",
                    "gone",
                ))])),
            ),
            (ids(&["g"]), None),
        ];
        let results = item_results(answers).expect("some chunks answered");
        assert_eq!(
            outcome(&results),
            [
                ("a", true),
                ("b", true),
                ("c", false),
                ("d", true),
                ("e", false),
                ("f", false),
                ("g", false),
            ]
            .map(|(n, ok)| (n.to_string(), ok))
        );
        assert!(
            results[4]
                .1
                .as_ref()
                .unwrap_err()
                .message()
                .contains("fewer")
        );
    }

    #[test]
    fn a_refused_sign_in_or_no_answer_at_all_fails_the_fetch() {
        let refused = vec![
            (ids(&["a"]), Some(Ok(vec![Ok(item("a"))]))),
            (
                ids(&["b"]),
                Some(Err(Error::new(ErrorKind::Authentication, "refused"))),
            ),
        ];
        let e = item_results(refused).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Authentication);

        let none_answered = vec![
            (ids(&["a"]), Some(Err(Error::transient("busy")))),
            (ids(&["b"]), Some(Err(Error::transient("still busy")))),
        ];
        let e = item_results(none_answered).unwrap_err();
        assert_eq!(e.message(), "busy");

        assert!(item_results(Vec::new()).expect("nothing asked").is_empty());
    }
}
