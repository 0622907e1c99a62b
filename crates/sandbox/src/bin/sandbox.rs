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

use clap::Parser;

/// A local emulator of a Microsoft 365 tenant (identity, Graph, EWS, SMTP).
#[derive(Parser, Debug)]
#[command(name = "m365mail-sandbox", version)]
struct Args {
    #[command(flatten)]
    serve: sandbox::cli::ServeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    Args::parse().serve.run().await
}
