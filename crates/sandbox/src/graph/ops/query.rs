//! Which query options each Graph route takes: those it applies are let through, all others
//! are refused before the operation runs, so no part of a URL is ever skipped.
//!
//! - A name that is no OData system query option (`$foo`) or custom option of the route:
//!   400 `BadRequest`, "The query parameter '…' is not supported." (OData's URI parser).
//! - An OData system option (`$search`, `$expand`, `$count`, …) the sandbox does not apply on
//!   that route: 400 `ErrorInvalidUrlQuery` (Outlook's code for a query option a resource does
//!   not take), the message naming the option.
//!
//! The table is the one of [`crate::fidelity`].

use crate::graph::{GReq, GResp, error};

/// OData's system query options (v4, plus Graph's `$skiptoken` and `$deltatoken`).
const SYSTEM: &[&str] = &[
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$skip",
    "$count",
    "$search",
    "$expand",
    "$skiptoken",
    "$deltatoken",
    "$format",
    "$levels",
    "$apply",
    "$compute",
    "$index",
    "$schemaversion",
    "$id",
];

/// The options a route applies (by method and path after the mailbox).
fn allowed(method: &http::Method, rest: &[&str]) -> &'static [&'static str] {
    use http::Method as M;
    match (method, rest) {
        (&M::GET, ["mailFolders"] | ["mailFolders", _, "childFolders"]) => &[
            "$select",
            "$filter",
            "$top",
            "$skip",
            "$count",
            "includeHiddenFolders",
        ],
        (&M::GET, ["mailFolders", _]) => &["$select"],
        (&M::GET, ["messages"] | ["mailFolders", _, "messages"]) => {
            &["$select", "$filter", "$orderby", "$top", "$skip", "$count"]
        }
        (&M::GET, ["mailFolders", _, "messages", "delta"]) => &[
            "$select",
            "$top",
            "$filter",
            "$skiptoken",
            "$deltatoken",
            "changeType",
        ],
        (&M::GET | &M::PATCH, ["messages", _]) => &["$select"],
        _ => &[],
    }
}

/// `Err` is the answer refusing the first option the route does not apply.
pub(super) fn check(req: &GReq, rest: &[&str]) -> Result<(), GResp> {
    let ok = allowed(&req.method, rest);
    for (k, _) in req.query_pairs() {
        if ok.iter().any(|a| a.eq_ignore_ascii_case(&k)) {
            continue;
        }
        let lower = k.to_ascii_lowercase();
        return Err(if SYSTEM.contains(&lower.as_str()) {
            error(
                400,
                "ErrorInvalidUrlQuery",
                &format!(
                    "The query parameter '{k}' is not supported on this resource by the sandbox."
                ),
            )
        } else {
            error(
                400,
                "BadRequest",
                &format!("The query parameter '{k}' is not supported."),
            )
        });
    }
    Ok(())
}

/// `$count`: `Ok(true)` for `true`, `Ok(false)` when absent or `false`.
pub(super) fn count(req: &GReq) -> Result<bool, GResp> {
    match req.param("$count").as_deref() {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(error(
            400,
            "BadRequest",
            &format!("Invalid value '{v}' for $count: it must be true or false."),
        )),
    }
}

/// `$top` (1 to 1000, 10 when absent) and `$skip` (0 when absent) of a listing.
pub(super) fn paging(req: &GReq) -> Result<(usize, usize), GResp> {
    let bad = |msg: &str| error(400, "BadRequest", msg);
    let top = match req.param("$top").map(|t| t.parse::<usize>()) {
        None => 10,
        Some(Ok(t)) if (1..=1000).contains(&t) => t,
        Some(_) => return Err(bad("Invalid $top: it must be between 1 and 1000.")),
    };
    let skip = match req.param("$skip").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(s)) => s,
        Some(Err(_)) => return Err(bad("Invalid $skip.")),
    };
    Ok((top, skip))
}
