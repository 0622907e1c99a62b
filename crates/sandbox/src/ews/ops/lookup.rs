//! Look-ups that read no item: ResolveNames (the tenant's directory) and ConvertId.

use super::shared::{Msg, err, locate, response, xs_bool};
use crate::ews::xml::{Element, Writer};
use crate::ews::{Ctx, Fault, NS_MESSAGES, NS_TYPES};

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

/// ResolveNames against the tenant's directory: by address, or else by ambiguous name
/// resolution (a prefix of a display name, of a word of it, or of an address's local part;
/// several matches are a `Warning` with `ErrorNameResolutionMultipleResults`, as in Exchange). `ReturnFullContactData`
/// true (contact data in the answer) and `ContactDataShape` are refused; `SearchScope` and
/// `ParentFolderIds` only choose contacts folders, and the sandbox's mailboxes have no contacts,
/// so `Contacts` alone finds nothing and the others search the directory.
pub(super) fn resolve_names(ctx: &Ctx, op: &Element) -> Result<String, Fault> {
    let full = match op.attr("ReturnFullContactData").map(xs_bool) {
        Some(Some(b)) => b,
        _ => {
            return Err(Fault::schema(
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
        .trim_start_matches("SMTP:")
        .trim();
    let found: Vec<(String, String)> = if contacts_only || entry.is_empty() {
        Vec::new()
    } else {
        let tenant = ctx.state.tenant();
        let now = ctx.state.clock().now_unix();
        match tenant.mailbox(entry, now) {
            Some(m) => vec![(m.display_name.clone(), m.mail.clone())],
            // Ambiguous name resolution: a prefix of the display name, of a word of it, or of
            // the address's local part.
            None => {
                let e = entry.to_lowercase();
                tenant
                    .mailboxes
                    .iter()
                    .filter(|m| {
                        let name = m.display_name.to_lowercase();
                        let local = m.mail.split('@').next().unwrap_or("").to_lowercase();
                        name.starts_with(&e)
                            || name.split_whitespace().any(|w| w.starts_with(&e))
                            || local.starts_with(&e)
                    })
                    .take(100)
                    .map(|m| (m.display_name.clone(), m.mail.clone()))
                    .collect()
            }
        }
    };
    if found.is_empty() {
        return Ok(response(
            "ResolveNames",
            vec![err(
                "ErrorNameResolutionNoResults",
                "No results were found.",
            )],
        ));
    }
    let n = found.len().to_string();
    let mut w = Writer::new();
    w.start(
        "m:ResolutionSet",
        &[
            ("TotalItemsInView", &n),
            ("IncludesLastItemInRange", "true"),
        ],
    );
    for (name, mail) in &found {
        w.start("t:Resolution", &[]);
        w.start("t:Mailbox", &[]);
        w.text_element("t:Name", name);
        w.text_element("t:EmailAddress", mail);
        w.text_element("t:RoutingType", "SMTP");
        w.text_element("t:MailboxType", "Mailbox");
        w.end();
        w.end();
    }
    w.end();
    let set = w.finish();
    if found.len() == 1 {
        return Ok(response("ResolveNames", vec![Msg::Ok(set)]));
    }
    // Several: Exchange answers them all with a warning.
    let mut w = Writer::with_capacity(set.len() + 600);
    w.start(
        "m:ResolveNamesResponse",
        &[("xmlns:m", NS_MESSAGES), ("xmlns:t", NS_TYPES)],
    );
    w.start("m:ResponseMessages", &[]);
    w.start(
        "m:ResolveNamesResponseMessage",
        &[("ResponseClass", "Warning")],
    );
    w.text_element("m:MessageText", "Multiple results were found.");
    w.text_element("m:ResponseCode", "ErrorNameResolutionMultipleResults");
    w.text_element("m:DescriptiveLinkKey", "0");
    w.raw(&set);
    w.end();
    w.end();
    w.end();
    Ok(w.finish())
}
