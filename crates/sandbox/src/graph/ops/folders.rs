//! Mail folders: `mailFolders`, `mailFolders/{folder}` and `childFolders` (list, get, create).

use serde_json::Value;

use super::shared::{Op, bad, collection, context, json_body};
use crate::graph::{GReq, GResp, render};
use crate::state::AppState;

pub(super) fn list_folders(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let hidden = req
        .param("includeHiddenFolders")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut folders = st.store().list_folders(mailbox, parent, hidden)?;
    if let Some(f) = req.param("$filter") {
        let Some(name) = f
            .trim()
            .strip_prefix("displayName eq '")
            .and_then(|r| r.strip_suffix('\''))
        else {
            return bad("Invalid filter clause: only displayName eq '…' is supported.");
        };
        let name = name.replace("''", "'");
        folders.retain(|x| x.display_name.eq_ignore_ascii_case(&name));
    }
    let value: Vec<Value> = folders.iter().map(render::folder).collect();
    Ok(GResp::json(
        200,
        collection(context(st, mailbox, "mailFolders"), value),
    ))
}

pub(super) fn create_folder(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let Some(name) = body
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return bad("displayName is required.");
    };
    let f = st.store().create_folder(mailbox, parent, name)?;
    Ok(GResp::json(201, render::folder(&f)))
}
