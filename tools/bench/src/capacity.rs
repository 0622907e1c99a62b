//! The sandbox's serving capacity for the ingest request mix, and the token-provider test.
//!
//! The load generator is a small reqwest loop rather than `wrk`/`oha`: the mix needs a bearer
//! token, JSON `$batch` and SOAP POST bodies built from ids listed first, which `wrk` would need
//! Lua scripts for and `oha` (not packaged in Debian) would need a long cargo build for. The
//! requests are built with graph-mail's and ews-mail's public request builders, and answers are
//! only read, not parsed, so the generator spends as little CPU as it can beside the sandbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ews_mail::ops::{FindItem, GetItem, UpdateItem};
use ews_mail::soap::{Operation, RequestHeader, envelope, parse_envelope};
use ews_mail::types::{FolderId, ItemId};
use graph_mail::api::{self, BatchItem};

use crate::ingest::{EWS_SCOPE, GRAPH_SCOPE, http_client, token_provider};
use crate::report::{
    Capacity, EWS_MAX_BATCH, EWS_MAX_PAGE, GRAPH_MAX_BATCH, GRAPH_MAX_PAGE, Rate, TokenTest,
};
use crate::sbx::{CLIENT_ID, DEMO_SECRET, SandboxProc, TENANT};

/// A request to repeat: built fresh each time.
type Make = Arc<dyn Fn(usize) -> Result<reqwest::Request, String> + Send + Sync>;

