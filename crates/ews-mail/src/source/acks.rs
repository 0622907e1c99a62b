//! Acknowledging at the source: mark read (with a retry for stale change keys), move and
//! delete, one request per chunk of items.

use connector::{Error, MessageId};

use super::{EwsSource, fail_all, item_error, pad};
use crate::error::ResponseError;
use crate::ops::{DeleteItem, GetItem, MoveItem, UpdateItem};
use crate::types::ItemId;

impl EwsSource {
    pub(super) async fn mark_read(&self, ids: &[MessageId]) -> Vec<Result<(), Error>> {
        let item_ids: Vec<ItemId> = ids.iter().map(|i| self.item_id(i)).collect();
        let results = match self.call(&UpdateItem::mark_read(item_ids)).await {
            Ok(r) => r,
            Err(e) => return fail_all(ids.len(), &e),
        };
        let mut out: Vec<Result<(), Error>> = Vec::with_capacity(ids.len());
        let mut stale: Vec<usize> = Vec::new();
        for (i, r) in results.into_iter().enumerate().take(ids.len()) {
            match r {
                Ok(_) => {
                    self.forget(ids[i].as_str());
                    out.push(Ok(()));
                }
                Err(e)
                    if matches!(
                        e.code.as_str(),
                        "ErrorIrresolvableConflict" | "ErrorStaleObject" | "ErrorInvalidChangeKey"
                    ) =>
                {
                    stale.push(i);
                    out.push(Err(item_error(e, "marking read")));
                }
                Err(e) => out.push(Err(item_error(e, "marking read"))),
            }
        }
        pad(&mut out, ids.len());
        if stale.is_empty() {
            return out;
        }
        // Stale change keys: fetch the current ones and try those items once more.
        let fresh = self
            .call(&GetItem::ids_only(
                stale
                    .iter()
                    .map(|i| ItemId::new(ids[*i].as_str()))
                    .collect(),
            ))
            .await;
        let Ok(fresh) = fresh else { return out };
        let mut retry_ids = Vec::new();
        let mut retry_slots = Vec::new();
        for (slot, r) in stale.iter().zip(fresh) {
            if let Ok(item) = r
                && let Some(id) = item.id
            {
                retry_ids.push(id);
                retry_slots.push(*slot);
            }
        }
        if retry_ids.is_empty() {
            return out;
        }
        if let Ok(again) = self.call(&UpdateItem::mark_read(retry_ids)).await {
            for (slot, r) in retry_slots.into_iter().zip(again) {
                out[slot] = r.map(|_| ()).map_err(|e| item_error(e, "marking read"));
                if out[slot].is_ok() {
                    self.forget(ids[slot].as_str());
                }
            }
        }
        out
    }

    pub(super) async fn move_to(&self, folder: &str, ids: &[MessageId]) -> Vec<Result<(), Error>> {
        let to = match self.resolve_folder(folder).await {
            Ok(f) => f,
            Err(e) => return fail_all(ids.len(), &e),
        };
        let op = MoveItem {
            to,
            ids: ids.iter().map(|i| ItemId::new(i.as_str())).collect(),
        };
        self.simple(&op, ids, "moving").await
    }

    pub(super) async fn delete(&self, ids: &[MessageId]) -> Vec<Result<(), Error>> {
        let op = DeleteItem {
            ids: ids.iter().map(|i| ItemId::new(i.as_str())).collect(),
            delete_type: self.delete_type,
        };
        self.simple(&op, ids, "deleting").await
    }

    async fn simple<O, T>(&self, op: &O, ids: &[MessageId], what: &str) -> Vec<Result<(), Error>>
    where
        O: crate::soap::Operation<Response = Vec<Result<T, ResponseError>>> + Sync,
    {
        match self.call(op).await {
            Ok(results) => {
                let mut out: Vec<Result<(), Error>> = results
                    .into_iter()
                    .take(ids.len())
                    .map(|r| r.map(|_| ()).map_err(|e| item_error(e, what)))
                    .collect();
                pad(&mut out, ids.len());
                for (r, id) in out.iter().zip(ids) {
                    if r.is_ok() {
                        self.forget(id.as_str());
                    }
                }
                out
            }
            Err(e) => fail_all(ids.len(), &e),
        }
    }
}
