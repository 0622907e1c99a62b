//! Mail folders: read, find by name, create; and the folder answers.

use super::*;

/// `GET …/mailFolders/{folder}`: id, name and the counts (`totalItemCount`, `unreadItemCount`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetFolder {
    /// A well-known name (`inbox`) or a folder id.
    pub folder: String,
}

impl GetFolder {
    /// Reads `folder`.
    pub fn new(folder: impl Into<String>) -> Self {
        GetFolder {
            folder: folder.into(),
        }
    }
}

impl GraphOperation for GetFolder {
    type Output = MailFolder;

    describe_op!("reading the folder counts", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let url = with_query(
            ep.mailbox_url(&["mailFolders", &self.folder]),
            &[(
                "$select",
                "id,displayName,parentFolderId,totalItemCount,unreadItemCount",
            )],
        );
        Ok(OpRequest::get(url))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<MailFolder, Error> {
        parse_folder(response.json()?)
    }
}

/// `GET …/mailFolders[/{parent}/childFolders]?$filter=displayName eq '…'`: the folders of that
/// name (hidden ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindFolder {
    /// The parent folder; `None` for the top level.
    pub parent: Option<String>,
    /// The display name to look for.
    pub display_name: String,
}

impl FindFolder {
    /// Looks for `display_name` under `parent` (the top level when `None`).
    pub fn new(parent: Option<&str>, display_name: impl Into<String>) -> Self {
        FindFolder {
            parent: parent.map(str::to_owned),
            display_name: display_name.into(),
        }
    }
}

fn folders_url(ep: &Endpoint, parent: Option<&str>) -> Url {
    match parent {
        Some(p) => ep.mailbox_url(&["mailFolders", p, "childFolders"]),
        None => ep.mailbox_url(&["mailFolders"]),
    }
}

impl GraphOperation for FindFolder {
    type Output = Vec<MailFolder>;

    describe_op!("looking up a folder", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let filter = format!("displayName eq '{}'", self.display_name.replace('\'', "''"));
        let url = with_query(
            folders_url(ep, self.parent.as_deref()),
            &[("$filter", &filter), ("includeHiddenFolders", "true")],
        );
        Ok(OpRequest::get(url))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<Vec<MailFolder>, Error> {
        parse_folders(response.json()?)
    }
}

/// `POST …/mailFolders[/{parent}/childFolders]` `{"displayName": …}` → 201 folder. Not
/// idempotent: a repeat after a lost answer meets `ErrorFolderExists`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateFolder {
    /// The parent folder; `None` for the top level.
    pub parent: Option<String>,
    /// The new folder's display name (not empty).
    pub display_name: String,
}

impl CreateFolder {
    /// Creates `display_name` under `parent` (the top level when `None`).
    pub fn new(parent: Option<&str>, display_name: impl Into<String>) -> Self {
        CreateFolder {
            parent: parent.map(str::to_owned),
            display_name: display_name.into(),
        }
    }
}

impl GraphOperation for CreateFolder {
    type Output = MailFolder;

    describe_op!("creating a folder", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        if self.display_name.trim().is_empty() {
            return Err(Error::configuration("a folder name is empty"));
        }
        Ok(OpRequest::new(
            http::Method::POST,
            folders_url(ep, self.parent.as_deref()),
            Body::Json(json!({ "displayName": self.display_name })),
        ))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<MailFolder, Error> {
        parse_folder(response.json()?)
    }
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
