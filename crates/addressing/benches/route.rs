//! Routes a realistic stream of inbound messages against a 10-rule and a 10,000-rule table.
//!
//! Two measurements per table: `mime` (parse the raw header section, find the catch address,
//! look up the rule: what the handler does per message) and `lookup` (the same on headers parsed
//! beforehand: only catch-address matching and rule lookup, where table size could show).
//! Run: `cargo bench -p m365mail-addressing --bench route -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use addressing::{InboundHeaders, MailboxConfig, PickupMailbox, Router, RouterOptions, RuleConfig};
use criterion::{Criterion, Throughput, criterion_main};

const ALIASES: usize = 20;
const STREAM: usize = 1_000;

fn mailbox() -> PickupMailbox {
    let mut cfg = MailboxConfig::new("support@contoso.com").alias("hilfe@contoso.de");
    for i in 0..ALIASES {
        cfg = cfg.alias(format!("team{i:02}@contoso.com"));
    }
    PickupMailbox::from_config(&cfg).expect("valid mailbox")
}

fn rule(json: serde_json::Value) -> RuleConfig {
    serde_json::from_value(json).expect("valid rule")
}

/// `n` rules: mostly sub-address details (one per project), some exact addresses, details bound
/// to an alias, alias rules, a few patterns, a domain rule and the default. Every rule is
/// reachable (the router refuses the table otherwise).
fn rules(n: usize) -> Vec<RuleConfig> {
    use serde_json::json;
    if n == 10 {
        return [
            json!({"match": "address", "address": "support+x1@contoso.com", "project": "X1"}),
            json!({"match": "detail", "detail": "b1", "base": "team01@contoso.com", "project": "B1"}),
            json!({"match": "detail", "detail": "proj1", "project": "P1"}),
            json!({"match": "detail", "detail": "proj2", "project": "P2"}),
            json!({"match": "alias", "alias": "team00@contoso.com", "project": "T0"}),
            json!({"match": "alias", "alias": "team01@contoso.com", "project": "T1"}),
            json!({"match": "detail-pattern", "pattern": "ticket-*", "project": "TICKETS"}),
            json!({"match": "detail-pattern", "pattern": "case-?", "project": "CASES"}),
            json!({"match": "domain", "domain": "contoso.de", "project": "DE"}),
            json!({"match": "default", "project": "HELP"}),
        ]
        .into_iter()
        .map(rule)
        .collect();
    }
    let mut out = Vec::with_capacity(n);
    let fixed = 5 /* patterns */ + 1 /* domain */ + 1 /* default */ + ALIASES / 2;
    let variable = n - fixed;
    let exact = variable / 20;
    let bound = variable / 20;
    let details = variable - exact - bound;
    for i in 0..exact {
        out.push(rule(json!({"match": "address", "address": format!("support+x{i}@contoso.com"), "project": format!("X{i}")})));
    }
    for i in 0..bound {
        out.push(rule(json!({"match": "detail", "detail": format!("b{i}"), "base": format!("team{:02}@contoso.com", i % ALIASES), "project": format!("B{i}")})));
    }
    for i in 0..details {
        out.push(rule(
            json!({"match": "detail", "detail": format!("proj{i}"), "project": format!("P{i}")}),
        ));
    }
    for i in 0..ALIASES / 2 {
        out.push(rule(json!({"match": "alias", "alias": format!("team{i:02}@contoso.com"), "project": format!("T{i}")})));
    }
    for p in ["ticket-*", "case-?", "*-urgent", "v?.*", "zz*zz"] {
        out.push(rule(
            json!({"match": "detail-pattern", "pattern": p, "project": format!("PAT-{p}")}),
        ));
    }
    out.push(rule(
        json!({"match": "domain", "domain": "contoso.de", "project": "DE"}),
    ));
    out.push(rule(json!({"match": "default", "project": "HELP"})));
    assert_eq!(out.len(), n);
    out
}

