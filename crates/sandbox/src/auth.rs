//! Bearer-token validation for the resource endpoints (Graph, EWS, SMTP AUTH).
//!
//! [`authenticate`] checks, in order: the `Authorization: Bearer` header, the token's RS256
//! signature (the sandbox's own key), expiry (against the sandbox clock, no skew) and admin-forced
//! expiry, audience (`https://graph.microsoft.com` for Graph, `https://outlook.office365.com` for
//! EWS/SMTP, or the resource app ids), tenant (`tid`), that the app and user still exist and are
//! enabled, and the **current** consent: the token's `scp`/`roles` are intersected with what is
//! consented right now, so consent withdrawn mid-run yields 401 even for a live token. EWS
//! delegated access additionally requires *admin* consent for `EWS.AccessAsUser.All`, as in
//! Exchange Online.
//!
//! A [`Principal`] then answers permission questions ([`Principal::may_read`],
//! [`Principal::may_write`], [`Principal::may_send_as`], [`Principal::may_submit_as`]) that
//! include Exchange mailbox rights (FullAccess, SendAs, SendOnBehalf — for app-only principals
//! too), service principals registered in Exchange (SMTP app-only access) and application
//! access policies; a denial is an [`AccessDenied`] the protocol renders as 403
//! (`ErrorAccessDenied` / `ErrorSendAsDenied`), 404, or an SMTP reply.

use std::collections::BTreeSet;

use http::HeaderMap;

use crate::identity::jwt::AccessClaims;
use crate::state::AppState;
use crate::tenant::{ApiResource, Mailbox, MailboxRight};

/// The endpoint family a token is presented to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    /// Microsoft Graph (`aud` = `https://graph.microsoft.com`).
    Graph,
    /// EWS (`aud` = `https://outlook.office365.com`).
    Ews,
    /// SMTP AUTH XOAUTH2 (`aud` = `https://outlook.office365.com`).
    Smtp,
}

