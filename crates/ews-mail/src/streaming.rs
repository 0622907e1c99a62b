//! Streaming notifications: new mail as a *hint* to run the source's pass, never as the message.
//!
//! Exchange pushes events over a long-lived GetStreamingEvents answer: one SOAP envelope after
//! another, each with the events of the moment (or a keep-alive), until the connection times
//! out (`ConnectionTimeout`, 1–30 minutes) with `ConnectionStatus` `Closed`. The
//! [`StreamingWatcher`] subscribes to a folder (`Subscribe` with a `StreamingSubscriptionRequest`
//! for `NewMailEvent`), keeps a connection open, reconnects before the service closes it, and
//! wakes the source on every event and after every (re)connection or error, so the source's
//! ordinary pass catches up whatever arrived while no connection was open (a sync-mode source,
//! [`EwsSource::with_sync_state`](crate::EwsSource::with_sync_state), through SyncFolderItems;
//! the unread listing would miss mail someone read meanwhile). A subscription Exchange has lost
//! is made again at once; one it refuses right after it was made, only after a growing pause.
//! The operations ([`SubscribeStreaming`], [`GetStreamingEvents`], [`Unsubscribe`]) and the
//! reading of streamed envelopes ([`split_envelopes`], [`parse_streamed`]) do no I/O.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::client::EwsClient;
use crate::error::{EwsError, ResponseError};
use crate::soap::{Operation, parse_envelope, response_messages, response_status};
use crate::types::FolderId;
use crate::xml::{Element, Writer};

/// `Subscribe` with a `StreamingSubscriptionRequest` for `NewMailEvent` in `folders`; answers the
/// subscription's id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeStreaming {
    /// The folders watched (one mailbox).
    pub folders: Vec<FolderId>,
}

impl SubscribeStreaming {
    /// New mail in `folder`.
    pub fn new(folder: FolderId) -> Self {
        SubscribeStreaming {
            folders: vec![folder],
        }
    }
}

fn first_message(response: &Element, op: &str) -> Result<Element, EwsError> {
    match response_messages(response)?.into_iter().next() {
        Some(Ok(m)) => Ok(m.clone()),
        Some(Err(e)) => Err(EwsError::Response(e)),
        None => Err(EwsError::BadXml(format!(
            "{op} response: no response messages"
        ))),
    }
}

impl Operation for SubscribeStreaming {
    type Response = String;
    const NAME: &'static str = "Subscribe";
    // A repeat makes a second subscription.
    const IDEMPOTENT: bool = false;

    fn write(&self, w: &mut Writer) {
        w.start("m:Subscribe", &[]);
        w.start("m:StreamingSubscriptionRequest", &[]);
        w.start("t:FolderIds", &[]);
        for f in &self.folders {
            f.write(w);
        }
        w.end();
        w.start("t:EventTypes", &[]);
        w.text_element("t:EventType", "NewMailEvent");
        w.end();
        w.end();
        w.end();
    }

    fn parse(response: &Element) -> Result<String, EwsError> {
        first_message(response, "Subscribe")?
            .child_text("SubscriptionId")
            .map(str::to_owned)
            .ok_or_else(|| EwsError::BadXml("Subscribe response: no SubscriptionId".into()))
    }
}

/// `Unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsubscribe {
    /// The subscription.
    pub id: String,
}

impl Unsubscribe {
    /// Ends subscription `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Unsubscribe { id: id.into() }
    }
}

impl Operation for Unsubscribe {
    type Response = ();
    const NAME: &'static str = "Unsubscribe";

    fn write(&self, w: &mut Writer) {
        w.start("m:Unsubscribe", &[]);
        w.text_element("m:SubscriptionId", &self.id);
        w.end();
    }

    fn parse(response: &Element) -> Result<(), EwsError> {
        first_message(response, "Unsubscribe").map(|_| ())
    }
}

/// `GetStreamingEvents`: the request of a streaming connection. Its answer is read envelope by
/// envelope ([`split_envelopes`], [`parse_streamed`]), not through [`Operation::parse`], which
/// reads one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetStreamingEvents {
    /// The subscriptions.
    pub ids: Vec<String>,
    /// `ConnectionTimeout` in minutes (1–30).
    pub timeout_minutes: u8,
}

impl GetStreamingEvents {
    /// Streams the events of subscriptions `ids` on one connection of `timeout_minutes`
    /// (clamped to EWS's 1–30).
    pub fn new(ids: Vec<String>, timeout_minutes: u8) -> Self {
        GetStreamingEvents {
            ids,
            timeout_minutes: timeout_minutes.clamp(1, 30),
        }
    }
}

