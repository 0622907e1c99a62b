//! Acknowledgement notifications: the rules are documented on [`NotificationPolicy`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use addressing::{EmailAddress, PickupMailbox, SenderChoice};
use connector::OutgoingMessage;
use lettre::message::{Mailbox, header};
use sha2::Digest;

use crate::Inbound;

/// The header our own notifications carry, so that we never answer them.
pub const NOTIFICATION_HEADER: &str = "X-M365Mail-Notification";

/// How the `Message-ID` of each of our notifications begins (`<m365mail-ack.…@domain>`), so
/// that replies to it and bounces of it are recognised.
pub const NOTIFICATION_ID_PREFIX: &str = "m365mail-ack.";

/// The subject and body of a notification, with `{project}`, `{subject}`, `{catch}` and
/// `{from}` replaced.
///
/// `{subject}` is the inbound message's subject, written by whoever sent it: it is cut to
/// [`subject_max_chars`](Self::subject_max_chars) characters (with `…`), and the default
/// template does not use it at all, so that an acknowledgement cannot carry an attacker's
/// text ("Your account is locked - verify at …") to a third party.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationTemplate {
    /// The subject template.
    pub subject: String,
    /// The plain-text body template.
    pub body: String,
    /// The most characters of the inbound subject that `{subject}` puts in (default
    /// [`DEFAULT_SUBJECT_MAX_CHARS`]; 0 leaves it empty).
    pub subject_max_chars: usize,
}

/// The default for [`NotificationTemplate::subject_max_chars`].
pub const DEFAULT_SUBJECT_MAX_CHARS: usize = 60;

impl Default for NotificationTemplate {
    fn default() -> Self {
        NotificationTemplate {
            subject: "[{project}] We received your message".into(),
            body: "Hello,\n\nwe received your message sent to {catch} and filed it under \
                   {project}. Reply to this message to add to it.\n"
                .into(),
            subject_max_chars: DEFAULT_SUBJECT_MAX_CHARS,
        }
    }
}

impl NotificationTemplate {
    /// A template.
    pub fn new(subject: impl Into<String>, body: impl Into<String>) -> Self {
        NotificationTemplate {
            subject: subject.into(),
            body: body.into(),
            subject_max_chars: DEFAULT_SUBJECT_MAX_CHARS,
        }
    }

    /// Sets [`subject_max_chars`](Self::subject_max_chars).
    pub fn subject_max_chars(mut self, max: usize) -> Self {
        self.subject_max_chars = max;
        self
    }

    fn render(&self, text: &str, inbound: &Inbound) -> String {
        let subject = single_line(inbound.subject());
        let subject = if subject.chars().count() > self.subject_max_chars {
            let mut cut: String = subject.chars().take(self.subject_max_chars).collect();
            if self.subject_max_chars > 0 {
                cut.push('…');
            }
            cut
        } else {
            subject
        };
        text.replace("{project}", inbound.project().unwrap_or("inbox"))
            .replace("{subject}", &subject)
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

/// What to do with `Reply-To` when it names someone other than `From`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyToPolicy {
    /// Answer `Reply-To` only when the receiving service authenticated the sender
    /// ([`SenderAuthentication::Pass`]); otherwise do what the [`Unauthenticated`] says.
    IfAuthenticated(Unauthenticated),
    /// Ignore `Reply-To`: answer `From` (or nobody).
    FromOnly,
}

impl Default for ReplyToPolicy {
    fn default() -> Self {
        ReplyToPolicy::IfAuthenticated(Unauthenticated::default())
    }
}

/// When `Reply-To` disagrees with `From` and the sender was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unauthenticated {
    /// Answer `From` instead (default): a forged `Reply-To` then reaches only the address the
    /// message claims to come from.
    #[default]
    AnswerFrom,
    /// Answer nobody.
    DoNotAnswer,
}

/// What the receiving service said about the sender, from the topmost
/// `Authentication-Results` header (the one the receiving service prepended; any below it may
/// have come with the message and prove nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderAuthentication {
    /// `compauth=pass` (Exchange Online's composite authentication), or `dmarc=pass` when
    /// there is no `compauth`.
    Pass,
    /// `compauth=fail` / `softpass`, or `dmarc=fail` without a `compauth`.
    Fail,
    /// No verdict: no header, or `none`, or a value we do not know.
    None,
}

