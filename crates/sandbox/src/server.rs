//! Starting the sandbox: in process ([`Sandbox::builder`]) or standalone with TLS
//! ([`SandboxBuilder::tls`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::reqlog::RequestLogSnapshot;
use crate::state::{AppState, Clock, Config};
use crate::store::InsertOptions;
use crate::tenant::{SecretString, Seed};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding a listener failed.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A listen address is not a loopback address and the builder was not told
    /// [`SandboxBuilder::allow_non_loopback`].
    #[error(
        "refusing to bind {what} on {addr}: it is not a loopback address, and the sandbox's \
         tenant (demo secrets, admin API) would be reachable from other machines; opt in \
         explicitly (SandboxBuilder::allow_non_loopback, --allow-non-loopback) to do so"
    )]
    NotLoopback {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
    },
    /// The admin token given to [`SandboxBuilder::admin_token`] cannot be used, or none could be
    /// generated.
    #[error("admin token: {0}")]
    AdminToken(String),
    /// A seed message could not be stored.
    #[error("seed message for {mailbox} is invalid: {reason}")]
    SeedMessage {
        /// Mailbox.
        mailbox: String,
        /// Why.
        reason: String,
    },
}

/// TLS for the standalone server: a generated CA and server certificate.
///
/// ```
/// use sandbox::TlsOptions;
///
/// let tls = TlsOptions::new("sandbox-ca.pem").with_hosts(["sandbox.test"]);
/// assert_eq!(tls.hosts, ["sandbox.test"]);
/// assert!(TlsOptions::new("sandbox-ca.pem").hosts.is_empty(), "empty: the default hosts");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Where to write the CA certificate (PEM) clients should trust.
    pub ca_pem_path: PathBuf,
    /// Host names for the server certificate (empty: `localhost` and `127.0.0.1`).
    pub hosts: Vec<String>,
}

impl TlsOptions {
    /// A generated CA written to `ca_pem_path`, and a server certificate for `localhost` and
    /// `127.0.0.1`.
    pub fn new(ca_pem_path: impl Into<PathBuf>) -> Self {
        TlsOptions {
            ca_pem_path: ca_pem_path.into(),
            hosts: Vec::new(),
        }
    }

    /// The same options, the server certificate naming these hosts instead.
    pub fn with_hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }
}

/// Builder for [`Sandbox`].
#[derive(Debug)]
pub struct SandboxBuilder {
    seed: Seed,
    http_addr: SocketAddr,
    smtp_addr: Option<SocketAddr>,
    fault_seed: u64,
    tls: Option<TlsOptions>,
    public_base_url: Option<String>,
    allow_non_loopback: bool,
    admin_token: Option<SecretString>,
    admin_hosts: Vec<String>,
}