impl Operation for GetStreamingEvents {
    type Response = Streamed;
    const NAME: &'static str = "GetStreamingEvents";

    fn write(&self, w: &mut Writer) {
        w.start("m:GetStreamingEvents", &[]);
        w.start("m:SubscriptionIds", &[]);
        for id in &self.ids {
            w.text_element("t:SubscriptionId", id);
        }
        w.end();
        w.text_element(
            "m:ConnectionTimeout",
            &self.timeout_minutes.clamp(1, 30).to_string(),
        );
        w.end();
    }

    fn parse(response: &Element) -> Result<Streamed, EwsError> {
        streamed(response)
    }
}

/// What one streamed envelope says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Streamed {
    /// Events in it (any kind; `NewMailEvent` is what is asked for).
    pub events: usize,
    /// `ConnectionStatus` `Closed`: the service ends the connection.
    pub closed: bool,
    /// The error the service answered instead (`ErrorInvalidSubscription`: subscribe again).
    pub error: Option<ResponseError>,
}

fn streamed(response: &Element) -> Result<Streamed, EwsError> {
    let msgs = response.child("ResponseMessages").ok_or_else(|| {
        EwsError::BadXml("GetStreamingEvents response: no ResponseMessages".into())
    })?;
    let mut out = Streamed::default();
    for msg in &msgs.children {
        if msg.child_text("ConnectionStatus") == Some("Closed") {
            out.closed = true;
        }
        match response_status(msg) {
            Ok(m) => {
                out.events += m
                    .child("Notifications")
                    .map(|n| {
                        n.children
                            .iter()
                            .map(|n| {
                                n.children
                                    .iter()
                                    .filter(|e| e.name.ends_with("Event"))
                                    .count()
                            })
                            .sum::<usize>()
                    })
                    .unwrap_or(0);
            }
            Err(e) => out.error = Some(e),
        }
    }
    Ok(out)
}

/// Reads one streamed SOAP envelope (a fault is an error).
pub fn parse_streamed(envelope: &[u8]) -> Result<Streamed, EwsError> {
    let env = parse_envelope(envelope, 4 * 1024 * 1024)?;
    streamed(&env.body)
}

/// Takes the whole envelopes at the front of `buf` (each ends with its `</…Envelope>` tag),
/// leaving a partial one for the next chunk.
pub fn split_envelopes(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = (0..buf.len()).find_map(|i| {
            let rest = &buf[i..];
            if !rest.starts_with(b"</") {
                return None;
            }
            let close = rest.iter().position(|&b| b == b'>')?;
            let name = &rest[2..close];
            let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
            (local == b"Envelope").then_some(i + close + 1)
        });
        match end {
            Some(end) => out.push(buf.drain(..end).collect()),
            None => return out,
        }
    }
}

/// The pause after a failed subscription or connection, growing to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(120);

/// The pause after the `failures`-th failure in a row: the workspace's one backoff shape
/// ([`connector::retry::RetryPolicy::backoff`], doubling from [`RETRY_FIRST`] to [`RETRY_MAX`],
/// with the process's jitter), so sources reconnecting after an outage spread out.
fn pause_after(failures: u32) -> Duration {
    use connector::retry::{Jitter, ProcessJitter, RetryPolicy};
    RetryPolicy::default()
        .with_backoff(RETRY_FIRST, RETRY_MAX)
        .backoff(failures, ProcessJitter.next())
}

/// Keeps a streaming subscription on one folder and wakes the source when mail arrives; see
/// the [module documentation](self). Cloned, it watches the same folder again (a fleet's worker
/// runs one each time it takes the source's lease).
#[derive(Debug, Clone)]
pub struct StreamingWatcher {
    client: EwsClient,
    folder: FolderId,
    wake: Arc<Notify>,
    timeout_minutes: u8,
    reconnect_after: Duration,
}

impl StreamingWatcher {
    /// Watches `folder` of `client`'s mailbox; notifies `wake` (the pipeline's wake-up of the
    /// source). Connections ask for 30 minutes and are renewed after 29.
    pub fn new(client: EwsClient, folder: FolderId, wake: Arc<Notify>) -> Self {
        StreamingWatcher {
            client,
            folder,
            wake,
            timeout_minutes: 30,
            reconnect_after: Duration::from_secs(29 * 60),
        }
    }

    /// Asks for connections of `minutes` (1–30) and opens the next one after `reconnect_after`,
    /// before the service would close it.
    pub fn connection(mut self, minutes: u8, reconnect_after: Duration) -> Self {
        self.timeout_minutes = minutes.clamp(1, 30);
        self.reconnect_after = reconnect_after;
        self
    }

