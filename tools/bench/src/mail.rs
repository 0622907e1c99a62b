//! The benchmark mailbox: deterministic mixed-size messages addressed to the pickup mailbox's
//! aliases and sub-addresses, and the routes file every client routes them with.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The pickup mailbox of the demo tenant.
pub const MAILBOX: &str = "helpdesk@contoso.example";
/// The project for mail to no routed address.
pub const DEFAULT_PROJECT: &str = "inbox-triage";
/// The routed aliases of [`MAILBOX`] (the demo seed's), each its own project.
pub const ALIASES: [&str; 5] = [
    "billing@contoso.example",
    "support@contoso.example",
    "sales@contoso.example",
    "hr@contoso.example",
    "it@contoso.example",
];

/// The addresses messages are sent to, in rotation: aliases, sub-addresses of aliases and of the
/// primary address, and the primary address itself (which routes to the default).
const CATCH: [&str; 10] = [
    "billing@contoso.example",
    "support+printer@contoso.example",
    "sales@contoso.example",
    "hr+leave@contoso.example",
    "it@contoso.example",
    "helpdesk@contoso.example",
    "billing+invoices@contoso.example",
    "support@contoso.example",
    "helpdesk+urgent@contoso.example",
    "it+laptop@contoso.example",
];

/// The routes file of the peer contract: `{"default": ..., "addresses": {address: project}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// Project for messages no address routes.
    pub default: String,
    /// Address (without sub-address) to project.
    pub addresses: BTreeMap<String, String>,
}

impl Routes {
    /// The benchmark's routes: each alias to the project named by its local part.
    pub fn bench() -> Self {
        Routes {
            default: DEFAULT_PROJECT.to_owned(),
            addresses: ALIASES
                .iter()
                .map(|a| {
                    let local = a.split('@').next().unwrap_or(a);
                    ((*a).to_owned(), local.to_owned())
                })
                .collect(),
        }
    }

    /// The contract's rule: strip `+tag`, look the address up, else the default.
    pub fn project_of(&self, address: &str) -> &str {
        let lower = address.to_ascii_lowercase();
        let key = match lower.split_once('@') {
            Some((local, domain)) => {
                let base = local.split_once('+').map_or(local, |(b, _)| b);
                format!("{base}@{domain}")
            }
            None => lower,
        };
        self.addresses
            .get(&key)
            .map_or(self.default.as_str(), String::as_str)
    }
}

/// The size class of a generated message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SizeClass {
    /// A few KB of plain text.
    Text,
    /// Tens of KB of HTML with inline images.
    Html,
    /// A 1-5 MB attachment.
    Large,
}

/// How the generated mailbox is composed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixPlan {
    /// Every `large_every`-th message carries a large attachment ...
    pub large_every: usize,
    /// ... up to this many in all (keeps the sandbox's memory sane at 100,000).
    pub large_cap: usize,
}

impl Default for MixPlan {
    fn default() -> Self {
        MixPlan {
            large_every: 200,
            large_cap: 50,
        }
    }
}

/// A small deterministic generator (xorshift64*): the same mailbox for every client and run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// One generated message.
#[derive(Clone, Debug)]
pub struct GeneratedMessage {
    /// The address it was sent to (envelope and `To`).
    pub catch: String,
    /// Its size class.
    pub class: SizeClass,
    /// The RFC 822 message (CRLF line ends).
    pub mime: String,
}

const WORDS: [&str; 16] = [
    "order", "invoice", "printer", "laptop", "please", "account", "delivery", "refund", "the",
    "is", "not", "working", "since", "monday", "thanks", "regards",
];

fn prose(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 80);
    let mut col = 0;
    while s.len() < bytes {
        let w = WORDS[rng.range(0, WORDS.len() - 1)];
        s.push_str(w);
        col += w.len() + 1;
        if col > 70 {
            s.push_str("\r\n");
            col = 0;
        } else {
            s.push(' ');
        }
    }
    s.push_str("\r\n");
    s
}

