//! The commands that sign in: `login`, `consent-url` and `console` (the binary's; the work is
//! in the library's `connect` and `console` modules).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use m365mail::config::{self, Config};
use m365mail::connect;
use m365mail::connect::anyhow_lite::{Context, Result};

use crate::load;

pub(crate) async fn login(
    config: &std::path::Path,
    app_name: &str,
    resource: &str,
) -> Result<ExitCode> {
    let cfg = Config::load(config).map_err(|e| e.to_string())?;
    let app = cfg
        .app(app_name)
        .ok_or_else(|| format!("no app called {app_name:?} in {}", config.display()))?;
    let scope = match resource {
        "graph" => app.graph_scope(),
        "ews" => app.ews_scope(),
        other => return Err(format!("--resource {other:?}: use graph or ews")),
    };
    let provider = connect::provider(app, scope)?;
    // An app that names its account asks for an ID token too, to check who signed in before
    // the tokens are kept under that account.
    let identity: &[&str] = if app.account.is_some() {
        &["openid", "profile"]
    } else {
        &[]
    };
    let keep = |response: msauth::TokenResponse| async {
        check_account(app, &response)?;
        provider
            .save_sign_in(&response)
            .await
            .map_err(|e| e.diagnosis().explain())?;
        Ok::<_, String>(response.access_token)
    };
    let token = match app.flow {
        config::Flow::DeviceCode => {
            let mut scopes = config::scopes::delegated(scope);
            scopes.extend(identity.iter().map(|s| (*s).to_owned()));
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let mut flow = provider
                .client()
                .start_device_code(&scopes)
                .await
                .map_err(|e| e.diagnosis().explain())?;
            match flow.message() {
                Some(m) => eprintln!("{m}"),
                None => eprintln!(
                    "To sign in, open {} and enter the code {}",
                    flow.verification_uri(),
                    flow.user_code()
                ),
            }
            let response = provider
                .client()
                .finish_device_code(&mut flow)
                .await
                .map_err(|e| e.diagnosis().explain())?;
            keep(response).await?
        }
        config::Flow::ClientCredentials => provider
            .access_token()
            .await
            .map_err(|e| e.diagnosis().explain())?,
        config::Flow::Browser => {
            // Authorization code with PKCE; the browser comes back to a listener on 127.0.0.1.
            let listener = msauth::LoopbackListener::bind_host("localhost", "/")
                .await
                .map_err(|e| e.diagnosis().explain())?;
            let mut scopes = config::scopes::delegated(scope);
            scopes.extend(identity.iter().map(|s| (*s).to_owned()));
            let (url, pending) = msauth::AuthorizationRequest::new(
                app.client_id.clone(),
                listener.redirect_uri().clone(),
                scopes,
            )
            .build(&app.authority);
            eprintln!("Open this address in a browser and sign in:\n\n  {url}\n");
            let code = listener
                .wait_for_code(&pending, Duration::from_secs(300))
                .await
                .map_err(|e| e.diagnosis().explain())?;
            let response = provider
                .client()
                .redeem_code(&pending, code)
                .await
                .map_err(|e| e.diagnosis().explain())?;
            keep(response).await?
        }
        // The configuration model may learn flows this command does not sign in with yet.
        other => {
            return Err(format!(
                "app {app_name}: m365mail login cannot sign in with {other:?}"
            ));
        }
    };
    let _ = token;
    match &app.account {
        Some(account) => {
            println!("signed in: app {app_name} has a token for {resource} as {account}")
        }
        None => println!("signed in: app {app_name} has a token for {resource}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a sign-in of another person than the app's `account` (its tokens would be kept
/// under that account); an app without one takes whoever signed in.
fn check_account(app: &config::App, response: &msauth::TokenResponse) -> Result<()> {
    let Some(expected) = &app.account else {
        return Ok(());
    };
    match connect::signed_in(response) {
        Some(who) if who.account.eq_ignore_ascii_case(expected) => Ok(()),
        Some(who) => Err(format!(
            "{} signed in, but apps.{}.account is {expected}: nothing was kept; sign in as \
             {expected}, or change account",
            who.account, app.name
        )),
        None => Err(format!(
            "the sign-in returned no ID token naming the account, so it cannot be checked \
             against apps.{}.account ({expected}): nothing was kept",
            app.name
        )),
    }
}

/// `m365mail console`: the operator token from M365MAIL_CONSOLE_TOKEN (or a generated one,
/// printed), then the console on `listen` until Ctrl-C.
pub(crate) async fn console(
    mut options: m365mail::console::ConsoleOptions,
    listen: std::net::SocketAddr,
    allow_non_loopback: bool,
) -> Result<ExitCode> {
    if !listen.ip().is_loopback() && !allow_non_loopback {
        return Err(format!(
            "--listen {listen} is beyond loopback: add --allow-non-loopback (and serve it \
             behind TLS with --public-url https://...)"
        ));
    }
    Config::load(&options.config).map_err(|e| e.to_string())?;
    let given = std::env::var("M365MAIL_CONSOLE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    options.operator_token = match &given {
        Some(t) => m365mail::console::OperatorToken::new(t.clone()),
        None => m365mail::console::OperatorToken::generate(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .context(format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("the console's address")?;
    if options.public_url.port() == Some(0) {
        // `--listen …:0` took a free port: the default public URL follows it.
        let _ = options.public_url.set_port(Some(addr.port()));
    }
    println!("m365mail console on {}console/", options.public_url);
    println!("  listening on {addr}");
    match &given {
        Some(_) => println!("  operator token: M365MAIL_CONSOLE_TOKEN"),
        // Printed on purpose: a generated token is useless unless its owner learns it.
        None => println!(
            "  operator token (generated; set M365MAIL_CONSOLE_TOKEN to choose one): {}",
            options.operator_token.expose()
        ),
    }
    println!("Ctrl-C to stop.");
    let state = m365mail::console::ConsoleState::new(options);
    tokio::select! {
        r = m365mail::console::serve(listener, state) => r.context("serving the console")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn consent_url(config: Option<PathBuf>, app: Option<String>) -> Result<ExitCode> {
    let (cfg, _sb) = load(config, false, None).await?;
    let app = match app {
        Some(name) => cfg.app(&name),
        None => cfg.apps.first(),
    }
    .ok_or("no such app in the configuration")?;
    // The resources the app is used with, not always Graph's.
    let scopes = cfg.consent_scopes(app);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    match msauth::admin_consent_url(
        &app.authority,
        &app.client_id,
        &scopes,
        app.redirect_uri.as_ref(),
        None,
    ) {
        Ok(url) => {
            println!("{url}");
            Ok(ExitCode::SUCCESS)
        }
        Err(msauth::AuthorityError::ConsentRedirectMissing) => Err(format!(
            "apps.{}.redirect_uri: admin consent needs the redirect URI registered on the app \
             (the adminconsent endpoint requires redirect_uri and has no default): set \
             apps.{}.redirect_uri to one of the app registration's redirect URIs",
            app.name, app.name
        )),
        Err(e) => Err(format!("apps.{}: no admin consent URL: {e}", app.name)),
    }
}
