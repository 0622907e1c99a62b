//! Microsoft's national clouds: the sign-in host and, per mail service, the endpoint and the
//! token audience. The table and its sources are on [`Cloud`].

use std::fmt;
use std::str::FromStr;

/// A Microsoft national cloud. Tokens are not interchangeable between clouds.
///
/// A token is only good in the cloud that issued it, and only for the resource it names. So the
/// sign-in host, a service's endpoint and the scope a token is asked for must all come from the
/// *same* [`Cloud`]: a US Government tenant signs in at `login.microsoftonline.us`, asks for
/// `https://graph.microsoft.us/.default` and calls `https://graph.microsoft.us`. This type is
/// the one table the workspace takes those values from (graph-mail's `Endpoint`, ews-mail's
/// default URL, smtp-mail's default host and the scopes `m365mail` asks for).
///
/// | Cloud | Sign-in | Graph | EWS (resource = its origin) | SMTP submission |
/// |---|---|---|---|---|
/// | [`Global`](Cloud::Global) (incl. GCC) | `login.microsoftonline.com` | `https://graph.microsoft.com` | `https://outlook.office365.com/EWS/Exchange.asmx` | `smtp.office365.com` |
/// | [`UsGovL4`](Cloud::UsGovL4) (GCC High) | `login.microsoftonline.us` | `https://graph.microsoft.us` | `https://outlook.office365.us/EWS/Exchange.asmx` ¹ | `smtp.office365.us` ¹ |
/// | [`UsGovL5`](Cloud::UsGovL5) (DoD) | `login.microsoftonline.us` | `https://dod-graph.microsoft.us` | `https://outlook-dod.office365.us/EWS/Exchange.asmx` ¹ | `outlook-dod.office365.us` ² |
/// | [`China`](Cloud::China) (21Vianet) | `login.partner.microsoftonline.cn` ³ | `https://microsoftgraph.chinacloudapi.cn` | `https://partner.outlook.cn/EWS/Exchange.asmx` ¹ | `smtp.partner.outlook.cn` ² |
///
/// Sources: sign-in hosts and Graph roots are Microsoft's national-cloud pages (Entra
/// `authentication-national-cloud.md`, Graph `concepts/deployments.md`); the global EWS and SMTP
/// values and the scope forms are Microsoft's EWS and IMAP/POP/SMTP OAuth pages. Those pages
/// give no EWS or SMTP host for the other clouds, so:
///
/// 1. the Exchange Online host of the cloud as Microsoft's endpoint lists and Exchange Online
///    PowerShell name it (`outlook.office365.us`, `outlook-dod.office365.us`,
///    `partner.outlook.cn`), with EWS at its usual path; not checked against a live tenant.
/// 2. less certain: Microsoft's DoD endpoint list names `outlook-dod.office365.us` (and
///    `webmail.apps.mil`) for port 587; 21Vianet's client settings name
///    `smtp.partner.outlook.cn`. Override the host when your tenant documents another.
/// 3. Microsoft's Graph page names `login.chinacloudapi.cn` for the same cloud; the Entra page's
///    `login.partner.microsoftonline.cn` is used.
///
/// Token scopes: app-only tokens use the resource's `.default`
/// ([`ServiceEndpoint::app_scope`]); delegated permissions are prefixed with the resource
/// ([`ServiceEndpoint::delegated_scope`]). SMTP is an Exchange Online permission: its app-only
/// scope is Exchange's `.default`; its delegated prefix is `https://outlook.office.com` in the
/// global cloud (as Microsoft documents `SMTP.Send`) and the cloud's Exchange resource elsewhere
/// (an assumption: no sovereign form is documented).
///
/// ```
/// use msauth::{Cloud, Service};
///
/// let cloud: Cloud = "gcc-high".parse()?;
/// assert_eq!(cloud, Cloud::UsGovL4);
/// assert_eq!(cloud.login_host(), "login.microsoftonline.us");
/// assert_eq!(cloud.graph().endpoint(), "https://graph.microsoft.us");
/// assert_eq!(cloud.graph().app_scope(), "https://graph.microsoft.us/.default");
/// assert_eq!(cloud.ews().endpoint(), "https://outlook.office365.us/EWS/Exchange.asmx");
/// assert_eq!(cloud.service(Service::Smtp).endpoint(), "smtp.office365.us");
/// assert_eq!(
///     Cloud::Global.ews().delegated_scope("EWS.AccessAsUser.All"),
///     "https://outlook.office365.com/EWS.AccessAsUser.All"
/// );
/// # Ok::<(), msauth::UnknownCloud>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cloud {
    /// The global Azure cloud (`login.microsoftonline.com`); also used by GCC (moderate).
    Global,
    /// US Government L4 (GCC High): `login.microsoftonline.us`, `graph.microsoft.us`.
    UsGovL4,
    /// US Government L5 (DoD): `login.microsoftonline.us`, `dod-graph.microsoft.us`.
    UsGovL5,
    /// China, operated by 21Vianet: `login.partner.microsoftonline.cn`.
    China,
}

