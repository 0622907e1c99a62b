//! The reference fixtures committed under `testdata/reference/`: Microsoft's EWS schema and
//! its validator, the Graph metadata extract, and the documented EWS, Graph and identity
//! samples (`testdata/reference/SOURCES.md` names where each came from and its licence).
//!
//! A missing fixture fails the test and says how to get it back: no test skips because a file
//! is not there.

use std::path::PathBuf;
use std::process::Command;

/// The path of `rel` under `testdata/reference/`.
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/reference")
        .join(rel)
}

/// The bytes of the fixture `rel`.
#[track_caller]
pub fn read(rel: &str) -> Vec<u8> {
    let p = path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}", missing(&p, &e)))
}

/// The fixture `rel` as text.
#[track_caller]
pub fn read_to_string(rel: &str) -> String {
    let p = path(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}", missing(&p, &e)))
}

fn missing(p: &std::path::Path, e: &dyn std::fmt::Display) -> String {
    format!(
        "{}: {e} (the fixture is committed under testdata/reference/: restore it with \
         `git checkout -- testdata`)",
        p.display()
    )
}

/// Asserts that every `(name, document)` is valid against the EWS schema, with
/// `testdata/reference/ews/validate-ews.py` (python3 running xmllint). Fails the test, saying
/// what to install, when python3 or xmllint is missing, and with the validator's report when a
/// document is not valid.
#[track_caller]
pub fn assert_valid_ews(docs: &[(String, String)]) {
    assert!(!docs.is_empty(), "no EWS documents to validate");
    assert!(
        Command::new("xmllint").arg("--version").output().is_ok(),
        "xmllint is missing: install it with `apt-get install -y libxml2-utils` (`cargo xtask ci` \
         does)"
    );
    let script = path("ews/validate-ews.py");
    assert!(script.is_file(), "{}", missing(&script, &"not a file"));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut paths = Vec::new();
    for (name, doc) in docs {
        let p = dir.path().join(format!("{name}.xml"));
        std::fs::write(&p, doc).expect("the document is written");
        paths.push(p);
    }
    let out = Command::new("python3")
        .arg(&script)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 could not start ({e}): install it with `apt-get install -y python3`")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schema validation failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("valid")).count(),
        docs.len(),
        "{text}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
  <soap:Header><t:RequestServerVersion Version="Exchange2013_SP1"/></soap:Header>
  <soap:Body>
    <m:GetFolder>
      <m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
      <m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds>
    </m:GetFolder>
  </soap:Body>
</soap:Envelope>"#;

    #[test]
    fn a_committed_fixture_is_read() {
        assert!(read_to_string("ews/validate-ews.py").contains("xmllint"));
        assert_eq!(
            read("ews/validate-ews.py"),
            read_to_string("ews/validate-ews.py").into_bytes()
        );
    }

    #[test]
    #[should_panic(expected = "git checkout -- testdata")]
    fn a_missing_fixture_fails_and_says_how_to_restore_it() {
        read("no/such/fixture.json");
    }

    #[test]
    fn a_valid_request_passes_the_schema() {
        assert_valid_ews(&[("get-folder".into(), ENVELOPE.into())]);
    }

    #[test]
    #[should_panic(expected = "EverythingPlease")]
    fn an_invalid_request_fails_the_schema() {
        let bad = ENVELOPE.replace("IdOnly", "EverythingPlease");
        assert_valid_ews(&[("bad".into(), bad)]);
    }
}
