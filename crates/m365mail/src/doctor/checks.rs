//! The doctor's reasoning without any I/O: what a connection needs in its token, what a token
//! grants, how a failed mailbox request is read, what a probe found, and the fix for each
//! problem (the portal path or the Exchange Online PowerShell command). Unit-tested here.

use connector::ErrorKind;

/// The API a connection's token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services (Office 365 Exchange Online).
    Ews,
    /// SMTP client submission (Office 365 Exchange Online).
    Smtp,
}

impl Resource {
    /// `graph`, `ews` or `smtp`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Graph => "graph",
            Resource::Ews => "ews",
            Resource::Smtp => "smtp",
        }
    }

    /// The API as the Entra admin center lists it under *API permissions*.
    pub fn api(self) -> &'static str {
        match self {
            Resource::Graph => "Microsoft Graph",
            Resource::Ews | Resource::Smtp => "Office 365 Exchange Online",
        }
    }
}

/// What a connection does with its mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Use {
    /// A source: reads and acknowledges (marks, moves, deletes).
    Read,
    /// An outbound: sends.
    Send,
}

/// The permissions a token must carry for `resource` and `usage`: every group must be matched
/// by one of its names (`roles` of an app-only token, `scp` of a delegated one). Delegated Graph
/// access to a mailbox that is not the signed-in user's own takes the `.Shared` names.
pub fn needed(resource: Resource, usage: Use, app_only: bool) -> Vec<Vec<&'static str>> {
    let one = |names: &[&'static str]| vec![names.to_vec()];
    match (resource, usage, app_only) {
        (Resource::Graph, Use::Read, true) => one(&["Mail.ReadWrite"]),
        (Resource::Graph, Use::Read, false) => one(&["Mail.ReadWrite", "Mail.ReadWrite.Shared"]),
        (Resource::Graph, Use::Send, true) => one(&["Mail.Send"]),
        (Resource::Graph, Use::Send, false) => one(&["Mail.Send", "Mail.Send.Shared"]),
        (Resource::Ews, _, true) => one(&["full_access_as_app"]),
        (Resource::Ews, _, false) => one(&["EWS.AccessAsUser.All"]),
        (Resource::Smtp, _, true) => one(&["SMTP.SendAsApp"]),
        (Resource::Smtp, _, false) => one(&["SMTP.Send"]),
    }
}

/// What a token says about itself, read from its claims without verifying it (the service
/// verifies it; this only words the doctor's findings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TokenFacts {
    /// App-only (`roles`, no `scp`; or `idtyp` = `app`).
    pub app_only: bool,
    /// The permissions it carries: `roles` for app-only tokens, `scp` split on spaces for
    /// delegated ones.
    pub permissions: Vec<String>,
    /// The signed-in person (`upn`, else `preferred_username`), for delegated tokens.
    pub user: Option<String>,
}

