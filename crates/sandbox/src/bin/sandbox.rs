//! The standalone sandbox: a local Microsoft 365 tenant on a port.
//!
//! ```text
//! m365mail-sandbox [--port 8080] [--smtp-port 2525] [--seed FILE] [--tls [--ca-out FILE]]
//!                  [--smtp-ca-out FILE] [--bind IP --allow-non-loopback] [--admin-token TOKEN]
//! ```
//!
//! The admin token can also come from the `SANDBOX_ADMIN_TOKEN` environment variable (which,
//! unlike an argument, other users of the machine cannot read in the process list). The
//! options and what is done with them are [`sandbox::cli`]'s, shared with `m365mail sandbox`.
//!
//! Log lines go to stderr, filtered by the `SANDBOX_LOG` environment variable (a
//! `tracing_subscriber::EnvFilter`, `warn` when unset): `SANDBOX_LOG=debug` shows, for one,
//! change notifications that could not be delivered and SMTP sessions that ended in an error.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A local emulator of a Microsoft 365 tenant (identity, Graph, EWS, SMTP).
#[derive(Parser, Debug)]
#[command(name = "m365mail-sandbox", version)]
struct Args {
    #[command(flatten)]
    serve: sandbox::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_env("SANDBOX_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    args.serve.run().await
}
