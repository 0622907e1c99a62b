//! Mail folders: `mailFolders`, `mailFolders/{folder}` and `childFolders` (list, get, create).
//!
//! Lists take `$filter` (`displayName eq '…'`), `includeHiddenFolders`, `$select`, `$top`
//! (default 10, as Graph pages folders), `$skip` and `$count`; a folder's `GET` takes `$select`;
//! creating takes `displayName` (and `@odata.type` `#microsoft.graph.mailFolder`).

use serde_json::{Value, json};

use super::query;
use super::shared::{
    Op, bad, collection, context, json_body, link, not_supported, select_of, unknown_property,
};
use crate::graph::{GReq, GResp, render};
use crate::state::AppState;

pub(super) fn list_folders(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let sel = match select_of(req, render::FOLDER_PROPS, "mailFolder") {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let count = match query::count(req) {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let hidden = match req.param("includeHiddenFolders").as_deref() {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => return bad(&format!("Invalid value '{v}' for includeHiddenFolders.")),
    };
    let (top, skip) = match query::paging(req) {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
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
    let total = folders.len();
    let value: Vec<Value> = folders
        .iter()
        .skip(skip)
        .take(top)
        .map(|f| render::folder_selected(f, sel.as_deref()))
        .collect();
    let shown = value.len();
    let mut out = collection(context(st, mailbox, "mailFolders"), value);
    if count {
        out["@odata.count"] = json!(total);
    }
    if skip + shown < total {
        let mut pairs: Vec<(String, String)> = req
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skip"))
            .collect();
        pairs.push(("$skip".into(), (skip + shown).to_string()));
        out["@odata.nextLink"] = json!(link(req, &pairs));
    }
    Ok(GResp::json(200, out))
}

pub(super) fn get_folder(st: &AppState, req: &GReq, mailbox: &str, folder: &str) -> Op {
    let sel = match select_of(req, render::FOLDER_PROPS, "mailFolder") {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let f = st.store().folder(mailbox, folder)?;
    Ok(GResp::json(
        200,
        render::folder_selected(&f, sel.as_deref()),
    ))
}

pub(super) fn create_folder(st: &AppState, req: &GReq, mailbox: &str, parent: Option<&str>) -> Op {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    if let Some(o) = body.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "displayName" => {}
                "@odata.type" if super::shared::is_type(v, "mailFolder") => {}
                "isHidden" if v == false => {}
                "isHidden" => return Ok(not_supported("creating hidden folders (isHidden)")),
                k if render::FOLDER_PROPS.contains(&k)
                    || matches!(
                        k,
                        "childFolders"
                            | "messages"
                            | "messageRules"
                            | "singleValueExtendedProperties"
                            | "multiValueExtendedProperties"
                    ) =>
                {
                    return Ok(not_supported(&format!("setting '{k}' on a new folder")));
                }
                k => return Ok(unknown_property(k, "mailFolder")),
            }
        }
    }
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
