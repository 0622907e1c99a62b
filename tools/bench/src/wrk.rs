//! Debian's `wrk` (4.1.0) as the load tool of the capacity test (issue 5 item 8): the Lua
//! script that gives it a method, headers and rotating POST bodies, the run, and the parsing of
//! its report.
//!
//! The bearer token goes on wrk's command line as `-H "Authorization: Bearer …"`; it is never
//! written into the script, the saved output or an error.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Latency figures of a wrk run, milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Mean.
    pub mean_ms: f64,
    /// Standard deviation.
    pub stdev_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// 50th percentile.
    pub p50_ms: f64,
    /// 75th percentile.
    pub p75_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// wrk's `Socket errors:` line (absent when there were none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketErrors {
    /// Connections refused or failed.
    pub connect: u64,
    /// Read errors (connection reset, closed mid-response).
    pub read: u64,
    /// Write errors.
    pub write: u64,
    /// Requests that got no answer within `--timeout`.
    pub timeout: u64,
}

impl SocketErrors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// What one wrk run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrkStats {
    /// Completed responses, whatever their status (`N requests in …`).
    pub requests: u64,
    /// The run's duration as wrk measured it.
    pub seconds: f64,
    /// wrk's `Requests/sec` (completed responses of any status per second).
    pub requests_per_sec: f64,
    /// Responses with a status of 400 or more (wrk's `Non-2xx or 3xx responses`, which despite
    /// its wording counts only status > 399).
    pub non_2xx: u64,
    /// Socket errors.
    pub socket_errors: SocketErrors,
    /// Latency.
    pub latency: Latency,
}

impl WrkStats {
    /// Successful responses per second (non-2xx answers left out).
    pub fn ok_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests.saturating_sub(self.non_2xx) as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Non-2xx answers and socket errors together.
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.socket_errors.total()
    }
}

/// Why wrk's output could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A line every wrk report has is missing.
    Missing(&'static str),
    /// A figure that is not a number with a known unit.
    BadFigure {
        /// Which figure.
        what: &'static str,
        /// The text found.
        text: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Missing(what) => write!(f, "wrk's output has no {what} line"),
            ParseError::BadFigure { what, text } => {
                write!(f, "wrk's output: {what} is not a figure: {text:?}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a wrk run gave no figures.
#[derive(Debug)]
pub enum WrkError {
    /// `wrk` could not be started (not installed?).
    Spawn(std::io::Error),
    /// wrk exited with a failure; its stderr (which never holds the token).
    Failed {
        /// The exit code, if any.
        code: Option<i32>,
        /// What wrk said on stderr.
        stderr: String,
    },
    /// Its output could not be read.
    Parse(ParseError),
    /// The script or output file could not be written.
    Io(std::io::Error),
}

impl fmt::Display for WrkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WrkError::Spawn(e) => write!(
                f,
                "wrk could not be started ({e}); install Debian's wrk (apt-get install wrk)"
            ),
            WrkError::Failed { code, stderr } => {
                write!(f, "wrk failed (exit {code:?}): {}", stderr.trim())
            }
            WrkError::Parse(e) => e.fmt(f),
            WrkError::Io(e) => write!(f, "wrk files: {e}"),
        }
    }
}

impl std::error::Error for WrkError {}

/// `12.5ms` → 12.5; units `us`, `ms`, `s`, `m`, `h` (wrk's `format_time_us`).
fn millis(what: &'static str, text: &str) -> Result<f64, ParseError> {
    let bad = || ParseError::BadFigure {
        what,
        text: text.to_owned(),
    };
    let (num, scale) = [
        ("us", 1e-3),
        ("ms", 1.0),
        ("s", 1e3),
        ("m", 60e3),
        ("h", 3_600e3),
    ]
    .iter()
    .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
    .ok_or_else(bad)?;
    num.parse::<f64>().map(|x| x * scale).map_err(|_| bad())
}

fn count(what: &'static str, text: &str) -> Result<u64, ParseError> {
    text.trim_end_matches(',')
        .parse()
        .map_err(|_| ParseError::BadFigure {
            what,
            text: text.to_owned(),
        })
}

/// Reads wrk's report (run with `--latency`).
pub fn parse_output(out: &str) -> Result<WrkStats, ParseError> {
    let mut stats = WrkStats::default();
    let (mut have_latency, mut have_total, mut have_rate) = (false, false, false);
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", mean, stdev, max, ..] if *mean != "Distribution" => {
                stats.latency.mean_ms = millis("mean latency", mean)?;
                stats.latency.stdev_ms = millis("latency stdev", stdev)?;
                stats.latency.max_ms = millis("largest latency", max)?;
                have_latency = true;
            }
            [pct, value] if pct.ends_with('%') => {
                let slot = match *pct {
                    "50%" => &mut stats.latency.p50_ms,
                    "75%" => &mut stats.latency.p75_ms,
                    "90%" => &mut stats.latency.p90_ms,
                    "99%" => &mut stats.latency.p99_ms,
                    _ => continue,
                };
                *slot = millis("latency percentile", value)?;
            }
            [n, "requests", "in", dur, ..] => {
                stats.requests = count("requests", n)?;
                stats.seconds = millis("duration", dur.trim_end_matches(','))? / 1e3;
                have_total = true;
            }
            [
                "Socket",
                "errors:",
                "connect",
                c,
                "read",
                r,
                "write",
                w,
                "timeout",
                t,
            ] => {
                stats.socket_errors = SocketErrors {
                    connect: count("connect errors", c)?,
                    read: count("read errors", r)?,
                    write: count("write errors", w)?,
                    timeout: count("timeouts", t)?,
                };
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                stats.non_2xx = count("non-2xx responses", n)?;
            }
            ["Requests/sec:", rate] => {
                stats.requests_per_sec = rate.parse().map_err(|_| ParseError::BadFigure {
                    what: "Requests/sec",
                    text: (*rate).to_owned(),
                })?;
                have_rate = true;
            }
            _ => {}
        }
    }
    if !have_latency {
        return Err(ParseError::Missing("Latency"));
    }
    if !have_total {
        return Err(ParseError::Missing("`N requests in`"));
    }
    if !have_rate {
        return Err(ParseError::Missing("Requests/sec"));
    }
    Ok(stats)
}