impl SandboxBuilder {
    /// The tenant to start with (default: [`Seed::demo`]).
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// HTTP listen address (default `127.0.0.1:0`, an ephemeral port). An address beyond
    /// loopback also needs [`SandboxBuilder::allow_non_loopback`].
    pub fn http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// SMTP listen address (default `127.0.0.1:0`); `None` disables the SMTP listener. An
    /// address beyond loopback also needs [`SandboxBuilder::allow_non_loopback`].
    pub fn smtp_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.smtp_addr = addr;
        self
    }

    /// Seed of the fault-injection random generator (default 0).
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.fault_seed = seed;
        self
    }

    /// Serve HTTPS with a generated certificate; the CA PEM is written to `opts.ca_pem_path`.
    pub fn tls(mut self, opts: TlsOptions) -> Self {
        self.tls = Some(opts);
        self
    }

    /// Override the base URL advertised in discovery documents and tokens (e.g. behind a proxy).
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// Allows listen addresses beyond loopback (a LAN address, `0.0.0.0`, `::`). Without this,
    /// [`SandboxBuilder::start`] refuses them with [`StartError::NotLoopback`]: other machines
    /// would reach a tenant with public demo secrets. When bound beyond loopback the HTTP admin
    /// API always needs an admin token: the one given to [`SandboxBuilder::admin_token`], or a
    /// random one generated at start (read it with [`Sandbox::admin_token`]).
    pub fn allow_non_loopback(mut self) -> Self {
        self.allow_non_loopback = true;
        self
    }

    /// Requires `Authorization: Bearer <token>` on every `/_sandbox/*` request (the token must
    /// be printable ASCII without spaces). Optional on loopback; see
    /// [`SandboxBuilder::allow_non_loopback`].
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(SecretString::new(token));
        self
    }

    /// A further host name the HTTP admin API answers to on the bound port (besides
    /// `127.0.0.1`, `localhost`, `[::1]`, the bound IP, the TLS host names and the public base
    /// URL's host), e.g. the machine's name when bound to `0.0.0.0`.
    pub fn admin_host(mut self, host: impl Into<String>) -> Self {
        self.admin_hosts.push(host.into());
        self
    }

    /// Binds the listeners and starts serving.
    pub async fn start(self) -> Result<Sandbox, StartError> {
        if !self.allow_non_loopback {
            let addrs = std::iter::once(("HTTP", self.http_addr))
                .chain(self.smtp_addr.map(|a| ("SMTP", a)));
            for (what, addr) in addrs {
                if !addr.ip().is_loopback() {
                    return Err(StartError::NotLoopback { what, addr });
                }
            }
        }
        let beyond_loopback = !self.http_addr.ip().is_loopback()
            || self.smtp_addr.is_some_and(|a| !a.ip().is_loopback());
        let admin_token = resolve_admin_token(self.admin_token.clone(), beyond_loopback)?;
        let listener =
            TcpListener::bind(self.http_addr)
                .await
                .map_err(|source| StartError::Bind {
                    what: "HTTP",
                    addr: self.http_addr.to_string(),
                    source,
                })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            what: "HTTP",
            addr: self.http_addr.to_string(),
            source,
        })?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = if self.tls.is_some() && local.ip().is_loopback() {
            format!("localhost:{}", local.port())
        } else {
            local.to_string()
        };
        let base_url = self
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{host}"))
            .trim_end_matches('/')
            .to_string();
        let mut admin_names: Vec<String> = match &self.tls {
            Some(t) if t.hosts.is_empty() => vec!["localhost".into(), "127.0.0.1".into()],
            Some(t) => t.hosts.clone(),
            None => Vec::new(),
        };
        admin_names.extend(self.admin_hosts.iter().cloned());
        let (tenant, messages) = self.seed.into_parts();
        let state = AppState::new(
            tenant,
            Config {
                base_url: base_url.clone(),
                links_follow_host: self.public_base_url.is_none(),
                admin_access: crate::admin_guard::AdminAccess::new(
                    self.tls.is_some(),
                    local,
                    &admin_names,
                    self.public_base_url.as_deref(),
                    admin_token.clone(),
                ),
            },
            Clock::default(),
            self.fault_seed,
        );
        let now = state.clock().now();
        for m in messages {
            let primary = state
                .tenant()
                .mailbox(&m.mailbox, i64::MAX)
                .map(|mb| mb.mail.clone())
                .unwrap_or(m.mailbox.clone());
            let mime = m.mime.replace("\r\n", "\n").replace('\n', "\r\n");
            let seed_err = |e: crate::store::StoreError| StartError::SeedMessage {
                mailbox: m.mailbox.clone(),
                reason: e.to_string(),
            };
            // A well-known name, or the display name of a top-level folder (created if needed).
            let folder = if crate::store::WellKnownFolder::from_name(&m.folder).is_some() {
                m.folder.clone()
            } else {
                let store = state.store();
                match store
                    .find_folder(&primary, None, &m.folder)
                    .map_err(seed_err)?
                {
                    Some(f) => f.id,
                    None => {
                        store
                            .create_folder(&primary, None, &m.folder)
                            .map_err(seed_err)?
                            .id
                    }
                }
            };
            state
                .store()
                .insert(
                    &primary,
                    &folder,
                    mime.into_bytes(),
                    InsertOptions {
                        is_read: m.is_read,
                        is_draft: false,
                        received: now,
                    },
                )
                .map_err(|e| StartError::SeedMessage {
                    mailbox: m.mailbox.clone(),
                    reason: e.to_string(),
                })?;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let app = router(state.clone());
        let mut tasks = vec![tokio::spawn(dispatch_notifications(state.clone()))];
        let mut ca_pem = None;
        match self.tls {
            None => {
                let mut rx = stop_rx.clone();
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await;
                }));
            }
            Some(opts) => {
                let (config, ca) = crate::server::tls_config(&opts.hosts)?;
                std::fs::write(&opts.ca_pem_path, &ca).map_err(|e| {
                    StartError::Tls(format!("cannot write {}: {e}", opts.ca_pem_path.display()))
                })?;
                ca_pem = Some(ca);
                tasks.push(tokio::spawn(serve_tls(
                    listener,
                    app,
                    config,
                    stop_rx.clone(),
                )));
            }
        }
        let smtp_addr = match self.smtp_addr {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        what: "SMTP",
                        addr: addr.to_string(),
                        source,
                    })?;
                let a = l.local_addr().ok();
                tasks.push(tokio::spawn(crate::smtp::serve(l, state.clone())));
                a
            }
            None => None,
        };
        Ok(Sandbox {
            state,
            addr: local,
            smtp_addr,
            base_url,
            stop: stop_tx,
            tasks,
            ca_pem,
            admin_token,
        })
    }
}

