//! The pages' frame: escaping, the layout with its inline CSS, and the security headers every
//! answer carries.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Text made safe for HTML text and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}\
header{background:#0f3d6e;color:#fff;padding:.6em 1.2em;display:flex;align-items:center;gap:1.2em}\
header a{color:#fff}header form{margin-left:auto}main{padding:1em 1.5em;max-width:70em}\
table{border-collapse:collapse;background:#fff;width:100%}th,td{border:1px solid #d0d4da;padding:.4em .6em;text-align:left;vertical-align:top}\
th{background:#eef1f5}.online{color:#0a6b2a;font-weight:bold}.offline{color:#a4161a;font-weight:bold}\
button{padding:.35em .9em;border:1px solid #0f3d6e;background:#fff;color:#0f3d6e;border-radius:3px;cursor:pointer}\
button.primary{background:#0f3d6e;color:#fff}button.ping{background:#1e7d3b;border-color:#1e7d3b;color:#fff;font-weight:bold}\
.box{background:#fff;border:1px solid #d0d4da;border-left:4px solid #0f3d6e;padding:.6em 1em;margin:1em 0}\
.box.bad{border-left-color:#a4161a}.box.good{border-left-color:#1e7d3b}\
pre{background:#111;color:#e6e6e6;padding:.8em;white-space:pre-wrap;word-break:break-all;font-size:.85em}\
label{margin-right:1em}small{color:#555}";

/// A whole page: `title`, the header with the logout button when `csrf` is known, and `body`.
pub(super) fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: &str) -> Response {
    render(status, title, csrf, "", body)
}

/// A page without the logout button, with `head` added to its `<head>`.
pub(super) fn page_with_head(status: StatusCode, title: &str, head: &str, body: &str) -> Response {
    render(status, title, None, head, body)
}

fn render(status: StatusCode, title: &str, csrf: Option<&str>, head: &str, body: &str) -> Response {
    let logout = csrf
        .map(|c| {
            format!(
                "<form method=\"post\" action=\"/console/logout\">{}<button>Sign out</button></form>",
                csrf_field(c)
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t} - m365mail console</title>\
         {head}<style>{CSS}</style></head><body><header><strong>m365mail console</strong>\
         <a href=\"/console/\">Sources</a><a href=\"/console/outbounds\">Outbounds</a>\
         <a href=\"/console/routing\">Routing</a>{logout}</header><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title)
    );
    with_headers((status, html).into_response())
}

/// The hidden form field that carries the session's CSRF token.
pub(super) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// `303 See Other` to `location`.
pub(super) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    with_headers(r)
}

/// A short plain answer (refusals).
pub(super) fn refuse(status: StatusCode, why: &str) -> Response {
    page(
        status,
        why,
        None,
        "<p><a href=\"/console/\">Back to the console</a></p>",
    )
}

/// The headers every answer carries: HTML, never cached, never framed, no script, no referrer
/// to other sites (a callback's address holds a code). `same-origin`, not `no-referrer`: under
/// `no-referrer` a browser sends `Origin: null` with the console's own forms, which the
/// `Origin` check must refuse.
pub(super) fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}
