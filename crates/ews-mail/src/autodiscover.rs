//! Autodiscover: from an email address to the EWS endpoint, with a bounded total time.
//!
//! Exchange Online needs none of this ([`crate::EXCHANGE_ONLINE`] is fixed). For other servers
//! the JSON v2 endpoint (`/autodiscover/autodiscover.json/v1.0/{email}?Protocol=EWS`) is tried
//! first, then the POX endpoint (`/autodiscover/autodiscover.xml`). Every attempt shares one
//! deadline, so a dead host cannot hang the caller (exchangelib's autodiscover is known to
//! hang for hours).

use std::time::Duration;

use url::Url;

use crate::xml;

/// Why autodiscover failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AutodiscoverError {
    /// The address has no domain.
    #[error("{0:?} is not an email address")]
    BadAddress(String),
    /// Nothing answered within the deadline.
    #[error("autodiscover found no EWS endpoint for {email} within {seconds} s (tried: {tried})")]
    TimedOut {
        /// The address.
        email: String,
        /// The deadline.
        seconds: u64,
        /// URLs tried.
        tried: String,
    },
    /// Every candidate answered, none with an EWS URL.
    #[error("autodiscover found no EWS endpoint for {email}: {reasons}")]
    NotFound {
        /// The address.
        email: String,
        /// What each candidate said.
        reasons: String,
    },
}

/// The JSON v2 URL on `host` for `email`.
pub fn json_url(host: &str, email: &str) -> Option<Url> {
    let mut u = Url::parse(&format!(
        "https://{host}/autodiscover/autodiscover.json/v1.0/"
    ))
    .ok()?;
    u.path_segments_mut().ok()?.pop_if_empty().push(email);
    u.query_pairs_mut().append_pair("Protocol", "EWS");
    Some(u)
}

/// Candidate base hosts for a domain: `autodiscover.{domain}` then `{domain}`.
pub fn candidate_hosts(email: &str) -> Result<Vec<String>, AutodiscoverError> {
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.trim())
        .filter(|d| !d.is_empty() && !d.contains('/'))
        .ok_or_else(|| AutodiscoverError::BadAddress(email.to_string()))?;
    Ok(vec![format!("autodiscover.{domain}"), domain.to_string()])
}

/// Reads a JSON v2 answer (`{"Protocol":"EWS","Url":"…"}`).
pub fn parse_json(body: &[u8]) -> Option<Url> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let proto = v.get("Protocol")?.as_str()?;
    if !proto.eq_ignore_ascii_case("EWS") {
        return None;
    }
    Url::parse(v.get("Url")?.as_str()?).ok()
}

/// The POX request body for `email`.
pub fn pox_request(email: &str) -> String {
    let mut w = xml::Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.start(
        "Autodiscover",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
        )],
    );
    w.start("Request", &[]);
    w.text_element("EMailAddress", email);
    w.text_element(
        "AcceptableResponseSchema",
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
    );
    w.end();
    w.end();
    w.finish()
}

/// What a POX answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoxAnswer {
    /// The EWS URL (from the `EXPR` protocol, else `EXCH`).
    Ews(Url),
    /// Try again with this address.
    RedirectAddress(String),
    /// Try again at this URL.
    RedirectUrl(Url),
}

/// Reads a POX answer.
pub fn parse_pox(body: &[u8]) -> Option<PoxAnswer> {
    let root = xml::parse(body, 1 << 20).ok()?;
    let account = root.find("Account")?;
    match account.child_text("Action") {
        Some("redirectAddr") => {
            return account
                .child_text("RedirectAddr")
                .map(|a| PoxAnswer::RedirectAddress(a.to_string()));
        }
        Some("redirectUrl") => {
            return account
                .child_text("RedirectUrl")
                .and_then(|u| Url::parse(u).ok())
                .map(PoxAnswer::RedirectUrl);
        }
        _ => {}
    }
    let protos: Vec<&xml::Element> = account.children_named("Protocol").collect();
    for want in ["EXPR", "EXCH"] {
        for p in &protos {
            if p.child_text("Type") == Some(want)
                && let Some(u) = p.child_text("EwsUrl").and_then(|u| Url::parse(u).ok())
            {
                return Some(PoxAnswer::Ews(u));
            }
        }
    }
    None
}

