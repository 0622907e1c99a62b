//! The file as written: the shapes serde reads the TOML into, before anything is resolved.
//! [`resolve`](super::resolve) turns a [`File`] into the [`Config`](super::Config) the commands
//! use; nothing else reads these types.

use std::path::PathBuf;

use serde::Deserialize;

use super::notifications::NotificationConfig;

/// The whole file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct File {
    /// App registrations.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// Where mail comes from.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Where mail goes out.
    #[serde(default)]
    pub outbounds: Vec<OutboundConfig>,
    /// What to do with routed mail.
    #[serde(default)]
    pub handler: HandlerConfig,
    /// The acknowledgement notification.
    #[serde(default)]
    pub notifications: NotificationConfig,
}

/// How an app signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Flow {
    /// App-only: a daemon with a client secret.
    #[default]
    ClientCredentials,
    /// A user signs in on another device with a code.
    DeviceCode,
    /// A user signs in with a browser (authorization code with PKCE, loopback redirect).
    Browser,
}

/// The signature of a certificate's client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AssertionAlgorithmName {
    /// RSASSA-PSS with SHA-256 and `x5t#S256` (Microsoft's current form).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and `x5t` (the legacy form).
    Rs256,
}

/// An app registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppConfig {
    /// A name the sources refer to.
    pub name: String,
    /// Tenant id or verified domain (`organizations` for delegated multi-tenant apps).
    pub tenant: String,
    /// The Microsoft cloud the tenant lives in: `global` (default, also GCC), `us-gov-l4`
    /// (aliases `us-government`, `gcc-high`), `us-gov-l5` (alias `dod`) or `china`. It picks
    /// the sign-in host, the default Graph, EWS and SMTP endpoints of the app's connections and
    /// the audience of their tokens (msauth's `Cloud`). Read once, when the file is loaded; an
    /// unknown name is refused with its line and key.
    #[serde(default = "default_cloud", deserialize_with = "cloud_name")]
    pub cloud: msauth::Cloud,
    /// A custom login host (an emulator such as the sandbox): `http://127.0.0.1:8080`. It
    /// replaces the cloud's sign-in host; the tokens are still asked for the cloud's resources.
    #[serde(default)]
    pub authority_base: Option<String>,
    /// An identity provider that does not have Microsoft's URL layout (another OpenID Connect
    /// server, a proxy with its own paths), named endpoint by endpoint:
    /// `[apps.endpoints]` with `authorize` and `token` (required), `device` and
    /// `admin_consent` (optional). Instead of `authority_base`, not with it.
    #[serde(default)]
    pub endpoints: Option<EndpointsConfig>,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret, inline. Only for demos: prefer `client_secret_env`. Redacted in
    /// `Debug`, and never shown in a configuration error.
    #[serde(default)]
    pub client_secret: Option<msauth::ClientSecret>,
    /// The environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// A certificate credential instead of a secret (RFC 7523 client assertion): a PEM file with
    /// the certificate (and the key, unless `certificate_key_file` is set), or a PKCS#12 file
    /// (`.pfx`/`.p12`, recognised by its extension) holding both.
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// The PEM private key (PKCS#8 or PKCS#1 RSA) for a PEM `certificate_file`.
    #[serde(default)]
    pub certificate_key_file: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 file's password (unset: an empty password).
    #[serde(default)]
    pub certificate_password_env: Option<String>,
    /// The client assertion's signature: `ps256` (default, `x5t#S256`) or `rs256` (`x5t`).
    #[serde(default)]
    pub assertion_algorithm: Option<AssertionAlgorithmName>,
    /// The sign-in flow.
    #[serde(default)]
    pub flow: Flow,
    /// Where delegated tokens are cached (JSON, mode 0600).
    #[serde(default)]
    pub token_cache: Option<PathBuf>,
    /// The account a delegated flow signs in as (`adele.vance@contoso.com`): its tokens are
    /// cached under it, so people signed in through one app registration keep one entry each
    /// in a shared cache (a fleet's database). Unset: the app's one sign-in
    /// (`m365mail login --app NAME`). Refused with `flow = "client-credentials"`.
    #[serde(default)]
    pub account: Option<String>,
    /// The redirect URI registered for admin consent and browser sign-in.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// A PEM file of one or more extra CA certificates to trust for the sign-in authority
    /// (its token and discovery endpoints), besides the public roots: an on-premises identity
    /// server with an internal CA, or the sandbox started with `--tls`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[apps.endpoints]`: the endpoints of an identity provider, each HTTPS (or HTTP on a
