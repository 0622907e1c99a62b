//! Microsoft's documented request samples, replayed against the sandbox (issue #22 item 2):
//! every EWS request sample of the Exchange docs (`testdata/reference/samples/ews`) and every
//! Graph request sample of the Graph docs (`testdata/reference/samples/graph`) is either
//! answered or refused with a named error. What each gets is recorded in
//! `tests/it/samples.expected` (one line per sample: file or sample name, HTTP status, and the
//! response codes, or the top-level members of a JSON answer), and the test fails when an answer
//! changes. EWS answers are also validated against the schema. After a deliberate change,
//! rewrite the record with `UPDATE_SAMPLES=1 cargo test -p m365mail-sandbox --test it samples`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use test_support::reference::read_to_string as read;

use crate::common::{MEGAN, client, delegated_token};
use crate::ews::{Ews, between, user_token};

/// An EWS answer in a word: the status and the response codes (or the fault's).
fn ews_outcome(status: u16, doc: &str) -> String {
    let mut codes: Vec<&str> = between(doc, "<m:ResponseCode>", "<");
    codes.extend(between(
        doc,
        "ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">",
        "<",
    ));
    codes.dedup();
    if codes.is_empty() {
        return format!("{status} (no response code)");
    }
    format!("{status} {}", codes.join(","))
}

/// A Graph answer in a word: the status and the error code, or the members of a JSON body.
fn graph_outcome(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["error"]["code"].is_string() => {
            format!("{status} {}", v["error"]["code"].as_str().unwrap_or(""))
        }
        Ok(Value::Object(o)) => {
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            format!("{status} {{{}}}", keys.join(","))
        }
        _ if body.is_empty() => format!("{status} (empty)"),
        _ => format!("{status} (not JSON)"),
    }
}

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/samples.expected")
}

fn check_against_record(section: &str, got: &BTreeMap<String, String>) {
    let path = expected_path();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            current = name.to_string();
            sections.entry(current.clone()).or_default();
        } else if !line.trim().is_empty() {
            sections
                .entry(current.clone())
                .or_default()
                .push(line.to_string());
        }
    }
    let lines: Vec<String> = got.iter().map(|(k, v)| format!("{k}\t{v}")).collect();
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        sections.insert(section.to_string(), lines);
        let mut out = String::new();
        for (name, lines) in &sections {
            out.push_str(&format!("# {name}\n"));
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
        return;
    }
    let want = sections.get(section).cloned().unwrap_or_default();
    let diff: Vec<String> = want
        .iter()
        .filter(|l| !lines.contains(l))
        .map(|l| format!("- {l}"))
        .chain(
            lines
                .iter()
                .filter(|l| !want.contains(l))
                .map(|l| format!("+ {l}")),
        )
        .collect();
    assert!(
        diff.is_empty(),
        "the answers to documented {section} samples changed ({}): \n{}\n(after a deliberate change: UPDATE_SAMPLES=1)",
        path.display(),
        diff.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_ews_request_is_answered_or_refused_by_name() {
    let e = Ews::new().await;
    e.inject(3);
    let token = user_token(&e.sb, MEGAN);
    let index: Value = serde_json::from_str(&read("samples/ews/index.json")).unwrap();
    let mut got = BTreeMap::new();
    for s in index["samples"].as_array().unwrap() {
        if s["kind"] != "request" {
            continue;
        }
        let file = s["file"].as_str().unwrap();
        let doc = read(&format!("samples/ews/{file}"));
        let (status, answer) = e.raw(&token, doc).await;
        let outcome = ews_outcome(status, &answer);
        assert!(
            !outcome.contains("no response code"),
            "{file}: answered without a response code: {answer}"
        );
        got.insert(file.to_string(), outcome);
    }
    assert!(got.len() >= 280, "{}", got.len());
    check_against_record("ews", &got);
    e.validate_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_graph_request_is_answered_or_refused_by_name() {
    let sb = crate::common::start().await;
    let token = delegated_token(
        &sb,
        MEGAN,
        &["Mail.ReadWrite", "Mail.Send"],
        sandbox::ApiResource::Graph,
    );
    let samples: Value =
        serde_json::from_str(&read("samples/graph/graph-docs-samples.json")).unwrap();
    let mut got = BTreeMap::new();
    let base = sb.graph_url();
    let root = base.trim_end_matches("/v1.0").to_string();
    for s in samples.as_array().unwrap() {
        if s["blockType"] != "request" {
            continue;
        }
        let name = s["name"].as_str().unwrap_or("?");
        let head = s["head"].as_str().unwrap_or("");
        let mut lines = head.lines();
        let Some((method, url)) = lines
            .next()
            .and_then(|l| l.trim().split_once(' '))
            .filter(|(m, _)| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
        else {
            // A sample without a request line (the docs show only a URL) cannot be sent.
            got.insert(format!("{name} (no method)"), "not sent".into());
            continue;
        };
        let url = url.trim().replace("https://graph.microsoft.com", &root);
        let mut req = client()
            .request(method.parse().unwrap(), &url)
            .bearer_auth(&token);
        for l in lines {
            if let Some((k, v)) = l.split_once(':')
                && !k.trim().eq_ignore_ascii_case("content-length")
            {
                req = req.header(k.trim(), v.trim());
            }
        }
        let body = match (&s["json"], s["body_raw"].as_str()) {
            (Value::Null, Some(raw)) => Some(raw.as_bytes().to_vec()),
            (Value::Null, None) => None,
            (j, _) => Some(serde_json::to_vec(j).unwrap()),
        };
        req = match body {
            Some(b) => req.body(b),
            None if method == "POST" => req.body(Vec::<u8>::new()),
            None => req,
        };
        let resp = req.send().await.expect("the sandbox answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let outcome = graph_outcome(status, &bytes);
        let key = format!(
            "{name} {method} {}",
            head.lines()
                .next()
                .unwrap_or("")
                .split(' ')
                .nth(1)
                .unwrap_or("")
        );
        got.insert(key, outcome);
    }
    assert!(got.len() >= 70, "{}", got.len());
    check_against_record("graph", &got);
}
