//! The doctor's probes: `plus-addressing`, `alias-receives` and `send-from-alias`, sent, waited
//! for, judged and deleted again (`probe-cleanup` when that fails).

use super::*;

impl Doctor<'_> {
    /// `plus-addressing`, `alias-receives` and `send-from-alias` by probes, then their
    /// deletion. `cannot`: why no probe can be sent (each check is then unknown).
    pub(super) async fn probes(
        &mut self,
        s: &Source,
        target: &str,
        client: &MailboxClient,
        cannot: Option<String>,
    ) {
        let identity = s.router.mailbox();
        let primary = identity.primary().to_string();
        let aliases: Vec<String> = identity.aliases().iter().map(|a| a.to_string()).collect();
        let run = run_id();
        let mut list: Vec<(Check, String, Probe)> = Vec::new();
        let id = |n: usize| format!("probe-{run}{n}");
        let (local, domain) = primary.rsplit_once('@').unwrap_or((&primary, ""));
        list.push((
            Check::PlusAddressing,
            String::new(),
            Probe {
                id: id(0),
                what: "plus addressing".into(),
                from: s.mailbox.clone(),
                to: format!("{local}+{}@{domain}", id(0)),
            },
        ));
        for (i, alias) in aliases.iter().enumerate() {
            list.push((
                Check::AliasReceives,
                alias.clone(),
                Probe {
                    id: id(2 * i + 1),
                    what: format!("alias {alias}"),
                    from: s.mailbox.clone(),
                    to: alias.clone(),
                },
            ));
        }
        if let Some(alias) = aliases.first() {
            list.push((
                Check::SendFromAlias,
                alias.clone(),
                Probe {
                    id: id(2 * aliases.len() + 2),
                    what: format!("sent from {alias}"),
                    from: alias.clone(),
                    to: primary.clone(),
                },
            ));
        } else {
            self.push(finding(
                target,
                Check::SendFromAlias,
                None,
                Status::Pass,
                "no aliases configured: nothing is sent from an alias",
                None,
            ));
        }
        if let Some(why) = cannot {
            for (check, about, p) in &list {
                let about = if about.is_empty() { &p.to } else { about };
                self.push(finding(
                    target,
                    *check,
                    Some(about),
                    Status::Unknown,
                    format!("no probe was sent: {why}"),
                    None,
                ));
            }
            return;
        }

        // Send every probe, then wait for them together.
        let sender = client.outbound();
        let mut outcome: Vec<Option<Result<Arrival, String>>> = Vec::with_capacity(list.len());
        for (_, _, p) in &list {
            outcome.push(match sender.send(&p.message()).await {
                Ok(_) => None,
                Err(e) => Some(Err(format!("sending the probe failed: {e}"))),
            });
        }
        let deadline = tokio::time::Instant::now() + self.options.probe_wait;
        let mut search_error;
        loop {
            match probes::find(client, "inbox", &run).await {
                Ok(found) => {
                    for ((_, _, p), o) in list.iter().zip(outcome.iter_mut()) {
                        if o.is_none() {
                            *o = arrival(p, &found).map(Ok);
                        }
                    }
                    search_error = None;
                }
                Err(e) => search_error = Some(e.to_string()),
            }
            let now = tokio::time::Instant::now();
            if outcome.iter().all(Option::is_some) || now >= deadline {
                break;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
        }
        let wait = self.options.probe_wait.as_secs();
        for ((check, about, p), o) in list.iter().zip(outcome) {
            let o = match (o, &search_error) {
                (Some(o), _) => o,
                (None, Some(e)) => Err(format!("the inbox could not be searched: {e}")),
                (None, None) => Ok(Arrival::Missing),
            };
            let f = self.judge(s, target, *check, about, p, o, wait);
            self.push(f);
        }
        self.clean_up(target, client, &run).await;
    }

    /// The finding about one probe.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn judge(
        &self,
        s: &Source,
        target: &str,
        check: Check,
        about: &str,
        p: &Probe,
        arrival: Result<Arrival, String>,
        wait: u64,
    ) -> Finding {
        let arrival = match arrival {
            Ok(a) => a,
            Err(e) => {
                let about = if about.is_empty() { &p.to } else { about };
                return finding(target, check, Some(about), Status::Unknown, e, None);
            }
        };
        let not_seen = match arrival {
            Arrival::Bounced => "came back undeliverable".to_owned(),
            _ => format!("did not arrive within {wait} s"),
        };
        // The finding about the alias probed.
        let on_alias = |status: Status, detail: String, fix: Option<String>| {
            finding(target, check, Some(about), status, detail, fix)
        };
        match check {
            Check::PlusAddressing => {
                let uses = s.router.mailbox().plus_addressing();
                match arrival {
                    Arrival::Arrived { .. } => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Pass,
                        "a probe to the plus address arrived",
                        None,
                    ),
                    _ if !uses => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Pass,
                        format!(
                            "a probe to the plus address {not_seen}, but the configuration \
                             routes without sub-addresses (plus_addressing = false)"
                        ),
                        None,
                    ),
                    _ => finding(
                        target,
                        check,
                        Some(&p.to),
                        Status::Fail,
                        format!(
                            "a probe to the plus address {not_seen}: plus addressing is off \
                             (DisablePlusAddressInRecipients), so mail to sub-addresses such as \
                             support+printer@ never reaches the mailbox"
                        ),
                        Some(fix::plus_addressing()),
                    ),
                }
            }
            Check::AliasReceives => match arrival {
                Arrival::Arrived { .. } => {
                    on_alias(Status::Pass, format!("a probe to {about} arrived"), None)
                }
                _ => on_alias(
                    Status::Fail,
                    format!(
                        "a probe to {about} {not_seen}: it is not (yet) an address of {}; a \
                         new alias may take up to 24 hours to receive mail",
                        s.mailbox
                    ),
                    Some(fix::alias(about, &s.mailbox)),
                ),
            },
            _ => {
                // Send from alias.
                let Arrival::Arrived { from } = arrival else {
                    return on_alias(
                        Status::Unknown,
                        format!("the probe sent from {about} {not_seen}"),
                        None,
                    );
                };
                let from = from.unwrap_or_default();
                let relying: Vec<String> = self
                    .config
                    .outbounds
                    .iter()
                    .filter(|o| {
                        o.capabilities.send_from_alias_enabled
                            && (o.mailbox.eq_ignore_ascii_case(&s.mailbox)
                                || s.notify_through.as_ref().is_some_and(|n| n.name == o.name))
                    })
                    .map(|o| o.name.clone())
                    .collect();
                if from.eq_ignore_ascii_case(about) {
                    on_alias(
                        Status::Pass,
                        format!(
                            "a probe sent from {about} arrived from {about}: the tenant keeps \
                             aliases (SendFromAliasEnabled is on)"
                        ),
                        None,
                    )
                } else if relying.is_empty() {
                    on_alias(
                        Status::Pass,
                        format!(
                            "a probe sent from {about} arrived from {from}: SendFromAliasEnabled \
                             is off, and the configuration already answers from the primary \
                             address (send_from_alias_enabled = false)"
                        ),
                        None,
                    )
                } else {
                    on_alias(
                        Status::Fail,
                        format!(
                            "a probe sent from {about} arrived from {from}: SendFromAliasEnabled \
                             is off, so answers meant to come from an alias leave from the \
                             primary address, but {} says send_from_alias_enabled = true",
                            relying
                                .iter()
                                .map(|o| format!("outbound {o}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Some(fix::send_from_alias(&relying)),
                    )
                }
            }
        }
    }

    /// Deletes this run's probes (and the reports about them) from the inbox and Sent Items;
    /// reports only a failure.
    pub(super) async fn clean_up(&mut self, target: &str, client: &MailboxClient, run: &str) {
        let mut problems = Vec::new();
        for folder in ["inbox", "sentitems"] {
            match probes::find(client, folder, run).await {
                Ok(found) => {
                    let ids = found.into_iter().map(|f| f.id).collect();
                    if let Err(e) = probes::delete(client, ids).await {
                        problems.push(format!("{folder}: {e}"));
                    }
                }
                Err(e) => problems.push(format!("{folder}: {e}")),
            }
        }
        if !problems.is_empty() {
            self.push(finding(
                target,
                Check::ProbeCleanup,
                None,
                Status::Fail,
                format!(
                    "the probes (subject containing probe-{run}) could not all be deleted: {}",
                    problems.join("; ")
                ),
                Some("delete them by hand; a mail handler leaves them alone".into()),
            ));
        }
    }
}

/// What became of probe `p`, judging by the messages `found` (`None`: nothing yet).
pub(super) fn arrival(p: &Probe, found: &[probes::Found]) -> Option<Arrival> {
    let header = handler::probe::PROBE_HEADER;
    let copy = found.iter().find(|f| {
        probes::header(&f.mime, header).is_some_and(|v| v.trim().eq_ignore_ascii_case(&p.id))
    });
    if let Some(copy) = copy {
        return Some(Arrival::Arrived {
            from: probes::header(&copy.mime, "from").map(|f| probes::address_of(&f)),
        });
    }
    // A non-delivery report quotes the probe's subject (and so its id) without being it.
    let bounced = found.iter().any(|f| {
        probes::header(&f.mime, header).is_none() && probes::contains(&f.mime, p.id.as_bytes())
    });
    bounced.then_some(Arrival::Bounced)
}

/// Ten random hex digits naming one doctor run (not a secret: they only tell this run's
/// probes from an earlier one's).
pub(super) fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())[..10].to_owned()
}
