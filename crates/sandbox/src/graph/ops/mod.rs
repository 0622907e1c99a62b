//! The Graph mail operations, after authentication, permission and throttling checks, one
//! module per resource: [`folders`], [`messages`] (list, get, patch, move), [`delta`],
//! [`send`] (`sendMail`, drafts) and [`attachments`] (with upload sessions); `$batch` is
//! [`super::batch`]. Helpers they share are in [`shared`].

mod attachments;
mod delta;
mod folders;
mod message_json;
mod messages;
mod query;
mod send;
mod shared;
mod subscriptions;

use http::Method;

use self::shared::store_error;
use crate::auth::Principal;
use crate::graph::{GBody, GReq, GResp, error};
use crate::state::AppState;
use crate::store::DeleteMode;

pub(super) use self::attachments::upload_put;
pub(super) use self::subscriptions::run as subscriptions;

/// Runs the operation named by `rest` (the path after the mailbox).
pub(super) async fn run(
    st: &AppState,
    who: &Principal,
    req: &GReq,
    mailbox: &str,
    rest: &[&str],
) -> GResp {
    if let Err(r) = query::check(req, rest) {
        return r;
    }
    // Conditional requests are not implemented: refused, so a client never believes its
    // precondition held.
    if let Some(h) = ["if-match", "if-none-match"]
        .into_iter()
        .find(|h| req.headers.contains_key(*h))
    {
        return shared::not_supported(&format!("conditional requests (the {h} header)"));
    }
    let r = match (&req.method, rest) {
        (&Method::GET, ["mailFolders"]) => folders::list_folders(st, req, mailbox, None),
        (&Method::POST, ["mailFolders"]) => folders::create_folder(st, req, mailbox, None),
        (&Method::GET, ["mailFolders", "delta"]) => {
            return shared::not_supported("mailFolders/delta (delta of the folder tree)");
        }
        (&Method::GET, ["mailFolders", f]) => folders::get_folder(st, req, mailbox, f),
        (&Method::GET, ["mailFolders", f, "childFolders"]) => {
            folders::list_folders(st, req, mailbox, Some(f))
        }
        (&Method::POST, ["mailFolders", f, "childFolders"]) => {
            folders::create_folder(st, req, mailbox, Some(f))
        }
        (&Method::GET, ["mailFolders", f, "messages"]) => messages::list(st, req, mailbox, Some(f)),
        (&Method::GET, ["mailFolders", f, "messages", "delta"]) => {
            delta::delta(st, req, mailbox, f)
        }
        (&Method::GET, ["messages"]) => messages::list(st, req, mailbox, None),
        (&Method::POST, ["messages"]) => send::create_draft(st, req, mailbox, "drafts"),
        (&Method::POST, ["mailFolders", f, "messages"]) => st
            .store()
            .folder(mailbox, f)
            .and_then(|_| send::create_draft(st, req, mailbox, f)),
        (&Method::GET, ["messages", id]) => messages::get(st, req, mailbox, id),
        (&Method::PATCH, ["messages", id]) => messages::patch(st, req, mailbox, id),
        (&Method::DELETE, ["messages", id]) => st
            .store()
            .delete(mailbox, id, DeleteMode::SoftDelete, st.clock().now())
            .map(|_| GResp::empty(204)),
        (&Method::GET, ["messages", id, "$value"]) => st.store().get(mailbox, id).map(|m| GResp {
            status: 200,
            headers: Vec::new(),
            body: GBody::Text(m.mime),
        }),
        (&Method::POST, ["messages", id, "move"]) => messages::move_message(st, req, mailbox, id),
        (&Method::POST, ["messages", id, "send"]) => {
            return send::send_draft(st, who, req, mailbox, id);
        }
        (&Method::POST, ["messages", id, "attachments"]) => {
            attachments::add_attachment(st, req, mailbox, id)
        }
        (&Method::POST, ["messages", id, "attachments", "createUploadSession"]) => {
            attachments::upload_session(st, req, mailbox, id)
        }
        (&Method::POST, ["sendMail"]) => return send::send_mail(st, who, req, mailbox),
        _ => {
            return error(
                405,
                "Request_BadRequest",
                &format!(
                    "The HTTP method '{}' is not allowed for this resource.",
                    req.method
                ),
            );
        }
    };
    r.unwrap_or_else(|e| store_error(&e))
}