impl SenderAuthentication {
    /// Reads the verdict from the value of an `Authentication-Results` header, such as
    /// Exchange Online's `spf=pass (…) smtp.mailfrom=…; dkim=pass (…) header.d=…;dmarc=pass
    /// action=none header.from=…;compauth=pass reason=100`.
    ///
    /// ```
    /// use handler::SenderAuthentication;
    /// let v = "spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail action=none \
    ///          header.from=bank.example;compauth=fail reason=000";
    /// assert_eq!(SenderAuthentication::from_header(v), SenderAuthentication::Fail);
    /// ```
    pub fn from_header(value: &str) -> Self {
        let mut compauth = None;
        let mut dmarc = None;
        for part in value.split(';') {
            for word in part.split_whitespace() {
                let Some((k, v)) = word.split_once('=') else {
                    continue;
                };
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_ascii_lowercase();
                if k == "compauth" && compauth.is_none() {
                    compauth = Some(v);
                } else if k == "dmarc" && dmarc.is_none() {
                    dmarc = Some(v);
                }
            }
        }
        match compauth.or(dmarc).as_deref() {
            Some("pass") => SenderAuthentication::Pass,
            Some("fail" | "softpass" | "softfail" | "permerror") => SenderAuthentication::Fail,
            _ => SenderAuthentication::None,
        }
    }
}

/// At most `max` acknowledgements to one recipient in any `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecipientLimit {
    /// Acknowledgements allowed in the window.
    pub max: u32,
    /// The sliding window.
    pub per: Duration,
}

impl RecipientLimit {
    /// `max` per `per`.
    pub fn new(max: u32, per: Duration) -> Self {
        RecipientLimit { max, per }
    }
}

impl Default for RecipientLimit {
    /// 5 an hour.
    fn default() -> Self {
        RecipientLimit::new(5, Duration::from_secs(3600))
    }
}

/// Who is answered, and how much. Acknowledgement notifications answer the customer from the
/// address they wrote to, and never anyone else.
///
/// An acknowledgement is mail the organisation sends to an address taken from a message that
/// anybody on the Internet can write. Left alone that is a relay: mail with
/// `From: attacker@evil.example`, `Reply-To: victim@victim.example` and a phishing subject
/// makes the handler send that subject to the victim, under the organisation's name and from
/// its own domain. A [`NotificationPolicy`] decides who, if anyone, is answered:
///
/// - **Never an address that is ours**: the pickup mailbox, its aliases and their
///   sub-addresses, and any address at one of our domains ([`NotificationPolicy::own_domains`];
///   by default the domains of the mailbox and its aliases). Answering one would send the
///   acknowledgement into our own mailbox, where it becomes a new ticket.
/// - **Never a system or list address** (`MAILER-DAEMON`, `postmaster`, `noreply`-style,
///   `…-request`, `owner-…`, `…-bounces`), nor mail that says it is automatic or list mail
///   (RFC 3834 `Auto-Submitted`, `Precedence`, `List-*` headers, delivery reports).
/// - **`Reply-To` and `From` together** ([`ReplyToPolicy`]): when they disagree, `Reply-To` is
///   answered only if the receiving service authenticated the sender (the topmost
///   `Authentication-Results` header, which Exchange Online stamps on mail from outside the
///   organisation, says `compauth=pass`, or `dmarc=pass` without a `compauth`); otherwise
///   `From` is answered, or nobody ([`Unauthenticated`]).
/// - **Not our own notifications, replies to them, or bounces of them**: each notification
///   carries [`NOTIFICATION_HEADER`] and a `Message-ID` that starts with
///   [`NOTIFICATION_ID_PREFIX`]; mail that carries either, refers to such an id in
///   `In-Reply-To` / `References`, or quotes it (a bounce that is not a standard delivery
///   report), is handed over but never acknowledged, so a responder that ignores RFC 3834
///   cannot ping-pong with the handler.
/// - **At most so many per recipient per period** ([`RecipientLimit`], by default 5 an hour):
///   whatever slips through the rules above cannot be used to flood one address.
/// - **No more of the inbound subject than the template allows**: the default template does
///   not echo it at all, and `{subject}` in a custom template is cut to
///   [`NotificationTemplate::subject_max_chars`] characters.
///
/// The rate limit is held in memory (shared by every source that uses clones of one policy);
/// a restart starts it afresh.
///
/// # Use
///
/// A [`NotificationTemplate`] converts into a policy with the safe defaults, so
/// `SourceSpec::notify_through(outbound, caps, template)` keeps working. Clones share one
/// rate limit.
///
/// ```
/// use std::time::Duration;
/// use handler::{NotificationPolicy, RecipientLimit, ReplyToPolicy, Unauthenticated};
/// use handler::NotificationTemplate;
///
/// let policy = NotificationPolicy::new(NotificationTemplate::default())
///     .reply_to(ReplyToPolicy::IfAuthenticated(Unauthenticated::DoNotAnswer))
///     .own_domains(["contoso.example", "contoso.onmicrosoft.com"])
///     .per_recipient(Some(RecipientLimit::new(3, Duration::from_secs(86_400))));
/// assert_eq!(policy.template().subject_max_chars, 60);
/// ```
#[derive(Debug, Clone)]
pub struct NotificationPolicy {
    template: NotificationTemplate,
    reply_to: ReplyToPolicy,
    own_domains: Option<Vec<String>>,
    per_recipient: Option<RecipientLimit>,
    sent: Arc<Mutex<SentLog>>,
}