    /// Unsubscribes at the end, best effort (a subscription left behind expires on its own
    /// after 30 minutes without a connection).
    async fn end(&self, subscription: Option<String>) {
        let Some(id) = subscription else { return };
        let op = Unsubscribe::new(id);
        match tokio::time::timeout(Duration::from_secs(5), self.client.call(&op)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "unsubscribing failed"),
            Err(_) => tracing::debug!("unsubscribing took too long"),
        }
    }

    /// After a failure: wakes the source (a catch-up pass), counts the failure and waits
    /// [`pause_after`] it (or until `stop`, then `true`).
    async fn failed(
        &self,
        stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        failures: &mut u32,
    ) -> bool {
        self.wake.notify_one();
        *failures += 1;
        tokio::select! {
            () = stop.as_mut() => true,
            () = tokio::time::sleep(pause_after(*failures)) => false,
        }
    }

    /// Subscribes, streams and reconnects until `stop` completes, then unsubscribes. Every
    /// event, every new connection and every failure wakes the source (a catch-up pass).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut subscription: Option<String> = None;
        let mut failures = 0;
        loop {
            let mut fresh = false;
            let id = match subscription.clone() {
                Some(id) => id,
                None => match self
                    .client
                    .call(&SubscribeStreaming::new(self.folder.clone()))
                    .await
                {
                    Ok(id) => {
                        subscription = Some(id.clone());
                        fresh = true;
                        id
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "subscribing to EWS streaming notifications failed");
                        if self.failed(&mut stop, &mut failures).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            let op = GetStreamingEvents::new(vec![id], self.timeout_minutes);
            let read_for = Duration::from_secs(u64::from(self.timeout_minutes) * 60 + 60);
            let mut resp = match self.client.open_stream(&op, read_for).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "opening an EWS streaming connection failed");
                    if self.failed(&mut stop, &mut failures).await {
                        self.end(subscription).await;
                        return;
                    }
                    continue;
                }
            };
            // Whatever arrived while no connection was open.
            self.wake.notify_one();
            let renew = tokio::time::sleep(self.reconnect_after);
            tokio::pin!(renew);
            let mut buf = Vec::new();
            // The subscription was refused on this connection. One that was lost (a failover)
            // is made again at once; one refused right after it was made (Exchange will not
            // let this account use it) only after a growing pause, not in a loop of Subscribe
            // calls.
            let mut refused = false;
            'connection: loop {
                tokio::select! {
                    () = &mut stop => {
                        self.end(subscription).await;
                        return;
                    }
                    () = &mut renew => break 'connection,
                    chunk = resp.chunk() => match chunk {
                        Ok(Some(bytes)) => {
                            buf.extend_from_slice(&bytes);
                            for env in split_envelopes(&mut buf) {
                                match parse_streamed(&env) {
                                    Ok(s) => {
                                        if s.events > 0 {
                                            self.wake.notify_one();
                                        }
                                        if let Some(e) = s.error {
                                            tracing::info!(code = %e.code, "the EWS subscription is gone; subscribing again");
                                            subscription = None;
                                            refused = true;
                                        } else {
                                            failures = 0;
                                        }
                                        if s.closed {
                                            break 'connection;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "an unreadable streamed EWS envelope");
                                        break 'connection;
                                    }
                                }
                            }
                        }
                        // The connection ended without `Closed`, or failed: connect again.
                        Ok(None) | Err(_) => break 'connection,
                    },
                }
            }
            if refused && fresh && self.failed(&mut stop, &mut failures).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_split_whole_whatever_their_prefix() {
        let mut buf = b"<s:Envelope><s:Body/></s:Envelope><soap:Envelope></soap:Envel".to_vec();
        let got = split_envelopes(&mut buf);
        assert_eq!(got, vec![b"<s:Envelope><s:Body/></s:Envelope>".to_vec()]);
        buf.extend_from_slice(b"ope><Envelope></Envelope>");
        assert_eq!(split_envelopes(&mut buf).len(), 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn the_documented_refusal_is_an_error_that_closes() {
        // Microsoft's GetStreamingEvents error sample (getstreamingevents-operation.md), as
        // the sandbox answers it (the published sample lacks a closing tag).
        let doc = br#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Error"><m:MessageText></m:MessageText><m:ResponseCode>ErrorInvalidSubscription</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ConnectionStatus>Closed</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;
        let s = parse_streamed(doc).unwrap();
        assert!(s.closed);
        assert_eq!(s.events, 0);
        assert_eq!(s.error.unwrap().code, "ErrorInvalidSubscription");
    }
}