/// A deterministic pseudo-random stream (xorshift) of raw header sections shaped like
/// Exchange Online deliveries: Received chain, Exchange headers, 1-4 recipients in To/Cc.
fn stream() -> Vec<Vec<u8>> {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    (0..STREAM)
        .map(|m| {
            let catch = match next(10) {
                0..=3 => format!("support+proj{}@contoso.com", next(9_000)),
                4 => format!("team{:02}@contoso.com", next(ALIASES)),
                5 => {
                    let b = next(400);
                    format!("team{:02}+b{b}@contoso.com", b % ALIASES)
                }
                6 => format!("support+ticket-{}@contoso.com", next(100_000)),
                7 => "support@contoso.com".to_owned(),
                8 => format!("Hilfe+x{}@contoso.de", next(500)),
                _ => String::new(), // Bcc'd: the mailbox is in no header
            };
            let mut to = vec![format!("\"Customer {m}\" <customer{m}@example.org>")];
            if !catch.is_empty() {
                to.insert(next(2), format!("=?utf-8?q?Contoso_Support?= <{catch}>"));
            }
            let cc = (0..next(3)).map(|i| format!("colleague{i}@example.org")).collect::<Vec<_>>().join(", ");
            let p2 = if catch.is_empty() { "Bcc" } else { "To" };
            format!(
                "Received: from AM0PR01MB1234.eurprd01.prod.outlook.com (2603:10a6:208:1::1) by \
                 DB9PR01MB5678.eurprd01.prod.outlook.com with HTTPS; Mon, 6 May 2024 10:00:{s:02} +0000\r\n\
                 Received: from mail.example.org (192.0.2.{s}) by AM0PR01MB1234.mail.protection.outlook.com \
                 (10.1.1.1) with Microsoft SMTP Server id 15.20.7544.29; Mon, 6 May 2024 10:00:{s:02} +0000\r\n\
                 From: Customer {m} <customer{m}@example.org>\r\n\
                 To: {to}\r\n\
                 Cc: {cc}\r\n\
                 Subject: Re: order {m} does not arrive\r\n\
                 Date: Mon, 6 May 2024 10:00:{s:02} +0000\r\n\
                 Message-ID: <{m}.abc@example.org>\r\n\
                 MIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 X-MS-Exchange-Organization-Network-Message-Id: 0b5c6a5e-{m:04}-4f7e-8b2e-08dc6dd1c0de\r\n\
                 X-MS-Exchange-Organization-Recipient-P2-Type: {p2}\r\n\
                 X-MS-Exchange-CrossTenant-FromEntityHeader: Internet\r\n\
                 \r\n\
                 Hello, where is my order?\r\n",
                s = m % 60,
                to = to.join(",\r\n "),
            )
            .into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let messages = stream();
    let parsed: Vec<InboundHeaders> = messages
        .iter()
        .map(|m| InboundHeaders::from_mime(m).expect("headers"))
        .collect();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(STREAM as u64));
    for n in [10, 10_000] {
        let router =
            Router::new(mailbox(), &rules(n), RouterOptions::default()).expect("valid rules");
        // Not a timing check: makes sure the stream exercises the table (a bug that routed
        // everything to the default would make the big table look as cheap as the small one).
        let routed_by_non_default = parsed
            .iter()
            .filter(|h| router.route(h).rule.is_some_and(|r| r.index + 1 < n))
            .count();
        let expected = if n == 10 { STREAM / 10 } else { STREAM / 2 };
        assert!(
            routed_by_non_default > expected,
            "{n} rules: only {routed_by_non_default} routed by rules"
        );
        group.bench_function(format!("mime/{n}_rules"), |b| {
            b.iter(|| {
                for m in &messages {
                    black_box(router.route_mime(black_box(m)));
                }
            })
        });
        group.bench_function(format!("lookup/{n}_rules"), |b| {
            b.iter(|| {
                for h in &parsed {
                    black_box(router.route(black_box(h)));
                }
            })
        });
    }
    group.finish();
}

mod group {
    // criterion_group! generates an undocumented `pub fn`.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
