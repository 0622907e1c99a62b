//! What the doctor does to a mailbox: reach it, send probes from it (or from its alias) to it,
//! find them again by their header in the inbox and in Sent Items, and delete them. Over the
//! source's own connection, Graph or EWS.

use connector::{Envelope, OutgoingMessage};
use graph_mail::api::{self, GraphOperation, Idempotency, OpRequest};
use handler::probe::{PROBE_HEADER, PROBE_SUBJECT_MARKER};

use crate::connect::MailboxClient;

/// How many of the newest messages of a folder are looked through for probes.
const NEWEST: u32 = 50;

/// One probe: who sends it to whom, and how it is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// Its id (`probe-<run><n>`), in [`PROBE_HEADER`] and in the subject.
    pub id: String,
    /// What it tests, for the subject.
    pub what: String,
    /// The `From` address.
    pub from: String,
    /// The recipient.
    pub to: String,
}

impl Probe {
    /// The probe as a message: [`PROBE_HEADER`], the subject marker and the id in the subject,
    /// a plain text body that says what it is.
    pub fn message(&self) -> OutgoingMessage {
        let mime = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {PROBE_SUBJECT_MARKER} {what} {id}\r\n\
             {PROBE_HEADER}: {id}\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             A probe of `m365mail doctor` ({what}). It is deleted by the doctor; a mail \
             handler never routes it.\r\n",
            from = self.from,
            to = self.to,
            what = self.what,
            id = self.id,
        );
        OutgoingMessage::raw(
            Envelope::new(self.from.clone(), vec![self.to.clone()]),
            mime.into_bytes(),
        )
    }
}

/// A message found in a folder, by the protocol's id.
#[derive(Debug, Clone)]
pub(super) enum FoundId {
    /// A Graph message id.
    Graph(String),
    /// An EWS item id.
    Ews(ews_mail::types::ItemId),
}

/// A message found while looking for probes.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// Its id.
    pub(super) id: FoundId,
    /// Its MIME.
    pub(super) mime: Vec<u8>,
}

/// `GET …/mailFolders/{folder}/messages`, newest first, ids and subjects only.
struct ListNewest {
    folder: String,
}

impl GraphOperation for ListNewest {
    type Output = api::MessagePage;

    fn what(&self) -> &str {
        "listing the newest messages"
    }

    fn idempotency(&self) -> Idempotency {
        Idempotency::Safe
    }

    fn build(&self, ep: &graph_mail::Endpoint) -> Result<OpRequest, connector::Error> {
        let mut url = ep.mailbox_url(&["mailFolders", &self.folder, "messages"]);
        url.query_pairs_mut()
            .append_pair("$select", "id,subject")
            .append_pair("$orderby", "receivedDateTime desc")
            .append_pair("$top", &NEWEST.to_string());
        Ok(OpRequest::new(http::Method::GET, url, api::Body::Empty))
    }

    fn parse(
        &self,
        ep: &graph_mail::Endpoint,
        response: &api::Response,
    ) -> Result<api::MessagePage, connector::Error> {
        api::parse_message_page(ep, response.json()?)
    }
}

/// `GET /groups?$filter=proxyAddresses/any(…)`: the display name of the group with this address.
struct FindGroup {
    address: String,
}

impl GraphOperation for FindGroup {
    type Output = Option<String>;

    fn what(&self) -> &str {
        "looking for a group with the address"
    }

    fn idempotency(&self) -> Idempotency {
        Idempotency::Safe
    }

    fn build(&self, ep: &graph_mail::Endpoint) -> Result<OpRequest, connector::Error> {
        let mut url = ep.base().clone();
        url.path_segments_mut()
            .map_err(|()| connector::Error::configuration("the Graph base URL has no path"))?
            .pop_if_empty()
            .push("groups");
        let filter = format!(
            "proxyAddresses/any(x:x eq 'smtp:{}')",
            self.address.replace('\'', "''")
        );
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$select", "id,displayName,mail");
        Ok(OpRequest::new(http::Method::GET, url, api::Body::Empty))
    }