/// A mail service of a cloud: what a token is for and where it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services (the Exchange Online resource).
    Ews,
    /// SMTP client submission (an Exchange Online permission).
    Smtp,
}

/// One [`Service`] in one [`Cloud`]: its endpoint and the audience of the tokens it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceEndpoint {
    cloud: Cloud,
    service: Service,
    endpoint: &'static str,
    resource: &'static str,
    app_scope: &'static str,
    delegated_prefix: &'static str,
}

impl ServiceEndpoint {
    /// The cloud.
    pub const fn cloud(self) -> Cloud {
        self.cloud
    }

    /// The service.
    pub const fn service(self) -> Service {
        self.service
    }

    /// Where requests go: Graph's root without the version (`https://graph.microsoft.us`),
    /// EWS's full URL, or SMTP's host name (port 587, STARTTLS).
    pub const fn endpoint(self) -> &'static str {
        self.endpoint
    }

    /// The resource (the token's audience), e.g. `https://outlook.office365.us`.
    pub const fn resource(self) -> &'static str {
        self.resource
    }

    /// The scope of an app-only token: `{resource}/.default`.
    pub const fn app_scope(self) -> &'static str {
        self.app_scope
    }

    /// The prefix of delegated permissions, e.g. `https://outlook.office.com` for global SMTP.
    pub const fn delegated_prefix(self) -> &'static str {
        self.delegated_prefix
    }

    /// A delegated permission as a scope: `{prefix}/{permission}`.
    pub fn delegated_scope(self, permission: &str) -> String {
        format!("{}/{permission}", self.delegated_prefix)
    }
}

/// A `cloud` name that is not one of [`Cloud::parse`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown cloud {0:?}: use \"global\", \"us-gov-l4\" (or \"us-government\", \"gcc-high\"), \
     \"us-gov-l5\" (or \"dod\") or \"china\""
)]
pub struct UnknownCloud(pub String);

impl Cloud {
    /// Every cloud, global first.
    pub const ALL: [Cloud; 4] = [Cloud::Global, Cloud::UsGovL4, Cloud::UsGovL5, Cloud::China];

    /// The name before L4 and L5 were told apart; the same as [`Cloud::UsGovL4`] (GCC High).
    /// Both share this sign-in host, but not their Graph or Exchange hosts.
    #[allow(non_upper_case_globals)]
    pub const UsGovernment: Cloud = Cloud::UsGovL4;

    /// Parses a cloud's name, ignoring ASCII case: `global`, `us-gov-l4` (aliases
    /// `us-government`, `usgov`, `gcc-high`), `us-gov-l5` (alias `dod`) or `china`.
    pub fn parse(name: &str) -> Result<Cloud, UnknownCloud> {
        match name.trim().to_ascii_lowercase().as_str() {
            "global" => Ok(Cloud::Global),
            "us-gov-l4" | "us-government" | "usgov" | "gcc-high" => Ok(Cloud::UsGovL4),
            "us-gov-l5" | "dod" => Ok(Cloud::UsGovL5),
            "china" => Ok(Cloud::China),
            _ => Err(UnknownCloud(name.to_owned())),
        }
    }

