//! An `[[apps]]` entry: its flow, credential and scopes checked and resolved into an [`App`].

use url::Url;

use super::super::file::{AppConfig, AssertionAlgorithmName, Flow};
use super::super::model::{App, CertificateSource, Credential, SecretSource};
use super::document::At;
use super::{ConfigError, Resolver};

impl Resolver<'_> {
    /// The `i`th app, `a`, resolved.
    pub(super) fn app(&self, i: usize, a: &AppConfig) -> Result<App, ConfigError> {
        let at = |k| [At::Key("apps"), At::Index(i), At::Key(k)];
        let key = |k: &str| format!("apps.{}{k}", a.name);
        let has_secret = a.client_secret.is_some()
            || a.client_secret_env.is_some()
            || a.client_secret_file.is_some();
        if has_secret && a.certificate_file.is_some() {
            return Err(self.invalid(
                key(""),
                &at("certificate_file"),
                "give a client secret or certificate_file, not both",
            ));
        }
        if let Some(var) = &a.client_secret_env
            && !env_name_like(var)
        {
            // Most likely the secret itself, put in the wrong key: never repeat it.
            return Err(self.invalid(
                key(".client_secret_env"),
                &at("client_secret_env"),
                "the value is not an environment variable's name (letters, digits and _); it \
                 names the variable that holds the secret, not the secret itself",
            ));
        }
        if a.certificate_file.is_none() {
            let stray = [
                ("certificate_key_file", a.certificate_key_file.is_some()),
                (
                    "certificate_password_env",
                    a.certificate_password_env.is_some(),
                ),
                ("assertion_algorithm", a.assertion_algorithm.is_some()),
            ];
            if let Some((first, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(self.invalid(
                    key(""),
                    &at(first),
                    "certificate_key_file, certificate_password_env and assertion_algorithm \
                     need certificate_file",
                ));
            }
            if a.flow == Flow::ClientCredentials && !has_secret {
                return Err(self.invalid(
                    key(""),
                    &at("flow"),
                    "flow \"client-credentials\" needs client_secret_env, client_secret_file or \
                     certificate_file",
                ));
            }
        }
        let tenant = msauth::Tenant::parse(&a.tenant)
            .map_err(|e| self.invalid(key(".tenant"), &at("tenant"), e.to_string()))?;
        let authority = match (&a.authority_base, &a.endpoints) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    key(".endpoints"),
                    &at("endpoints"),
                    "authority_base and endpoints both name where the app signs in: keep one",
                ));
            }
            (Some(base), None) => {
                msauth::Authority::microsoft_layout(base, tenant).map_err(|e| {
                    self.invalid(key(".authority_base"), &at("authority_base"), e.to_string())
                })?
            }
            (None, Some(e)) => {
                let named = |what: &str, r: Result<msauth::Endpoints, msauth::AuthorityError>| {
                    r.map_err(|err| {
                        self.invalid(
                            key(&format!(".endpoints.{what}")),
                            &[
                                At::Key("apps"),
                                At::Index(i),
                                At::Key("endpoints"),
                                At::Key(what),
                            ],
                            err.to_string(),
                        )
                    })
                };
                // Each required endpoint alone first, so the error names the one that is wrong.
                named(
                    "authorize",
                    msauth::Endpoints::new(&e.authorize, &e.authorize),
                )?;
                let mut endpoints = named("token", msauth::Endpoints::new(&e.authorize, &e.token))?;
                if let Some(device) = &e.device {
                    endpoints = named("device", endpoints.with_device(device))?;
                }
                if let Some(consent) = &e.admin_consent {
                    endpoints = named("admin_consent", endpoints.with_admin_consent(consent))?;
                }
                msauth::Authority::custom(endpoints)
            }
            (None, None) => msauth::Authority::microsoft(a.cloud, tenant)
                .map_err(|e| self.invalid(key(".tenant"), &at("tenant"), e.to_string()))?,
        };
        let redirect_uri = match &a.redirect_uri {
            Some(uri) => Some(Url::parse(uri).map_err(|e| {
                self.invalid(key(".redirect_uri"), &at("redirect_uri"), e.to_string())
            })?),
            None => None,
        };
        let account = match &a.account {
            None => None,
            Some(_) if a.flow == Flow::ClientCredentials => {
                return Err(self.invalid(
                    key(".account"),
                    &at("account"),
                    "flow \"client-credentials\" signs in as the app, not as an account: \
                     remove account, or use flow = \"browser\" or \"device-code\"",
                ));
            }
            Some(acc) => Some(
                addressing::EmailAddress::parse(acc.trim())
                    .map_err(|e| {
                        self.invalid(
                            key(".account"),
                            &at("account"),
                            format!("not an account's address: {e}"),
                        )
                    })?
                    .to_string()
                    .to_ascii_lowercase(),
            ),
        };
        Ok(App {
            name: a.name.clone(),
            cloud: a.cloud,
            authority,
            client_id: a.client_id.clone(),
            credential: credential(a),
            flow: a.flow,
            token_cache: a.token_cache.clone(),
            account,
            redirect_uri,
            ca_file: a.ca_file.clone(),
        })
    }
}

/// Where an app's credential is: a certificate, else the secret's environment variable, file or
/// inline value (in that order), else none.
fn credential(a: &AppConfig) -> Credential {
    if let Some(file) = &a.certificate_file {
        return Credential::Certificate(CertificateSource {
            file: file.clone(),
            key_file: a.certificate_key_file.clone(),
            password_env: a.certificate_password_env.clone(),
            algorithm: match a.assertion_algorithm {
                Some(AssertionAlgorithmName::Rs256) => msauth::AssertionAlgorithm::Rs256,
                Some(AssertionAlgorithmName::Ps256) | None => msauth::AssertionAlgorithm::Ps256,
            },
        });
    }
    let secret = if let Some(var) = &a.client_secret_env {
        SecretSource::Env(var.clone())
    } else if let Some(path) = &a.client_secret_file {
        SecretSource::File(path.clone())
    } else if let Some(secret) = &a.client_secret {
        SecretSource::Inline(secret.clone())
    } else {
        return Credential::None;
    };
    Credential::Secret(secret)
}

/// Whether `s` can be an environment variable's name (`[A-Za-z_][A-Za-z0-9_]*`).
fn env_name_like(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