impl From<NotificationTemplate> for NotificationPolicy {
    fn from(template: NotificationTemplate) -> Self {
        NotificationPolicy::new(template)
    }
}

impl NotificationPolicy {
    /// The safe defaults around `template`: `Reply-To` only when authenticated (else `From`),
    /// our domains are those of the pickup mailbox and its aliases, 5 per recipient an hour.
    pub fn new(template: NotificationTemplate) -> Self {
        NotificationPolicy {
            template,
            reply_to: ReplyToPolicy::default(),
            own_domains: None,
            per_recipient: Some(RecipientLimit::default()),
            sent: Arc::default(),
        }
    }

    /// What to do with a `Reply-To` that disagrees with `From`.
    pub fn reply_to(mut self, policy: ReplyToPolicy) -> Self {
        self.reply_to = policy;
        self
    }

    /// The domains whose addresses are never answered (the tenant's accepted domains). By
    /// default the domains of the pickup mailbox and its aliases; an empty list answers
    /// colleagues at our own domains (an internal helpdesk) while the mailbox's own addresses
    /// stay excluded.
    pub fn own_domains<I, S>(mut self, domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.own_domains = Some(
            domains
                .into_iter()
                .map(|d| {
                    d.as_ref()
                        .trim()
                        .trim_start_matches('@')
                        .to_ascii_lowercase()
                })
                .collect(),
        );
        self
    }

    /// The rate limit per recipient; `None` for none.
    pub fn per_recipient(mut self, limit: Option<RecipientLimit>) -> Self {
        self.per_recipient = limit;
        self
    }

    /// The template.
    pub fn template(&self) -> &NotificationTemplate {
        &self.template
    }

    /// Who `inbound` would be answered at, or why nobody, before the rate limit (which only
    /// [`Self::admit`] counts).
    pub fn recipient(&self, inbound: &Inbound, mailbox: &PickupMailbox) -> Result<String, String> {
        if let Some(why) = automatic(inbound) {
            return Err(why.into());
        }
        if inbound.answers_notification() {
            return Err("it answers or bounces one of our own notifications".into());
        }
        let Some(from) = inbound.from_address() else {
            return Err("it has no sender address".into());
        };
        self.answerable(from, mailbox)
            .map_err(|why| format!("From {why}"))?;
        let to = match inbound.reply_to_address() {
            Some(reply_to) if !reply_to.eq_ignore_ascii_case(from) => match self.reply_to {
                ReplyToPolicy::FromOnly => from,
                ReplyToPolicy::IfAuthenticated(otherwise) => {
                    match (inbound.sender_authentication(), otherwise) {
                        (SenderAuthentication::Pass, _) => {
                            self.answerable(reply_to, mailbox)
                                .map_err(|why| format!("Reply-To {why}"))?;
                            reply_to
                        }
                        (_, Unauthenticated::AnswerFrom) => from,
                        (_, Unauthenticated::DoNotAnswer) => {
                            return Err("its Reply-To differs from From and the sender was not \
                                        authenticated"
                                .into());
                        }
                    }
                }
            },
            _ => from,
        };
        Ok(to.to_owned())
    }