/// loopback address).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointsConfig {
    /// The authorization endpoint (browser sign-in).
    pub authorize: String,
    /// The token endpoint.
    pub token: String,
    /// The device authorization endpoint (RFC 8628), for `flow = "device-code"`.
    #[serde(default)]
    pub device: Option<String>,
    /// A Microsoft-style admin consent endpoint, for `m365mail consent-url`.
    #[serde(default)]
    pub admin_consent: Option<String>,
}

fn default_cloud() -> msauth::Cloud {
    msauth::Cloud::Global
}

/// `apps.cloud`: a name [`msauth::Cloud::parse`] knows.
fn cloud_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<msauth::Cloud, D::Error> {
    let name = String::deserialize(d)?;
    msauth::Cloud::parse(&name).map_err(serde::de::Error::custom)
}

/// The kind of connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kind {
    /// Microsoft Graph.
    Graph,
    /// Exchange Web Services.
    Ews,
    /// SMTP AUTH client submission with XOAUTH2 (outbounds only).
    Smtp,
}

/// A message source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SourceConfig {
    /// Its name.
    pub name: String,
    /// Graph or EWS.
    pub kind: Kind,
    /// The app it signs in with.
    pub app: String,
    /// The pickup mailbox.
    pub mailbox: String,
    /// The folder to read (default `inbox`).
    #[serde(default)]
    pub folder: Option<String>,
    /// `mark-read` (default), `delete`, `move:FOLDER`, or `keep` (no request at all: only with
    /// `mode = "delta"`, where the deltaLink and the ledger are the record; one request per
    /// message fewer against the mailbox's budget).
    #[serde(default)]
    pub acknowledge: Option<String>,
    /// Where poison messages are parked (default `Poison`).
    #[serde(default)]
    pub poison_folder: Option<String>,
    /// The outbound that sends notifications for this source.
    #[serde(default)]
    pub notify_through: Option<String>,
    /// Requests at once against the mailbox.
    ///
    /// Graph: download MIME and acknowledge with single requests, this many at once (Exchange
    /// Online allows 4 per app and mailbox), instead of JSON `$batch` rounds of 20. Graph
    /// counts each `$batch` item as a request, so both cost the same requests per message;
    /// single requests keep every allowed slot busy, where a `$batch` ends with its slowest
    /// item while the other slots wait. Unset: `$batch`.
    ///
    /// EWS: a fetch of `[handler] batch_size` messages is listed, downloaded and acknowledged in
    /// requests of `batch_size ÷ requests_in_flight` items, this many at once (at most 27,
    /// Exchange Online's `EWSMaxConcurrency`). Each request also costs a round trip, so keep
    /// them carrying a few dozen items: a `batch_size` of about 25 × `requests_in_flight`
    /// (27 with a `batch_size` of 700 to 1,000). With a `batch_size` of 200 and 27 in flight
    /// each request carries 8 items, and in the `cargo xtask bench --exo` scenario the pace a
    /// mailbox can be read at is half what it is with 38 (with the default `batch_size` of 50,
    /// 2 items each). Unset: one FindItem a fetch and 100 items per request (the fewest requests).
    /// Pages that arrive this fast want `[handler] concurrency` of about 16. With it a
    /// `batch_size` above 1,000 is listed in as many pages (requests then carry up to 100
    /// items): fewer ends of a fetch, where the last downloads finish one by one and the next
    /// listing waits for the acknowledgements. In the exo scenario a `batch_size` of 5,000
    /// read one mailbox of 10,000 37% faster than 1,000, holding up to 5,000 MIME bodies.
    #[serde(default)]
    pub requests_in_flight: Option<usize>,
    /// A custom Graph base (`http://127.0.0.1:8080/v1.0`) or EWS URL (default: the app's
    /// cloud's Graph v1.0 root or Exchange Online EWS URL).
    #[serde(default)]
    pub url: Option<String>,
    /// How new mail is found. `unread` (default) lists the unread messages of the folder each
    /// poll; `delta` follows the folder's changes, so each poll asks only for what changed
    /// since the last one (cheaper on a large mailbox, and it finds new mail even if someone
    /// else read it first): Graph's delta query, its state kept in `delta_state`, or EWS's
    /// SyncFolderItems, its state kept in `sync_state`. `push` is `delta` woken by
    /// notifications.
    #[serde(default)]
    pub mode: SourceMode,
    /// Graph `push` mode: where Graph's change notifications reach this process
    /// (`[sources.push]`; required with `mode = "push"`, refused otherwise).
    #[serde(default)]
    pub push: Option<PushConfig>,
    /// Graph `delta` mode: the file the delta state is kept in (default `graph-delta.json` next
    /// to the ledger; several sources may share it). Losing it costs a full resync, which
    /// hands over only what is still unread, and the ledger keeps anything from being handled
    /// twice.
    #[serde(default)]
    pub delta_state: Option<PathBuf>,
    /// EWS `delta` and `push` modes: the file the SyncFolderItems state (the SyncState and the
    /// messages seen and not yet acknowledged) is kept in (default `ews-sync.json` next to the
    /// ledger; several sources may share it; owner-only). Losing it costs a sync from the
    /// beginning, which hands over only what is still unread, and the ledger keeps anything
    /// from being handled twice. A fleet worker keeps no such file: the state is in the fleet's
    /// database (`fleet_ews_sync`).
    #[serde(default)]
    pub sync_state: Option<PathBuf>,
    /// A PEM file of one or more extra CA certificates to trust for this connection's Graph or
    /// EWS endpoint, besides the public roots (on-premises Exchange with an internal CA, or the
    /// sandbox started with `--tls`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Routing: the mailbox's addresses and the project rules.
    pub routing: addressing::RoutingConfig,
}