impl TokenFacts {
    /// Reads the claims of a JWT access token; `None` when it is not a readable JWT (Microsoft
    /// says to treat access tokens as opaque; Graph's and Exchange Online's are JWTs today).
    pub fn read(token: &str) -> Option<TokenFacts> {
        use base64::Engine as _;
        let payload = token.split('.').nth(1)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        let roles: Vec<String> = claims
            .get("roles")
            .and_then(serde_json::Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let scp = text("scp");
        let app_only =
            text("idtyp") == Some("app") || (scp.is_none() && claims.get("roles").is_some());
        let permissions = match scp {
            Some(s) if !app_only => s.split_whitespace().map(str::to_owned).collect(),
            _ => roles,
        };
        Some(TokenFacts {
            app_only,
            permissions,
            user: text("upn")
                .or(text("preferred_username"))
                .map(str::to_owned),
        })
    }

    /// The groups of `needed` that none of the token's permissions matches (names compared
    /// case-insensitively; a `resource/` prefix on a delegated scope is ignored). Each missing
    /// group is named by its first name.
    pub fn missing(&self, needed: &[Vec<&'static str>]) -> Vec<&'static str> {
        let has = |name: &str| {
            self.permissions.iter().any(|p| {
                let bare = p.rsplit('/').next().unwrap_or(p);
                bare.eq_ignore_ascii_case(name)
            })
        };
        needed
            .iter()
            .filter(|group| !group.iter().any(|n| has(n)))
            .filter_map(|group| group.first().copied())
            .collect()
    }
}

/// How a request to the mailbox went, read from the connection's error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// The mailbox answered.
    Reached,
    /// EWS refused the app as a whole (HTTP 403: `EwsEnabled` / `EwsAllowedAppIDs`).
    EwsBlocked,
    /// No mailbox has that address (Graph 404 `ErrorInvalidUser`, EWS
    /// `ErrorNonExistentMailbox`): a group, a contact or a typo.
    NotAMailbox(String),
    /// The service refused this mailbox to a valid token (403 `ErrorAccessDenied`).
    Denied(String),
    /// The token was refused (401).
    TokenRefused(String),
    /// Anything else (network, throttling, a server error): the facts stay unknown.
    Other(String),
}

/// Codes that say "there is no mailbox with that address".
const NOT_A_MAILBOX: &[&str] = &[
    "ErrorInvalidUser",
    "ErrorNonExistentMailbox",
    "MailboxNotEnabledForRESTAPI",
    "MailboxNotEnabledForRESTAPIPreview",
    "ErrorMailboxNotFound",
    "ResourceNotFound",
    "Request_ResourceNotFound",
    "ErrorInvalidMailbox",
];

/// Reads the error of a mailbox request.
pub fn classify(e: &connector::Error) -> Access {
    let code = e
        .response()
        .and_then(|r| r.server_code.as_deref())
        .unwrap_or("");
    let status = e.response().and_then(|r| r.status);
    let what = if code.is_empty() {
        e.message().to_owned()
    } else {
        format!("{code}: {}", e.message())
    };
    if code == "EwsDisabledForApp" {
        return Access::EwsBlocked;
    }
    if NOT_A_MAILBOX.iter().any(|c| c.eq_ignore_ascii_case(code))
        || (code.is_empty() && e.kind() == ErrorKind::NotFound)
    {
        return Access::NotAMailbox(what);
    }
    if e.kind() == ErrorKind::Authentication || status == Some(401) {
        return Access::TokenRefused(what);
    }
    if code.eq_ignore_ascii_case("ErrorAccessDenied")
        || code.eq_ignore_ascii_case("ErrorImpersonateUserDenied")
        || status == Some(403)
        || e.kind() == ErrorKind::Refused
    {
        return Access::Denied(what);
    }
    Access::Other(what)
}

/// What became of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arrival {
    /// It arrived in the inbox, with this `From` address.
    Arrived {
        /// The `From` address of the copy that arrived.
        from: Option<String>,
    },
    /// A non-delivery report about it arrived: the address does not receive.
    Bounced,
    /// Nothing within the wait.
    Missing,
}

/// The fixes, in the words of the Entra admin center and Exchange Online PowerShell.
pub mod fix {
    /// Admin consent for `app_id`: the portal path, the permissions to list, and the consent
    /// URL when there is one.
    pub fn consent(
        app_id: &str,
        api: &str,
        missing: &[&str],
        app_only: bool,
        url: Option<&str>,
    ) -> String {
        let kind = if app_only {
            "Application permissions"
        } else {
            "Delegated permissions"
        };
        let mut out = format!(
            "Entra admin center > App registrations > {app_id} > API permissions > Add a \
             permission > {api} > {kind}: {}; then Enterprise applications > {app_id} > \
             Permissions > Grant admin consent",
            missing.join(", ")
        );
        match url {
            Some(u) => out.push_str(&format!(" (or the administrator opens {u})")),
            None => out.push_str(
                " (or the administrator opens the URL `m365mail consent-url --config FILE` prints)",
            ),
        }
        out
    }

    /// Assignment required, the user not assigned (AADSTS50105).
    pub fn assignment(app_id: &str, user: Option<&str>) -> String {
        let who = user.unwrap_or("the signed-in user");
        format!(
            "Entra admin center > Enterprise applications > {app_id} > Users and groups > Add \
             user/group: assign {who} (or a group they belong to); or turn Properties > \
             Assignment required? to No"
        )
    }

