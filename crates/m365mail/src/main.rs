//! `m365mail`: a Microsoft 365 mail handler that routes mail from pickup mailboxes to projects by
//! the address it was sent to, and answers from that address.
//!
//! With no configuration, `m365mail run` starts an embedded sandbox tenant, delivers demo mail
//! and processes it. With `--config FILE` it connects to a real tenant.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use connector::{Envelope, OutgoingMessage};

use m365mail::config::{Config, Overrides};
use m365mail::connect::anyhow_lite::{Context, Result};
use m365mail::connect::{self, Providers};
use m365mail::demo;

mod fleet_commands;
mod run_command;
mod signin_commands;
use fleet_commands::{SourcesAction, sources, status, worker};
use run_command::{print_summary, push_demo, run};
use signin_commands::{consent_url, console, login};

/// A Microsoft 365 mail handler: picks up mail, routes it to projects by the address it was sent
/// to, hands it over, and answers from that same address.
///
/// Without --config every command works against an embedded sandbox tenant with demo mail, so
/// you can see it work before you register anything with Microsoft.
#[derive(Parser, Debug)]
#[command(name = "m365mail", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the mail handler (without --config: on the embedded sandbox with demo mail, once).
    ///
    /// While a source with more than one batch of mail waiting drains, a progress bar per source
    /// is drawn on stderr (only on a terminal, never with --json).
    Run {
        /// Configuration file (TOML). Without it, the embedded demo tenant is used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where routed messages are written (overrides the configuration).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Drain the mailboxes once and exit (always so for the demo).
        #[arg(long)]
        once: bool,
        /// The demo in push mode (only without --config): the Graph source woken by change
        /// notifications, the EWS source by a streaming subscription, and the demo mail
        /// delivered one message at a time, each reported with the time it took to be handed
        /// over. With a configuration, set `mode = "push"` on its sources instead.
        #[arg(long, conflicts_with_all = ["config", "once"])]
        push: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Serve /metrics (Prometheus), /healthz and /readyz at ADDR (loopback unless
        /// --metrics-allow-non-loopback). Default off.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
        /// Allow a --metrics address beyond loopback (the endpoint has no authentication).
        #[arg(long)]
        metrics_allow_non_loopback: bool,
    },
    /// Run one worker of a fleet: the configuration's sources shared with every worker that
    /// uses the same PostgreSQL database, each source served by one worker at a time.
    ///
    /// The ledger, the token cache and the Graph delta state live in the database; the schema
    /// is created (or migrated) on start. Ctrl-C hands this worker's sources back at once.
    Worker {
        /// Configuration file (TOML): the sources, routing and handler of the fleet.
        #[arg(long)]
        config: PathBuf,
        /// The fleet's database, `postgres://user:password@host:port/database`. Default: the
        /// M365MAIL_STORE environment variable (keeps the password off the command line).
        #[arg(long)]
        store: Option<String>,
        /// This worker's name in the fleet (default: host name, process id, random suffix).
        #[arg(long)]
        name: Option<String>,
        /// Seconds a lease lasts without renewal (a dead worker's sources are taken over
        /// within this time and a third).
        #[arg(long, default_value_t = 30)]
        lease_secs: u64,
        /// Print the summary as JSON when stopped.
        #[arg(long)]
        json: bool,
        /// Where to serve metrics and health.
        #[command(flatten)]
        metrics: MetricsFlags,
    },
    /// Change a running fleet's apps, sources and outbounds (kept in its database, beside the
    /// configuration file): workers pick a change up within one tick, without a restart.
    Sources {
        /// The fleet's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The fleet's database (default: M365MAIL_STORE).
        #[arg(long)]
        store: Option<String>,
        #[command(subcommand)]
        action: SourcesAction,
    },
    /// The fleet at a glance: per source its status (ONLINE/OFFLINE with the diagnosis and
    /// since when), messages waiting, last pass, the worker holding it and the acknowledgements
    /// owed; per worker its heartbeat and sources.
    Status {
        /// The fleet's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The fleet's database (default: M365MAIL_STORE).
        #[arg(long)]
        store: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the web console: the sources with PING and its connection log, Sign in with
    /// Microsoft to add a source, the admin consent link when the tenant has not consented.
    ///
    /// Sign in to it with the operator token: M365MAIL_CONSOLE_TOKEN, or the one printed at
    /// start when that is unset. Sources added by signing in are appended to --config.
    Console {
        /// Configuration file (TOML): its sources are listed, new ones appended.
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on. Anything but loopback needs --allow-non-loopback.
        #[arg(long, default_value = "127.0.0.1:8765")]
        listen: std::net::SocketAddr,
        /// Allow a --listen address beyond loopback (put TLS in front: --public-url https://…).
        #[arg(long)]
        allow_non_loopback: bool,
        /// Where browsers reach the console (default http://LISTEN); the redirect URIs to
        /// register are PUBLIC_URL/console/callback and PUBLIC_URL/console/consent.
        #[arg(long)]
        public_url: Option<url::Url>,
        /// The app people sign in with (default: the first with flow = "browser").
        #[arg(long)]
        app: Option<String>,
        /// The Graph base URL of sources added by sign-in (default: an existing Graph
        /// source's, else the cloud's).
        #[arg(long)]
        graph_url: Option<String>,
        /// The EWS URL of sources added by sign-in (default as for --graph-url).
        #[arg(long)]
        ews_url: Option<String>,
        /// A fleet's database: list its sources with the status its workers report (default:
        /// M365MAIL_STORE; without either, the configuration file alone).
        #[arg(long)]
        store: Option<String>,
    },
    /// Run the standalone sandbox tenant (identity, Graph, EWS, SMTP) until Ctrl-C.
    Sandbox(sandbox::cli::ServeArgs),
    /// Sign in an app with its configured flow (device code, browser, client credentials) and
    /// cache the token.
    Login {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The app's name in the configuration.
        #[arg(long)]
        app: String,
        /// The resource: graph or ews.
        #[arg(long, default_value = "graph")]
        resource: String,
    },
    /// Print the admin consent URL an administrator opens to approve an app.
    ConsentUrl {
        /// Configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The app's name in the configuration.
        #[arg(long)]
        app: Option<String>,
    },
    /// Test a source or outbound: status, messages waiting, and the connection log.
    Ping {
        /// Configuration file (default: the embedded demo tenant).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The source's or outbound's name (default: all).
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the tenant's readiness for each source and outbound: consent, user assignment,
    /// EWS allowed, the pickup address a mailbox (not a group), application access, plus
    /// addressing, each alias receiving, sending from an alias keeping it. Prints pass / fail /
    /// unknown with the fix (portal path or PowerShell command); exits 1 when a check fails.
    ///
    /// Probe messages are sent from the pickup mailbox (or its alias) to itself, recognised by
    /// their X-M365Mail-Probe header (a running handler never routes them) and deleted
    /// afterwards from the inbox and Sent Items.
    Doctor {
        /// Configuration file (default: the embedded demo tenant).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only this source (and the outbound it notifies through).
        #[arg(long)]
        source: Option<String>,
        /// Seconds to wait for probe messages to arrive.
        #[arg(long, default_value_t = 30)]
        probe_wait_secs: u64,
        /// Send no probes (plus addressing, aliases and sending from an alias are then not
        /// checked).
        #[arg(long)]
        no_probes: bool,
        /// Print JSON: {"ok", "findings": [{"target", "check", "about", "status", "detail",
        /// "fix"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Send a message through an outbound.
    Send {
        /// Configuration file (default: the embedded demo tenant).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The outbound's name (default: the first).
        #[arg(long)]
        outbound: Option<String>,
        /// The sender address (an alias needs SendFromAliasEnabled or Send As).
        #[arg(long)]
        from: Option<String>,
        /// Recipient.
        #[arg(long)]
        to: String,
        /// Subject.
        #[arg(long, default_value = "Test from m365mail")]
        subject: String,
        /// Body text.
        #[arg(long, default_value = "This is a test message.")]
        body: String,
    },
    /// Show how an address or a message would be routed and answered.
    Route {
        /// Configuration file (default: the embedded demo tenant).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The source whose routing to use (default: the first).
        #[arg(long)]
        source: Option<String>,
        /// An address the message was sent to.
        #[arg(long, conflicts_with = "file")]
        address: Option<String>,
        /// A message file (.eml).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("M365MAIL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run {
            config,
            out,
            once,
            push,
            json,
            metrics,
            metrics_allow_non_loopback,
        } => {
            if push {
                return push_demo(out, json).await;
            }
            let metrics = metrics.map(|addr| (addr, metrics_allow_non_loopback));
            run(config, out, once, json, metrics).await
        }
        Command::Worker {
            config,
            store,
            name,
            lease_secs,
            json,
            metrics,
        } => worker(config, store, name, lease_secs, json, metrics).await,
        Command::Sources {
            config,
            store,
            action,
        } => sources(config, store, action).await,
        Command::Status {
            config,
            store,
            json,
        } => status(config, store, json).await,
        Command::Console {
            config,
            listen,
            allow_non_loopback,
            public_url,
            app,
            graph_url,
            ews_url,
            store,
        } => {
            let public_url = match public_url {
                Some(u) => u,
                None => url::Url::parse(&format!("http://{listen}")).context("--listen")?,
            };
            let options = m365mail::console::ConsoleOptions::new(
                config,
                m365mail::console::OperatorToken::new(String::new()),
                public_url,
            )
            .sign_in_app(app)
            .service_urls(graph_url, ews_url)
            .store(
                store
                    .or_else(|| std::env::var("M365MAIL_STORE").ok())
                    .filter(|s| !s.trim().is_empty())
                    .map(m365mail::console::StoreUrl::new),
            );
            console(options, listen, allow_non_loopback).await
        }
        Command::Sandbox(args) => Ok(args.run().await),
        Command::Login {
            config,
            app,
            resource,
        } => login(&config, &app, &resource).await,
        Command::ConsentUrl { config, app } => consent_url(config, app).await,
        Command::Ping { config, name, json } => ping(config, name, json).await,
        Command::Doctor {
            config,
            source,
            probe_wait_secs,
            no_probes,
            json,
        } => {
            let options = m365mail::doctor::Options::default()
                .source(source)
                .probe_wait(Duration::from_secs(probe_wait_secs))
                .probes(!no_probes);
            doctor(config, options, json).await
        }
        Command::Send {
            config,
            outbound,
            from,
            to,
            subject,
            body,
        } => send(config, outbound, from, to, subject, body).await,
        Command::Route {
            config,
            source,
            address,
            file,
            json,
        } => route(config, source, address, file, json).await,
    }
}

/// The resolved configuration of a file (`out` replacing `handler.output_dir` before the
/// paths that follow from it are resolved), or the demo's (with its sandbox kept alive by the
/// caller). The one place a command gets its configuration.
async fn load(
    config: Option<PathBuf>,
    with_mail: bool,
    out: Option<&std::path::Path>,
) -> Result<(Config, Option<sandbox::Sandbox>)> {
    match config {
        Some(path) => {
            let overrides = Overrides::default().output_dir(out.map(std::path::Path::to_path_buf));
            let cfg = Config::load_with(&path, &overrides).map_err(|e| e.to_string())?;
            Ok((cfg, None))
        }
        None => {
            let sb = demo::start(with_mail).await?;
            let out = out
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("m365mail-out/demo"));
            let cfg = demo::demo_config(&sb, &out)?;
            Ok((cfg, Some(sb)))
        }
    }
}

/// `m365mail worker`: where it serves Prometheus metrics, `/healthz` and `/readyz`.
#[derive(clap::Args, Debug)]
struct MetricsFlags {
    /// Serve /metrics (Prometheus), /healthz and /readyz at ADDR, or `off`. Default
    /// 127.0.0.1:9464 (if that is taken, e.g. by another worker, it warns and goes on without);
    /// anything but loopback needs --metrics-allow-non-loopback.
    #[arg(long, value_name = "ADDR|off")]
    metrics: Option<m365mail::metrics::Listen>,
    /// Allow a --metrics address beyond loopback (other machines can then read which mailboxes
    /// this worker serves and how busily; the endpoint has no authentication).
    #[arg(long)]
    metrics_allow_non_loopback: bool,
}

async fn ping(config: Option<PathBuf>, name: Option<String>, json: bool) -> Result<ExitCode> {
    let (cfg, sb) = load(config, true, None).await?;
    let mut providers = Providers::default();
    let mut reports = Vec::new();
    for s in &cfg.sources {
        if name.as_ref().is_some_and(|n| n != &s.name) {
            continue;
        }
        let src = connect::source(&mut providers, s, cfg.handler.batch_size)?;
        reports.push((format!("source {}", s.name), src.ping().await));
    }
    for o in &cfg.outbounds {
        if name.as_ref().is_some_and(|n| n != &o.name) {
            continue;
        }
        let out = connect::outbound(&mut providers, o)?;
        reports.push((format!("outbound {}", o.name), out.ping().await));
    }
    if reports.is_empty() {
        return Err(format!("nothing called {name:?} in the configuration"));
    }
    let online = reports.iter().all(|(_, r)| r.is_online());
    if json {
        let v: Vec<serde_json::Value> = reports
            .iter()
            .map(|(n, r)| {
                let mut j = r.to_json();
                j["name"] = serde_json::Value::String(n.clone());
                j
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        for (n, r) in &reports {
            println!("{n}: {r}");
            for line in &r.log {
                println!("    {line}");
            }
        }
    }
    if let Some(sb) = sb {
        sb.shutdown().await;
    }
    Ok(if online {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn doctor(
    config: Option<PathBuf>,
    options: m365mail::doctor::Options,
    json: bool,
) -> Result<ExitCode> {
    let (cfg, sb) = load(config, false, None).await?;
    let report = m365mail::doctor::run_doctor(&cfg, &options).await;
    if let Some(sb) = sb {
        sb.shutdown().await;
    }
    let report = report?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.text());
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn send(
    config: Option<PathBuf>,
    outbound: Option<String>,
    from: Option<String>,
    to: String,
    subject: String,
    body: String,
) -> Result<ExitCode> {
    let (cfg, sb) = load(config, false, None).await?;
    let o = match &outbound {
        Some(n) => cfg.outbound(n),
        None => cfg.outbounds.first(),
    }
    .ok_or("no such outbound in the configuration")?;
    let mut providers = Providers::default();
    let out = connect::outbound(&mut providers, o)?;
    let from = from.unwrap_or_else(|| o.mailbox.clone());
    let msg = lettre::Message::builder()
        .from(from.parse().context("--from")?)
        .to(to.parse().context("--to")?)
        .subject(notify_safe(&subject))
        .body(body)
        .context("building the message")?;
    let msg = OutgoingMessage::from(msg);
    let _: &Envelope = msg.envelope();
    let receipt = out.send(&msg).await.map_err(|e| e.to_string())?;
    println!(
        "sent through {} from {}",
        out.name(),
        receipt.from.unwrap_or(from)
    );
    if let Some(sb) = sb {
        sb.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Control characters never reach a header.
fn notify_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

async fn route(
    config: Option<PathBuf>,
    source: Option<String>,
    address: Option<String>,
    file: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    // Routing needs no tenant, but the demo configuration names the sandbox's URLs.
    let (cfg, sb) = load(config, false, None).await?;
    let s = match &source {
        Some(n) => cfg.source(n),
        None => cfg.sources.first(),
    }
    .ok_or("no such source in the configuration")?;
    let router = &s.router;
    let mime = match (address, file) {
        (Some(a), _) => format!(
            "From: customer@example.net\r\nTo: {}\r\nSubject: (route check)\r\n\r\n",
            notify_safe(&a)
        )
        .into_bytes(),
        (None, Some(f)) => std::fs::read(&f).context(format!("reading {}", f.display()))?,
        (None, None) => return Err("give --address ADDR or --file MESSAGE.eml".into()),
    };
    let route = router.route_mime(&mime);
    let caps = s
        .notify_through
        .as_ref()
        .map(|o| o.capabilities.clone())
        .unwrap_or_default();
    let choice = router.sender_policy().choose_for_route(&route, &caps);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "source": s.name,
                "project": route.project.as_ref().map(|p| p.as_str()),
                "catch_address": route.catch_address().map(|a| a.to_string()),
                "route": route.explain(),
                "answer_from": choice.from.to_string(),
                "reply_to": choice.reply_to.as_ref().map(|r| r.to_string()),
                "sender_policy": choice.explain(),
            })
        );
    } else {
        println!("source:   {}", s.name);
        println!(
            "project:  {}",
            route
                .project
                .as_ref()
                .map(|p| p.as_str())
                .unwrap_or("(none)")
        );
        println!("route:    {}", route.explain());
        println!("answer:   {}", choice.explain());
    }
    if let Some(sb) = sb {
        sb.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