/// One kind of request to repeat: a method and URL, headers other than `Authorization`, and
/// bodies that the script sends in rotation (none for a GET).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The full URL (wrk's target).
    pub url: String,
    /// Headers (without `Authorization`, `Host` and `Content-Length`, which wrk sets).
    pub headers: Vec<(String, String)>,
    /// Bodies, sent one after another.
    pub bodies: Vec<Vec<u8>>,
}

impl LoadRequest {
    /// From requests that differ only in their bodies (as the clients' request builders make
    /// them). `None` when there are none or they differ in method, URL or headers.
    pub fn from_requests(reqs: &[http::Request<Vec<u8>>]) -> Option<Self> {
        let first = reqs.first()?;
        let headers = |r: &http::Request<Vec<u8>>| -> Vec<(String, String)> {
            r.headers()
                .iter()
                .filter(|(k, _)| {
                    *k != http::header::AUTHORIZATION
                        && *k != http::header::HOST
                        && *k != http::header::CONTENT_LENGTH
                })
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        };
        let first_headers = headers(first);
        if reqs.iter().any(|r| {
            r.method() != first.method() || r.uri() != first.uri() || headers(r) != first_headers
        }) {
            return None;
        }
        let bodies = reqs
            .iter()
            .map(|r| r.body().clone())
            .filter(|b| !b.is_empty())
            .collect();
        Some(LoadRequest {
            method: first.method().as_str().to_owned(),
            url: first.uri().to_string(),
            headers: first_headers,
            bodies,
        })
    }
}

/// A Lua string literal holding `bytes` exactly: printable ASCII as is, `"` and `\` escaped,
/// every other byte as a three-digit decimal escape (Lua 5.1 / LuaJIT syntax; long brackets
/// would turn CR LF into LF).
fn lua_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}

