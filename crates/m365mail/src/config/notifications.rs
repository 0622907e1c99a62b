//! `[notifications]`: the acknowledgement's templates and who may be answered, and the one
//! [`handler::NotificationPolicy`] they describe.

use serde::Deserialize;

/// The acknowledgement notification: its templates (`{project}`, `{subject}`, `{catch}`,
/// `{from}`) and who may be answered (see `handler::NotificationPolicy` for the rules).
///
/// ```toml
/// [notifications]
/// subject = "[{project}] We received your message"
/// subject_max_chars = 60                    # the most of the inbound subject {subject} shows
/// reply_to = "if-authenticated"             # or "from-only"
/// unauthenticated_reply_to = "answer-from"  # or "do-not-answer"
/// own_domains = ["contoso.com", "contoso.onmicrosoft.com"]  # never answered
/// per_recipient_max = 5                     # acknowledgements per recipient ...
/// per_recipient_period_secs = 3600          # ... in this window (max 0: no limit)
/// ```
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NotificationConfig {
    /// Subject template.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template.
    #[serde(default)]
    pub body: Option<String>,
    /// The most characters of the inbound subject that `{subject}` shows (default 60).
    #[serde(default)]
    pub subject_max_chars: Option<usize>,
    /// When `Reply-To` disagrees with `From`: `if-authenticated` (default: answer `Reply-To`
    /// only when Exchange Online's `Authentication-Results` passed) or `from-only`.
    #[serde(default)]
    pub reply_to: Option<ReplyToName>,
    /// With `reply_to = "if-authenticated"` and an unauthenticated sender: `answer-from`
    /// (default) or `do-not-answer`.
    #[serde(default)]
    pub unauthenticated_reply_to: Option<UnauthenticatedName>,
    /// Domains never answered (the tenant's accepted domains). Default: the domains of each
    /// source's mailbox and aliases; `[]` answers colleagues at our own domains.
    #[serde(default)]
    pub own_domains: Option<Vec<String>>,
    /// Acknowledgements to one recipient per window (default 5; 0 turns the limit off).
    #[serde(default)]
    pub per_recipient_max: Option<u32>,
    /// The window of `per_recipient_max`, in seconds (default 3600).
    #[serde(default)]
    pub per_recipient_period_secs: Option<u64>,
}

/// `notifications.reply_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ReplyToName {
    /// Answer `Reply-To` only for an authenticated sender.
    IfAuthenticated,
    /// Always answer `From`.
    FromOnly,
}

/// `notifications.unauthenticated_reply_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UnauthenticatedName {
    /// Answer `From` instead.
    AnswerFrom,
    /// Answer nobody.
    DoNotAnswer,
}

impl NotificationConfig {
    /// The notification policy these settings describe (one for all sources, so that they
    /// share the per-recipient limit).
    pub fn policy(&self) -> handler::NotificationPolicy {
        let defaults = handler::NotificationTemplate::default();
        let mut template = handler::NotificationTemplate::new(
            self.subject.clone().unwrap_or(defaults.subject),
            self.body.clone().unwrap_or(defaults.body),
        );
        if let Some(max) = self.subject_max_chars {
            template = template.subject_max_chars(max);
        }
        let otherwise = match self.unauthenticated_reply_to {
            Some(UnauthenticatedName::DoNotAnswer) => handler::Unauthenticated::DoNotAnswer,
            _ => handler::Unauthenticated::AnswerFrom,
        };
        let reply_to = match self.reply_to {
            Some(ReplyToName::FromOnly) => handler::ReplyToPolicy::FromOnly,
            _ => handler::ReplyToPolicy::IfAuthenticated(otherwise),
        };
        let defaults = handler::RecipientLimit::default();
        let limit = match self.per_recipient_max {
            Some(0) => None,
            max => Some(handler::RecipientLimit::new(
                max.unwrap_or(defaults.max),
                self.per_recipient_period_secs
                    .map_or(defaults.per, std::time::Duration::from_secs),
            )),
        };
        let mut policy = handler::NotificationPolicy::new(template)
            .reply_to(reply_to)
            .per_recipient(limit);
        if let Some(domains) = &self.own_domains {
            policy = policy.own_domains(domains);
        }
        policy
    }
}