    /// The canonical name ([`Cloud::parse`] reads it back).
    pub const fn name(self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::UsGovL4 => "us-gov-l4",
            Cloud::UsGovL5 => "us-gov-l5",
            Cloud::China => "china",
        }
    }

    /// The sign-in (login) host of this cloud.
    pub const fn login_host(self) -> &'static str {
        match self {
            Cloud::Global => "login.microsoftonline.com",
            Cloud::UsGovL4 | Cloud::UsGovL5 => "login.microsoftonline.us",
            Cloud::China => "login.partner.microsoftonline.cn",
        }
    }

    /// Microsoft Graph in this cloud.
    pub const fn graph(self) -> ServiceEndpoint {
        let root = match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::UsGovL4 => "https://graph.microsoft.us",
            Cloud::UsGovL5 => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        };
        let app_scope = match self {
            Cloud::Global => "https://graph.microsoft.com/.default",
            Cloud::UsGovL4 => "https://graph.microsoft.us/.default",
            Cloud::UsGovL5 => "https://dod-graph.microsoft.us/.default",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn/.default",
        };
        ServiceEndpoint {
            cloud: self,
            service: Service::Graph,
            endpoint: root,
            resource: root,
            app_scope,
            delegated_prefix: root,
        }
    }

    /// Exchange Web Services in this cloud (the Exchange Online resource).
    pub const fn ews(self) -> ServiceEndpoint {
        let url = match self {
            Cloud::Global => "https://outlook.office365.com/EWS/Exchange.asmx",
            Cloud::UsGovL4 => "https://outlook.office365.us/EWS/Exchange.asmx",
            Cloud::UsGovL5 => "https://outlook-dod.office365.us/EWS/Exchange.asmx",
            Cloud::China => "https://partner.outlook.cn/EWS/Exchange.asmx",
        };
        let resource = self.exchange_resource();
        ServiceEndpoint {
            cloud: self,
            service: Service::Ews,
            endpoint: url,
            resource,
            app_scope: self.exchange_app_scope(),
            delegated_prefix: resource,
        }
    }

    /// SMTP client submission in this cloud: the host (port 587, STARTTLS); tokens are for the
    /// Exchange Online resource.
    pub const fn smtp(self) -> ServiceEndpoint {
        let host = match self {
            Cloud::Global => "smtp.office365.com",
            Cloud::UsGovL4 => "smtp.office365.us",
            Cloud::UsGovL5 => "outlook-dod.office365.us",
            Cloud::China => "smtp.partner.outlook.cn",
        };
        let delegated_prefix = match self {
            // As Microsoft documents SMTP.Send; the same resource as outlook.office365.com.
            Cloud::Global => "https://outlook.office.com",
            _ => self.exchange_resource(),
        };
        ServiceEndpoint {
            cloud: self,
            service: Service::Smtp,
            endpoint: host,
            resource: self.exchange_resource(),
            app_scope: self.exchange_app_scope(),
            delegated_prefix,
        }
    }

    /// A service of this cloud.
    pub const fn service(self, service: Service) -> ServiceEndpoint {
        match service {
            Service::Graph => self.graph(),
            Service::Ews => self.ews(),
            Service::Smtp => self.smtp(),
        }
    }

    const fn exchange_resource(self) -> &'static str {
        match self {
            Cloud::Global => "https://outlook.office365.com",
            Cloud::UsGovL4 => "https://outlook.office365.us",
            Cloud::UsGovL5 => "https://outlook-dod.office365.us",
            Cloud::China => "https://partner.outlook.cn",
        }
    }

    const fn exchange_app_scope(self) -> &'static str {
        match self {
            Cloud::Global => "https://outlook.office365.com/.default",
            Cloud::UsGovL4 => "https://outlook.office365.us/.default",
            Cloud::UsGovL5 => "https://outlook-dod.office365.us/.default",
            Cloud::China => "https://partner.outlook.cn/.default",
        }
    }
}

impl FromStr for Cloud {
    type Err = UnknownCloud;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cloud::parse(s)
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        for (name, cloud) in [
            ("global", Cloud::Global),
            ("GLOBAL", Cloud::Global),
            ("us-gov-l4", Cloud::UsGovL4),
            ("us-government", Cloud::UsGovL4),
            ("usgov", Cloud::UsGovL4),
            ("gcc-high", Cloud::UsGovL4),
            ("us-gov-l5", Cloud::UsGovL5),
            ("dod", Cloud::UsGovL5),
            ("china", Cloud::China),
        ] {
            assert_eq!(Cloud::parse(name), Ok(cloud), "{name}");
        }
        for cloud in Cloud::ALL {
            assert_eq!(cloud.name().parse::<Cloud>(), Ok(cloud));
            assert_eq!(cloud.to_string(), cloud.name());
        }
        let err = Cloud::parse("azure-germany").unwrap_err();
        assert!(err.to_string().contains("\"azure-germany\""), "{err}");
        assert!(err.to_string().contains("us-gov-l5"), "{err}");
        assert_eq!(Cloud::UsGovernment, Cloud::UsGovL4);
    }

    /// Each service's `.default` scope is its resource's, and the resource is the cloud's own:
    /// Graph and EWS are sent to the host their token names.
    #[test]
    fn scopes_belong_to_their_endpoint_and_cloud() {
        for cloud in Cloud::ALL {
            for service in [Service::Graph, Service::Ews, Service::Smtp] {
                let s = cloud.service(service);
                assert_eq!((s.cloud(), s.service()), (cloud, service));
                assert_eq!(s.app_scope(), format!("{}/.default", s.resource()));
                assert!(s.resource().starts_with("https://"), "{s:?}");
                if service != Service::Smtp {
                    assert!(s.endpoint().starts_with(s.resource()), "{s:?}");
                }
            }
            // SMTP is an Exchange Online permission: the same app-only token as EWS.
            assert_eq!(cloud.smtp().app_scope(), cloud.ews().app_scope());
            for other in Cloud::ALL.into_iter().filter(|o| *o != cloud) {
                assert_ne!(cloud.graph().resource(), other.graph().resource());
                assert_ne!(cloud.ews().resource(), other.ews().resource());
                assert_ne!(cloud.smtp().endpoint(), other.smtp().endpoint());
            }
        }
        assert_eq!(
            Cloud::Global.smtp().delegated_scope("SMTP.Send"),
            "https://outlook.office.com/SMTP.Send"
        );
        assert_eq!(
            Cloud::China.graph().delegated_scope("Mail.Read"),
            "https://microsoftgraph.chinacloudapi.cn/Mail.Read"
        );
    }
}