/// The wrk script for `req`: method, headers, and the body (or the bodies in rotation, each
/// wrk thread starting at the first).
pub fn lua_script(label: &str, req: &LoadRequest) -> String {
    let mut s = String::new();
    let label: String = label.chars().filter(|c| !c.is_control()).collect();
    let _ = writeln!(
        s,
        "-- m365-bench capacity: {label}. Generated; the Authorization header comes from -H."
    );
    let _ = writeln!(s, "wrk.method = {}", lua_string(req.method.as_bytes()));
    for (k, v) in &req.headers {
        let _ = writeln!(
            s,
            "wrk.headers[{}] = {}",
            lua_string(k.as_bytes()),
            lua_string(v.as_bytes())
        );
    }
    match req.bodies.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(s, "wrk.body = {}", lua_string(one));
        }
        many => {
            let _ = writeln!(s, "local bodies = {{");
            for b in many {
                let _ = writeln!(s, "  {},", lua_string(b));
            }
            let _ = writeln!(s, "}}");
            let _ = writeln!(s, "local i = 0");
            let _ = writeln!(s, "request = function()");
            let _ = writeln!(s, "  i = i % #bodies + 1");
            let _ = writeln!(s, "  return wrk.format(nil, nil, nil, bodies[i])");
            let _ = writeln!(s, "end");
        }
    }
    s
}

/// wrk's version as `wrk -v` prints it (`debian/4.1.0-3+b2`), if wrk runs.
pub fn version() -> Option<String> {
    // `wrk -v` prints its banner and the usage, and exits with 1.
    let out = Command::new("wrk").arg("-v").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let first = text.lines().next()?;
    let mut words = first.split_whitespace();
    (words.next() == Some("wrk")).then(|| words.next().map(str::to_owned))?
}

/// How to run wrk.
#[derive(Clone, Copy, Debug)]
pub struct WrkOptions {
    /// Open connections (`-c`).
    pub connections: usize,
    /// Threads (`-t`, at most `connections`).
    pub threads: usize,
    /// Seconds of load (`-d`).
    pub seconds: u64,
    /// Seconds before a request counts as timed out (`--timeout`).
    pub timeout_seconds: u64,
}