impl Resource {
    /// The API the token must be for.
    pub(crate) fn api(self) -> ApiResource {
        match self {
            Resource::Graph => ApiResource::Graph,
            Resource::Ews | Resource::Smtp => ApiResource::Exchange,
        }
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PrincipalKind {
    /// A user signed in to an app (delegated permissions).
    Delegated {
        /// The signed-in user's primary SMTP address.
        user: String,
        /// The user's object id.
        user_id: String,
        /// Effective delegated scopes for this resource (names, e.g. `Mail.Read`).
        scopes: BTreeSet<String>,
    },
    /// An app acting as itself (application permissions).
    App {
        /// Effective app roles for this resource (e.g. `Mail.ReadWrite`, `full_access_as_app`).
        roles: BTreeSet<String>,
    },
}

/// An authenticated caller. Cloning is cheap.
#[derive(Clone)]
pub(crate) struct Principal {
    /// Client (app) id.
    pub app_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Delegated or app-only, with effective permissions.
    pub kind: PrincipalKind,
    /// The resource the token was accepted for.
    pub resource: Resource,
    state: AppState,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("app_id", &self.app_id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (the `reason` of an [`AuthFailure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum AuthFailureReason {
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// Not a JWT, or unreadable claims.
    Malformed,
    /// Signature invalid or unknown key.
    InvalidSignature,
    /// `exp` passed (or the admin expired all tokens).
    Expired,
    /// `nbf` in the future.
    NotYetValid,
    /// Token issued for another resource.
    WrongAudience,
    /// Token issued by/for another tenant.
    WrongTenant,
    /// The app no longer exists or is disabled.
    AppDisabled,
    /// The user no longer exists or is disabled.
    UserDisabled,
    /// Consent for this app/resource is missing (or was withdrawn).
    ConsentMissing,
}

/// A refused token: what to put in the 401.
#[derive(Clone, Debug)]
pub(crate) struct AuthFailure {
    /// Machine-readable reason.
    pub reason: AuthFailureReason,
    /// Human-readable description (safe to show; never contains the token).
    pub description: String,
    /// Value for the `WWW-Authenticate` response header.
    pub www_authenticate: String,
}

impl AuthFailure {
    /// The Graph error code for the 401 body (`InvalidAuthenticationToken`).
    pub(crate) fn graph_code(&self) -> &'static str {
        "InvalidAuthenticationToken"
    }

    /// The `x-ms-diagnostics` value Exchange Online puts on an EWS 401 (whose body is empty):
    /// a numeric code, the reason and a category, one per kind of refusal, in the form seen
    /// from Exchange Online (`2000001` unreadable, `2000003` wrong audience, `2000004` unknown
    /// tenant, `2000008` expired or without permissions). The codes are observed, not
    /// documented (protocol.md marks them `[obs]`); clients must read the code, not the words.
    pub(crate) fn ms_diagnostics(&self) -> String {
        let (code, reason, category) = match self.reason {
            AuthFailureReason::Expired => (
                2000008,
                "The token has expired.".to_owned(),
                "invalid_token",
            ),
            AuthFailureReason::ConsentMissing => (
                2000008,
                "The token contains no permissions, or permissions can not be understood."
                    .to_owned(),
                "invalid_grant",
            ),
            AuthFailureReason::WrongAudience => (
                2000003,
                "The audience claim value is invalid.".to_owned(),
                "invalid_resource",
            ),
            AuthFailureReason::WrongTenant => (
                2000004,
                "The tenant the token was issued for is not this organization.".to_owned(),
                "invalid_tenant",
            ),
            AuthFailureReason::MissingToken
            | AuthFailureReason::Malformed
            | AuthFailureReason::InvalidSignature
            | AuthFailureReason::NotYetValid
            | AuthFailureReason::AppDisabled
            | AuthFailureReason::UserDisabled => (
                2000001,
                "OAuth token submitted with the request cannot be parsed.".to_owned(),
                "invalid_token",
            ),
        };
        // The reason goes inside a quoted string: no quote may end it early.
        let reason = reason.replace('"', "'");
        format!("{code};reason=\"{reason}\";error_category=\"{category}\"")
    }
}

/// Why an authenticated principal may not do something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum AccessDeniedKind {
    /// The mailbox does not exist (Graph 404 `ErrorInvalidUser` / EWS `ErrorNonExistentMailbox`).
    MailboxNotFound,
    /// The token lacks the needed scope/role (403 `ErrorAccessDenied`).
    MissingPermission,
    /// The user has no Exchange right on that mailbox (403 `ErrorAccessDenied`).
    NoMailboxRight,
    /// An application access policy excludes the mailbox (403 `ErrorAccessDenied`).
    BlockedByPolicy,
    /// No Send As / Send on Behalf right for the From address (403 `ErrorSendAsDenied`).
    SendAsDenied,
    /// SMTP app-only: the app's service principal is not registered in Exchange
    /// (`535 5.7.3` at `AUTH`).
    ServicePrincipalNotRegistered,
}

/// Exchange's text for `ErrorSendAsDenied` (EWS's `MessageText`; Graph adds
/// `Cannot submit message.`, see [`AccessDenied::graph_message`]).
pub(crate) const SEND_AS_DENIED: &str = "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.";

/// A permission denial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessDenied {
    /// Why.
    pub kind: AccessDeniedKind,
    /// Human-readable message.
    pub message: String,
}

impl AccessDenied {
    fn new(kind: AccessDeniedKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The Exchange/Graph error code for this denial.
    pub(crate) fn code(&self) -> &'static str {
        match self.kind {
            AccessDeniedKind::MailboxNotFound => "ErrorInvalidUser",
            AccessDeniedKind::SendAsDenied => "ErrorSendAsDenied",
            _ => "ErrorAccessDenied",
        }
    }

    /// The message Graph gives: Microsoft's `ErrorSendAsDenied` text ends with
    /// `Cannot submit message.` there.
    pub(crate) fn graph_message(&self) -> String {
        if self.message == SEND_AS_DENIED {
            format!("{SEND_AS_DENIED} Cannot submit message.")
        } else {
            self.message.clone()
        }
    }

    /// The HTTP status Graph uses for this denial (404 or 403).
    pub(crate) fn http_status(&self) -> u16 {
        match self.kind {
            AccessDeniedKind::MailboxNotFound => 404,
            _ => 403,
        }
    }
}

/// The outcome of [`Principal::may_send_as`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SendAs {
    /// Primary address of the mailbox sending (whose Sent Items get the copy).
    pub mailbox: String,
    /// Primary address of the mailbox named in From (may equal `mailbox`).
    pub from_mailbox: String,
    /// `true` when the right used is Send on Behalf (the `Sender` header is the mailbox).
    pub on_behalf: bool,
}

impl SendAs {
    /// `mime` as Exchange submits it: with Send on Behalf, a `Sender:` naming the sending
    /// mailbox is added when the message has none (Graph fills `sender` the same way).
    pub(crate) fn stamp<'a>(&self, mime: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let has_sender = crate::store::MessageProps::from_mime(mime)
            .ok()
            .is_some_and(|p| p.header("Sender").is_some());
        if !self.on_behalf || has_sender {
            return std::borrow::Cow::Borrowed(mime);
        }
        let mut out = format!("Sender: {}\r\n", self.mailbox).into_bytes();
        out.extend_from_slice(mime);
        std::borrow::Cow::Owned(out)
    }
}

fn challenge(state: &AppState, resource: Resource, error_description: &str) -> String {
    let base = state.base_url();
    let desc = error_description.replace(['"', '\\'], "'");
    match resource {
        Resource::Graph => format!(
            "Bearer realm=\"\", authorization_uri=\"{base}/common/oauth2/authorize\", client_id=\"{}\", error=\"invalid_token\", error_description=\"{desc}\"",
            ApiResource::Graph.app_id()
        ),
        Resource::Ews | Resource::Smtp => format!(
            "Bearer client_id=\"{}\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"{base}/common/oauth2/authorize\", error=\"invalid_token\", error_description=\"{desc}\"",
            ApiResource::Exchange.app_id()
        ),
    }
}

/// Validates the bearer token in `headers` for `resource`. See the module documentation.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    resource: Resource,
) -> Result<Principal, AuthFailure> {
    let fail = |reason, description: String| AuthFailure {
        reason,
        www_authenticate: challenge(state, resource, &description),
        description,
    };
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            fail(
                AuthFailureReason::MissingToken,
                "Access token is empty.".into(),
            )
        })?;
    authenticate_token(state, token, resource).map_err(|(r, d)| fail(r, d))
}

/// Validates a raw access token (for SMTP AUTH XOAUTH2, which carries it outside HTTP headers).
pub(crate) fn authenticate_bearer(
    state: &AppState,
    token: &str,
    resource: Resource,
) -> Result<Principal, AuthFailure> {
    authenticate_token(state, token, resource).map_err(|(reason, description)| AuthFailure {
        reason,
        www_authenticate: challenge(state, resource, &description),
        description,
    })
}

fn authenticate_token(
    state: &AppState,
    token: &str,
    resource: Resource,
) -> Result<Principal, (AuthFailureReason, String)> {
    use crate::identity::jwt::JwtError;
    let claims = state.identity().key().verify(token).map_err(|e| match e {
        JwtError::Malformed => (
            AuthFailureReason::Malformed,
            "IDX14100: JWT is not well formed.".to_string(),
        ),
        JwtError::Signature => (
            AuthFailureReason::InvalidSignature,
            "IDX10511: Signature validation failed.".to_string(),
        ),
    })?;
    let claims: AccessClaims = serde_json::from_value(claims).map_err(|_| {
        (
            AuthFailureReason::Malformed,
            "The token's claims are not an access token.".to_string(),
        )
    })?;
    let now = state.clock().now_unix();
    if claims.exp <= now || claims.generation < state.identity().token_generation() {
        return Err((
            AuthFailureReason::Expired,
            "Lifetime validation failed, the token is expired.".into(),
        ));
    }
    if claims.nbf > now {
        return Err((
            AuthFailureReason::NotYetValid,
            "The token is not yet valid.".into(),
        ));
    }
    if ApiResource::from_identifier(&claims.aud) != Some(resource.api()) {
        return Err((AuthFailureReason::WrongAudience, "Invalid audience.".into()));
    }
    let tenant = state.tenant();
    if !tenant.info.id.eq_ignore_ascii_case(&claims.tid) {
        return Err((AuthFailureReason::WrongTenant, "Invalid tenant.".into()));
    }
    let Some(app) = tenant.app(&claims.appid).filter(|a| a.enabled) else {
        return Err((
            AuthFailureReason::AppDisabled,
            format!(
                "The application {} is disabled or was deleted.",
                claims.appid
            ),
        ));
    };
    let consent_missing = || {
        (
            AuthFailureReason::ConsentMissing,
            format!(
                "AADSTS65001: The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                app.client_id, app.display_name
            ),
        )
    };
    let api = resource.api();
    let kind = if claims.idtyp == "app" {
        let granted = tenant.consents.application(&app.client_id);
        let roles: BTreeSet<String> = claims
            .roles
            .iter()
            .flatten()
            .filter(|r| granted.iter().any(|g| g.is(api, r)))
            .cloned()
            .collect();
        if roles.is_empty() {
            return Err(consent_missing());
        }
        PrincipalKind::App { roles }
    } else {
        let Some(user) = claims
            .oid
            .as_deref()
            .and_then(|oid| tenant.user(oid, now))
            .filter(|u| u.enabled)
        else {
            return Err((
                AuthFailureReason::UserDisabled,
                "The user account is disabled or was deleted.".into(),
            ));
        };
        let granted = tenant.consents.delegated(&app.client_id, &user.id);
        let admin = tenant.consents.admin_delegated(&app.client_id);
        let scopes: BTreeSet<String> = claims
            .scp
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| granted.iter().any(|g| g.is(api, s)))
            .filter(|s| {
                // Exchange Online honours EWS.AccessAsUser.All only with admin consent.
                resource != Resource::Ews
                    || !s.eq_ignore_ascii_case("EWS.AccessAsUser.All")
                    || admin.iter().any(|g| g.is(api, s))
            })
            .map(str::to_string)
            .collect();
        if scopes.is_empty() {
            return Err(consent_missing());
        }
        PrincipalKind::Delegated {
            user: user.mail.clone(),
            user_id: user.id.clone(),
            scopes,
        }
    };
    let app_id = app.client_id.clone();
    let tenant_id = tenant.info.id.clone();
    drop(tenant);
    Ok(Principal {
        app_id,
        tenant_id,
        kind,
        resource,
        state: state.clone(),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Send,
}

impl Principal {
    /// Whether the principal holds any of these permission names (case-insensitive).
    pub(crate) fn has_any(&self, names: &[&str]) -> bool {
        let set = match &self.kind {
            PrincipalKind::Delegated { scopes, .. } => scopes,
            PrincipalKind::App { roles } => roles,
        };
        set.iter()
            .any(|s| names.iter().any(|n| s.eq_ignore_ascii_case(n)))
    }

    /// The signed-in user's primary address (delegated tokens only).
    pub(crate) fn user(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Delegated { user, .. } => Some(user),
            PrincipalKind::App { .. } => None,
        }
    }

    /// Whether this is an app-only principal.
    pub(crate) fn is_app(&self) -> bool {
        matches!(self.kind, PrincipalKind::App { .. })
    }

    fn needed(&self, access: Access, own: bool) -> &'static [&'static str] {
        match (self.resource, &self.kind, access) {
            (Resource::Graph, PrincipalKind::App { .. }, Access::Read) => {
                &["Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic.All"]
            }
            (Resource::Graph, PrincipalKind::App { .. }, Access::Write) => &["Mail.ReadWrite"],
            (Resource::Graph, PrincipalKind::App { .. }, Access::Send) => &["Mail.Send"],
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Read) if own => {
                &["Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic"]
            }
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Read) => {
                &["Mail.Read.Shared", "Mail.ReadWrite.Shared"]
            }
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Write) if own => {
                &["Mail.ReadWrite"]
            }
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Write) => {
                &["Mail.ReadWrite.Shared"]
            }
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Send) if own => {
                &["Mail.Send"]
            }
            (Resource::Graph, PrincipalKind::Delegated { .. }, Access::Send) => {
                &["Mail.Send.Shared"]
            }
            (Resource::Ews, PrincipalKind::App { .. }, _) => &["full_access_as_app"],
            (Resource::Ews, PrincipalKind::Delegated { .. }, _) => &["EWS.AccessAsUser.All"],
            (Resource::Smtp, PrincipalKind::App { .. }, _) => &["SMTP.SendAsApp"],
            (Resource::Smtp, PrincipalKind::Delegated { .. }, _) => &["SMTP.Send"],
        }
    }

    fn check(&self, mailbox: &str, access: Access) -> Result<String, AccessDenied> {
        let now = self.state.clock().now_unix();
        let tenant = self.state.tenant();
        let Some(mb) = tenant.mailbox(mailbox, now) else {
            return Err(AccessDenied::new(
                AccessDeniedKind::MailboxNotFound,
                format!("The requested user '{mailbox}' is invalid."),
            ));
        };
        let own = self
            .user()
            .is_some_and(|u| u.eq_ignore_ascii_case(&mb.mail));
        let needed = self.needed(access, own);
        match &self.kind {
            PrincipalKind::App { .. } => {
                if !self.has_any(needed) {
                    return Err(AccessDenied::new(
                        AccessDeniedKind::MissingPermission,
                        "Access is denied. Check credentials and try again.",
                    ));
                }
                if !tenant.app_policy_allows(&self.app_id, mb) {
                    return Err(AccessDenied::new(
                        AccessDeniedKind::BlockedByPolicy,
                        "Access to OData is disabled: the application access policy does not allow this mailbox.",
                    ));
                }
            }
            PrincipalKind::Delegated { user, .. } => {
                // EWS and SMTP scopes cover every mailbox the user has rights on; Graph
                // distinguishes own (Mail.*) from shared (Mail.*.Shared) scopes.
                if !self.has_any(needed) {
                    return Err(AccessDenied::new(
                        AccessDeniedKind::MissingPermission,
                        "Access is denied. Check credentials and try again.",
                    ));
                }
                if !own && !has_right(&tenant, mb, user, MailboxRight::FullAccess) {
                    return Err(AccessDenied::new(
                        AccessDeniedKind::NoMailboxRight,
                        "Access is denied. Check credentials and try again.",
                    ));
                }
            }
        }
        Ok(mb.mail.clone())
    }

    /// May the principal read `mailbox` (address, alias, UPN or id)? Returns its primary address.
    pub(crate) fn may_read(&self, mailbox: &str) -> Result<String, AccessDenied> {
        self.check(mailbox, Access::Read)
    }

    /// May the principal change `mailbox` (flags, move, delete, drafts)? Returns its primary.
    pub(crate) fn may_write(&self, mailbox: &str) -> Result<String, AccessDenied> {
        self.check(mailbox, Access::Write)
    }

    /// May the principal send from `mailbox` with `from_address` in the From header?
    ///
    /// `from_address` may be the mailbox's own primary address or alias (no right needed), or
    /// another mailbox on which Send As or Send on Behalf is held by the sending mailbox, or —
    /// delegated — by the signed-in user, or — SMTP app-only — by the app's Exchange-registered
    /// service principal. App-only principals are held to the same rule as users: `Mail.Send`
    /// (or `full_access_as_app`, `SMTP.SendAsApp`) reaches every mailbox, but putting another
    /// mailbox in `From` needs Exchange's right, as in Exchange Online (`ErrorSendAsDenied`).
    /// An application access policy must also allow the From mailbox.
    pub(crate) fn may_send_as(
        &self,
        mailbox: &str,
        from_address: &str,
    ) -> Result<SendAs, AccessDenied> {
        let primary = self.check(mailbox, Access::Send)?;
        let now = self.state.clock().now_unix();
        let tenant = self.state.tenant();
        let denied = || AccessDenied::new(AccessDeniedKind::SendAsDenied, SEND_AS_DENIED);
        let Some(from_mb) = tenant.mailbox(from_address, now) else {
            return Err(denied());
        };
        let grant = |on_behalf| {
            Ok(SendAs {
                mailbox: primary.clone(),
                from_mailbox: from_mb.mail.clone(),
                on_behalf,
            })
        };
        if from_mb.mail.eq_ignore_ascii_case(&primary) {
            return grant(false);
        }
        if self.is_app() && !tenant.app_policy_allows(&self.app_id, from_mb) {
            return Err(AccessDenied::new(
                AccessDeniedKind::SendAsDenied,
                "The application access policy does not allow sending as this mailbox.",
            ));
        }
        let sending = tenant.mailbox(&primary, i64::MAX);
        let actor = self.user().and_then(|u| tenant.mailbox(u, i64::MAX));
        let sp = if self.is_app() && self.resource == Resource::Smtp {
            tenant.service_principal(&self.app_id)
        } else {
            None
        };
        let holds = |right| {
            [sending, actor]
                .into_iter()
                .flatten()
                .any(|m| tenant.mailbox_holds(from_mb, right, m))
                || sp.is_some_and(|sp| tenant.service_principal_holds(from_mb, right, sp))
        };
        if holds(MailboxRight::SendAs) {
            return grant(false);
        }
        if holds(MailboxRight::SendOnBehalf) {
            return grant(true);
        }
        Err(denied())
    }

    /// May the principal sign in to SMTP AUTH for `mailbox` (XOAUTH2's `user=`)? Returns its
    /// primary address.
    ///
    /// Delegated (`SMTP.Send`): the user's own mailbox, or one the user has FullAccess on.
    /// App-only (`SMTP.SendAsApp`): as Exchange Online requires, the app's service principal
    /// must be registered in Exchange (`New-ServicePrincipal`) and hold FullAccess on the
    /// mailbox (`Add-MailboxPermission`); the denial says which is missing (SMTP itself answers
    /// both with `535 5.7.3`).
    pub(crate) fn may_submit_as(&self, mailbox: &str) -> Result<String, AccessDenied> {
        let primary = self.may_send_as(mailbox, mailbox)?.mailbox;
        if !self.is_app() {
            return Ok(primary);
        }
        let tenant = self.state.tenant();
        let Some(sp) = tenant.service_principal(&self.app_id) else {
            return Err(AccessDenied::new(
                AccessDeniedKind::ServicePrincipalNotRegistered,
                format!(
                    "The application {} has no service principal in Exchange Online (New-ServicePrincipal).",
                    self.app_id
                ),
            ));
        };
        let full_access = tenant
            .mailbox(&primary, i64::MAX)
            .is_some_and(|mb| tenant.service_principal_holds(mb, MailboxRight::FullAccess, sp));
        if !full_access {
            return Err(AccessDenied::new(
                AccessDeniedKind::NoMailboxRight,
                format!(
                    "The service principal of application {} has no FullAccess on {primary} (Add-MailboxPermission).",
                    self.app_id
                ),
            ));
        }
        Ok(primary)
    }
}

fn has_right(
    tenant: &crate::tenant::Tenant,
    target: &Mailbox,
    who: &str,
    right: MailboxRight,
) -> bool {
    tenant
        .mailbox(who, i64::MAX)
        .is_some_and(|m| tenant.mailbox_holds(target, right, m))
}
