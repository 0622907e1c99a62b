//! The SOAP headers of an EWS request: which are applied, which accepted because they change
//! nothing the sandbox answers, and which refused (never skipped).
//!
//! - `RequestServerVersion`: checked against the schema's versions (`ErrorInvalidServerVersion`).
//! - `ExchangeImpersonation`: selects the mailbox (read in [`super::handle`]).
//! - `TimeZoneContext`: accepted. It applies to times without a zone and to calendar items:
//!   the sandbox holds no calendar items, answers item times in UTC (with `Z`) as Exchange does,
//!   and refuses zoneless times in restrictions.
//! - `MailboxCulture`: accepted; a valid culture name (`en-US`) is required and the sandbox's
//!   texts are English whatever it says.
//! - `DateTimePrecision`: `Seconds` accepted (the sandbox's times are whole seconds);
//!   `Milliseconds` refused (`ErrorInvalidRequest`).
//! - `ManagementRole`: refused (`ErrorInvalidManagementRoleHeader`): RBAC role headers are not
//!   modelled.
//! - `SerializedSecurityContext`: refused (`ErrorInvalidSerializedAccessToken`).
//! - Any other header element: `ErrorSchemaValidation`, as the schema allows no other.

use super::Fault;
use super::xml::Element;

pub(super) fn check(header: Option<&Element>) -> Result<(), Fault> {
    for h in header.map(|h| h.children.as_slice()).unwrap_or_default() {
        match h.name.as_str() {
            "RequestServerVersion" | "ExchangeImpersonation" | "TimeZoneContext" => {}
            "MailboxCulture" => {
                let c = h.text.trim();
                let valid = !c.is_empty()
                    && c.len() <= 20
                    && c.split('-')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
                if !valid {
                    return Err(Fault::new(
                        "ErrorUnsupportedCulture",
                        format!("The culture '{c}' is not supported."),
                    ));
                }
            }
            "DateTimePrecision" => match h.text.trim() {
                "Seconds" => {}
                "Milliseconds" => {
                    return Err(Fault::new(
                        "ErrorInvalidRequest",
                        "The sandbox does not implement DateTimePrecision Milliseconds: its times are whole seconds.",
                    ));
                }
                other => {
                    return Err(Fault::schema(format!(
                        "Invalid DateTimePrecision '{other}'."
                    )));
                }
            },
            "ManagementRole" => {
                return Err(Fault::new(
                    "ErrorInvalidManagementRoleHeader",
                    "The sandbox does not implement the ManagementRole header (RBAC roles are not modelled).",
                ));
            }
            "SerializedSecurityContext" => {
                return Err(Fault::new(
                    "ErrorInvalidSerializedAccessToken",
                    "The sandbox does not accept SerializedSecurityContext.",
                ));
            }
            other => {
                return Err(Fault::schema(format!(
                    "The SOAP header '{other}' is not an EWS header."
                )));
            }
        }
    }
    Ok(())
}
