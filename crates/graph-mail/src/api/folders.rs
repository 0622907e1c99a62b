//! Mail folders: look up, find by name, create; and the folder answers.

use super::*;

/// `GET …/mailFolders/{folder}`: id, name and the counts (`totalItemCount`, `unreadItemCount`).
pub fn get_folder(ep: &Endpoint, folder: &str) -> Result<http::Request<Vec<u8>>, Error> {
    let url = with_query(
        ep.mailbox_url(&["mailFolders", folder]),
        &[(
            "$select",
            "id,displayName,parentFolderId,totalItemCount,unreadItemCount",
        )],
    );
    request(http::Method::GET, &url, None)
}

/// `GET …/mailFolders[/{parent}/childFolders]?$filter=displayName eq '…'`.
pub fn find_folder(
    ep: &Endpoint,
    parent: Option<&str>,
    display_name: &str,
) -> Result<http::Request<Vec<u8>>, Error> {
    let base = match parent {
        Some(p) => ep.mailbox_url(&["mailFolders", p, "childFolders"]),
        None => ep.mailbox_url(&["mailFolders"]),
    };
    let filter = format!("displayName eq '{}'", display_name.replace('\'', "''"));
    let url = with_query(
        base,
        &[("$filter", &filter), ("includeHiddenFolders", "true")],
    );
    request(http::Method::GET, &url, None)
}

/// `POST …/mailFolders[/{parent}/childFolders]` `{"displayName": …}` → 201 folder.
pub fn create_folder(
    ep: &Endpoint,
    parent: Option<&str>,
    display_name: &str,
) -> Result<http::Request<Vec<u8>>, Error> {
    if display_name.trim().is_empty() {
        return Err(Error::configuration("a folder name is empty"));
    }
    let url = match parent {
        Some(p) => ep.mailbox_url(&["mailFolders", p, "childFolders"]),
        None => ep.mailbox_url(&["mailFolders"]),
    };
    request(
        http::Method::POST,
        &url,
        json_body(&json!({ "displayName": display_name })),
    )
}

/// A mail folder with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MailFolder {
    /// The folder id.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Items in the folder (all item types).
    #[serde(default)]
    pub total_item_count: Option<u64>,
    /// Unread items in the folder.
    #[serde(default)]
    pub unread_item_count: Option<u64>,
}

/// Parses a `mailFolder`.
pub fn parse_folder(body: &[u8]) -> Result<MailFolder, Error> {
    parse_json("a mail folder", body)
}

/// Parses a folder collection (`{"value":[…]}`).
pub fn parse_folders(body: &[u8]) -> Result<Vec<MailFolder>, Error> {
    #[derive(Deserialize)]
    struct Coll {
        value: Vec<MailFolder>,
    }
    Ok(parse_json::<Coll>("a folder list", body)?.value)
}
