//! The standalone sandbox: a local Microsoft 365 tenant on a port.
//!
//! ```text
//! sandbox [--port 8080] [--smtp-port 2525] [--seed FILE] [--tls [--ca-out FILE]]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A local emulator of a Microsoft 365 tenant (identity, Graph, EWS, SMTP).
#[derive(Parser, Debug)]
#[command(name = "sandbox", version)]
struct Args {
    /// HTTP(S) port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// SMTP port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 2525)]
    smtp_port: u16,
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
        .http_addr(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .smtp_addr(Some(SocketAddr::from(([127, 0, 0, 1], args.smtp_port))));
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
    sb.run_until_ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
