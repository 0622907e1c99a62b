//! [`SmtpConfig`] and [`Security`]: where an [`SmtpOutbound`](crate::SmtpOutbound) connects,
//! how, and as whom.

use std::fmt;
use std::time::Duration;

use connector::{Delivery, Error};
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use url::Url;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// Plain TCP upgraded with `STARTTLS`, which the server must offer (Office 365 on 587).
    /// The token is never sent before the upgrade.
    StartTls,
    /// TLS from the first byte (port 465 on some on-premises servers).
    ImplicitTls,
    /// No TLS at all: the token crosses the network in clear. Only for a loopback test server:
    /// [`SmtpOutbound::new`](crate::SmtpOutbound::new) refuses it unless the host is
    /// `localhost`, an address in `127.0.0.0/8` or `::1`.
    DangerousPlaintext,
}

/// Where and how to connect.
///
/// ```
/// use smtp_mail::{Security, SmtpConfig};
///
/// let c = SmtpConfig::office365("helpdesk@contoso.com");
/// assert_eq!((c.host.as_str(), c.port, c.security), ("smtp.office365.com", 587, Security::StartTls));
/// let gcc_high = SmtpConfig::exchange_online(msauth::Cloud::UsGovL4, "helpdesk@contoso.us");
/// assert_eq!(gcc_high.host, "smtp.office365.us");
/// let on_premises = SmtpConfig::office365("helpdesk@contoso.com").with_server("mail.contoso.com", 587);
/// assert_eq!(on_premises.host, "mail.contoso.com");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// The server (`smtp.office365.com`; [`SmtpConfig::exchange_online`] knows the sovereign
    /// clouds' hosts; on-premises servers differ).
    pub host: String,
    /// The port (587 for submission with STARTTLS).
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// The mailbox to sign in as and send from (`user=` of XOAUTH2; a shared mailbox with
    /// delegated FullAccess works too).
    pub mailbox: String,
    /// The name the certificate must carry; `None`: the host.
    pub tls_server_name: Option<String>,
    /// Extra trusted CA certificates (PEM), added to the web PKI roots.
    pub extra_roots_pem: Vec<String>,
    /// The EHLO name.
    pub hello_name: String,
    /// The longest a whole ping or send may take.
    pub timeout: Duration,
    /// The largest message to send, in bytes (Exchange Online's default is 35 MB).
    pub max_message_bytes: u64,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("mailbox", &self.mailbox)
            .field("tls_server_name", &self.tls_server_name)
            .field("extra_roots", &self.extra_roots_pem.len())
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// Office 365 client submission in the global cloud: `smtp.office365.com:587` with
    /// STARTTLS. The same as [`exchange_online`](Self::exchange_online) with
    /// `Cloud::Global`.
    pub fn office365(mailbox: impl Into<String>) -> Self {
        Self::exchange_online(msauth::Cloud::Global, mailbox)
    }

    /// Exchange Online client submission in `cloud`: its host (msauth's
    /// [`Cloud::smtp`](msauth::Cloud::smtp), e.g. `smtp.office365.us` for GCC High), port 587,
    /// STARTTLS. The token must come from the same cloud: `cloud.smtp().app_scope()` (app-only,
    /// `SMTP.SendAsApp`) or `cloud.smtp().delegated_scope("SMTP.Send")`.
    pub fn exchange_online(cloud: msauth::Cloud, mailbox: impl Into<String>) -> Self {
        SmtpConfig {
            host: cloud.smtp().endpoint().into(),
            port: 587,
            security: Security::StartTls,
            mailbox: mailbox.into(),
            tls_server_name: None,
            extra_roots_pem: Vec::new(),
            hello_name: "m365mail.localhost".into(),
            timeout: Duration::from_secs(60),
            max_message_bytes: 35 * 1024 * 1024,
        }
    }

    /// Sets the server (sovereign clouds, on-premises, the sandbox).
    pub fn with_server(mut self, host: impl Into<String>, port: u16) -> Self {
        self.host = host.into();
        self.port = port;
        self
    }

    /// Sets the protection.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Trusts another CA (PEM), for on-premises servers and the sandbox.
    pub fn with_root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }

    /// Sets the name the server certificate must carry.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_server_name = Some(name.into());
        self
    }

    /// Sets the overall timeout of one ping or send.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn url(&self) -> Url {
        Url::parse(&format!("smtp://{}:{}/", self.host, self.port))
            .or_else(|_| Url::parse("smtp://invalid/"))
            .unwrap_or_else(|_| unreachable!("a constant URL parses"))
    }

    pub(crate) fn tls_parameters(&self) -> Result<TlsParameters, Error> {
        let name = self.tls_server_name.clone().unwrap_or(self.host.clone());
        let mut b = TlsParameters::builder(name);
        for pem in &self.extra_roots_pem {
            let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                Error::configuration(format!("a trusted SMTP CA certificate is not PEM: {e}"))
            })?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|e| {
            Error::configuration(format!("TLS settings for {}: {e}", self.host))
                .with_delivery(Delivery::NotSent)
        })
    }
}