/// Runs wrk with `req` for `opts.seconds`, the script and wrk's report kept as `stem.lua` and
/// `stem.txt`. `authorization` is the header's value (`Bearer …`).
pub fn run(
    req: &LoadRequest,
    label: &str,
    authorization: &http::HeaderValue,
    opts: WrkOptions,
    stem: &Path,
) -> Result<WrkStats, WrkError> {
    let script = stem.with_extension("lua");
    std::fs::write(&script, lua_script(label, req)).map_err(WrkError::Io)?;
    let mut header = b"Authorization: ".to_vec();
    header.extend_from_slice(authorization.as_bytes());
    let header = String::from_utf8(header).map_err(|_| WrkError::Failed {
        code: None,
        stderr: "the Authorization header is not UTF-8".into(),
    })?;
    let out = Command::new("wrk")
        .arg("-t")
        .arg(opts.threads.clamp(1, opts.connections.max(1)).to_string())
        .arg("-c")
        .arg(opts.connections.max(1).to_string())
        .arg("-d")
        .arg(format!("{}s", opts.seconds.max(1)))
        .arg("--timeout")
        .arg(format!("{}s", opts.timeout_seconds.max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg("-H")
        .arg(header)
        .arg(&req.url)
        .output()
        .map_err(WrkError::Spawn)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::write(stem.with_extension("txt"), &stdout).map_err(WrkError::Io)?;
    if !out.status.success() {
        return Err(WrkError::Failed {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    parse_output(&stdout).map_err(WrkError::Parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/wrk")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn parses_a_clean_run() {
        // Captured: wrk 4.1.0 (Debian) against the sandbox's Graph list page.
        let s = parse_output(&sample("graph_list_ok.txt")).unwrap();
        assert_eq!(s.requests, 1176);
        assert!(close(s.seconds, 2.05));
        assert!(close(s.requests_per_sec, 574.37));
        assert_eq!(s.non_2xx, 0);
        assert_eq!(s.socket_errors, SocketErrors::default());
        assert_eq!(s.failed(), 0);
        assert!(close(s.latency.mean_ms, 17.16));
        assert!(close(s.latency.stdev_ms, 36.91));
        assert!(close(s.latency.max_ms, 224.48));
        assert!(close(s.latency.p50_ms, 5.56));
        assert!(close(s.latency.p75_ms, 11.67));
        assert!(close(s.latency.p90_ms, 29.44));
        assert!(close(s.latency.p99_ms, 196.62));
        assert!(close(s.ok_per_sec(), 1176.0 / 2.05));
    }

    #[test]
    fn microsecond_latencies_and_megabyte_transfers() {
        // Captured: EWS FindItem POSTed through a script.
        let s = parse_output(&sample("ews_finditem_ok.txt")).unwrap();
        assert_eq!(s.requests, 6130);
        assert!(close(s.latency.p50_ms, 0.95));
        assert!(close(s.requests_per_sec, 3043.99));
        // And one with a sub-millisecond median.
        let s = parse_output(&sample("non2xx_401.txt")).unwrap();
        assert!(close(s.latency.p50_ms, 0.359));
    }

    #[test]
    fn error_answers_are_counted_and_not_successes() {
        // Captured: the list page without a token (every answer a 401).
        let s = parse_output(&sample("non2xx_401.txt")).unwrap();
        assert_eq!(s.requests, 6653);
        assert_eq!(s.non_2xx, 6653);
        assert_eq!(s.failed(), 6653);
        assert_eq!(s.ok_per_sec(), 0.0);
        assert!(s.requests_per_sec > 6000.0);
    }

    #[test]
    fn socket_errors_are_counted() {
        // Captured: the sandbox killed one second into a three-second run.
        let s = parse_output(&sample("sandbox_killed.txt")).unwrap();
        assert_eq!(
            s.socket_errors,
            SocketErrors {
                connect: 3483,
                read: 4,
                write: 0,
                timeout: 0
            }
        );
        assert_eq!(s.failed(), 3487);
        assert_eq!(s.requests, 2006);
        assert!(close(s.seconds, 3.08));
    }

    #[test]
    fn truncated_or_foreign_output_is_an_error() {
        let full = sample("graph_list_ok.txt");
        let cut: String = full
            .lines()
            .filter(|l| !l.starts_with("Requests/sec"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse_output(&cut), Err(ParseError::Missing("Requests/sec")));
        assert_eq!(
            parse_output("unable to connect to localhost:1 Connection refused"),
            Err(ParseError::Missing("Latency"))
        );
        let odd = full.replace("17.16ms", "17.16ns");
        assert!(matches!(
            parse_output(&odd),
            Err(ParseError::BadFigure {
                what: "mean latency",
                ..
            })
        ));
    }

    #[test]
    fn time_units() {
        assert!(close(millis("t", "359.00us").unwrap(), 0.359));
        assert!(close(millis("t", "1.50s").unwrap(), 1500.0));
        assert!(close(millis("t", "2.00m").unwrap(), 120_000.0));
        assert!(close(millis("t", "1.00h").unwrap(), 3_600_000.0));
        assert!(millis("t", "12").is_err());
    }

    #[test]
    fn script_for_one_body_sets_method_headers_and_exact_bytes() {
        let req = LoadRequest {
            method: "POST".into(),
            url: "https://localhost:1/EWS/Exchange.asmx".into(),
            headers: vec![("content-type".into(), "text/xml; charset=utf-8".into())],
            bodies: vec!["<a b=\"c\">\\ é\r\n</a>".as_bytes().to_vec()],
        };
        assert_eq!(
            lua_script("EWS x\n", &req),
            "-- m365-bench capacity: EWS x. Generated; the Authorization header comes from -H.\n\
             wrk.method = \"POST\"\n\
             wrk.headers[\"content-type\"] = \"text/xml; charset=utf-8\"\n\
             wrk.body = \"<a b=\\\"c\\\">\\\\ \\195\\169\\013\\010</a>\"\n"
        );
    }

    #[test]
    fn script_rotates_several_bodies_and_a_get_has_none() {
        let req = LoadRequest {
            method: "POST".into(),
            url: "https://localhost:1/v1.0/$batch".into(),
            headers: vec![],
            bodies: vec![b"{\"n\":1}".to_vec(), b"{\"n\":2}".to_vec()],
        };
        let s = lua_script("batch", &req);
        assert!(s.contains("local bodies = {\n  \"{\\\"n\\\":1}\",\n  \"{\\\"n\\\":2}\",\n}\n"));
        assert!(s.contains("i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])"));
        let get = LoadRequest {
            method: "GET".into(),
            url: "https://localhost:1/v1.0/me".into(),
            headers: vec![],
            bodies: vec![],
        };
        let s = lua_script("list", &get);
        assert!(!s.contains("body"), "{s}");
        assert!(s.contains("wrk.method = \"GET\"\n"));
    }

    #[test]
    fn load_request_from_builder_requests() {
        let mk = |body: &str| {
            http::Request::post("https://localhost:1/EWS/Exchange.asmx")
                .header("content-type", "text/xml")
                .header("authorization", "Bearer secret-token")
                .header("content-length", body.len())
                .body(body.as_bytes().to_vec())
                .unwrap()
        };
        let r = LoadRequest::from_requests(&[mk("<a/>"), mk("<b/>")]).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://localhost:1/EWS/Exchange.asmx");
        assert_eq!(r.headers, vec![("content-type".into(), "text/xml".into())]);
        assert_eq!(r.bodies, vec![b"<a/>".to_vec(), b"<b/>".to_vec()]);
        assert!(!lua_script("x", &r).contains("secret-token"));
        let other = http::Request::post("https://localhost:1/other")
            .body(b"<a/>".to_vec())
            .unwrap();
        assert_eq!(LoadRequest::from_requests(&[mk("<a/>"), other]), None);
        assert_eq!(LoadRequest::from_requests(&[]), None);
    }

    /// Real wrk against a small HTTP server on a local port: every request carries the method,
    /// headers and Authorization, and the bodies are exactly the ones given (CR LF, UTF-8 and
    /// every byte value included), sent in rotation. Needs Debian's wrk:
    /// `cargo test -p m365-bench -- --ignored wrk_sends`.
    #[test]
    #[ignore = "needs Debian's wrk on PATH"]
    fn wrk_sends_the_scripted_requests() {
        use std::io::{BufRead, BufReader, Read, Write};
        type Seen = Vec<(Vec<String>, Vec<u8>)>;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Connections one after another (wrk first opens and closes one to check the address),
        // until a connection says QUIT.
        let server = std::thread::spawn(move || {
            let mut conns: Vec<Seen> = Vec::new();
            loop {
                let (conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                let mut seen = Seen::new();
                'conn: loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break 'conn;
                        }
                        if line.starts_with("QUIT") {
                            return conns;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line.trim_end().to_owned());
                    }
                    let len: usize = head
                        .iter()
                        .find_map(|h| {
                            h.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.parse().unwrap())
                        })
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        break;
                    }
                    seen.push((head, body));
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
                conns.push(seen);
            }
        });
        let req = LoadRequest {
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/EWS/Exchange.asmx"),
            headers: vec![("content-type".into(), "text/xml".into())],
            bodies: vec![
                "<a>é\r\n\"\\</a>".as_bytes().to_vec(),
                b"<b/>".to_vec(),
                (0u8..=255).collect(),
            ],
        };
        let dir = std::env::temp_dir().join(format!("m365-bench-wrk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stats = run(
            &req,
            "test",
            &http::HeaderValue::from_static("Bearer t0ken"),
            WrkOptions {
                connections: 1,
                threads: 1,
                seconds: 1,
                timeout_seconds: 2,
            },
            &dir.join("t"),
        );
        std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap()
            .write_all(b"QUIT\r\n")
            .unwrap();
        let conns = server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let stats = stats.unwrap();
        assert_eq!(stats.non_2xx, 0);
        let seen: Vec<&(Vec<String>, Vec<u8>)> = conns.iter().flatten().collect();
        assert!(seen.len() >= 3, "{}", seen.len());
        assert!(stats.requests > 0 && stats.requests <= seen.len() as u64);
        let index = |body: &[u8]| req.bodies.iter().position(|b| b == body);
        for (head, body) in &seen {
            assert_eq!(head[0], "POST /EWS/Exchange.asmx HTTP/1.1");
            assert!(
                head.iter().any(|h| h == "Authorization: Bearer t0ken"),
                "{head:?}"
            );
            assert!(
                head.iter().any(|h| h == "content-type: text/xml"),
                "{head:?}"
            );
            assert!(index(body).is_some(), "a body not given: {body:?}");
        }
        // On each connection the bodies follow one another in the given order.
        for conn in &conns {
            for w in conn.windows(2) {
                let (a, b) = (index(&w[0].1), index(&w[1].1));
                assert_eq!(b, a.map(|a| (a + 1) % req.bodies.len()));
            }
        }
    }
}
