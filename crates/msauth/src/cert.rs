//! Certificate credentials: RFC 7523 client assertions signed with the certificate's RSA key.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use crate::error::{AuthError, Pkcs12Error};
use crate::secret::{ClientAssertion, Pkcs12Password};

/// The signature algorithm of client assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256 and an `x5t#S256` header: Microsoft's current form (default).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a SHA-1 `x5t` header: the legacy fallback (ADFS).
    Rs256,
}

/// Lifetime of an assertion: `exp = now + 600 s`, as MSAL does.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// A certificate and its RSA private key.
///
/// From PEM (certificate plus PKCS#8 or PKCS#1 key, [`from_pem`](Self::from_pem)) or from a
/// password-protected PKCS#12 file (`.pfx`/`.p12`, [`from_pkcs12`](Self::from_pkcs12)).
///
/// ```
/// let cert = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-cert.pem"))?;
/// let key = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-key-pkcs8.pem"))?;
/// let credential = msauth::CertificateCredential::from_pem(&cert, &key)?;
/// assert_eq!(format!("{credential:?}").contains("PRIVATE"), false);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaKeyPair>,
    x5t_s256: String,
    x5t: String,
    x5c: Option<String>,
    algorithm: AssertionAlgorithm,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.x5t_s256)
            .field("algorithm", &self.algorithm)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CertificateCredential {
    /// Loads the first certificate in `cert_pem` and the private key in `key_pem` (PKCS#8 or
    /// PKCS#1 RSA). Both may be the same bytes (a combined PEM file).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, AuthError> {
        let cert = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or_else(|| AuthError::Certificate("no CERTIFICATE block in the PEM data".into()))?
            .map_err(|e| AuthError::Certificate(format!("certificate PEM unreadable: {e}")))?;
        // The error text of the PEM parser never includes key material.
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| AuthError::Certificate(format!("private key PEM unreadable: {e}")))?;
        Self::from_der(cert.as_ref(), &key)
    }

    /// Loads the certificate and RSA private key of a PKCS#12 file (`.pfx`/`.p12`), as exported
    /// by Windows (`Export-PfxCertificate`), Azure Key Vault or `openssl pkcs12 -export`.
    ///
    /// Both encryptions in use are read: PBES2 (AES-256-CBC with PBKDF2-HMAC-SHA256, today's
    /// default) and the legacy `pbeWithSHAAnd3-KeyTripleDES-CBC` and `pbeWithSHAAnd40BitRC2-CBC`
    /// bags of older exports; the file's integrity MAC is checked with the password. The key is
    /// the file's private key with the certificate it belongs to (matched by `localKeyId`, else
    /// the only certificate); files with several keys are refused rather than guessed at.
    ///
    /// Errors ([`Pkcs12Error`], inside [`AuthError::Pkcs12`]) never contain the password or key
    /// material: a wrong password is [`Pkcs12Error::WrongPassword`], a damaged or foreign file
    /// [`Pkcs12Error::Corrupt`].
    ///
    /// ```no_run
    /// use msauth::{CertificateCredential, Pkcs12Password};
    /// let pfx = std::fs::read("/etc/helpdesk/app.pfx")?;
    /// let password = Pkcs12Password::new(std::env::var("HELPDESK_PFX_PASSWORD")?);
    /// let credential = CertificateCredential::from_pkcs12(&pfx, &password)?;
    /// println!("registered thumbprint: {}", credential.thumbprint_sha256());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pkcs12(data: &[u8], password: &Pkcs12Password) -> Result<Self, AuthError> {
        let archive = p12_keystore::Pkcs12Archive::from_pkcs12(data, password.secret())
            .map_err(Pkcs12Error::from_library)?;
        let mut keys = archive.keys.into_iter();
        let key_bag = keys.next().ok_or(Pkcs12Error::NoPrivateKey)?;
        if keys.next().is_some() {
            return Err(Pkcs12Error::SeveralPrivateKeys.into());
        }
        let wanted_id = key_bag.local_key_id.as_ref().map(|id| id.as_ref());
        let by_id = archive
            .certs
            .iter()
            .find(|c| wanted_id.is_some() && c.local_key_id.as_deref() == wanted_id);
        let cert = match by_id {
            Some(c) => c,
            None if archive.certs.len() == 1 => &archive.certs[0],
            None => return Err(Pkcs12Error::NoCertificate.into()),
        };
        let key = PrivateKeyDer::Pkcs8(key_bag.key.as_der().to_vec().into());
        Self::from_der(cert.cert.as_der(), &key)
    }

    /// From DER: the certificate and its private key.
    ///
    /// The certificate must carry the key's public half: a mismatched pair is refused here
    /// rather than by the identity service (as AADSTS700027) later.
    pub fn from_der(cert_der: &[u8], key: &PrivateKeyDer<'_>) -> Result<Self, AuthError> {
        let pair = match key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(AuthError::Certificate(
                    "only RSA keys (PKCS#8 or PKCS#1) are supported".into(),
                ));
            }
        }
        .map_err(|e| AuthError::Certificate(format!("private key rejected: {e}")))?;
        // The certificate's SubjectPublicKeyInfo holds the DER RSAPublicKey verbatim (the
        // content of its BIT STRING), so a byte search proves the pair belongs together without
        // a second X.509 parser.
        {
            use ring::signature::KeyPair as _;
            let public = pair.public_key().as_ref();
            if public.is_empty() || !cert_der.windows(public.len()).any(|w| w == public) {
                return Err(AuthError::Certificate(
                    "the private key does not belong to the certificate".into(),
                ));
            }
        }
        let sha256 = ring::digest::digest(&ring::digest::SHA256, cert_der);
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
        Ok(CertificateCredential {
            key: Arc::new(pair),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            x5c: None,
            algorithm: AssertionAlgorithm::Ps256,
        })
    }

    /// Uses `algorithm` instead of the default PS256.
    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Sends the certificate in the `x5c` header (needed for subject-name/issuer authentication).
    pub fn with_x5c(mut self, cert_der: &[u8]) -> Self {
        self.x5c = Some(base64::engine::general_purpose::STANDARD.encode(cert_der));
        self
    }

    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub fn thumbprint_sha256(&self) -> &str {
        &self.x5t_s256
    }

    /// base64url SHA-1 thumbprint (`x5t`).
    pub fn thumbprint_sha1(&self) -> &str {
        &self.x5t
    }

    /// The DER `RSAPublicKey` (to verify assertions in tests or a server).
    pub fn public_key_der(&self) -> &[u8] {
        use ring::signature::KeyPair as _;
        self.key.public_key().as_ref()
    }

    /// Builds and signs an assertion: `iss = sub = client_id`, `aud = token_endpoint`,
    /// `nbf = iat = now`, `exp = now + 600`, `jti` as given (use a fresh UUID v4 each time).
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &Url,
        now: SystemTime,
        jti: uuid::Uuid,
    ) -> Result<ClientAssertion, AuthError> {
        let now_s = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| AuthError::Certificate("clock before 1970".into()))?
            .as_secs();
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "JWT".into());
        match self.algorithm {
            AssertionAlgorithm::Ps256 => {
                header.insert("alg".into(), "PS256".into());
                header.insert("x5t#S256".into(), self.x5t_s256.clone().into());
            }
            AssertionAlgorithm::Rs256 => {
                header.insert("alg".into(), "RS256".into());
                header.insert("x5t".into(), self.x5t.clone().into());
            }
        }
        if let Some(x5c) = &self.x5c {
            header.insert(
                "x5c".into(),
                serde_json::Value::Array(vec![x5c.clone().into()]),
            );
        }
        let claims = serde_json::json!({
            "aud": token_endpoint.as_str(),
            "iss": client_id,
            "sub": client_id,
            "jti": jti.to_string(),
            "nbf": now_s,
            "iat": now_s,
            "exp": now_s + ASSERTION_LIFETIME.as_secs(),
        });
        let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string().as_bytes());
        let signing_input = format!(
            "{}.{}",
            enc(&serde_json::Value::Object(header)),
            enc(&claims)
        );
        let padding: &'static dyn ring::signature::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::Ps256 => &ring::signature::RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &ring::signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                padding,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| AuthError::Certificate("signing the client assertion failed".into()))?;
        Ok(ClientAssertion::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(&sig)
        )))
    }
}

impl Pkcs12Error {
    pub(crate) fn from_library(e: p12_keystore::error::Error) -> Self {
        use p12_keystore::error::Error as E;
        match e {
            // The MAC is keyed by the password: a mismatch is a wrong password (or a damaged
            // file). Without a MAC, a wrong password shows as bad padding after decryption.
            E::MacError(_) | E::UnpadError => Pkcs12Error::WrongPassword,
            E::UnsupportedEncryptionScheme
            | E::UnsupportedMacAlgorithm
            | E::UnsupportedContentType
            | E::UnsupportedCertificateType => Pkcs12Error::Unsupported(e.to_string()),
            // The library keeps only the text of pkcs5's error: "PKCS#5 decryption failed" is
            // PBES2's bad padding (a wrong password when there is no MAC).
            E::Pkcs5Error(m) if m.contains("decryption failed") => Pkcs12Error::WrongPassword,
            E::Pkcs5Error(m) if m.contains("unsupported") => Pkcs12Error::Unsupported(m),
            // The library's messages name structure (DER tags, lengths), never content.
            other => Pkcs12Error::Corrupt(other.to_string()),
        }
    }
}