/// The admin token to require: the one given (if usable), else a generated one when bound
/// beyond loopback, else none.
fn resolve_admin_token(
    given: Option<SecretString>,
    beyond_loopback: bool,
) -> Result<Option<SecretString>, StartError> {
    match given {
        Some(t) if t.expose().is_empty() => {
            Err(StartError::AdminToken("the token given is empty".into()))
        }
        Some(t) if !t.expose().bytes().all(|b| b.is_ascii_graphic()) => Err(
            StartError::AdminToken("the token given must be printable ASCII without spaces".into()),
        ),
        Some(t) => Ok(Some(t)),
        None if beyond_loopback => crate::admin_guard::generate_token()
            .map(Some)
            .map_err(StartError::AdminToken),
        None => Ok(None),
    }
}

/// The main router: identity, Graph, EWS, admin, with the request log around everything.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::identity::routes())
        .merge(crate::graph::routes())
        .merge(crate::ews::routes())
        .merge(crate::admin::web::routes(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.reqlog_handle(),
            crate::reqlog::middleware,
        ))
        .with_state(state)
}

fn tls_config(hosts: &[String]) -> Result<(Arc<rustls::ServerConfig>, String), StartError> {
    let err = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let hosts: Vec<String> = if hosts.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into()]
    } else {
        hosts.to_vec()
    };
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "m365 sandbox local CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut params = rcgen::CertificateParams::new(hosts).map_err(|e| err(&e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "m365 sandbox");
    let cert = params.signed_by(&key, &issuer).map_err(|e| err(&e))?;
    let chain = vec![cert.der().clone()];
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca_cert.pem()))
}