    /// EWS blocked for the app.
    pub fn ews(app_id: &str) -> String {
        format!(
            "Exchange Online PowerShell: Get-OrganizationConfig | Format-List EwsEnabled, \
             EwsAllowedAppIDs; Set-OrganizationConfig -EwsEnabled $true -EwsAllowedAppIDs \
             \"<the app ids already listed>,{app_id}\"; if only this mailbox is blocked: \
             Set-CASMailbox -Identity <mailbox> -EWSEnabled $true. Or move the connection to \
             Microsoft Graph (kind = \"graph\"): Exchange Online switches EWS off from October \
             2026"
        )
    }

    /// The pickup address is no mailbox.
    pub fn not_a_mailbox(address: &str, key: &str) -> String {
        format!(
            "Get-Recipient -Identity {address} | Format-List RecipientTypeDetails (Exchange \
             admin center > Recipients) tells a group from a mailbox: a group's mail goes to its \
             members, so point {key} at a user or shared mailbox (for example one the group \
             delivers to)"
        )
    }

    /// An application access policy or RBAC for Applications keeps the app out.
    pub fn application_access(app_id: &str, mailbox: &str) -> String {
        format!(
            "Exchange Online PowerShell: Test-ApplicationAccessPolicy -Identity {mailbox} -AppId \
             {app_id} shows the verdict and Get-ApplicationAccessPolicy the policies; let the \
             app in with New-ApplicationAccessPolicy -AppId {app_id} -PolicyScopeGroupId \
             <a mail-enabled security group with {mailbox}> -AccessRight RestrictAccess (or \
             Remove-ApplicationAccessPolicy for a DenyAccess policy naming it); with RBAC for \
             Applications: Test-ServicePrincipalAuthorization -Identity <service principal> \
             -Resource {mailbox}, then New-ManagementRoleAssignment for the app's service \
             principal with a scope that includes {mailbox}"
        )
    }

    /// A person without rights on a mailbox that is not their own.
    pub fn mailbox_rights(mailbox: &str, user: Option<&str>) -> String {
        let who = user.unwrap_or("<the signed-in user>");
        format!(
            "Exchange Online PowerShell: Add-MailboxPermission -Identity {mailbox} -User {who} \
             -AccessRights FullAccess"
        )
    }

    /// Plus addressing off.
    pub fn plus_addressing() -> String {
        "Exchange Online PowerShell: Set-OrganizationConfig -DisablePlusAddressInRecipients \
         $false (or, to keep it off, route without sub-addresses: plus_addressing = false in \
         [sources.routing.mailbox] and no detail rules)"
            .into()
    }

    /// An alias that does not receive (yet).
    pub fn alias(alias: &str, mailbox: &str) -> String {
        format!(
            "Get-Mailbox -Identity {mailbox} | Format-List EmailAddresses must list \
             smtp:{alias}; add it with Set-Mailbox -Identity {mailbox} -EmailAddresses \
             @{{add='smtp:{alias}'}} (Exchange admin center > Recipients > Mailboxes > \
             {mailbox} > Email addresses). A new alias may take up to 24 hours to receive mail: \
             run the doctor again later"
        )
    }

