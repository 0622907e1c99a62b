//! Conversions into the workspace vocabulary (`connector`): a [`Diagnosis`] becomes a
//! [`connector::AuthProblem`], an [`AuthError`] a [`connector::Error`] of the right kind.

use crate::diagnosis::{Diagnosis, Problem};
use crate::error::{AuthError, SendStage};

impl From<&Diagnosis> for connector::AuthProblem {
    fn from(d: &Diagnosis) -> Self {
        let mut p = connector::AuthProblem::new(d.summary(), d.remediation());
        if let Some(code) = d.code() {
            p = p.with_code(format!("AADSTS{code}"));
        } else if !d.error().is_empty() {
            // No AADSTS number (a resource's `WWW-Authenticate`, a device-flow error): the
            // OAuth error string is the best code there is.
            p = p.with_code(d.error());
        }
        if let Some(url) = d.consent_url() {
            p = p.with_consent_url(url.clone());
        }
        if let Some(c) = d.claims() {
            p = p.with_claims(c);
        }
        p
    }
}

impl From<Diagnosis> for connector::AuthProblem {
    fn from(d: Diagnosis) -> Self {
        (&d).into()
    }
}

impl From<AuthError> for connector::Error {
    /// Throttling, transient and network failures keep their retryable kind (with
    /// `retry_after` and how far the request got); everything else is
    /// [`connector::ErrorKind::Authentication`] (or `Configuration` / `BadResponse`). The
    /// diagnosis is always attached as the [`connector::AuthProblem`].
    fn from(e: AuthError) -> Self {
        use connector::{Delivery, Error};
        let d = e.diagnosis();
        let message = e.to_string();
        let mut out = match (&e, d.problem()) {
            (_, Problem::Throttled) => {
                Error::throttled(message, d.retry_after()).with_delivery(Delivery::Answered)
            }
            (AuthError::Service(_), Problem::Transient) => {
                Error::transient(message).with_delivery(Delivery::Answered)
            }
            (AuthError::Transport { stage, .. }, _) => {
                Error::transient(message).with_delivery(match stage {
                    SendStage::NotSent => Delivery::NotSent,
                    _ => Delivery::MaybeSent,
                })
            }
            (AuthError::Timeout(_), _) => {
                Error::transient(message).with_delivery(Delivery::MaybeSent)
            }
            (AuthError::BadResponse { .. }, _) => {
                Error::bad_response(message).with_delivery(Delivery::Answered)
            }
            (AuthError::Config(_) | AuthError::Authority(_), _) => {
                Error::configuration(message).with_delivery(Delivery::NotSent)
            }
            (AuthError::Service(_), _) => {
                Error::auth((&d).into()).with_delivery(Delivery::Answered)
            }
            _ => Error::auth((&d).into()),
        };
        if let Some(r) = d.retry_after() {
            out = out.with_retry_after(r);
        }
        out.with_auth_problem((&d).into()).with_source(e)
    }
}
