//! # ews-mail: read and send Exchange mail through Exchange Web Services
//!
//! EWS is how to reach on-premises Exchange (2016, 2019, Subscription Edition) and Exchange
//! Online tenants that still allow it (see the retirement notes below). This crate is a complete
//! [`connector::MessageSource`] ([`EwsSource`]) and [`connector::MessageOutbound`]
//! ([`EwsOutbound`]) over SOAP, written with quick-xml.
//!
//! ## Layers
//!
//! * [`ops`]: every operation (FindItem, GetItem, GetFolder, UpdateItem, MoveItem, DeleteItem,
//!   CreateItem, SendItem, SyncFolderItems, FindFolder, CreateFolder) is a value implementing
//!   [`soap::Operation`]: it writes its request element and parses its response element. No
//!   I/O, so every request is checked against Microsoft's schema in the tests.
//! * [`soap`]: the envelope (`RequestServerVersion`, `ExchangeImpersonation`) and the response
//!   reader (SOAP faults, `ResponseClass`/`ResponseCode` per item).
//! * [`xml`]: a size-capped reader that refuses DOCTYPEs and entity declarations, and reads
//!   leniently (date-times without a zone, empty values, mailboxes without an address, several
//!   `ReplyTo`, free-form `RoutingType`).
//! * [`EwsClient`] runs operations over reqwest with bearer tokens (delegated
//!   `EWS.AccessAsUser.All`, or app-only `full_access_as_app` with impersonation), Basic
//!   authentication as an explicit on-premises opt-in, `X-AnchorMailbox` on every request,
//!   retries for `ErrorServerBusy` (honouring `BackOffMilliseconds`), 503 and transient codes,
//!   and one token refresh on 401. Its failures are [`EwsError`]s, converted into
//!   [`connector::Error`] with every detail kept.
//! * [`check_endpoint`]: which URLs credentials may go to (`https`, or `http` on loopback
//!   only).
//! * [`EwsSource`] lists up to 1,000 unread ids per FindItem ([`EwsSource::with_max_batch`])
//!   and downloads and acknowledges them 100 per request, the fewest round trips EWS allows
//!   (see its notes on memory); [`EwsOutbound`] sends.
//! * [`sync`]: `SyncFolderItems` — the sync mode of [`EwsSource`]
//!   ([`EwsSource::with_sync_state`]: new mail found through SyncFolderItems from a saved state,
//!   which catches up whatever arrived while nothing watched) and a raw helper.
//! * [`streaming`]: streaming notifications — a [`streaming::StreamingWatcher`] keeps a
//!   GetStreamingEvents connection open and wakes the source when new mail arrives (a hint for
//!   its next pass, never the message; with a sync-mode source that pass catches up).
//! * [`autodiscover`]: from an email address to the EWS URL (JSON v2 and POX), time-bounded,
//!   asked over `https`, answers capped at [`autodiscover::MAX_ANSWER`] and checked before use.
//!
//! ## Where the token may go
//!
//! An app-only token (`full_access_as_app`) opens every mailbox of the tenant, so:
//!
//! * the endpoint must be `https://…/EWS/Exchange.asmx`; plain `http` is accepted only on a
//!   loopback host (127.0.0.0/8, `::1`, `localhost`: the sandbox, a local test server).
//!   [`EwsClient::new`] and [`EwsClient::with_http`] refuse anything else with a
//!   configuration error naming the host, before a token is asked for
//!   ([`EndpointError`] is its source);
//! * redirects are not followed ([`EwsError::Redirected`] if a caller's own reqwest client
//!   followed one);
//! * an autodiscover answer must name an `https` URL on the mailbox's domain (or a subdomain),
//!   the autodiscover host, Exchange Online (`outlook.office365.com`, `outlook.office.com`) or
//!   a host allowed with [`autodiscover::Autodiscover::with_allowed_host`].
//!
//! ## Writing and reading without a server
//!
//! ```
//! use ews_mail::ops::FindItem;
//! use ews_mail::soap::{envelope, parse_envelope, Operation, RequestHeader};
//! use ews_mail::types::FolderId;
//!
//! let op = FindItem::unread(FolderId::distinguished_in("inbox", "helpdesk@contoso.example"), 0, 50);
//! let request = envelope(&op, &RequestHeader::default());
//! assert!(request.contains(r#"<t:FieldURI FieldURI="message:IsRead"/>"#));
//!
//! let response = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
//!   <m:FindItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
//!       xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
//!     <m:ResponseMessages><m:FindItemResponseMessage ResponseClass="Success">
//!       <m:ResponseCode>NoError</m:ResponseCode>
//!       <m:RootFolder IndexedPagingOffset="1" TotalItemsInView="2" IncludesLastItemInRange="false">
//!         <t:Items><t:Message><t:ItemId Id="AAMk1" ChangeKey="CQAA"/>
//!           <t:DateTimeReceived>2026-03-02T10:00:00</t:DateTimeReceived></t:Message></t:Items>
//!       </m:RootFolder>
//!     </m:FindItemResponseMessage></m:ResponseMessages>
//!   </m:FindItemResponse></s:Body></s:Envelope>"#;
//! let env = parse_envelope(response, 1 << 20)?;
//! let page = FindItem::parse(&env.body)?;
//! assert_eq!(page.items.len(), 1);
//! assert_eq!(page.next_offset, Some(1));
//! assert!(!page.includes_last);
//! # Ok::<(), ews_mail::EwsError>(())
//! ```
//!
//! ## A message source for an app-only token
//!
//! ```no_run
//! use std::sync::Arc;
//! use connector::{Acknowledgement, MessageSource};
//! use ews_mail::{AccessToken, Credentials, EwsClient, EwsConfig, EwsSource, MailboxAccess, StaticToken};
//!
//! # async fn run(token: String) -> Result<(), connector::Error> {
//! let cfg = EwsConfig::new(
//!     ews_mail::EXCHANGE_ONLINE.parse().expect("a URL"),
//!     Credentials::Bearer(Arc::new(StaticToken(AccessToken::new(token)))),
//!     // full_access_as_app: every request impersonates the pickup mailbox.
//!     MailboxAccess::Impersonate("helpdesk@contoso.com".into()),
//! );
//! let source = EwsSource::new(EwsClient::new(cfg)?);
//! println!("{}", source.ping().await);
//! let batch = source.fetch(None, 50).await?;
//! let acks: Vec<_> = batch.messages.iter().map(|m| (m.id.clone(), Acknowledgement::MarkRead)).collect();
//! for r in source.acknowledge_many(&acks).await { r?; }
//! # Ok(()) }
//! ```
//!
//! Sovereign clouds have their own Exchange Online host and token audience:
//! [`exchange_online`]`(cloud)` gives the EWS URL (`https://outlook.office365.us/…` for GCC
//! High) and msauth's `cloud.ews().app_scope()` the matching scope.
//!
//! With msauth, pass its `TokenProvider` itself instead of a static token (it is a
//! [`TokenSource`], the workspace's one token seam in `connector`): a 401 then triggers one
//! refresh, carrying the claims challenge of the `WWW-Authenticate` header if there is one,
//! and a persistent 401 is diagnosed ("legacy EWS connections do not work with user consent":
//! delegated EWS needs *admin* consent). A token endpoint that is throttled or unreachable is a
//! retryable error (`Throttled`/`Transient`), not an authentication failure.
//!
//! ## EWS in Exchange Online is being retired
//!
//! From 1 October 2026 Microsoft disables EWS tenant by tenant unless the organisation sets
//! `EwsEnabled` and lists the application in `EwsAllowedAppIDs`; on 1 April 2027 it is switched
//! off for good. A 403 from `Exchange.asmx` with a valid token is reported as "EWS is disabled
//! for this application" with a hint to use the Graph connection. On-premises Exchange is not
//! affected.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod autodiscover;
mod client;
mod config;
mod endpoint;
mod error;
pub mod ops;
mod outbound;
pub mod soap;
mod source;
pub mod streaming;
pub mod sync;
pub mod types;
pub mod xml;

// The modules `client`, `config`, `endpoint`, `error`, `outbound` and `source` are private: everything public in them
// is here, at the root, its one public path (issue #16).
pub use client::{EXCHANGE_ONLINE, EwsClient};
pub use config::{
    AccessToken, Challenge, Credentials, EwsConfig, Jitter, MailboxAccess, Password, Refusal,
    RetryPolicy, StaticToken, TokenSource,
};
pub use endpoint::{EndpointError, check_endpoint, exchange_online};
pub use error::{EwsError, ResponseClass, ResponseError};
pub use outbound::EwsOutbound;
pub use source::{
    DEFAULT_FETCH_CONCURRENCY, DEFAULT_MAX_BATCH, EwsSource, ITEM_CHUNK, MAX_BATCH,
    MAX_FETCH_CONCURRENCY, MAX_PAGE,
};

/// The package's name on crates.io, used in logs and user agents.
pub const CRATE_NAME: &str = "m365mail-ews";

#[cfg(test)]
mod tests {
    #[test]
    fn crate_name_matches_package() {
        assert_eq!(super::CRATE_NAME, env!("CARGO_PKG_NAME"));
    }
}