    fn parse(
        &self,
        _: &graph_mail::Endpoint,
        response: &api::Response,
    ) -> Result<Option<String>, connector::Error> {
        let v: serde_json::Value = serde_json::from_slice(response.json()?)
            .map_err(|e| connector::Error::bad_response(format!("a group list: {e}")))?;
        let first = v
            .get("value")
            .and_then(serde_json::Value::as_array)
            .and_then(|a| a.first());
        Ok(first.map(|g| {
            g.get("displayName")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        }))
    }
}

/// Whether a group has `address`, through Graph (which needs a directory permission such as
/// `GroupMember.Read.All`); `Ok(Some(display name))` when one has.
pub(super) async fn find_group(
    client: &MailboxClient,
    address: &str,
) -> Result<Option<String>, connector::Error> {
    match client {
        MailboxClient::Graph(c) => {
            c.execute(&FindGroup {
                address: address.to_owned(),
            })
            .await
        }
        MailboxClient::Ews(_) => Err(connector::Error::unsupported(
            "EWS cannot look groups up for an app",
        )),
    }
}

/// Opens the folder: whether the mailbox can be reached at all.
pub(super) async fn reach(client: &MailboxClient) -> Result<(), connector::Error> {
    match client {
        MailboxClient::Graph(c) => c.execute(&api::GetFolder::new("inbox")).await.map(drop),
        MailboxClient::Ews(c) => {
            let inbox = c.config().access.folder("inbox");
            let answer = c.call(&ews_mail::ops::GetFolder::new(vec![inbox])).await?;
            match answer.into_iter().next() {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(item_error(e)),
                None => Err(connector::Error::bad_response("GetFolder answered nothing")),
            }
        }
    }
}

fn item_error(e: ews_mail::ResponseError) -> connector::Error {
    let kind = if e.code == "ErrorNonExistentMailbox" || e.code == "ErrorItemNotFound" {
        connector::ErrorKind::NotFound
    } else {
        connector::ErrorKind::Refused
    };
    connector::Error::new(kind, format!("{}: {}", e.code, e.text))
        .with_response(connector::ResponseDetails::status(200).with_server_code(e.code))
}

