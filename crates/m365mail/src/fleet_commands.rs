//! The commands that operate a fleet: `worker`, `sources`, `status` (the binary's; the work is
//! in the library's `worker`, `catalog` and `operate` modules).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use handler::Shutdown;
use m365mail::connect::anyhow_lite::Result;

use crate::{load, print_summary};

/// `m365mail sources ...`.
#[derive(Subcommand, Debug)]
pub(crate) enum SourcesAction {
    /// Add (or replace) the [[apps]], [[sources]] and [[outbounds]] of a TOML file, written as
    /// in the configuration file (secrets by reference only: client_secret_env or
    /// client_secret_file).
    Add {
        /// The TOML file.
        #[arg(long)]
        file: PathBuf,
    },
    /// List the fleet's sources and where each is defined.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a source's configuration (with its app and outbound).
    Show {
        /// The source's name.
        name: String,
    },
    /// Remove a source (or, with --kind, an app or outbound) from the database: its worker
    /// finishes the messages in flight and hands its lease back.
    Remove {
        /// The name.
        name: String,
        /// What it is: source (default), app or outbound.
        #[arg(long, default_value = "source")]
        kind: String,
    },
    /// Replace a source's routing with a TOML file holding its [mailbox] and [[rules]].
    SetRouting {
        /// The source's name.
        name: String,
        /// The routing file.
        #[arg(long)]
        file: PathBuf,
    },
}

/// The fleet's database: `--store`, or M365MAIL_STORE.
fn store_url(store: Option<String>) -> Result<String> {
    store
        .or_else(|| std::env::var("M365MAIL_STORE").ok())
        .ok_or_else(|| {
            "the fleet's database is needed: --store postgres://... or M365MAIL_STORE".into()
        })
}

pub(crate) async fn sources(
    config: PathBuf,
    store: Option<String>,
    action: SourcesAction,
) -> Result<ExitCode> {
    use m365mail::operate::{Fleet, Origin};
    let fleet = Fleet::open(&config, &store_url(store)?).await?;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    match action {
        SourcesAction::Add { file } => {
            for (kind, name) in fleet.add(&read(&file)?).await? {
                println!("stored {kind} {name}");
            }
        }
        SourcesAction::List { json } => {
            let list = fleet.sources().await?;
            let origin = |o: Origin| match o {
                Origin::File => "file",
                Origin::Store => "database",
            };
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|(n, o)| serde_json::json!({"name": n, "defined_in": origin(*o)}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for (name, o) in list {
                    println!("{name}\t{}", origin(o));
                }
            }
        }
        SourcesAction::Show { name } => print!("{}", fleet.show(&name).await?),
        SourcesAction::Remove { name, kind } => {
            let kind = match kind.as_str() {
                "source" => fleet::EntryKind::Source,
                "app" => fleet::EntryKind::App,
                "outbound" => fleet::EntryKind::Outbound,
                other => return Err(format!("--kind {other}: source, app or outbound")),
            };
            fleet.remove(kind, &name).await?;
            println!("removed {kind} {name}");
        }
        SourcesAction::SetRouting { name, file } => {
            fleet.set_routing(&name, &read(&file)?).await?;
            println!("routing of {name} replaced");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn status(config: PathBuf, store: Option<String>, json: bool) -> Result<ExitCode> {
    let fleet = m365mail::operate::Fleet::open(&config, &store_url(store)?).await?;
    let status = fleet.status().await?;
    if json {
        println!("{}", m365mail::operate::status_json(&status));
    } else {
        print!("{}", m365mail::operate::status_text(&status));
    }
    let all_online = status.sources.iter().all(|s| s.online != Some(false));
    Ok(if all_online {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

pub(crate) async fn worker(
    config: PathBuf,
    store: Option<String>,
    name: Option<String>,
    lease_secs: u64,
    json: bool,
    metrics_flags: crate::MetricsFlags,
) -> Result<ExitCode> {
    // Refused or bound first: a wrong address fails before anything connects.
    let metrics = m365mail::metrics::Metrics::new();
    let endpoint = metrics
        .start(
            metrics_flags.metrics,
            metrics_flags.metrics_allow_non_loopback,
        )
        .await
        .map_err(|e| e.to_string())?;
    let store = store_url(store)?;
    let (cfg, _) = load(Some(config.clone()), false, None).await?;
    let mut settings = m365mail::worker::WorkerSettings::new();
    if let Some(name) = name {
        settings.name = name;
    }
    settings.lease_ttl = Duration::from_secs(lease_secs.max(3));
    if endpoint.is_some() {
        metrics.install_process_hooks();
        settings.metrics = Some(metrics);
    }
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: finishing the messages in flight, handing the sources back.");
            stop.trigger();
        }
    });
    #[cfg(unix)]
    {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate())
                && term.recv().await.is_some()
            {
                stop.trigger();
            }
        });
    }
    let summary = m365mail::worker::run(&config, &cfg, &store, &settings, &shutdown).await?;
    print_summary(&summary, &cfg, json);
    Ok(ExitCode::SUCCESS)
}
