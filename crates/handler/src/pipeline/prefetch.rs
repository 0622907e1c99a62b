//! The next page of a source with stable cursors, fetched while the current one is handled.

use std::sync::Arc;

use connector::{Batch, Cursor, Error, MessageSource};
use tokio::task::JoinHandle;

/// A fetch of the page after `cursor`, running beside the handling and acknowledgement of the
/// current page, so that the source's request slots stay busy across the page boundary (its
/// downloads share the client's slots with the current page's acknowledgements). Only for a
/// source that declares [`stable_cursors`](connector::SourceCapabilities::stable_cursors):
/// acknowledging the current page does not change what the next one holds. At most one page
/// is fetched ahead, so at most two pages of MIME are held. Dropped, it is aborted.
pub(super) struct Prefetch {
    task: JoinHandle<Result<Batch, Error>>,
    source: Arc<dyn MessageSource>,
    cursor: Cursor,
    max: usize,
}

impl Prefetch {
    /// Starts fetching the page after `cursor`.
    pub(super) fn start(source: Arc<dyn MessageSource>, cursor: Cursor, max: usize) -> Self {
        let task = {
            let (source, cursor) = (source.clone(), cursor.clone());
            tokio::spawn(async move { source.fetch(Some(&cursor), max).await })
        };
        Prefetch {
            task,
            source,
            cursor,
            max,
        }
    }

    /// The page; fetched again here if the task did not finish (it panicked).
    pub(super) async fn page(mut self) -> Result<Batch, Error> {
        match (&mut self.task).await {
            Ok(fetched) => fetched,
            Err(_) => self.source.fetch(Some(&self.cursor), self.max).await,
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