async fn serve_tls(
    listener: TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let io = hyper_util::rt::TokioIo::new(tls);
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut app = app.clone();
                    async move {
                        use tower::Service as _;
                        app.call(req.map(axum::body::Body::new)).await
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// A running sandbox. Dropping it stops the listeners.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let sb = sandbox::Sandbox::builder().seed(sandbox::Seed::demo()).start().await?;
/// println!("authority: {}", sb.authority("contoso.example"));
/// println!("graph:     {}", sb.graph_url());
/// sb.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sandbox {
    state: AppState,
    addr: SocketAddr,
    smtp_addr: Option<SocketAddr>,
    base_url: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    ca_pem: Option<String>,
    admin_token: Option<SecretString>,
}

impl Sandbox {
    /// A builder with the demo seed and ephemeral loopback ports.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            seed: Seed::demo(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            smtp_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            fault_seed: 0,
            tls: None,
            public_base_url: None,
            allow_non_loopback: false,
            admin_token: None,
            admin_hosts: Vec::new(),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The HTTP listen address.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Authority URL for a tenant name (GUID, domain, `organizations`): `{base}/{tenant}/v2.0`.
    pub fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base_url)
    }

    /// Token endpoint for a tenant name: `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url)
    }

    /// The tenant id (GUID).
    pub fn tenant_id(&self) -> String {
        self.state.tenant().info.id.clone()
    }

    /// Graph base, `{base}/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// EWS endpoint, `{base}/EWS/Exchange.asmx`.
    pub fn ews_url(&self) -> String {
        format!("{}/EWS/Exchange.asmx", self.base_url)
    }

    /// SMTP listener address (`None` if disabled).
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp_addr
    }

    /// PEM of the CA that issued the SMTP listener's STARTTLS certificate (valid for
    /// `localhost` and `127.0.0.1`), for clients to trust; `None` if it could not be generated.
    pub fn smtp_ca_pem(&self) -> Option<String> {
        crate::smtp::starttls_material().map(|(_, pem)| pem)
    }

    /// PEM of the generated CA when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The token the HTTP admin API requires (`Authorization: Bearer …`): the one given to
    /// [`SandboxBuilder::admin_token`], or the one generated because the sandbox is bound beyond
    /// loopback; `None` when none is required. Redacted in `Debug`.
    pub fn admin_token(&self) -> Option<&SecretString> {
        self.admin_token.as_ref()
    }

    /// The admin handle.
    pub fn admin(&self) -> Admin {
        Admin::new(self.state.clone())
    }

    /// The request log.
    pub fn request_log(&self) -> RequestLogSnapshot {
        self.state.reqlog().snapshot()
    }

    /// The shared state (for this crate's unit tests).
    #[cfg(test)]
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the listeners and waits for the server tasks to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }

    /// Runs until Ctrl-C (standalone use).
    pub async fn run_until_ctrl_c(self) {
        let _ = tokio::signal::ctrl_c().await;
        self.shutdown().await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reads the store's created messages and hands each to the notifier, which tells the Graph and
/// EWS subscriptions that watch its folder, until the store goes away.
async fn dispatch_notifications(st: AppState) {
    let Some(mut rx) = st.store().watch_created() else {
        return;
    };
    while let Some(c) = rx.recv().await {
        let tenant_id = st.tenant().info.id.clone();
        st.notifier().on_created(st.clock().now(), &tenant_id, &c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_is_generated_beyond_loopback_only() {
        assert!(resolve_admin_token(None, false).unwrap().is_none());
        let generated = resolve_admin_token(None, true).unwrap().unwrap();
        assert!(generated.expose().len() >= 32);
        let given = resolve_admin_token(Some(SecretString::new("t0ken")), true).unwrap();
        assert_eq!(
            given.map(|t| t.expose().to_string()).as_deref(),
            Some("t0ken")
        );
        let given = resolve_admin_token(Some(SecretString::new("t0ken")), false).unwrap();
        assert!(given.is_some(), "a token given on loopback is required too");
        for bad in ["", "two words", "tab\there", "é"] {
            let e = resolve_admin_token(Some(SecretString::new(bad)), true).unwrap_err();
            assert!(matches!(e, StartError::AdminToken(_)), "{bad:?}: {e}");
            assert!(!e.to_string().contains(bad) || bad.is_empty(), "{e}");
        }
    }
}
