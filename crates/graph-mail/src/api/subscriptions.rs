//! Change-notification subscriptions on a folder's messages: create, renew, delete; and the
//! subscription answer. The listener's side (validation, notifications) is [`crate::push`].

use super::*;
use crate::push::ClientState;

/// The Graph `resource` of a folder's messages under the endpoint's mailbox:
/// `me/mailFolders('inbox')/messages` or `users/{u}/mailFolders('inbox')/messages`.
pub fn folder_messages_resource(ep: &Endpoint, folder: &str) -> String {
    let mailbox = match ep.mailbox() {
        crate::Mailbox::Me => "me".to_string(),
        crate::Mailbox::User(u) => format!("users/{u}"),
    };
    // OData doubles a quote inside a quoted key.
    format!(
        "{mailbox}/mailFolders('{}')/messages",
        folder.replace('\'', "''")
    )
}

/// A subscription as Graph answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// When it expires unless renewed.
    pub expiration: OffsetDateTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSubscription {
    id: String,
    expiration_date_time: String,
}

fn parse_subscription(body: &[u8]) -> Result<Subscription, Error> {
    let raw: RawSubscription = parse_json("a subscription", body)?;
    let expiration = OffsetDateTime::parse(
        &raw.expiration_date_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|e| bad("a subscription expiry", e))?;
    Ok(Subscription {
        id: raw.id,
        expiration,
    })
}

fn rfc3339(t: OffsetDateTime) -> Result<String, Error> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::configuration(format!("formatting a subscription expiry: {e}")))
}

/// `POST /subscriptions`: `created` notifications for `resource`, sent to `notification_url`
/// (lifecycle events to `lifecycle_url`) with `client_state`, until `expiration`.
///
/// Graph validates both URLs before it answers, so the listener must already be serving.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreateSubscription {
    /// The resource ([`folder_messages_resource`]).
    pub resource: String,
    /// Where notifications go (https; Graph calls it from the internet).
    pub notification_url: Url,
    /// Where lifecycle notifications go.
    pub lifecycle_url: Option<Url>,
    /// When the subscription ends unless renewed (at most 10,080 minutes ahead for messages).
    pub expiration: OffsetDateTime,
    /// The secret every notification must carry back.
    pub client_state: ClientState,
}

impl GraphOperation for CreateSubscription {
    type Output = Subscription;

    // A repeat would make a second subscription.
    describe_op!("creating a change-notification subscription", SendOnce);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        let mut body = json!({
            "changeType": "created",
            "notificationUrl": self.notification_url.as_str(),
            "resource": self.resource,
            "expirationDateTime": rfc3339(self.expiration)?,
            "clientState": self.client_state.expose(),
        });
        if let Some(l) = &self.lifecycle_url {
            body["lifecycleNotificationUrl"] = json!(l.as_str());
        }
        Ok(OpRequest::new(
            http::Method::POST,
            ep.url(&["subscriptions"]),
            Body::Json(body),
        ))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<Subscription, Error> {
        parse_subscription(response.json()?)
    }
}

/// `PATCH /subscriptions/{id}`: a new expiry (renewal; also what answers
/// `reauthorizationRequired`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenewSubscription {
    /// The subscription.
    pub id: String,
    /// The new expiry.
    pub expiration: OffsetDateTime,
}

impl RenewSubscription {
    /// Renews `id` until `expiration`.
    pub fn new(id: impl Into<String>, expiration: OffsetDateTime) -> Self {
        RenewSubscription {
            id: id.into(),
            expiration,
        }
    }
}

impl GraphOperation for RenewSubscription {
    type Output = Subscription;

    describe_op!("renewing a change-notification subscription", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::PATCH,
            ep.url(&["subscriptions", &self.id]),
            Body::Json(json!({ "expirationDateTime": rfc3339(self.expiration)? })),
        ))
    }

    fn parse(&self, _: &Endpoint, response: &Response) -> Result<Subscription, Error> {
        parse_subscription(response.json()?)
    }
}

/// `DELETE /subscriptions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteSubscription {
    /// The subscription.
    pub id: String,
}

impl DeleteSubscription {
    /// Deletes `id`.
    pub fn new(id: impl Into<String>) -> Self {
        DeleteSubscription { id: id.into() }
    }
}

impl GraphOperation for DeleteSubscription {
    type Output = ();

    describe_op!("deleting a change-notification subscription", Safe);

    fn build(&self, ep: &Endpoint) -> Result<OpRequest, Error> {
        Ok(OpRequest::new(
            http::Method::DELETE,
            ep.url(&["subscriptions", &self.id]),
            Body::Empty,
        ))
    }

    status_only!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint::custom(
            "http://127.0.0.1:8080/v1.0",
            crate::Mailbox::user("helpdesk@contoso.example"),
        )
        .unwrap()
    }

    #[test]
    fn create_sends_the_client_state_and_reads_the_sample_answer() {
        let op = CreateSubscription {
            resource: folder_messages_resource(&ep(), "inbox"),
            notification_url: Url::parse("https://hooks.example/m365").unwrap(),
            lifecycle_url: Some(Url::parse("https://hooks.example/m365").unwrap()),
            expiration: OffsetDateTime::UNIX_EPOCH,
            client_state: ClientState::from_secret("s3cret"),
        };
        let req = op.request(&ep()).unwrap();
        assert_eq!(req.uri().path(), "/v1.0/subscriptions");
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body["resource"],
            "users/helpdesk@contoso.example/mailFolders('inbox')/messages"
        );
        assert_eq!(body["clientState"], "s3cret");
        assert_eq!(body["changeType"], "created");
        assert_eq!(
            body["lifecycleNotificationUrl"],
            "https://hooks.example/m365"
        );
        assert_eq!(op.idempotency(), Idempotency::SendOnce);
        // Microsoft's documented answer (subscription-post-subscriptions.md), from the
        // samples copied into testdata/reference.
        let samples: Value = serde_json::from_slice(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/reference/samples/graph/graph-docs-samples.json"
        )))
        .unwrap();
        let answer = samples
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["src"] == "api-reference/v1.0/api/subscription-post-subscriptions.md"
                    && s["blockType"] == "response"
            })
            .unwrap()["json"]
            .to_string();
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let sub = op
            .parse(&ep(), &Response::new(201, h, answer.into_bytes()))
            .unwrap();
        assert_eq!(sub.id, "7f105c7d-2dc5-4530-97cd-4e7ae6534c07");
        assert_eq!(sub.expiration.year(), 2016);
    }
}