    /// `SendFromAliasEnabled` off while the configuration counts on it.
    pub fn send_from_alias(outbounds: &[String]) -> String {
        let keys = outbounds
            .iter()
            .map(|o| format!("outbounds.{o}.send_from_alias_enabled = false"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "Exchange Online PowerShell: Set-OrganizationConfig -SendFromAliasEnabled $true; or \
             set {keys} (answers then go from the primary address with Reply-To set to the \
             alias)"
        )
    }

    /// No cached sign-in for a delegated app.
    pub fn login(app: &str, resource: &str) -> String {
        format!("m365mail login --config FILE --app {app} --resource {resource}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(claims))
    }

    #[test]
    fn app_only_tokens_are_read_from_roles() {
        let t = TokenFacts::read(&jwt(r#"{"idtyp":"app","roles":["Mail.ReadWrite"]}"#)).unwrap();
        assert!(t.app_only);
        assert!(
            t.missing(&needed(Resource::Graph, Use::Read, true))
                .is_empty()
        );
        assert_eq!(
            t.missing(&needed(Resource::Graph, Use::Send, true)),
            vec!["Mail.Send"]
        );
        // A token issued before consent carries no roles at all.
        let none = TokenFacts::read(&jwt(r#"{"roles":[]}"#)).unwrap();
        assert!(none.app_only);
        assert_eq!(
            none.missing(&needed(Resource::Ews, Use::Read, true)),
            vec!["full_access_as_app"]
        );
    }

    #[test]
    fn delegated_tokens_are_read_from_scp_with_or_without_the_resource() {
        let t = TokenFacts::read(&jwt(
            r#"{"idtyp":"user","scp":"Mail.ReadWrite.Shared https://outlook.office365.com/EWS.AccessAsUser.All","upn":"adele@contoso.example"}"#,
        ))
        .unwrap();
        assert!(!t.app_only);
        assert_eq!(t.user.as_deref(), Some("adele@contoso.example"));
        assert!(
            t.missing(&needed(Resource::Graph, Use::Read, false))
                .is_empty()
        );
        assert!(
            t.missing(&needed(Resource::Ews, Use::Read, false))
                .is_empty()
        );
        assert_eq!(
            t.missing(&needed(Resource::Graph, Use::Send, false)),
            vec!["Mail.Send"]
        );
    }

    #[test]
    fn opaque_tokens_are_not_read() {
        assert_eq!(TokenFacts::read("opaque"), None);
        assert_eq!(TokenFacts::read("a.!!!.c"), None);
        assert_eq!(
            TokenFacts::read(&jwt("[1,2]")).map(|t| t.app_only),
            Some(false)
        );
    }

    fn err(kind: ErrorKind, status: u16, code: &str) -> connector::Error {
        connector::Error::new(kind, "x")
            .with_response(connector::ResponseDetails::status(status).with_server_code(code))
    }

    #[test]
    fn mailbox_errors_are_told_apart() {
        assert_eq!(
            classify(&err(ErrorKind::Refused, 403, "EwsDisabledForApp")),
            Access::EwsBlocked
        );
        assert!(matches!(
            classify(&err(ErrorKind::NotFound, 404, "ErrorInvalidUser")),
            Access::NotAMailbox(_)
        ));
        assert!(matches!(
            classify(&err(ErrorKind::Refused, 200, "ErrorNonExistentMailbox")),
            Access::NotAMailbox(_)
        ));
        assert!(matches!(
            classify(&err(ErrorKind::Refused, 403, "ErrorAccessDenied")),
            Access::Denied(_)
        ));
        assert!(matches!(
            classify(&err(
                ErrorKind::Authentication,
                401,
                "InvalidAuthenticationToken"
            )),
            Access::TokenRefused(_)
        ));
        assert!(matches!(
            classify(&connector::Error::transient("reset")),
            Access::Other(_)
        ));
    }

    #[test]
    fn fixes_name_the_real_commands() {
        assert!(fix::plus_addressing().contains("-DisablePlusAddressInRecipients $false"));
        assert!(fix::send_from_alias(&["notify".into()]).contains(
            "Set-OrganizationConfig -SendFromAliasEnabled $true; or set \
             outbounds.notify.send_from_alias_enabled = false"
        ));
        assert!(fix::ews("a-1").contains("-EwsAllowedAppIDs"));
        assert!(fix::ews("a-1").contains("Set-CASMailbox"));
        assert!(fix::application_access("a-1", "m@x").contains("Test-ApplicationAccessPolicy"));
        assert!(fix::assignment("a-1", Some("u@x")).contains("Assignment required?"));
        assert!(fix::alias("b@x", "m@x").contains("24 hours"));
        let consent = fix::consent(
            "a-1",
            "Microsoft Graph",
            &["Mail.Send"],
            true,
            Some("https://c"),
        );
        assert!(consent.contains("Grant admin consent") && consent.contains("https://c"));
    }
}
