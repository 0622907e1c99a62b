//! The sandbox's serving capacity for the ingest request mix, and the token-provider test.
//!
//! The load tool is Debian's `wrk` (issue 5 item 8 asks for a load tool from crates.io or
//! Debian), run against the standalone TLS sandbox with `-H "Authorization: Bearer …"` and a
//! generated Lua script ([`crate::wrk`]) for the method, headers and POST bodies. The bodies are
//! made with graph-mail's and ews-mail's public request builders from ids listed first, and
//! rotate over the whole listed page so every message is touched.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ews_mail::ops::{FindItem, GetItem, UpdateItem};
use ews_mail::soap::{Operation, RequestHeader, envelope, parse_envelope};
use ews_mail::types::{FolderId, ItemId};
use graph_mail::api::{self, BatchItem, GraphOperation};
use msauth::AuthorizationHeader as _;

use crate::ingest::{EWS_SCOPE, GRAPH_SCOPE, http_client, token_provider};
use crate::report::{
    Capacity, EWS_MAX_BATCH, EWS_MAX_PAGE, GRAPH_MAX_BATCH, GRAPH_MAX_PAGE, Rate, TokenTest,
};
use crate::sbx::{CLIENT_ID, DEMO_SECRET, SandboxProc, TENANT};
use crate::wrk::{self, LoadRequest, WrkOptions};

type Req = http::Request<Vec<u8>>;

fn with_auth(
    req: http::Request<Vec<u8>>,
    auth: &reqwest::header::HeaderValue,
) -> Result<reqwest::Request, String> {
    let mut r = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
    r.headers_mut()
        .insert(reqwest::header::AUTHORIZATION, auth.clone());
    Ok(r)
}

/// An EWS request (without its Authorization header) impersonating `mailbox`.
fn soap<O: Operation>(base: &str, op: &O, mailbox: &str) -> Result<Req, String> {
    let header = RequestHeader::default().with_impersonation(mailbox);
    http::Request::post(format!("{base}/EWS/Exchange.asmx"))
        .header("content-type", "text/xml; charset=utf-8")
        .body(envelope(op, &header).into_bytes())
        .map_err(|e| e.to_string())
}

/// The ids cut into consecutive chunks of `size` (a trailing short chunk left out).
fn chunks<T: Clone>(ids: &[T], size: usize) -> impl Iterator<Item = Vec<T>> + '_ {
    ids.chunks_exact(size).map(<[T]>::to_vec)
}