/// How a Graph source finds new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourceMode {
    /// List the unread messages each poll.
    #[default]
    Unread,
    /// Graph's delta query or EWS's SyncFolderItems, with its state kept in a file.
    Delta,
    /// Graph: the delta query, run when a change notification says mail arrived (and on a
    /// slow safety timer), with a subscription kept alive on the folder. EWS: SyncFolderItems
    /// from the saved `sync_state`, run when a streaming notification says mail arrived, after
    /// every (re)connection or failure of the stream, and on the safety timer.
    /// Mail is handled as it arrives, and an idle mailbox costs a few requests an hour instead
    /// of one per poll.
    Push,
}

/// `[sources.push]`: the listener Graph's change notifications are sent to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PushConfig {
    /// Graph: the URL Graph POSTs notifications to, as the internet sees it: https (a reverse
    /// proxy in front of `listen` may terminate TLS and forward any path), or http to loopback
    /// only (the sandbox). Required for Graph; EWS streaming needs no URL.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The address the listener binds (default `127.0.0.1:8425`: behind a reverse proxy on the
    /// same machine).
    #[serde(default)]
    pub listen: Option<std::net::SocketAddr>,
    /// The safety timer: a delta round this often even when no notification came, so that
    /// lost notifications cost at most this long (default 900 seconds).
    #[serde(default)]
    pub safety_interval_secs: Option<u64>,
    /// Where the subscription is recorded so that a restart reuses it instead of leaking it
    /// (default `graph-subscriptions.json` next to the ledger; owner-only, it holds the
    /// subscription's `clientState`). Not used by a fleet's workers: they record subscriptions
    /// in the fleet's database, for whichever worker holds the source next.
    ///
    /// In a fleet every worker binds its own `listen` address, and `public_url` should reach
    /// all of them (a load balancer): a notification reaching a worker that does not serve
    /// the source is checked there and passed to the one that does.
    #[serde(default)]
    pub subscriptions: Option<PathBuf>,
}