    /// Why `address` must never be answered, or `Ok`.
    fn answerable(&self, address: &str, mailbox: &PickupMailbox) -> Result<(), &'static str> {
        let Ok(addr) = EmailAddress::parse(address) else {
            return Err("is not a valid address");
        };
        let local = addr.local_part().to_ascii_lowercase();
        if is_system_local_part(&local) {
            return Err("is a system or list address");
        }
        // An exact own address always matches; a sub-address of one when plus addressing is on.
        if mailbox.match_address(&addr).is_some() {
            return Err("is one of our own addresses (a loop)");
        }
        let domain = addr.domain().to_ascii_lowercase();
        let ours = match &self.own_domains {
            Some(list) => list.contains(&domain),
            None => mailbox
                .own_addresses()
                .any(|a| a.domain().eq_ignore_ascii_case(&domain)),
        };
        if ours {
            return Err("is at one of our own domains");
        }
        Ok(())
    }

    /// Counts one acknowledgement to `to` against the rate limit: `false` when the limit is
    /// reached (nothing is counted then).
    pub fn admit(&self, to: &str) -> bool {
        let Some(limit) = self.per_recipient else {
            return true;
        };
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.forget_old(now, limit.per);
        let times = sent
            .by_recipient
            .entry(to.to_ascii_lowercase())
            .or_default();
        forget_before(times, now, limit.per);
        if times.len() >= limit.max as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// When each recipient was acknowledged, within the rate limit's window.
#[derive(Debug, Default)]
struct SentLog {
    by_recipient: HashMap<String, VecDeque<Instant>>,
    /// The map's size at which recipients whose window has passed are next forgotten (twice
    /// the size after the last sweep), so the sweep costs O(1) per acknowledgement on average
    /// and the map holds about the last period's recipients.
    sweep_at: usize,
}

impl SentLog {
    fn forget_old(&mut self, now: Instant, per: Duration) {
        if self.by_recipient.len() < self.sweep_at.max(64) {
            return;
        }
        self.by_recipient.retain(|_, times| {
            forget_before(times, now, per);
            !times.is_empty()
        });
        self.sweep_at = self.by_recipient.len() * 2;
    }
}

/// Drops the times that are a whole window `per` old.
fn forget_before(times: &mut VecDeque<Instant>, now: Instant, per: Duration) {
    while times.front().is_some_and(|t| now.duration_since(*t) >= per) {
        times.pop_front();
    }
}

/// `MAILER-DAEMON`, `postmaster`, `noreply`-style, list robots.
fn is_system_local_part(local: &str) -> bool {
    let base = local.split('+').next().unwrap_or(local);
    matches!(
        base,
        "mailer-daemon"
            | "postmaster"
            | "listserv"
            | "majordomo"
            | "mailman"
            | "bounce"
            | "bounces"
    ) || [
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
    ]
    .iter()
    .any(|p| base.starts_with(p))
        || base.starts_with("owner-")
        || base.starts_with("bounce-")
        || base.starts_with("bounces-")
        || base.ends_with("-request")
        || base.ends_with("-bounces")
        || base.ends_with("-owner")
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

/// Why the message says it is automatic or list mail, or `None`.
fn automatic(inbound: &Inbound) -> Option<&'static str> {
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
        if matches!(p.as_str(), "bulk" | "list" | "junk" | "auto_reply") {
            return Some("it is bulk or list mail");
        }
    }
    if ["List-Id", "List-Unsubscribe", "List-Post", "List-Help"]
        .iter()
        .any(|h| inbound.header(h).is_some())
    {
        return Some("it is list mail");
    }
    if inbound
        .header("X-Auto-Response-Suppress")
        .is_some_and(|v| v.contains("All") || v.contains("AutoReply"))
    {
        return Some("it asks for no auto replies");
    }
    let ct = inbound
        .header("Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ct.contains("multipart/report") {
        return Some("it is a delivery or read report");
    }
    None
}

/// The `Message-ID` (without brackets) of the notification for the message with `key`: the
/// same key always gives the same id.
pub(crate) fn notification_id(key: &str, from: &EmailAddress) -> String {
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{NOTIFICATION_ID_PREFIX}{hex}@{}", from.domain())
}

