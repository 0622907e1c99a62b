//! A started sandbox and tokens minted by its signing key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use connector::{AccessToken, Error, TokenSource};
use sandbox::{Admin, ApiResource, MintRequest, Sandbox, TokenKind};

use crate::DEMO_APP;

/// A sandbox tenant on loopback with the demo seed.
pub async fn start() -> Sandbox {
    Sandbox::builder().start().await.expect("sandbox starts")
}

/// A token source that mints a new token from the sandbox for [`DEMO_APP`] on every call
/// (`token` and `refresh` alike), after handing out a forged one for the first
/// [`forged_first`](Self::forged_first) calls, and counts both.
#[derive(Debug)]
pub struct SandboxTokens {
    admin: Admin,
    kind: TokenKind,
    resource: ApiResource,
    forged: usize,
    calls: AtomicUsize,
    refreshes: AtomicUsize,
}

/// The token [`SandboxTokens::forged_first`] hands out: no signature the sandbox knows.
pub const FORGED: &str = "forged-token-SECRET-7d1e";

impl SandboxTokens {
    /// Tokens of this kind for this resource.
    pub fn new(sb: &Sandbox, kind: TokenKind, resource: ApiResource) -> Self {
        SandboxTokens {
            admin: sb.admin(),
            kind,
            resource,
            forged: 0,
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        }
    }

    /// App-only Graph tokens with `Mail.ReadWrite` and `Mail.Send`.
    pub fn graph_app(sb: &Sandbox) -> Arc<Self> {
        Arc::new(Self::new(
            sb,
            app(&["Mail.ReadWrite", "Mail.Send"]),
            ApiResource::Graph,
        ))
    }

    /// App-only Exchange tokens with `full_access_as_app` (EWS impersonation).
    pub fn ews_app(sb: &Sandbox) -> Arc<Self> {
        Arc::new(Self::new(
            sb,
            app(&["full_access_as_app"]),
            ApiResource::Exchange,
        ))
    }

    /// Exchange tokens of `user` with `EWS.AccessAsUser.All`.
    pub fn ews_delegated(sb: &Sandbox, user: &str) -> Arc<Self> {
        Arc::new(Self::new(
            sb,
            delegated(user, &["EWS.AccessAsUser.All"]),
            ApiResource::Exchange,
        ))
    }

    /// Exchange tokens of `user` with `SMTP.Send`, the first `forged` calls forged.
    pub fn smtp_delegated(sb: &Sandbox, user: &str, forged: usize) -> Arc<Self> {
        Arc::new(
            Self::new(sb, delegated(user, &["SMTP.Send"]), ApiResource::Exchange)
                .forged_first(forged),
        )
    }

    /// The first `n` calls (token or refresh) get [`FORGED`].
    pub fn forged_first(mut self, n: usize) -> Self {
        self.forged = n;
        self
    }

    /// A token minted now, bypassing the forged ones and the counters.
    pub fn mint(&self) -> Result<String, Error> {
        self.admin
            .mint_token(&MintRequest::new(
                DEMO_APP,
                self.kind.clone(),
                self.resource,
            ))
            .map_err(|e| Error::configuration(e.to_string()))
    }

    /// How many tokens were asked for (`token` and `refresh`).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many of them were refreshes.
    pub fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    fn next(&self) -> Result<AccessToken, Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.forged {
            return Ok(AccessToken::new(FORGED));
        }
        self.mint().map(AccessToken::new)
    }
}

#[async_trait]
impl TokenSource for SandboxTokens {
    async fn token(&self) -> Result<AccessToken, Error> {
        self.next()
    }

    async fn refresh(&self, _claims: Option<&str>) -> Result<AccessToken, Error> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.next()
    }
}

/// An app-only token kind with these roles.
pub fn app(roles: &[&str]) -> TokenKind {
    TokenKind::App {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// A delegated token kind of `user` with these scopes.
pub fn delegated(user: &str, scopes: &[&str]) -> TokenKind {
    TokenKind::Delegated {
        user: user.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The demo app may use SMTP AUTH as an app: `SMTP.SendAsApp`, admin-consented. Exchange
/// Online still refuses its sign-in until [`allow_app_only_smtp_on`] has done the rest.
pub fn consent_smtp_send_as_app(sb: &Sandbox) {
    const SEND_AS_APP: &str = "https://outlook.office365.com/SMTP.SendAsApp";
    sb.admin().update_tenant(|t| {
        if let Some(app) = t.apps.iter_mut().find(|a| a.client_id == DEMO_APP)
            && let Some(p) = sandbox::tenant::Permission::parse(SEND_AS_APP)
        {
            app.application_permissions.push(p);
        }
    });
    sb.admin()
        .grant_admin_consent(DEMO_APP, &[], &[SEND_AS_APP])
        .expect("consent");
}

/// [`consent_smtp_send_as_app`], and what Exchange Online needs besides for SMTP with an
/// app-only token on `mailbox`: the app's service principal registered, holding FullAccess on
/// it.
pub fn allow_app_only_smtp_on(sb: &Sandbox, mailbox: &str) {
    consent_smtp_send_as_app(sb);
    sb.admin()
        .register_service_principal(DEMO_APP)
        .expect("service principal");
    sb.admin()
        .add_mailbox_permission(mailbox, DEMO_APP, sandbox::tenant::MailboxRight::FullAccess)
        .expect("FullAccess");
}

/// [`allow_app_only_smtp_on`] the helpdesk mailbox: the demo app may send over SMTP as an app.
pub fn allow_smtp_send_as_app(sb: &Sandbox) {
    allow_app_only_smtp_on(sb, "helpdesk@contoso.example");
}
