//! Acknowledgement notifications: answer the customer from the address they wrote to.

use addressing::{PickupMailbox, SenderChoice};
use connector::OutgoingMessage;
use lettre::message::{Mailbox, header};

use crate::Inbound;

/// The header our own notifications carry, so that we never answer them.
pub const NOTIFICATION_HEADER: &str = "X-M365Mail-Notification";

/// The subject and body of a notification, with `{project}`, `{subject}`, `{catch}` and
/// `{from}` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationTemplate {
    /// The subject template.
    pub subject: String,
    /// The plain-text body template.
    pub body: String,
}

impl Default for NotificationTemplate {
    fn default() -> Self {
        NotificationTemplate {
            subject: "[{project}] Re: {subject}".into(),
            body: "Hello,\n\nwe received your message \"{subject}\" sent to {catch} and filed it \
                   under {project}. Reply to this message to add to it.\n"
                .into(),
        }
    }
}

impl NotificationTemplate {
    /// A template.
    pub fn new(subject: impl Into<String>, body: impl Into<String>) -> Self {
        NotificationTemplate {
            subject: subject.into(),
            body: body.into(),
        }
    }

    fn render(text: &str, inbound: &Inbound) -> String {
        text.replace("{project}", inbound.project().unwrap_or("inbox"))
            .replace("{subject}", inbound.subject())
            .replace(
                "{catch}",
                &inbound
                    .route
                    .catch_address()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "our mailbox".into()),
            )
            .replace("{from}", inbound.from_address().unwrap_or(""))
    }
}

/// Removes control characters (CR, LF, NUL, …) so nothing from an incoming message can
/// inject a header into a notification.
pub(crate) fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Why a message must not be answered, or `None` if it may be.
pub(crate) fn should_not_answer(
    inbound: &Inbound,
    mailbox: &PickupMailbox,
) -> Option<&'static str> {
    if inbound.header(NOTIFICATION_HEADER).is_some() {
        return Some("it is one of our own notifications");
    }
    if let Some(v) = inbound.header("Auto-Submitted")
        && !v.trim().eq_ignore_ascii_case("no")
    {
        return Some("it is auto-submitted (RFC 3834)");
    }
    if let Some(p) = inbound.header("Precedence") {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "list" | "junk") {
            return Some("it is bulk or list mail");
        }
    }
    if inbound.header("List-Id").is_some()
        || inbound
            .header("X-Auto-Response-Suppress")
            .is_some_and(|v| v.contains("All") || v.contains("AutoReply"))
    {
        return Some("it is list mail or asks for no auto replies");
    }
    let ct = inbound
        .header("Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.contains("multipart/report") {
        return Some("it is a delivery or read report");
    }
    match inbound.from_address() {
        None => Some("it has no sender address"),
        Some(from) => {
            let lower = from.to_ascii_lowercase();
            let local = lower.split('@').next().unwrap_or("");
            if matches!(
                local,
                "mailer-daemon" | "postmaster" | "noreply" | "no-reply" | "donotreply"
            ) {
                return Some("it comes from a system address");
            }
            if let Ok(addr) = addressing::EmailAddress::parse(from)
                && mailbox.is_own_address(&addr).is_some()
            {
                return Some("it comes from our own mailbox (a loop)");
            }
            None
        }
    }
}

/// Builds the notification for `inbound`, from the chosen sender. Returns the message and the
/// recipient, or `None` if there is no valid address to answer.
pub(crate) fn build_notification(
    template: &NotificationTemplate,
    choice: &SenderChoice,
    inbound: &Inbound,
) -> Option<(OutgoingMessage, String)> {
    let to_addr = inbound.reply_address()?;
    let to: Mailbox = to_addr.parse().ok()?;
    let from: Mailbox = choice.from.to_string().parse().ok()?;
    let subject = single_line(&NotificationTemplate::render(&template.subject, inbound));
    let body = NotificationTemplate::render(&template.body, inbound);
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .header(header::ContentType::TEXT_PLAIN)
        .header(AutoSubmitted)
        .header(NotificationMarker);
    if let Some(reply_to) = &choice.reply_to
        && let Ok(mb) = reply_to.to_string().parse::<Mailbox>()
    {
        builder = builder.reply_to(mb);
    }
    if let Some(mid) = inbound.message_id() {
        let mid = format!("<{}>", single_line(mid).trim_matches(['<', '>']));
        let mut refs = inbound
            .references()
            .iter()
            .map(|r| format!("<{}>", single_line(r).trim_matches(['<', '>'])))
            .collect::<Vec<_>>();
        refs.push(mid.clone());
        builder = builder.in_reply_to(mid).references(refs.join(" "));
    }
    let message = builder.body(body).ok()?;
    Some((OutgoingMessage::from(message), to_addr))
}

/// `Auto-Submitted: auto-replied` (RFC 3834), so other robots do not answer us.
#[derive(Clone)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// Marks our own notifications.
#[derive(Clone)]
struct NotificationMarker;

impl header::Header for NotificationMarker {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str(NOTIFICATION_HEADER)
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(NotificationMarker)
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "1".into())
    }
}