/// Discovers the EWS URL for `email`, giving up after `deadline` in total. `hosts` overrides
/// the candidate hosts (tests, or a known autodiscover host); `scheme` is `https` in production.
pub async fn discover(
    http: &reqwest::Client,
    email: &str,
    hosts: Option<Vec<String>>,
    scheme: &str,
    deadline: Duration,
) -> Result<Url, AutodiscoverError> {
    let hosts = match hosts {
        Some(h) => h,
        None => candidate_hosts(email)?,
    };
    let tried = std::sync::Mutex::new(Vec::<String>::new());
    let work = async {
        let mut reasons = Vec::new();
        let mut email = email.to_string();
        for host in &hosts {
            for _redirect in 0..3 {
                let Some(mut u) = json_url(host, &email) else {
                    break;
                };
                let _ = u.set_scheme(scheme);
                tried
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(u.to_string());
                match http.get(u.clone()).send().await {
                    Ok(r) if r.status().is_success() => {
                        if let Some(url) = r.bytes().await.ok().and_then(|b| parse_json(&b)) {
                            return Ok(url);
                        }
                        reasons.push(format!("{u}: no EWS URL in the answer"));
                    }
                    Ok(r) => reasons.push(format!("{u}: HTTP {}", r.status().as_u16())),
                    Err(e) => reasons.push(format!("{u}: {e}")),
                }
                let pox = format!("{scheme}://{host}/autodiscover/autodiscover.xml");
                tried
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(pox.clone());
                match http
                    .post(&pox)
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .body(pox_request(&email))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        match r.bytes().await.ok().and_then(|b| parse_pox(&b)) {
                            Some(PoxAnswer::Ews(u)) => return Ok(u),
                            Some(PoxAnswer::RedirectAddress(a)) => {
                                email = a;
                                continue;
                            }
                            Some(PoxAnswer::RedirectUrl(u)) => {
                                reasons.push(format!("{pox}: redirect to {u} (not followed)"));
                            }
                            None => reasons.push(format!("{pox}: no EWS URL in the answer")),
                        }
                    }
                    Ok(r) => reasons.push(format!("{pox}: HTTP {}", r.status().as_u16())),
                    Err(e) => reasons.push(format!("{pox}: {e}")),
                }
                break;
            }
        }
        Err(AutodiscoverError::NotFound {
            email: email.clone(),
            reasons: reasons.join("; "),
        })
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(AutodiscoverError::TimedOut {
            email: email.to_string(),
            seconds: deadline.as_secs(),
            tried: tried.lock().unwrap_or_else(|p| p.into_inner()).join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_url_and_answer() {
        let u = json_url("autodiscover.contoso.com", "a+b@contoso.com").unwrap();
        assert_eq!(
            u.as_str(),
            "https://autodiscover.contoso.com/autodiscover/autodiscover.json/v1.0/a+b@contoso.com?Protocol=EWS"
        );
        let got = parse_json(
            br#"{"Protocol":"EWS","Url":"https://outlook.office365.com/EWS/Exchange.asmx"}"#,
        );
        assert_eq!(
            got.unwrap().as_str(),
            "https://outlook.office365.com/EWS/Exchange.asmx"
        );
        assert_eq!(parse_json(br#"{"ErrorCode":"InvalidProtocol"}"#), None);
        assert!(matches!(
            candidate_hosts("nodomain"),
            Err(AutodiscoverError::BadAddress(_))
        ));
    }

    #[test]
    fn pox_answers() {
        let ok = br#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>EXCH</Type><EwsUrl>https://mail.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol><Protocol><Type>EXPR</Type><EwsUrl>https://ext.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse_pox(ok),
            Some(PoxAnswer::Ews(
                Url::parse("https://ext.contoso.com/EWS/Exchange.asmx").unwrap()
            ))
        );
        let redirect = br#"<Autodiscover><Response><Account><Action>redirectAddr</Action><RedirectAddr>u@new.example</RedirectAddr></Account></Response></Autodiscover>"#;
        assert_eq!(
            parse_pox(redirect),
            Some(PoxAnswer::RedirectAddress("u@new.example".into()))
        );
        assert!(pox_request("a&b@x").contains("a&amp;b@x"));
    }

    #[tokio::test]
    async fn a_silent_host_is_bounded_by_the_deadline() {
        // A listener that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut keep = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                keep.push(s);
            }
        });
        let http = reqwest::Client::new();
        let r = discover(
            &http,
            "u@contoso.example",
            Some(vec![addr.to_string()]),
            "http",
            Duration::from_millis(200),
        )
        .await;
        match r {
            Err(AutodiscoverError::TimedOut { tried, .. }) => {
                assert!(tried.contains("autodiscover.json"))
            }
            other => panic!("{other:?}"),
        }
    }
}
