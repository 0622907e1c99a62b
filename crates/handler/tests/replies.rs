//! The reply extractor over the whole labelled corpus (`testdata/replies/corpus.jsonl`, made by
//! `scripts/bench/make_reply_corpus.py`): the number of replies extracted exactly right must not
//! fall below what was measured when the floor was set. The misses are printed either way.
//! `cargo xtask bench --replies` compares the same corpus with quotequail and
//! mail-parser-reply (BENCHMARKS.md).

use std::path::Path;

// Whitespace does not count; the bench compares the same way.
use test_support::mime::normalise;

/// Exactly right when the floor was last raised (of 298 cases).
const FLOOR: usize = 298;

#[test]
fn the_corpus_is_extracted_at_least_as_well_as_before() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/replies/corpus.jsonl");
    let corpus = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/bench/make_reply_corpus.py)",
            path.display()
        )
    });
    let mut total = 0;
    let mut right = 0;
    let mut misses = Vec::new();
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let field = |name: &str| case[name].as_str().unwrap_or_default().to_owned();
        let body = field("body");
        let reply = if field("format") == "html" {
            handler::extract_reply_html(&body)
        } else {
            handler::extract_reply(&body)
        };
        total += 1;
        let (got, want) = (normalise(&reply.new_text), normalise(&field("expected")));
        if got == want {
            right += 1;
        } else {
            misses.push(format!(
                "{}\n  want: {want:?}\n  got:  {got:?}",
                field("id")
            ));
        }
    }
    println!("reply extraction: {right} / {total} exactly right");
    for m in &misses {
        println!("miss {m}");
    }
    assert!(total >= 200, "the corpus has {total} cases, fewer than 200");
    assert!(
        right >= FLOOR,
        "{right} / {total} exactly right, below the floor of {FLOOR}: see the misses above"
    );
}