/// A message outbound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboundConfig {
    /// Its name.
    pub name: String,
    /// Graph or EWS.
    pub kind: Kind,
    /// The app it signs in with.
    pub app: String,
    /// The mailbox it sends as.
    pub mailbox: String,
    /// The tenant's `SendFromAliasEnabled`.
    #[serde(default)]
    pub send_from_alias_enabled: bool,
    /// Addresses this connection has Send As rights on.
    #[serde(default)]
    pub send_as: Vec<String>,
    /// A custom Graph base or EWS URL (default: the app's cloud's); not for `kind = "smtp"`,
    /// which takes `host` and `port`.
    #[serde(default)]
    pub url: Option<String>,
    /// For `kind = "smtp"`: the server (default: the app's cloud's, `smtp.office365.com` in
    /// the global cloud).
    #[serde(default)]
    pub host: Option<String>,
    /// For `kind = "smtp"`: the port (default 587, STARTTLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// A PEM file of one or more extra CA certificates to trust, besides the public roots: for
    /// `kind = "smtp"` the STARTTLS certificate (an on-premises server with an internal CA, or
    /// the sandbox: `m365mail sandbox --smtp-ca-out FILE`), for Graph and EWS the HTTPS
    /// endpoint in `url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// What to do with routed mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HandlerConfig {
    /// Write each message and its routing record under this folder, one folder per project.
    #[serde(default = "default_output")]
    pub output_dir: PathBuf,
    /// Also POST each message as JSON to this URL.
    #[serde(default)]
    pub webhook: Option<String>,
    /// The ledger file (default: `ledger.jsonl` in `output_dir`).
    #[serde(default)]
    pub ledger: Option<PathBuf>,
    /// Handler failures before a message is parked.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Seconds between polls.
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Messages per fetch (1 to 1,000; up to 10,000 for an EWS source with
    /// `requests_in_flight`, listed in FindItem pages): also the sources' list page size, so a
    /// larger batch means fewer list requests per message (and more MIME held in memory at
    /// once).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Messages of one source handled at once (1 to 64, default 4): each is parsed, routed,
    /// written to its project folder (and POSTed to the webhook) on its own. A source that
    /// downloads hundreds of messages a second (EWS with `requests_in_flight`) is held back by
    /// 4 at once, whose writes and syncs pace its acknowledgements; 16 keeps up with it. A
    /// webhook receives up to this many requests at once from each source.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// With `run --once`: how long in all to wait for sources that asked for a pause
    /// (throttled with a wait, such as Exchange Online's spent request budget of 10,000
    /// requests per 10 minutes) before draining them again, in seconds (0 to 3,600; default
    /// 0: return at once, the rest of their mail still waiting). A polling `run` always waits
    /// for a pause.
    #[serde(default)]
    pub throttle_wait_secs: u64,
    /// The largest message handed to the parser, in MiB (default 150, the largest message
    /// Microsoft 365 accepts); a bigger one is parked unparsed with the reason.
    #[serde(default = "default_max_message_mib")]
    pub max_message_mib: u32,
    /// The prefix of a ticket system's subject token (`HELP` for `[HELP-123]`): a message
    /// whose subject has one carries it in its routing record and webhook body.
    #[serde(default)]
    pub subject_token: Option<String>,
}

fn default_output() -> PathBuf {
    PathBuf::from("m365mail-out")
}
fn default_attempts() -> u32 {
    3
}
fn default_poll() -> u64 {
    30
}
fn default_batch() -> usize {
    50
}
fn default_concurrency() -> usize {
    4
}
fn default_max_message_mib() -> u32 {
    150
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            output_dir: default_output(),
            webhook: None,
            ledger: None,
            max_attempts: default_attempts(),
            poll_interval_secs: default_poll(),
            batch_size: default_batch(),
            concurrency: default_concurrency(),
            throttle_wait_secs: 0,
            max_message_mib: default_max_message_mib(),
            subject_token: None,
        }
    }
}
