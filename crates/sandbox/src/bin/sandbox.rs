//! The standalone sandbox: a local Microsoft 365 tenant on a port.
//!
//! ```text
//! sandbox [--port 8080] [--smtp-port 2525] [--seed FILE] [--tls [--ca-out FILE]]
//!         [--bind IP --allow-non-loopback] [--admin-token TOKEN]
//! ```
//!
//! The admin token can also come from the `SANDBOX_ADMIN_TOKEN` environment variable (which,
//! unlike an argument, other users of the machine cannot read in the process list).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// A local emulator of a Microsoft 365 tenant (identity, Graph, EWS, SMTP).
#[derive(Parser, Debug)]
#[command(name = "m365mail-sandbox", version)]
struct Args {
    /// HTTP(S) port on the --bind address (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// SMTP port on the --bind address (0 = any free port).
    #[arg(long, default_value_t = 2525)]
    smtp_port: u16,
    /// Address to listen on. Anything but loopback needs --allow-non-loopback.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Allow a --bind address beyond loopback: other machines reach the tenant (with its demo
    /// secrets). The admin API then needs an admin token (generated and printed if not given).
    #[arg(long)]
    allow_non_loopback: bool,
    /// Require `Authorization: Bearer TOKEN` on the admin API (/_sandbox/*). Default: the
    /// SANDBOX_ADMIN_TOKEN environment variable; none on loopback, a random one beyond it.
    #[arg(long)]
    admin_token: Option<String>,
    /// Seed file (TOML, or JSON with a .json extension). Default: the demo helpdesk tenant.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Serve HTTPS with a generated self-signed CA.
    #[arg(long)]
    tls: bool,
    /// Where to write the CA certificate (PEM) with --tls.
    #[arg(long, default_value = "sandbox-ca.pem")]
    ca_out: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let seed = match &args.seed {
        Some(p) => match sandbox::Seed::from_path(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => sandbox::Seed::demo(),
    };
    let mut b = sandbox::Sandbox::builder()
        .seed(seed)
        .http_addr(SocketAddr::new(args.bind, args.port))
        .smtp_addr(Some(SocketAddr::new(args.bind, args.smtp_port)));
    if args.allow_non_loopback {
        b = b.allow_non_loopback();
    }
    let token = args
        .admin_token
        .clone()
        .or_else(|| std::env::var("SANDBOX_ADMIN_TOKEN").ok());
    let token_given = token.is_some();
    if let Some(t) = token {
        b = b.admin_token(t);
    }
    if args.tls {
        b = b.tls(sandbox::TlsOptions {
            ca_pem_path: args.ca_out.clone(),
            hosts: Vec::new(),
        });
    }
    let sb = match b.start().await {
        Ok(sb) => sb,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let tid = sb.tenant_id();
    println!("sandbox listening on {}", sb.base_url());
    println!("  authority: {}", sb.authority(&tid));
    println!("  graph:     {}", sb.graph_url());
    println!("  ews:       {}", sb.ews_url());
    if let Some(a) = sb.smtp_addr() {
        println!("  smtp:      {a}");
    }
    if args.tls {
        println!("  CA certificate written to {}", args.ca_out.display());
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
    sb.run_until_ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
