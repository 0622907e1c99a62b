//! Look-ups that read no item: ResolveNames (the tenant's directory) and ConvertId.

use super::shared::{Msg, err, locate, response, xs_bool};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault};

/// ConvertId, as far as clients need it: one response message per source id, with the error
/// Exchange gives for a malformed or unknown id. exchangelib's version probe sends
/// `ConvertId` of a dummy id and reads the version from the header of the (error) answer; a
/// SOAP fault instead makes it retry with every older schema version down to Exchange2007.
/// The sandbox does not convert real ids between formats (a per-id `ErrorInvalidRequest`).
pub(super) fn convert_id(ctx: &Ctx, op: &Element) -> String {
    let msgs = op
        .child("SourceIds")
        .map(|s| s.children.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|el| match locate(ctx, el.attr("Id").unwrap_or(""), false) {
            Err(m) => m,
            Ok(_) => err(
                "ErrorInvalidRequest",
                "The sandbox does not convert item ids between formats.",
            ),
        })
        .collect();
    response("ConvertId", msgs)
}

/// ResolveNames against the tenant's directory, by exact address. `ReturnFullContactData`
/// true (contact data in the answer) and `ContactDataShape` are refused; `SearchScope` and
/// `ParentFolderIds` only choose contacts folders, and the sandbox's mailboxes have no contacts,
/// so `Contacts` alone finds nothing and the others search the directory.
pub(super) fn resolve_names(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let full = match op.attr("ReturnFullContactData").map(xs_bool) {
        Some(Some(b)) => b,
        _ => {
            return Err(Fault::new(
                "ErrorSchemaValidation",
                "ResolveNames needs ReturnFullContactData (xs:boolean).",
            ));
        }
    };
    if full || op.attr("ContactDataShape").is_some() {
        return Ok(response(
            "ResolveNames",
            vec![err(
                "ErrorInvalidRequest",
                "The sandbox does not implement ResolveNames with contact data (ReturnFullContactData true, ContactDataShape).",
            )],
        ));
    }
    let contacts_only = op.attr("SearchScope") == Some("Contacts");
    let entry = op
        .child_text("UnresolvedEntry")
        .unwrap_or("")
        .trim_start_matches("smtp:")
        .trim_start_matches("SMTP:");
    let found = {
        let tenant = ctx.state.tenant();
        tenant
            .mailbox(entry, ctx.state.clock().now_unix())
            .map(|m| (m.display_name.clone(), m.mail.clone()))
    };
    let found = found.filter(|_| !contacts_only);
    let msg = match found {
        None => err("ErrorNameResolutionNoResults", "No results were found."),
        Some((name, mail)) => {
            let mut w = Writer::new();
            w.start(
                "m:ResolutionSet",
                &[
                    ("TotalItemsInView", "1"),
                    ("IncludesLastItemInRange", "true"),
                ],
            );
            w.start("t:Resolution", &[]);
            w.start("t:Mailbox", &[]);
            w.text_element("t:Name", &name);
            w.text_element("t:EmailAddress", &mail);
            w.text_element("t:RoutingType", "SMTP");
            w.text_element("t:MailboxType", "Mailbox");
            w.end();
            w.end();
            w.end();
            Msg::Ok(w.finish())
        }
    };
    Ok(response("ResolveNames", vec![msg]))
}