/// The newest messages of `folder` (`inbox`, `sentitems`) whose MIME names `run` (every probe
/// of one doctor run, and the non-delivery reports that quote their subjects).
pub(super) async fn find(
    client: &MailboxClient,
    folder: &str,
    run: &str,
) -> Result<Vec<Found>, connector::Error> {
    let mut out = Vec::new();
    match client {
        MailboxClient::Graph(c) => {
            let page = c
                .execute(&ListNewest {
                    folder: folder.to_owned(),
                })
                .await?;
            for m in page.messages {
                if !m.subject.as_deref().is_some_and(|s| s.contains(run)) {
                    continue;
                }
                let mime = c.execute(&api::GetMime::new(m.id.clone())).await?;
                out.push(Found {
                    id: FoundId::Graph(m.id),
                    mime: mime.to_vec(),
                });
            }
        }
        MailboxClient::Ews(c) => {
            let folder = c.config().access.folder(folder);
            let page = c
                .call(
                    &ews_mail::ops::FindItem::all(folder, 0, NEWEST)
                        .with_sort(ews_mail::ops::SortDirection::Descending),
                )
                .await?;
            let ids: Vec<_> = page.items.into_iter().filter_map(|i| i.id).collect();
            if ids.is_empty() {
                return Ok(out);
            }
            // Subjects first, MIME only for this run's messages.
            let mut subjects = ews_mail::ops::GetItem::ids_only(ids);
            subjects.properties = vec!["item:Subject"];
            let ids: Vec<_> = c
                .call(&subjects)
                .await?
                .into_iter()
                .flatten()
                .filter(|i| i.subject.as_deref().is_some_and(|s| s.contains(run)))
                .filter_map(|i| i.id)
                .collect();
            if ids.is_empty() {
                return Ok(out);
            }
            let items = c.call(&ews_mail::ops::GetItem::with_mime(ids)).await?;
            for item in items.into_iter().flatten() {
                let (Some(id), Some(mime)) = (item.id, item.mime) else {
                    continue;
                };
                if contains(&mime, run.as_bytes()) {
                    out.push(Found {
                        id: FoundId::Ews(id),
                        mime,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Deletes what [`find`] found; the errors, if any, as one sentence.
pub(super) async fn delete(client: &MailboxClient, found: Vec<FoundId>) -> Result<(), String> {
    let mut errors = Vec::new();
    match client {
        MailboxClient::Graph(c) => {
            for id in found {
                if let FoundId::Graph(id) = id
                    && let Err(e) = c.execute(&api::DeleteMessage::new(id)).await
                    && e.kind() != connector::ErrorKind::NotFound
                {
                    errors.push(e.to_string());
                }
            }
        }
        MailboxClient::Ews(c) => {
            let ids: Vec<_> = found
                .into_iter()
                .filter_map(|f| match f {
                    FoundId::Ews(id) => Some(id),
                    FoundId::Graph(_) => None,
                })
                .collect();
            if !ids.is_empty() {
                let op = ews_mail::ops::DeleteItem::new(ids, ews_mail::ops::DeleteType::HardDelete);
                match c.call(&op).await {
                    Ok(results) => errors.extend(
                        results
                            .into_iter()
                            .filter_map(Result::err)
                            .filter(|e| e.code != "ErrorItemNotFound")
                            .map(|e| format!("{}: {}", e.code, e.text)),
                    ),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Whether `needle` occurs in `haystack`.
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The value of the first header `name` in the header section of `mime` (unfolded).
pub(super) fn header(mime: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&mime[..mime.len().min(256 * 1024)]);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split("\n\n")
        .next()
        .unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = value.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_owned());
        }
    }
    value
}

/// The address in a `From` value (`Name <a@b>` or `a@b`), lowercase.
pub(super) fn address_of(from: &str) -> String {
    let a = match (from.rfind('<'), from.rfind('>')) {
        (Some(i), Some(j)) if i < j => &from[i + 1..j],
        _ => from,
    };
    a.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_carries_its_header_and_marker_and_is_a_probe_to_the_handler() {
        let p = Probe {
            id: "probe-abc123def0".into(),
            what: "plus addressing".into(),
            from: "helpdesk@contoso.example".into(),
            to: "helpdesk+probe-abc123def0@contoso.example".into(),
        };
        let m = p.message();
        assert_eq!(
            header(m.mime(), PROBE_HEADER).as_deref(),
            Some("probe-abc123def0")
        );
        let subject = header(m.mime(), "subject").unwrap();
        assert!(subject.starts_with(PROBE_SUBJECT_MARKER) && subject.contains(&p.id));
        assert_eq!(m.envelope().to, vec![p.to.clone()]);

        // The handler recognises it as a probe and leaves it alone.
        let rules = vec![addressing::RuleConfig::Default {
            project: "DESK".into(),
        }];
        let cfg = addressing::RoutingConfig::new(
            addressing::MailboxConfig::new("helpdesk@contoso.example"),
            rules,
        );
        let router = addressing::Router::from_config(&cfg).unwrap();
        let raw = connector::RawMessage::new(connector::MessageId::new("1"), m.mime().to_vec());
        let route = router.route_mime(m.mime());
        let inbound = handler::Inbound::new("s", "k", raw, route, None);
        assert_eq!(inbound.probe_id(router.mailbox()), Some("probe-abc123def0"));
    }

    #[test]
    fn headers_and_addresses_are_read() {
        let mime =
            b"From: \"Billing\" <Billing@Contoso.example>\r\nSubject: a\r\n b\r\n\r\nSubject: no";
        assert_eq!(header(mime, "subject").as_deref(), Some("a b"));
        assert_eq!(
            address_of(&header(mime, "from").unwrap()),
            "billing@contoso.example"
        );
        assert_eq!(header(mime, "x-none"), None);
        assert!(contains(b"abc", b"bc") && !contains(b"abc", b""));
    }
}