/// Builds the notification for `inbound` to `to`, from the chosen sender, or `None` if an
/// address does not make a valid mailbox.
pub(crate) fn build_notification(
    template: &NotificationTemplate,
    choice: &SenderChoice,
    inbound: &Inbound,
    to_addr: String,
) -> Option<(OutgoingMessage, String)> {
    let to: Mailbox = to_addr.parse().ok()?;
    let from: Mailbox = choice.from.to_string().parse().ok()?;
    let subject = single_line(&template.render(&template.subject, inbound));
    let body = template.render(&template.body, inbound);
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!(
            "<{}>",
            notification_id(&inbound.key, &choice.from)
        )))
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
    // Outlook files mail by conversation: the answer continues the customer's.
    if let Some(index) = inbound
        .header("Thread-Index")
        .and_then(|parent| crate::thread::child_thread_index(parent, std::time::SystemTime::now()))
    {
        builder = builder.header(ThreadIndex(index));
        let topic = inbound
            .header("Thread-Topic")
            .map(|t| single_line(t).trim().to_owned())
            .unwrap_or_else(|| inbound.subject().to_owned());
        builder = builder.header(ThreadTopic(single_line(&topic)));
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

/// Outlook's `Thread-Index`: the conversation the notification continues.
#[derive(Clone)]
struct ThreadIndex(String);

impl header::Header for ThreadIndex {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Thread-Index")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ThreadIndex(s.to_owned()))
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Outlook's `Thread-Topic`: the conversation's subject without `RE:`/`FW:`.
#[derive(Clone)]
struct ThreadTopic(String);

impl header::Header for ThreadTopic {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Thread-Topic")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ThreadTopic(s.to_owned()))
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_online_verdicts_are_read_from_compauth_first() {
        let pass = "spf=pass (sender IP is 40.107.1.1) smtp.mailfrom=fabrikam.example; \
                    dkim=pass (signature was verified) header.d=fabrikam.example;dmarc=pass \
                    action=none header.from=fabrikam.example;compauth=pass reason=100";
        assert_eq!(
            SenderAuthentication::from_header(pass),
            SenderAuthentication::Pass
        );
        // DMARC passes for the envelope domain but composite authentication fails: fail.
        let mixed = "spf=pass smtp.mailfrom=x.example; dmarc=pass action=none \
                     header.from=x.example;compauth=fail reason=601";
        assert_eq!(
            SenderAuthentication::from_header(mixed),
            SenderAuthentication::Fail
        );
        assert_eq!(
            SenderAuthentication::from_header("mx.example; dmarc=pass header.from=a.example"),
            SenderAuthentication::Pass
        );
        for none in [
            "",
            "spf=none; dkim=none; dmarc=none;compauth=none reason=905",
            "junk",
        ] {
            assert_eq!(
                SenderAuthentication::from_header(none),
                SenderAuthentication::None
            );
        }
    }

    #[test]
    fn system_and_list_local_parts_are_recognised() {
        for l in [
            "mailer-daemon",
            "postmaster",
            "noreply",
            "no-reply+x",
            "donotreply-billing",
            "owner-announce",
            "announce-request",
            "announce-bounces",
            "bounces-42",
        ] {
            assert!(is_system_local_part(l), "{l}");
        }
        for l in ["ann", "replies", "norene", "support"] {
            assert!(!is_system_local_part(l), "{l}");
        }
    }

    #[test]
    fn the_rate_limit_counts_per_recipient_in_a_sliding_window() {
        let p = NotificationPolicy::new(NotificationTemplate::default())
            .per_recipient(Some(RecipientLimit::new(2, Duration::from_millis(200))));
        let shared = p.clone();
        assert!(p.admit("Ann@fabrikam.example"));
        assert!(shared.admit("ann@FABRIKAM.example"));
        assert!(!p.admit("ann@fabrikam.example"), "a clone shares the count");
        assert!(
            p.admit("bob@fabrikam.example"),
            "another recipient is counted apart"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert!(p.admit("ann@fabrikam.example"), "the window has passed");
        let unlimited =
            NotificationPolicy::new(NotificationTemplate::default()).per_recipient(None);
        assert!((0..100).all(|_| unlimited.admit("ann@fabrikam.example")));
    }

    #[test]
    fn recipients_whose_window_passed_are_forgotten() {
        let p = NotificationPolicy::new(NotificationTemplate::default())
            .per_recipient(Some(RecipientLimit::new(1, Duration::from_millis(50))));
        for i in 0..100 {
            assert!(p.admit(&format!("old{i}@fabrikam.example")));
        }
        std::thread::sleep(Duration::from_millis(60));
        for i in 0..100 {
            assert!(p.admit(&format!("new{i}@fabrikam.example")));
        }
        let log = p.sent.lock().unwrap();
        assert!(
            log.by_recipient.len() < 200,
            "{} recipients kept",
            log.by_recipient.len()
        );
        assert!(
            log.by_recipient
                .keys()
                .filter(|k| k.starts_with("old"))
                .count()
                < 100,
            "no old recipient was forgotten"
        );
    }
}
