//! The sign-in story: revoked and expired sign-ins, withdrawn and restored consent, and the
//! OFFLINE and resumed states the handler must show for each.

use crate::*;

/// Signs Adele in with `m365mail login` (device code), approving the code through the admin
/// API as she would in a browser. Returns how long it took.
pub(crate) fn sign_in(bin: &Path, cfg: &Path, admin: &Admin) -> Res<Duration> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["login", "--app", "adele", "--resource", "ews", "--config"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting m365mail login: {e}"))?;
    let stderr = child.stderr.take().ok_or("login: no stderr")?;
    let mut code = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.map_err(|e| format!("login output: {e}"))?;
        if let Some(rest) = line.split("enter the code ").nth(1) {
            code = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let code = code.ok_or("m365mail login printed no device code")?;
    admin
        .approve_device_code(&code, m365_chaos::DELEGATED_USER)
        .map_err(|e| format!("approving the device code: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("m365mail login: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("signed in") {
        return Err(format!("m365mail login failed ({}): {stdout}", out.status));
    }
    Ok(start.elapsed())
}

/// `m365mail ping --json` of one source: (status, reason with the AADSTS code if any).
pub(crate) fn ping(bin: &Path, cfg: &Path, source: &str) -> Res<(String, String)> {
    let out = Command::new(bin)
        .args(["ping", "--json", "--config"])
        .arg(cfg)
        .arg(source)
        .output()
        .map_err(|e| format!("m365mail ping: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "m365mail ping printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let r = &v[0];
    let status = r["status"].as_str().unwrap_or("?").to_owned();
    let mut reason = r["reason"].as_str().unwrap_or("").to_owned();
    if let Some(code) = r["auth_code"].as_str() {
        reason = format!("[{code}] {reason}");
    }
    Ok((status, reason))
}

/// The handler's log (all runs, appended): lines after `from` that say `source` went OFFLINE.
pub(crate) fn offline_lines(log: &Path, from: u64, source: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(log) else {
        return Vec::new();
    };
    let from = usize::try_from(from).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..])
        .lines()
        .filter(|l| l.contains("source OFFLINE") && l.contains(source))
        .map(str::to_owned)
        .collect()
}

pub(crate) fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// What happened to the sign-in and consent events.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuthStory {
    pub(crate) lines: Vec<String>,
    pub(crate) ok: bool,
}

impl AuthStory {
    fn say(&mut self, t0: Instant, s: String) {
        let line = format!("[{:>6.1}s] {s}", t0.elapsed().as_secs_f64());
        eprintln!("chaos: {line}");
        self.lines.push(line);
    }
}

/// Polls `ping` for `source` until it is OFFLINE; returns the diagnosis.
pub(crate) async fn until_offline(ctx: &Ctx, source: &'static str, limit: Duration) -> Res<String> {
    let start = Instant::now();
    loop {
        let (bin, cfg) = (ctx.bin.clone(), ctx.cfg.clone());
        let (status, reason) = blocking(move || ping(&bin, &cfg, source)).await??;
        if status == "OFFLINE" {
            return Ok(reason);
        }
        if start.elapsed() > limit {
            return Err(format!("{source} still {status} after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the running handler logged `source` OFFLINE after log offset `from`.
pub(crate) async fn until_logged_offline(
    ctx: &Ctx,
    from: u64,
    source: &str,
    limit: Duration,
) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(l) = offline_lines(&ctx.log, from, source).into_iter().next() {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// How a source came back after a sign-in or consent event.
pub(crate) enum Resumed {
    /// Its acknowledged count moved, this long after the event.
    Moving(Duration),
    /// Nothing of the run was left for it (it had drained its share before the event), and a
    /// ping says it is ONLINE again, this long after the event.
    OnlineWithNothingLeft(Duration),
}

impl std::fmt::Display for Resumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resumed::Moving(d) => write!(f, "{d:.1?}"),
            Resumed::OnlineWithNothingLeft(d) => {
                write!(f, "{d:.1?} (ONLINE by ping; its share was already drained)")
            }
        }
    }
}

/// Waits until a source's acknowledged count moves past `past`; a source with nothing left to
/// acknowledge cannot move, so for it an ONLINE ping is the proof instead (a small run can
/// drain one source before consent comes back).
pub(crate) async fn until_moving(
    ctx: &Ctx,
    source: &'static str,
    counter: &AtomicUsize,
    left: &AtomicUsize,
    past: usize,
    limit: Duration,
) -> Res<Option<Resumed>> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if counter.load(Ordering::SeqCst) > past {
            return Ok(Some(Resumed::Moving(start.elapsed())));
        }
        if left.load(Ordering::SeqCst) == 0 {
            let (bin, cfg) = (ctx.bin.clone(), ctx.cfg.clone());
            let (status, _) = blocking(move || ping(&bin, &cfg, source)).await??;
            if status == "ONLINE" {
                return Ok(Some(Resumed::OnlineWithNothingLeft(start.elapsed())));
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// One line for the report: no terminal colours, at most 220 characters.
pub(crate) fn short(s: &str) -> String {
    let mut plain = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An ANSI colour sequence: ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let s = plain.trim();
    if s.chars().count() > 220 {
        format!("{}...", s.chars().take(220).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The sign-in and consent events, run beside the handler: the delegated source's refresh
/// token revoked (the source must stop with a diagnosis, then resume after a new sign-in), then
/// the app's consent withdrawn and granted again (both sources stop, then resume).
pub(crate) async fn auth_events(ctx: Arc<Ctx>) -> AuthStory {
    let mut story = AuthStory::default();
    match auth_events_inner(&ctx, &mut story).await {
        Ok(()) => story.ok = true,
        Err(e) => story.say(ctx.t0, format!("FAILED: {e}")),
    }
    story
}

pub(crate) async fn auth_events_inner(ctx: &Ctx, story: &mut AuthStory) -> Res<()> {
    let p = &ctx.progress;
    let limit = Duration::from_secs(180);

    // 1. Adele's refresh token is revoked (an admin's "revoke sessions"), and access tokens
    //    issued so far stop working.
    wait_for(p, ctx.messages / 4).await;
    let from = log_len(&ctx.log);
    let n = ctx
        .admin
        .revoke_refresh_tokens(Some(m365_chaos::DELEGATED_USER))
        .map_err(|e| e.to_string())?;
    ctx.admin.expire_access_tokens();
    story.say(
        ctx.t0,
        format!(
            "revoked {n} refresh token(s) of {} and expired access tokens",
            m365_chaos::DELEGATED_USER
        ),
    );
    let diagnosis = until_offline(ctx, EWS_SOURCE, limit).await?;
    story.say(
        ctx.t0,
        format!("ping {EWS_SOURCE}: OFFLINE: {}", short(&diagnosis)),
    );
    let logged = until_logged_offline(ctx, from, EWS_SOURCE, limit)
        .await
        .ok_or(format!("the handler never reported {EWS_SOURCE} OFFLINE"))?;
    story.say(ctx.t0, format!("handler log: {}", short(&logged)));
    // A request the sandbox accepted before the revocation may still be finishing (a slow
    // fault holds it up to SLOW_MILLIS after its token was checked), as Exchange finishes what
    // it accepted: the window starts once those are done. (A CI run counted 25 messages marked
    // read by an UpdateItem authenticated just before the revocation and slowed past it.)
    tokio::time::sleep(Duration::from_millis(m365_chaos::SLOW_MILLIS + 700)).await;
    // Stopped cleanly: the EWS source moves nothing while the Graph source goes on.
    let (ews0, graph0) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ews1, graph1) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    story.say(
        ctx.t0,
        format!(
            "while signed out for 3 s: {EWS_SOURCE} acknowledged {}, {GRAPH_SOURCE} {}",
            ews1 - ews0,
            graph1 - graph0
        ),
    );
    if ews1 != ews0 {
        return Err(format!(
            "{EWS_SOURCE} kept acknowledging mail without a valid sign-in"
        ));
    }
    let (bin, cfg, admin) = (ctx.bin.clone(), ctx.cfg.clone(), ctx.admin.clone());
    let took = blocking(move || sign_in(&bin, &cfg, &admin)).await??;
    story.say(
        ctx.t0,
        format!("signed in again with m365mail login (device code) in {took:.1?}"),
    );
    let resumed = until_moving(
        ctx,
        EWS_SOURCE,
        &p.ews,
        &p.ews_left,
        ews1,
        Duration::from_secs(400),
    )
    .await?
    .ok_or(format!("{EWS_SOURCE} did not resume after the new sign-in"))?;
    story.say(
        ctx.t0,
        format!("{EWS_SOURCE} resumed {resumed} after the sign-in"),
    );

    // 2. The app's admin consent is withdrawn, then granted again.
    wait_for(p, ctx.messages * 55 / 100).await;
    let from = log_len(&ctx.log);
    // What the tenant had, to grant exactly that again.
    let grant = ctx
        .admin
        .tenant()
        .consents
        .admin
        .get(m365_chaos::CLIENT_ID)
        .cloned()
        .ok_or("the demo tenant has no admin consent for the app")?;
    ctx.admin
        .revoke_admin_consent(m365_chaos::CLIENT_ID)
        .map_err(|e| e.to_string())?;
    story.say(ctx.t0, "admin consent withdrawn".into());
    for source in [GRAPH_SOURCE, EWS_SOURCE] {
        let diagnosis = until_offline(ctx, source, limit).await?;
        story.say(
            ctx.t0,
            format!("ping {source}: OFFLINE: {}", short(&diagnosis)),
        );
    }
    for source in [GRAPH_SOURCE, EWS_SOURCE] {
        let logged = until_logged_offline(ctx, from, source, limit)
            .await
            .ok_or(format!("the handler never reported {source} OFFLINE"))?;
        story.say(ctx.t0, format!("handler log: {}", short(&logged)));
    }
    let (ews0, graph0) = (p.ews.load(Ordering::SeqCst), p.graph.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctx.admin
        .apply(sandbox::AdminCommand::GrantAdminConsent {
            app: m365_chaos::CLIENT_ID.into(),
            delegated: grant.delegated.into_iter().collect(),
            application: grant.application.into_iter().collect(),
        })
        .map_err(|e| e.to_string())?;
    story.say(ctx.t0, "admin consent granted again".into());
    let mut resumed = Vec::new();
    for (source, counter, left, past) in [
        (GRAPH_SOURCE, &p.graph, &p.graph_left, graph0),
        (EWS_SOURCE, &p.ews, &p.ews_left, ews0),
    ] {
        let d = until_moving(ctx, source, counter, left, past, Duration::from_secs(400))
            .await?
            .ok_or(format!("{source} did not resume after consent was granted"))?;
        resumed.push(format!("{source} after {d}"));
    }
    story.say(ctx.t0, format!("resumed: {}", resumed.join(", ")));
    Ok(())
}
