//! The sandbox on the command line: the options of the `m365mail-sandbox` binary and of
//! `m365mail sandbox`, and what both do with them ([`ServeArgs::run`]).
//!
//! ```no_run
//! use clap::Parser;
//!
//! /// My tool's own sandbox command.
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     serve: sandbox::cli::ServeArgs,
//! }
//!
//! # async fn run() -> std::process::ExitCode {
//! Cli::parse().serve.run().await // prints where it listens, serves until Ctrl-C
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Sandbox, Seed, TlsOptions};

/// Where a sandbox listens, what it serves and who may use its admin API, as command-line
/// options (`clap`): flatten it into a command with `#[command(flatten)]`. Its `Debug` shows
/// whether an admin token was given, never the token.
#[derive(clap::Args, Clone)]
#[non_exhaustive]
pub struct ServeArgs {
    /// HTTP(S) port on the --bind address (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// SMTP port on the --bind address (0 = any free port).
    #[arg(long, default_value_t = 2525)]
    pub smtp_port: u16,
    /// Address to listen on. Anything but loopback needs --allow-non-loopback.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Allow a --bind address beyond loopback: other machines reach the tenant (with its demo
    /// secrets). The admin API then needs an admin token (generated and printed if not given).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Require `Authorization: Bearer TOKEN` on the admin API (/_sandbox/*). Default: the
    /// SANDBOX_ADMIN_TOKEN environment variable (which, unlike an argument, other users of
    /// the machine cannot read in the process list); none on loopback, a random one beyond it.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Seed file (TOML, or JSON with a .json extension). Default: the demo helpdesk tenant.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Serve HTTPS with a generated self-signed CA, written to --ca-out.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the CA certificate (PEM) with --tls.
    #[arg(long, default_value = "sandbox-ca.pem")]
    pub ca_out: PathBuf,
    /// Where to write the CA of the SMTP listener's STARTTLS certificate (PEM), for a client
    /// that checks it (an smtp outbound's `ca_file`).
    #[arg(long)]
    pub smtp_ca_out: Option<PathBuf>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("port", &self.port)
            .field("smtp_port", &self.smtp_port)
            .field("bind", &self.bind)
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("seed", &self.seed)
            .field("tls", &self.tls)
            .field("ca_out", &self.ca_out)
            .field("smtp_ca_out", &self.smtp_ca_out)
            .finish()
    }
}

impl ServeArgs {
    /// Starts the sandbox these options describe, prints where it listens (the first line is
    /// `sandbox listening on URL`, for scripts to read) and serves until Ctrl-C.
    ///
    /// A seed file that cannot be read or parsed is printed to stderr with exit code 2; a
    /// sandbox that cannot start (a port in use, a CA file that cannot be written) with exit
    /// code 1.
    pub async fn run(self) -> ExitCode {
        let seed = match &self.seed {
            Some(p) => match Seed::from_path(p) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            },
            None => Seed::demo(),
        };
        let token = self
            .admin_token
            .clone()
            .or_else(|| std::env::var("SANDBOX_ADMIN_TOKEN").ok());
        let token_given = token.is_some();
        let sb = match self.start(seed, token).await {
            Ok(sb) => sb,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let tid = sb.tenant_id();
        println!("sandbox listening on {}", sb.base_url());
        println!("  tenant:    {tid}");
        println!("  authority: {}", sb.authority(&tid));
        println!("  graph:     {}", sb.graph_url());
        println!("  ews:       {}", sb.ews_url());
        if let Some(a) = sb.smtp_addr() {
            println!("  smtp:      {a}");
        }
        if let Some(path) = &self.smtp_ca_out {
            println!("  SMTP CA certificate written to {}", path.display());
        }
        if self.tls {
            println!("  CA certificate written to {}", self.ca_out.display());
        }
        println!(
            "  admin:     {}/_sandbox/admin (POST JSON), {}/_sandbox/requests",
            sb.base_url(),
            sb.base_url()
        );
        match sb.admin_token() {
            // Printed on purpose: a generated token is useless unless its owner learns it.
            Some(t) if !token_given => println!(
                "  admin token (generated; send `Authorization: Bearer <token>`): {}",
                t.expose()
            ),
            Some(_) => println!("  admin token: required (the one given)"),
            None => {}
        }
        println!("Ctrl-C to stop.");
        sb.run_until_ctrl_c().await;
        ExitCode::SUCCESS
    }

    async fn start(&self, seed: Seed, token: Option<String>) -> Result<Sandbox, String> {
        let mut b = Sandbox::builder()
            .seed(seed)
            .http_addr(SocketAddr::new(self.bind, self.port))
            .smtp_addr(Some(SocketAddr::new(self.bind, self.smtp_port)));
        if self.allow_non_loopback {
            b = b.allow_non_loopback();
        }
        if let Some(t) = token {
            b = b.admin_token(t);
        }
        if self.tls {
            b = b.tls(TlsOptions::new(&self.ca_out));
        }
        let sb = b.start().await.map_err(|e| e.to_string())?;
        if let Some(path) = &self.smtp_ca_out {
            let pem = sb
                .smtp_ca_pem()
                .ok_or("the SMTP listener's STARTTLS certificate could not be generated")?;
            std::fs::write(path, pem)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(sb)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: super::ServeArgs,
    }

    #[test]
    fn debug_shows_no_admin_token() {
        let cli = Cli::parse_from(["sandbox", "--port", "0", "--admin-token", "s3cret-token"]);
        assert_eq!(cli.serve.port, 0);
        assert_eq!(cli.serve.admin_token.as_deref(), Some("s3cret-token"));
        let shown = format!("{:?}", cli.serve);
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(
            shown.contains("admin_token: Some(\"<redacted>\")"),
            "{shown}"
        );
    }
}
