//! The AADSTS codes with specific handling, as data: one row per cause, the codes that report
//! it, what it means and what to do. `TROUBLESHOOTING.md` is the same table for people.

use super::Entry;
use super::kinds::{Action, Action::*, Problem, Problem::*};

/// Every AADSTS code with specific handling, for documentation and tests.
pub const HANDLED_CODES: &[u32] = &[
    65001, 65004, 90094, 90095, 50105, 700016, 7000112, 7000215, 7000222, 700027, 50012, 7000218,
    50076, 50158, 50079, 53003, 50058, 700082, 70008, 50173, 70043, 70000, 700084, 90002, 50194,
    9001023, 90124, 90130, 50020, 50034, 50126, 50011, 70011, 500011, 54005, 501481, 700005, 70016,
    70019, 50033, 90006, 90024, 90033, 90090, 50196,
];

/// One row of [`CODES`].
pub(super) struct Code {
    /// The AADSTS codes that report this cause.
    pub(super) codes: &'static [u32],
    pub(super) problem: Problem,
    pub(super) action: Action,
    pub(super) summary: &'static str,
    pub(super) remediation: &'static str,
}

/// Every AADSTS code with specific handling.
pub(super) static CODES: &[Code] = &[
    Code {
        codes: &[65001],
        problem: ConsentRequired,
        action: AdminConsent,
        summary: "The user or administrator has not consented to this application and its permissions.",
        remediation: "Sign in interactively to consent; for application permissions an administrator must grant admin consent.",
    },
    Code {
        codes: &[90094],
        problem: AdminConsentRequired,
        action: AdminConsent,
        summary: "The admin has not approved this application yet: the requested permissions need an administrator's consent.",
        remediation: "Ask a tenant administrator to grant admin consent.",
    },
    Code {
        codes: &[90095],
        problem: AdminApprovalPending,
        action: ContactAdmin,
        summary: "An administrator's approval was requested and is pending.",
        remediation: "Wait until an administrator approves the request (admin consent workflow), then sign in again.",
    },
    Code {
        codes: &[65004],
        problem: ConsentDeclined,
        action: Stop,
        summary: "Consent was declined.",
        remediation: "Sign in again and accept the permissions, or ask an administrator to grant consent.",
    },
    Code {
        codes: &[50105],
        problem: UserNotAssigned,
        action: ContactAdmin,
        summary: "The signed-in user is not assigned to this application, and the application requires assignment.",
        remediation: "An administrator must assign the user (Enterprise applications > the app > Users and groups) or turn off 'Assignment required'.",
    },
    Code {
        codes: &[700016],
        problem: ApplicationNotFound,
        action: FixConfiguration,
        summary: "The application was not found in this tenant.",
        remediation: "Check the client id, tenant and cloud; if they are right, an administrator must consent to the application in this tenant.",
    },
    Code {
        codes: &[7000112],
        problem: ApplicationDisabled,
        action: ContactAdmin,
        summary: "The application is disabled in this tenant.",
        remediation: "An administrator must enable the application.",
    },
    Code {
        codes: &[7000215],
        problem: InvalidClientSecret,
        action: FixConfiguration,
        summary: "The client secret is wrong.",
        remediation: "Use the secret's Value (not its Secret ID) from the app registration's Certificates & secrets page.",
    },
    Code {
        codes: &[7000222],
        problem: ExpiredClientSecret,
        action: FixConfiguration,
        summary: "The client secret has expired.",
        remediation: "Create a new client secret in the app registration and update this program's configuration.",
    },
    Code {
        codes: &[700027],
        problem: CertificateRejected,
        action: FixConfiguration,
        summary: "The certificate assertion was rejected (the signature did not validate with any registered key).",
        remediation: "Upload this certificate to the app registration (Certificates & secrets) or configure the one that is registered.",
    },
    Code {
        codes: &[50012],
        problem: CertificateRejected,
        action: FixConfiguration,
        summary: "The client assertion or certificate is invalid.",
        remediation: "Check that the certificate is registered on the application, not expired, and that the clock is right.",
    },
    Code {
        codes: &[7000218],
        problem: CredentialMissing,
        action: FixConfiguration,
        summary: "The request has no client credential and the application is not a public client.",
        remediation: "Enable 'Allow public client flows' in the app registration for device code, or configure a client secret or certificate.",
    },
    Code {
        codes: &[50076],
        problem: MfaRequired,
        action: SignIn,
        summary: "Multi-factor authentication is required.",
        remediation: "Sign in interactively and complete multi-factor authentication.",
    },
    Code {
        codes: &[50158],
        problem: MfaRequired,
        action: SignIn,
        summary: "An external security challenge was not satisfied.",
        remediation: "Sign in interactively and complete the challenge.",
    },
    Code {
        codes: &[50079],
        problem: MfaEnrollmentRequired,
        action: SignIn,
        summary: "The user must register for multi-factor authentication.",
        remediation: "Sign in interactively and register a second factor.",
    },
    Code {
        codes: &[53003],
        problem: BlockedByConditionalAccess,
        action: ContactAdmin,
        summary: "Access was blocked by a Conditional Access policy.",
        remediation: "Give an administrator the correlation id and time; they can see which policy applied in the sign-in logs.",
    },
    Code {
        codes: &[50058],
        problem: InteractionRequired,
        action: SignIn,
        summary: "No signed-in session was found for a silent sign-in.",
        remediation: "Sign in interactively.",
    },
    Code {
        codes: &[700082],
        problem: SignInExpired,
        action: SignIn,
        summary: "The saved sign-in expired because it was not used for a long time.",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[70008],
        problem: SignInExpired,
        action: SignIn,
        summary: "The saved sign-in has expired or was revoked.",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[50173],
        problem: SignInExpired,
        action: SignIn,
        summary: "The saved sign-in was revoked (for example after a password change or a session revocation).",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[70043],
        problem: SignInExpired,
        action: SignIn,
        summary: "The saved sign-in expired because of a Conditional Access sign-in frequency policy.",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[70000],
        problem: SignInExpired,
        action: SignIn,
        summary: "The saved sign-in (grant) is invalid.",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[700084],
        problem: SignInExpired,
        action: SignIn,
        summary: "The refresh token for a single-page application expired (24 hour limit).",
        remediation: "Sign in again.",
    },
    Code {
        codes: &[90002],
        problem: TenantNotFound,
        action: FixConfiguration,
        summary: "The tenant was not found.",
        remediation: "Check the tenant id or domain and the cloud (global, US Government, China).",
    },
    Code {
        codes: &[50194],
        problem: WrongTenantEndpoint,
        action: FixConfiguration,
        summary: "The application is single-tenant and cannot use the /common endpoint.",
        remediation: "Configure the tenant id (or /organizations for multi-tenant applications).",
    },
    Code {
        codes: &[9001023, 90124, 90130],
        problem: WrongTenantEndpoint,
        action: FixConfiguration,
        summary: "This grant or application is not supported on /common or /consumers.",
        remediation: "Use /organizations or the tenant id.",
    },
    Code {
        codes: &[50020],
        problem: AccountNotInTenant,
        action: FixConfiguration,
        summary: "The account is not a member or guest of this tenant.",
        remediation: "Sign in to the account's home tenant (or /organizations), or ask an administrator to invite the account.",
    },
    Code {
        codes: &[50034],
        problem: AccountNotInTenant,
        action: SignIn,
        summary: "The account does not exist in this tenant.",
        remediation: "Check the user name and tenant.",
    },
    Code {
        codes: &[50126],
        problem: InvalidCredentials,
        action: SignIn,
        summary: "The user name or password is wrong.",
        remediation: "Sign in again with the right credentials.",
    },
    Code {
        codes: &[50011],
        problem: RedirectMismatch,
        action: FixConfiguration,
        summary: "The redirect URI does not match the ones registered for the application.",
        remediation: "Register this exact redirect URI (scheme, host, port and path) in the app registration.",
    },
    Code {
        codes: &[70011],
        problem: InvalidScope,
        action: FixConfiguration,
        summary: "The requested scope is invalid.",
        remediation: "Request one resource per token, do not mix '.default' with other scopes, and use '{resource}/.default' for application permissions.",
    },
    Code {
        codes: &[500011],
        problem: ResourceNotFound,
        action: FixConfiguration,
        summary: "The resource (e.g. Exchange Online) was not found in this tenant.",
        remediation: "Check the scope's host and the tenant; the tenant may not have that service.",
    },
    Code {
        codes: &[54005],
        problem: CodeUnusable,
        action: SignIn,
        summary: "The authorization code was already redeemed.",
        remediation: "Start the sign-in again; codes are single-use.",
    },
    Code {
        codes: &[501481],
        problem: CodeUnusable,
        action: SignIn,
        summary: "The PKCE code verifier does not match the code challenge.",
        remediation: "Start the sign-in again.",
    },
    Code {
        codes: &[700005],
        problem: CodeUnusable,
        action: SignIn,
        summary: "The authorization code belongs to another tenant or was already used.",
        remediation: "Start the sign-in again with the right tenant.",
    },
    Code {
        codes: &[70016],
        problem: InteractionRequired,
        action: Retry,
        summary: "The device-code sign-in is still pending.",
        remediation: "Keep polling.",
    },
    Code {
        codes: &[70019],
        problem: DeviceCodeExpired,
        action: SignIn,
        summary: "The device code expired.",
        remediation: "Start the device-code sign-in again.",
    },
    Code {
        codes: &[50033, 90006, 90024, 90033, 90090],
        problem: Transient,
        action: Retry,
        summary: "The identity service had a temporary problem.",
        remediation: "Retry shortly.",
    },
    Code {
        codes: &[50196],
        problem: Throttled,
        action: Retry,
        summary: "Tokens are requested too often (loop detected).",
        remediation: "Cache tokens and wait before retrying.",
    },
];

/// The row for `code`, if it has specific handling.
pub(super) fn by_code(code: u32) -> Option<Entry> {
    CODES
        .iter()
        .find(|c| c.codes.contains(&code))
        .map(|c| Entry {
            problem: c.problem,
            action: c.action,
            summary: c.summary,
            remediation: c.remediation,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_handled_codes_list_the_same_codes_once() {
        let mut in_table: Vec<u32> = CODES.iter().flat_map(|c| c.codes.iter().copied()).collect();
        let count = in_table.len();
        in_table.sort_unstable();
        in_table.dedup();
        assert_eq!(in_table.len(), count, "a code stands in two rows");
        let mut handled = HANDLED_CODES.to_vec();
        handled.sort_unstable();
        assert_eq!(in_table, handled);
    }

    #[test]
    fn troubleshooting_md_names_every_handled_code() {
        let doc = include_str!("../../TROUBLESHOOTING.md");
        let missing: Vec<u32> = HANDLED_CODES
            .iter()
            .copied()
            .filter(|c| !doc.contains(&c.to_string()))
            .collect();
        assert!(missing.is_empty(), "TROUBLESHOOTING.md lacks {missing:?}");
    }
}