fn base64_lines(data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / 76 * 2 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// The size class of message `i` of `n`.
pub fn class_of(i: usize, plan: MixPlan, rng: &mut Rng) -> SizeClass {
    let stride = plan.large_every.max(1);
    if i % stride == stride / 2 && i / stride < plan.large_cap {
        SizeClass::Large
    } else if rng.range(0, 3) == 0 {
        SizeClass::Html
    } else {
        SizeClass::Text
    }
}

/// Message `i` of the benchmark mailbox. Deterministic in (`seed`, `i`).
pub fn message(seed: u64, i: usize, plan: MixPlan) -> GeneratedMessage {
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1);
    let class = class_of(i, plan, &mut rng);
    let catch = CATCH[i % CATCH.len()].to_owned();
    let cc = if i.is_multiple_of(3) {
        format!("Cc: colleague{}@fabrikam.example\r\n", i % 17)
    } else {
        String::new()
    };
    let head = format!(
        "From: Customer {i} <customer{i}@fabrikam.example>\r\n\
         To: Contoso <{catch}>\r\n\
         {cc}Subject: Request {i}: order does not arrive\r\n\
         Date: Mon, 02 Nov 2026 09:{:02}:{:02} +0000\r\n\
         Message-ID: <bench-{i}@fabrikam.example>\r\n\
         MIME-Version: 1.0\r\n",
        (i / 60) % 60,
        i % 60
    );
    let body = match class {
        SizeClass::Text => {
            let n = rng.range(1_000, 6_000);
            format!(
                "Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
                prose(&mut rng, n)
            )
        }
        SizeClass::Html => {
            let html_len = rng.range(8_000, 25_000);
            let images = rng.range(1, 2);
            let mut parts = String::new();
            let mut imgs = String::new();
            for k in 0..images {
                imgs.push_str(&format!("<p><img src=\"cid:img{k}@bench\"></p>\r\n"));
                let len = rng.range(5_000, 20_000);
                let png = rng.bytes(len);
                parts.push_str(&format!(
                    "--rel-{i}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\
                     Content-ID: <img{k}@bench>\r\nContent-Disposition: inline; filename=\"img{k}.png\"\r\n\r\n{}",
                    base64_lines(&png)
                ));
            }
            format!(
                "Content-Type: multipart/related; boundary=\"rel-{i}\"; type=\"text/html\"\r\n\r\n\
                 --rel-{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                 <html><body><p>{}</p>{imgs}</body></html>\r\n{parts}--rel-{i}--\r\n",
                prose(&mut rng, html_len)
            )
        }
        SizeClass::Large => {
            let len = rng.range(1_000_000, 5_000_000);
            let att = rng.bytes(len);
            format!(
                "Content-Type: multipart/mixed; boundary=\"mix-{i}\"\r\n\r\n\
                 --mix-{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\
                 --mix-{i}\r\nContent-Type: application/octet-stream\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"logs-{i}.bin\"\r\n\r\n{}--mix-{i}--\r\n",
                prose(&mut rng, 600),
                base64_lines(&att)
            )
        }
    };
    GeneratedMessage {
        catch,
        class,
        mime: head + &body,
    }
}

/// What a correct client routes for `n` messages: project to count.
pub fn expected_routes(n: usize, routes: &Routes) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for i in 0..n {
        *out.entry(routes.project_of(CATCH[i % CATCH.len()]).to_owned())
            .or_insert(0) += 1;
    }
    out
}

/// The demo tenant's seed without its demo messages (the benchmark injects its own).
pub fn bench_seed_toml() -> &'static str {
    const DEMO: &str = include_str!("../../../crates/sandbox/src/seed/demo.toml");
    match DEMO.find("\n[[messages]]") {
        Some(i) => &DEMO[..i + 1],
        None => DEMO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_strip_sub_addresses_and_fall_back_to_the_default() {
        let r = Routes::bench();
        assert_eq!(r.project_of("billing+invoices@contoso.example"), "billing");
        assert_eq!(r.project_of("Support@Contoso.Example"), "support");
        assert_eq!(
            r.project_of("helpdesk+urgent@contoso.example"),
            DEFAULT_PROJECT
        );
        assert_eq!(r.project_of("nobody"), DEFAULT_PROJECT);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["default"], DEFAULT_PROJECT);
        assert_eq!(json["addresses"]["hr@contoso.example"], "hr");
        assert_eq!(json["addresses"].as_object().unwrap().len(), 5);
    }

    #[test]
    fn expected_routes_cover_every_message() {
        let r = Routes::bench();
        let e = expected_routes(1_000, &r);
        assert_eq!(e.values().sum::<u64>(), 1_000);
        // 2 of every 10 catch addresses are the primary address (plain and +urgent).
        assert_eq!(e[DEFAULT_PROJECT], 200);
        assert_eq!(e["billing"], 200);
        assert_eq!(e["sales"], 100);
    }

    #[test]
    fn the_mix_has_the_planned_shape_and_parses() {
        let plan = MixPlan::default();
        let n = 1_000;
        let mut counts = BTreeMap::new();
        for i in 0..n {
            let m = message(7, i, plan);
            *counts.entry(format!("{:?}", m.class)).or_insert(0usize) += 1;
            let len = m.mime.len();
            match m.class {
                SizeClass::Text => assert!((1_000..10_000).contains(&len), "{len}"),
                SizeClass::Html => assert!((10_000..100_000).contains(&len), "{len}"),
                SizeClass::Large => assert!(len > 1_000_000 && len < 7_000_000, "{len}"),
            }
            if i % 97 == 0 || m.class != SizeClass::Text {
                let parsed = mail_parser::MessageParser::default()
                    .parse(m.mime.as_bytes())
                    .unwrap();
                assert_eq!(
                    parsed.to().unwrap().first().unwrap().address().unwrap(),
                    m.catch
                );
                if m.class != SizeClass::Text {
                    assert!(parsed.attachment_count() >= 1, "message {i}");
                }
            }
        }
        assert_eq!(counts["Large"], 5);
        let html = counts["Html"];
        assert!((200..300).contains(&html), "{html}");
        // Deterministic: the same message twice.
        assert_eq!(message(7, 42, plan).mime, message(7, 42, plan).mime);
        // The cap holds at 100,000.
        let large = (0..100_000)
            .filter(|i| i % 200 == 100)
            .filter(|i| class_of(*i, plan, &mut Rng::new(1)) == SizeClass::Large)
            .count();
        assert_eq!(large, 50);
    }

    #[test]
    fn the_seed_has_the_tenant_and_no_messages() {
        let s = bench_seed_toml();
        assert!(s.contains("helpdesk@contoso.example"));
        assert!(!s.contains("[[messages]]"));
    }
}