async fn measure(
    http: &reqwest::Client,
    name: &str,
    make: Make,
    concurrency: usize,
    duration: Duration,
) -> Rate {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (http, make, ok, failed) = (http.clone(), make.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = w;
            while start.elapsed() < duration {
                let good = match make(k) {
                    Ok(req) => match http.execute(req).await {
                        Ok(r) => {
                            let s = r.status().is_success();
                            r.bytes().await.is_ok() && s
                        }
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                k += concurrency;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let requests = ok.load(Ordering::Relaxed);
    Rate {
        request: name.to_owned(),
        requests,
        failed: failed.load(Ordering::Relaxed),
        seconds,
        per_sec: requests as f64 / seconds,
    }
}

fn with_auth(
    req: http::Request<Vec<u8>>,
    auth: &reqwest::header::HeaderValue,
) -> Result<reqwest::Request, String> {
    let mut r = reqwest::Request::try_from(req).map_err(|e| e.to_string())?;
    r.headers_mut()
        .insert(reqwest::header::AUTHORIZATION, auth.clone());
    Ok(r)
}

fn soap<O: Operation>(
    base: &str,
    op: &O,
    mailbox: &str,
    auth: &reqwest::header::HeaderValue,
) -> Result<reqwest::Request, String> {
    let header = RequestHeader {
        impersonate: Some(mailbox.to_owned()),
        ..RequestHeader::default()
    };
    let body = envelope(op, &header);
    let req = http::Request::post(format!("{base}/EWS/Exchange.asmx"))
        .header("content-type", "text/xml; charset=utf-8")
        .body(body.into_bytes())
        .map_err(|e| e.to_string())?;
    with_auth(req, auth)
}

/// Measures each request kind of the minimal ingest mix for `seconds` at `concurrency` against
/// a seeded sandbox, and derives the messages per second the sandbox can serve for each
/// protocol's mix. Mark-read requests run last (they change what the unread listings return).
pub async fn capacity(
    sb: &SandboxProc,
    mailbox: &str,
    mailbox_messages: u64,
    concurrency: usize,
    seconds: f64,
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
    let d = Duration::from_secs_f64(seconds);

    // Ids to work on: one full Graph page and one full EWS page.
    let list = with_auth(
        api::list_unread(&ep, "inbox", GRAPH_MAX_PAGE as usize).map_err(|e| e.to_string())?,
        &gauth,
    )?;
    let body = http
        .execute(list)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let page = api::parse_message_page(&ep, &body).map_err(|e| e.to_string())?;
    let gids: Arc<Vec<String>> = Arc::new(page.messages.into_iter().map(|m| m.id).collect());
    let inbox = FolderId::distinguished("inbox");
    let find = soap(
        &base,
        &FindItem::unread(inbox.clone(), 0, EWS_MAX_PAGE as u32),
        mailbox,
        &eauth,
    )?;
    let body = http
        .execute(find)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let env = parse_envelope(&body, 256 << 20).map_err(|e| e.to_string())?;
    let found = FindItem::parse(&env.body).map_err(|e| e.to_string())?;
    let eids: Arc<Vec<ItemId>> = Arc::new(
        found
            .items
            .iter()
            .filter_map(|i| i.id.as_ref().map(|x| ItemId::new(x.id.clone())))
            .collect(),
    );
    if gids.len() < GRAPH_MAX_BATCH as usize || eids.len() < EWS_MAX_BATCH as usize {
        return Err(format!(
            "the mailbox is too small for the capacity test ({} Graph, {} EWS ids)",
            gids.len(),
            eids.len()
        ));
    }
    let graph_batch = |ids: Arc<Vec<String>>, ep: graph_mail::Endpoint, mark: bool| -> Make {
        let auth = gauth.clone();
        Arc::new(move |k| {
            let start = (k * GRAPH_MAX_BATCH as usize) % (ids.len() - GRAPH_MAX_BATCH as usize + 1);
            let items = ids[start..start + GRAPH_MAX_BATCH as usize]
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let r = if mark {
                        api::mark_read(&ep, id)
                    } else {
                        api::get_mime(&ep, id)
                    };
                    r.and_then(|r| BatchItem::from_request(&ep, i.to_string(), &r))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            with_auth(api::batch(&ep, &items).map_err(|e| e.to_string())?, &auth)
        })
    };
    let ews_items = |k: usize, ids: &[ItemId]| -> Vec<ItemId> {
        let b = EWS_MAX_BATCH as usize;
        let start = (k * b) % (ids.len() - b + 1);
        ids[start..start + b].to_vec()
    };
    let mut rates = Vec::new();
    {
        let (ep, auth) = (ep.clone(), gauth.clone());
        let make: Make = Arc::new(move |_| {
            with_auth(
                api::list_unread(&ep, "inbox", GRAPH_MAX_PAGE as usize)
                    .map_err(|e| e.to_string())?,
                &auth,
            )
        });
        rates.push(
            measure(
                &http,
                &format!("Graph list page ($top={GRAPH_MAX_PAGE})"),
                make,
                concurrency,
                d,
            )
            .await,
        );
    }
    rates.push(
        measure(
            &http,
            &format!("Graph $batch of {GRAPH_MAX_BATCH} MIME GETs"),
            graph_batch(gids.clone(), ep.clone(), false),
            concurrency,
            d,
        )
        .await,
    );
    {
        let (base, mb, auth, inbox) = (
            base.clone(),
            mailbox.to_owned(),
            eauth.clone(),
            inbox.clone(),
        );
        let make: Make = Arc::new(move |_| {
            soap(
                &base,
                &FindItem::unread(inbox.clone(), 0, EWS_MAX_PAGE as u32),
                &mb,
                &auth,
            )
        });
        rates.push(
            measure(
                &http,
                &format!("EWS FindItem ({EWS_MAX_PAGE} per page)"),
                make,
                concurrency,
                d,
            )
            .await,
        );
    }
    {
        let (base, mb, auth, ids) = (
            base.clone(),
            mailbox.to_owned(),
            eauth.clone(),
            eids.clone(),
        );
        let make: Make =
            Arc::new(move |k| soap(&base, &GetItem::with_mime(ews_items(k, &ids)), &mb, &auth));
        rates.push(
            measure(
                &http,
                &format!("EWS GetItem with MIME ({EWS_MAX_BATCH} items)"),
                make,
                concurrency,
                d,
            )
            .await,
        );
    }
    rates.push(
        measure(
            &http,
            &format!("Graph $batch of {GRAPH_MAX_BATCH} PATCH isRead"),
            graph_batch(gids.clone(), ep.clone(), true),
            concurrency,
            d,
        )
        .await,
    );
    {
        let (base, mb, auth, ids) = (
            base.clone(),
            mailbox.to_owned(),
            eauth.clone(),
            eids.clone(),
        );
        let make: Make = Arc::new(move |k| {
            soap(
                &base,
                &UpdateItem::mark_read(ews_items(k, &ids)),
                &mb,
                &auth,
            )
        });
        rates.push(
            measure(
                &http,
                &format!("EWS UpdateItem isRead ({EWS_MAX_BATCH} items)"),
                make,
                concurrency,
                d,
            )
            .await,
        );
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
        tool: format!("m365-bench's reqwest load generator ({seconds:.0} s per request kind)"),
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