/// One `$batch` of `size` MIME GETs (or PATCH isRead) per chunk of `ids`.
fn graph_batches(
    ep: &graph_mail::Endpoint,
    ids: &[String],
    mark: bool,
) -> Result<Vec<Req>, String> {
    chunks(ids, GRAPH_MAX_BATCH as usize)
        .map(|chunk| {
            let items = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    if mark {
                        BatchItem::from_op(ep, i.to_string(), &api::MarkRead::new(id))
                    } else {
                        BatchItem::from_op(ep, i.to_string(), &api::GetMime::new(id))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            api::JsonBatch::new(items, "capacity", api::Idempotency::Safe)
                .request(ep)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Measures each request kind of the minimal ingest mix with wrk for `seconds` at `concurrency`
/// connections against a seeded sandbox, and derives the messages per second the sandbox can
/// serve for each protocol's mix. Mark-read requests run last (they change what the unread
/// listings return). wrk's scripts and reports are kept in `work`.
pub async fn capacity(
    sb: &SandboxProc,
    mailbox: &str,
    mailbox_messages: u64,
    concurrency: usize,
    seconds: u64,
    work: &Path,
) -> Result<Capacity, String> {
    let http = http_client(Some(&sb.ca))?;
    let base = sb.base_url.trim_end_matches('/').to_owned();
    let secret = || msauth::ClientSecret::new(DEMO_SECRET.to_owned());
    let graph_tok = token_provider(
        &base,
        TENANT,
        CLIENT_ID,
        secret(),
        GRAPH_SCOPE,
        http.clone(),
    )?
    .access_token()
    .await
    .map_err(|e| e.to_string())?;
    let ews_tok = token_provider(&base, TENANT, CLIENT_ID, secret(), EWS_SCOPE, http.clone())?
        .access_token()
        .await
        .map_err(|e| e.to_string())?;
    let gauth = graph_tok
        .authorization_header()
        .map_err(|e| e.to_string())?;
    let eauth = ews_tok.authorization_header().map_err(|e| e.to_string())?;
    let ep =
        graph_mail::Endpoint::custom(&format!("{base}/v1.0"), graph_mail::Mailbox::user(mailbox))
            .map_err(|e| e.to_string())?;

    // Ids to work on: one full Graph page and one full EWS page.
    let list = api::ListUnread::new("inbox", GRAPH_MAX_PAGE as usize)
        .request(&ep)
        .map_err(|e| e.to_string())?;
    let body = http
        .execute(with_auth(list.clone(), &gauth)?)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let page = api::parse_message_page(&ep, &body).map_err(|e| e.to_string())?;
    let gids: Vec<String> = page.messages.into_iter().map(|m| m.id).collect();
    let find = soap(
        &base,
        &FindItem::unread(FolderId::distinguished("inbox"), 0, EWS_MAX_PAGE as u32),
        mailbox,
    )?;
    let body = http
        .execute(with_auth(find.clone(), &eauth)?)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let env = parse_envelope(&body, 256 << 20).map_err(|e| e.to_string())?;
    let found = FindItem::parse(&env.body).map_err(|e| e.to_string())?;
    let eids: Vec<ItemId> = found
        .items
        .iter()
        .filter_map(|i| i.id.as_ref().map(|x| ItemId::new(x.id.clone())))
        .collect();
    if gids.len() < GRAPH_MAX_BATCH as usize || eids.len() < EWS_MAX_BATCH as usize {
        return Err(format!(
            "the mailbox is too small for the capacity test ({} Graph, {} EWS ids)",
            gids.len(),
            eids.len()
        ));
    }
    let ews_ops = |update: bool| -> Result<Vec<Req>, String> {
        chunks(&eids, EWS_MAX_BATCH as usize)
            .map(|ids| {
                if update {
                    soap(&base, &UpdateItem::mark_read(ids), mailbox)
                } else {
                    soap(&base, &GetItem::with_mime(ids), mailbox)
                }
            })
            .collect()
    };
    // In order: the reads, then the mark-read requests.
    let kinds: Vec<(String, Vec<Req>, &http::HeaderValue)> = vec![
        (
            format!("Graph list page ($top={GRAPH_MAX_PAGE})"),
            vec![list],
            &gauth,
        ),
        (
            format!("Graph $batch of {GRAPH_MAX_BATCH} MIME GETs"),
            graph_batches(&ep, &gids, false)?,
            &gauth,
        ),
        (
            format!("EWS FindItem ({EWS_MAX_PAGE} per page)"),
            vec![find],
            &eauth,
        ),
        (
            format!("EWS GetItem with MIME ({EWS_MAX_BATCH} items)"),
            ews_ops(false)?,
            &eauth,
        ),
        (
            format!("Graph $batch of {GRAPH_MAX_BATCH} PATCH isRead"),
            graph_batches(&ep, &gids, true)?,
            &gauth,
        ),
        (
            format!("EWS UpdateItem isRead ({EWS_MAX_BATCH} items)"),
            ews_ops(true)?,
            &eauth,
        ),
    ];
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let opts = WrkOptions {
        connections: concurrency,
        threads: concurrency.min(2),
        seconds,
        timeout_seconds: 30,
    };
    let mut rates = Vec::new();
    for (i, (name, reqs, auth)) in kinds.into_iter().enumerate() {
        let load = LoadRequest::from_requests(&reqs)
            .ok_or_else(|| format!("{name}: the requests differ in more than their bodies"))?;
        let (auth, stem) = (auth.clone(), work.join(format!("wrk-{}", i + 1)));
        let label = name.clone();
        let stats =
            tokio::task::spawn_blocking(move || wrk::run(&load, &label, &auth, opts, &stem))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{name}: {e}"))?;
        let rate = Rate::from_wrk(name, &stats);
        eprintln!(
            "capacity: {}: {:.0}/s, {} failed, p50 {:.1} ms",
            rate.request, rate.per_sec, rate.failed, stats.latency.p50_ms
        );
        rates.push(rate);
    }
    let per = |i: usize| rates.get(i).map_or(0.0, |r| r.per_sec);
    let ceiling = |shares: [(f64, f64); 3]| {
        let t: f64 = shares
            .iter()
            .map(|(share, rate)| {
                if *rate > 0.0 {
                    share / rate
                } else {
                    f64::INFINITY
                }
            })
            .sum();
        if t.is_finite() && t > 0.0 {
            1.0 / t
        } else {
            0.0
        }
    };
    let graph = ceiling([
        (1.0 / GRAPH_MAX_PAGE as f64, per(0)),
        (1.0 / GRAPH_MAX_BATCH as f64, per(1)),
        (1.0 / GRAPH_MAX_BATCH as f64, per(4)),
    ]);
    let ews = ceiling([
        (1.0 / EWS_MAX_PAGE as f64, per(2)),
        (1.0 / EWS_MAX_BATCH as f64, per(3)),
        (1.0 / EWS_MAX_BATCH as f64, per(5)),
    ]);
    Ok(Capacity {
        tool: format!(
            "wrk {} ({seconds} s per request kind, {} threads, `--latency`; POST bodies from a \
             generated Lua script, rotating over the listed ids; scripts and raw output kept as \
             `capacity/wrk-*.lua` and `wrk-*.txt` in the work directory)",
            wrk::version().unwrap_or_else(|| "(version unknown)".into()),
            opts.threads
        ),
        concurrency,
        mailbox_messages,
        rates,
        graph_ceiling_msgs_per_sec: graph,
        ews_ceiling_msgs_per_sec: ews,
    })
}

/// `callers` concurrent `access_token()` calls on one msauth provider; then the provider's clock
/// moves past the token's lifetime and the same callers ask again. Token requests come from the
/// sandbox's request log (cleared before each round).
pub async fn token_test(sb: &SandboxProc, callers: usize) -> Result<TokenTest, String> {
    let http = http_client(Some(&sb.ca))?;
    let base = sb.base_url.trim_end_matches('/').to_owned();
    let clock = msauth::ManualClock::new(std::time::SystemTime::now());
    let tenant = msauth::Tenant::parse(TENANT).map_err(|e| e.to_string())?;
    let authority =
        msauth::Authority::microsoft_layout(&base, tenant).map_err(|e| e.to_string())?;
    let provider = msauth::TokenProvider::builder(authority, CLIENT_ID)
        .credential(msauth::ClientCredential::Secret(msauth::ClientSecret::new(
            DEMO_SECRET.to_owned(),
        )))
        .scopes([GRAPH_SCOPE])
        .clock(Arc::new(clock.clone()))
        .http(Arc::new(msauth::ReqwestClient::from_client(http)))
        .build()
        .map_err(|e| e.to_string())?;
    let round = |p: msauth::TokenProvider| async move {
        let mut tasks = Vec::with_capacity(callers);
        for _ in 0..callers {
            let p = p.clone();
            tasks.push(tokio::spawn(async move { p.access_token().await }));
        }
        let mut tokens = std::collections::BTreeSet::new();
        let mut ok = 0;
        for t in tasks {
            if let Ok(Ok(tok)) = t.await {
                ok += 1;
                tokens.insert(tok.secret().to_owned());
            }
        }
        (ok, tokens.len())
    };
    sb.clear_requests().await?;
    let (succeeded, distinct_tokens) = round(provider.clone()).await;
    let (_, token_requests, _) = crate::sbx::summarize_requests(&sb.requests().await?);
    // Past the sandbox's access-token lifetime (3,599 s in the demo seed).
    clock.advance(Duration::from_secs(3_700));
    sb.clear_requests().await?;
    let _ = round(provider).await;
    let (_, after, _) = crate::sbx::summarize_requests(&sb.requests().await?);
    Ok(TokenTest {
        callers,
        succeeded,
        distinct_tokens,
        token_requests,
        token_requests_after_expiry: after,
    })
}
