//! Reading the sandbox's mail store: folders, counts and ids, for the verdict.

use crate::*;

/// A folder by display name at the top level or under the inbox.
pub(crate) fn find_folder(
    store: &MailStore,
    mailbox: &str,
    name: &str,
) -> Option<sandbox::store::FolderInfo> {
    for parent in [None, Some("inbox")] {
        if let Ok(Some(f)) = store.find_folder(mailbox, parent, name) {
            return Some(f);
        }
    }
    None
}

pub(crate) fn count(store: &MailStore, mailbox: &str, folder: &str) -> usize {
    match folder {
        "inbox" => store
            .folder(mailbox, "inbox")
            .map(|f| f.total_count)
            .unwrap_or(0),
        _ => find_folder(store, mailbox, folder)
            .map(|f| f.total_count)
            .unwrap_or(0),
    }
}

/// Messages the EWS source acknowledged: read messages in its inbox.
pub(crate) fn read_in_inbox(store: &MailStore) -> usize {
    store
        .folder(EWS_MAILBOX, "inbox")
        .map(|f| f.total_count.saturating_sub(f.unread_count))
        .unwrap_or(0)
}

/// Message-IDs in a folder (by id).
pub(crate) fn ids_in(store: &MailStore, mailbox: &str, folder_id: &str) -> Vec<String> {
    store
        .list(mailbox, Some(folder_id), &ListQuery::default())
        .map(|p| {
            p.items
                .iter()
                .filter_map(|m| m.props.internet_message_id.as_deref())
                .map(m365_chaos::normalize_id)
                .collect()
        })
        .unwrap_or_default()
}
