//! Hot paths of the ingest job: parsing a Graph message page, an EWS GetItem response with MIME,
//! and a 1 MB MIME message with mail-parser. Routing against 10 and 10,000 rules is measured by
//! `crates/addressing/benches/route.rs` (`cargo bench -p m365mail-addressing --bench route`), which
//! `cargo xtask bench` runs and reports beside these.
//!
//! Run: `cargo bench -p m365-bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_main};
use ews_mail::ops::GetItem;
use ews_mail::soap::{Operation, parse_envelope};
use m365_bench::mail::{MixPlan, SizeClass, message};

const BASE: &str = "https://localhost:8443/v1.0";

/// A Graph list page of `n` messages with the fields graph-mail selects.
fn graph_page(n: usize) -> Vec<u8> {
    let value: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "@odata.etag": format!("W/\"CQAAABYAAAB{i:08}\""),
                "id": format!("AAMkAGI2TG93AAA{i:020}AAA="),
                "subject": format!("Request {i}: order does not arrive"),
                "internetMessageId": format!("<bench-{i}@fabrikam.example>"),
                "receivedDateTime": "2026-11-02T09:30:00Z",
                "isRead": false,
                "toRecipients": [{"emailAddress": {"name": "Contoso", "address": "support+printer@contoso.example"}}],
                "ccRecipients": [{"emailAddress": {"name": "Colleague", "address": "colleague1@fabrikam.example"}}],
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "@odata.context": format!("{BASE}/$metadata#users('helpdesk%40contoso.example')/mailFolders('inbox')/messages"),
        "value": value,
        "@odata.nextLink": format!("{BASE}/users/helpdesk@contoso.example/mailFolders/inbox/messages?$skip={n}"),
    }))
    .unwrap_or_default()
}

/// A GetItem response with MIME for `n` messages of the benchmark mix (text and HTML).
fn getitem_response(n: usize) -> Vec<u8> {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header>\
         <h:ServerVersionInfo MajorVersion=\"15\" MinorVersion=\"20\" MajorBuildNumber=\"8\" MinorBuildNumber=\"0\" Version=\"V2018_01_08\" \
         xmlns:h=\"http://schemas.microsoft.com/exchange/services/2006/types\"/></s:Header><s:Body>\
         <m:GetItemResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" \
         xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages>",
    );
    let plan = MixPlan {
        large_every: usize::MAX,
        large_cap: 0,
    };
    for i in 0..n {
        let m = message(11, i, plan);
        let b64 = base64::engine::general_purpose::STANDARD.encode(m.mime.as_bytes());
        s.push_str(&format!(
            "<m:GetItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>\
             <t:MimeContent CharacterSet=\"UTF-8\">{b64}</t:MimeContent>\
             <t:ItemId Id=\"AAMkAGI2TG93AAA{i:020}AAA=\" ChangeKey=\"CQAAABYAAAB{i:08}\"/>\
             <t:DateTimeReceived>2026-11-02T09:30:00Z</t:DateTimeReceived>\
             <t:InternetMessageId>&lt;bench-{i}@fabrikam.example&gt;</t:InternetMessageId>\
             </t:Message></m:Items></m:GetItemResponseMessage>"
        ));
    }
    s.push_str("</m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>");
    s.into_bytes()
}

/// A message of about 1 MB: text, HTML and a base64 attachment.
fn one_mb_message() -> Vec<u8> {
    let plan = MixPlan {
        large_every: 1,
        large_cap: usize::MAX,
    };
    // Pick the first large message near 1 MB from the generator.
    (0..200)
        .map(|i| message(5, i, plan))
        .filter(|m| m.class == SizeClass::Large)
        .min_by_key(|m| m.mime.len().abs_diff(1_048_576))
        .map(|m| m.mime.into_bytes())
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let ep =
        graph_mail::Endpoint::custom(BASE, graph_mail::Mailbox::user("helpdesk@contoso.example"))
            .expect("a valid endpoint");
    let mut g = c.benchmark_group("graph_page");
    for n in [100, 1_000] {
        let page = graph_page(n);
        let parsed = graph_mail::api::parse_message_page(&ep, &page).expect("the page parses");
        assert_eq!(parsed.messages.len(), n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("parse_{n}_messages"), |b| {
            b.iter(|| graph_mail::api::parse_message_page(&ep, black_box(&page)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("ews_getitem");
    for n in [10, 100] {
        let doc = getitem_response(n);
        let env = parse_envelope(&doc, 512 << 20).expect("the envelope parses");
        let items = GetItem::parse(&env.body).expect("the response parses");
        assert_eq!(items.len(), n);
        assert!(
            items
                .iter()
                .all(|r| r.as_ref().is_ok_and(|i| i.mime.is_some()))
        );
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(format!("parse_{n}_items_with_mime"), |b| {
            b.iter(|| {
                let env = parse_envelope(black_box(&doc), 512 << 20).expect("parses");
                GetItem::parse(&env.body)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("mime");
    let big = one_mb_message();
    assert!(big.len() > 900_000, "{}", big.len());
    let parser = mail_parser::MessageParser::default();
    assert!(
        parser
            .parse(&big)
            .is_some_and(|m| m.attachment_count() == 1)
    );
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("mail_parser_1mb", |b| {
        b.iter(|| parser.parse(black_box(&big)))
    });
    let small = message(5, 1, MixPlan::default()).mime.into_bytes();
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("mail_parser_text_message", |b| {
        b.iter(|| parser.parse(black_box(&small)))
    });
    g.finish();
}

mod group {
    // criterion_group! generates an undocumented `pub fn`.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
