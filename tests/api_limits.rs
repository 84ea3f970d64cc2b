//! The facade's limits against slow and hostile clients, over HTTPS against real
//! `cofre hsm` and `cofre api` processes (SQLite: the limits are the listener's and the
//! pipeline's, not the store's). No timing assertions: the limits are configured short
//! and each test checks what happens to the connection (closed, or answered `408`/`429`),
//! with generous read timeouts only so a broken build fails instead of hanging.
//! * a connection beyond `max_connections_per_source` is closed at once, and a freed
//!   place is served again;
//! * a client that never finishes its TLS handshake, its request head or its body is
//!   closed (`408 body_timeout` for the body);
//! * failed `/token` calls and failed signatures are throttled: `429` with
//!   `Retry-After`, even for right credentials afterwards;
//! * `/token` requires `grant_type=client_credentials`; `Bearer` in any letter case;
//! * a body that is not JSON is `415`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use api::{CLIENT_1, Db, System, connect_tls, raw_http, request_id, tls_client_config};
use base64::Engine as _;

/// Rewrites the facade's `[limits]` (`name = value` lines) and restarts it.
fn with_limits(sys: &mut System, settings: &[(&str, &str)]) {
    sys.kill_api();
    let path = sys.dir.join("api.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, value) in settings {
        let start = text
            .find(&format!("\n{name} = "))
            .unwrap_or_else(|| panic!("{name} not in api.toml"))
            + 1;
        let end = start + text[start..].find('\n').unwrap();
        text.replace_range(start..end, &format!("{name} = {value}"));
    }
    std::fs::write(&path, text).unwrap();
    sys.restart_api();
}

/// Reads until the peer closes; what was read (an error after bytes counts as closed:
/// a TLS peer may close without close_notify). Panics if nothing closes within a minute.
fn read_until_closed(s: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the facade kept the connection open: {e}")
            }
            Err(_) => return out,
        }
    }
}

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn basic(key: &str, secret: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    format!("Basic {b}")
}

fn token_call(sys: &System, authorization: String, body: &[u8]) -> api::Resp {
    raw_http(
        &sys.addr,
        "POST",
        "/token",
        &[
            ("Authorization", authorization),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
        ],
        body,
    )
}

#[test]
fn connection_cap_per_source() {
    let mut sys = System::start("limits-cap", Db::Sqlite).unwrap();
    with_limits(&mut sys, &[("max_connections_per_source", "2")]);
    // Two idle sockets take the two places (their handshakes wait).
    let held: Vec<TcpStream> = (0..2).map(|_| tcp(&sys.addr)).collect();
    // The third is closed before any handshake: nothing comes back but the close.
    let mut third = tcp(&sys.addr);
    assert!(read_until_closed(&mut third).is_empty());
    // A place freed is served again (the server notices the close asynchronously:
    // try until it has, each try either served or closed at once).
    drop(held);
    let served = (0..200).any(|_| {
        let r = api::try_raw_http(&sys.addr, "GET", "/openapi.json", &[], b"");
        if r.as_ref().is_some_and(|r| r.status == 200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
        false
    });
    assert!(served, "a freed place was never served");
}

#[test]
fn slow_clients_are_closed() {
    let mut sys = System::start("limits-slow", Db::Sqlite).unwrap();
    with_limits(
        &mut sys,
        &[
            ("handshake_timeout", "\"200ms\""),
            ("header_timeout", "\"200ms\""),
            ("body_timeout", "\"200ms\""),
        ],
    );
    // No handshake at all.
    let mut silent = tcp(&sys.addr);
    assert!(read_until_closed(&mut silent).is_empty());
    // A handshake begun and never finished: a ClientHello's first bytes only.
    let mut half = tcp(&sys.addr);
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    assert!(read_until_closed(&mut half).is_empty());
    // A request head never finished.
    let mut head = connect_tls(&sys.addr, tls_client_config()).unwrap();
    head.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    head.flush().unwrap();
    let out = read_until_closed(&mut head);
    assert!(
        out.is_empty() || String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A body that stops short: 408, and the connection closed.
    let mut body = connect_tls(&sys.addr, tls_client_config()).unwrap();
    body.write_all(
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
    )
    .unwrap();
    body.flush().unwrap();
    let out = String::from_utf8_lossy(&read_until_closed(&mut body)).into_owned();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("body_timeout"), "{out}");
    // The same for a signed call's body.
    let c = sys.client(CLIENT_1);
    let mut call = connect_tls(&sys.addr, tls_client_config()).unwrap();
    let mut req = String::from("POST /customer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n");
    for (k, v) in c.headers(&request_id(), 0, b"{}") {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n{\"a\":");
    call.write_all(req.as_bytes()).unwrap();
    call.flush().unwrap();
    let out = String::from_utf8_lossy(&read_until_closed(&mut call)).into_owned();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    // The facade still serves.
    assert_eq!(
        raw_http(&sys.addr, "GET", "/openapi.json", &[], b"").status,
        200
    );
}

#[test]
fn failed_token_calls_are_throttled() {
    let mut sys = System::start("limits-token", Db::Sqlite).unwrap();
    with_limits(&mut sys, &[("auth_failures", "3")]);
    let (_, key, secret) = CLIENT_1;
    let grant = b"grant_type=client_credentials";
    // grant_type is required, and only client_credentials.
    let r = token_call(&sys, basic(key, secret), b"");
    assert_eq!(r.status, 400, "{}", r.text);
    let r = token_call(&sys, basic(key, secret), b"grant_type=password");
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("unsupported_grant_type"), "{}", r.text);
    // The Basic scheme in any letter case.
    let lower = basic(key, secret).replacen("Basic", "bAsIc", 1);
    assert_eq!(token_call(&sys, lower, grant).status, 200);
    for _ in 0..3 {
        let r = token_call(&sys, basic(key, "wrong"), grant);
        assert_eq!(r.status, 401, "{}", r.text);
    }
    // Throttled now, right secret or not, with the wait in whole seconds.
    let r = token_call(&sys, basic(key, secret), grant);
    assert_eq!(r.status, 429, "{}", r.text);
    let wait: u64 = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[test]
fn failed_signatures_are_throttled_and_bearer_is_case_insensitive() {
    let mut sys = System::start("limits-sig", Db::Sqlite).unwrap();
    with_limits(&mut sys, &[("auth_failures", "3")]);
    let c = sys.client(CLIENT_1);
    let body = br#"{"a":1}"#;
    // Bearer in any letter case; a body that is not JSON is 415 (after the signature).
    let mut headers = c.headers(&request_id(), now_ms(), body);
    for (k, v) in &mut headers {
        if *k == "Authorization" {
            *v = v.replacen("Bearer", "bEaReR", 1);
        }
        if *k == "Content-Type" {
            *v = "text/plain".into();
        }
    }
    let r = raw_http(&sys.addr, "POST", "/customer", &headers, body);
    assert_eq!(r.status, 415, "{}", r.text);
    // Three bad signatures, then a good call is refused for the window.
    for _ in 0..3 {
        let mut headers = c.headers(&request_id(), now_ms(), body);
        for (k, v) in &mut headers {
            if *k == "Signature" {
                *v = "0".repeat(64);
            }
        }
        let r = raw_http(&sys.addr, "POST", "/customer", &headers, body);
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = c.call("GET", "/cofre/v1/mass-issues/1", &serde_json::Value::Null);
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(
        r.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
        "{:?}",
        r.headers
    );
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Plain HTTP only when asked for, only on loopback, and never under `--require-tls`
/// (the production unit's flag).
#[test]
fn plain_http_only_on_loopback_and_never_when_tls_is_required() {
    let sys = System::start("limits-plain", Db::Sqlite).unwrap();
    let text = std::fs::read_to_string(sys.dir.join("api.toml")).unwrap();
    let start = text.find("[tls]\n").unwrap();
    let end = start + text[start..].find("\n\n").unwrap() + 2;
    let plain = format!("plain_http = true\n{}{}", &text[..start], &text[end..]);
    let run = |config: &str, args: &[&str]| {
        let path = sys.dir.join("plain.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
            .args(["api", "run", "--config"])
            .arg(&path)
            .args(["--hsm", &sys.hsm.addr, "--hsm-wait", "1"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No [tls] and no plain_http: refused.
    let (code, err) = run(&format!("{}{}", &text[..start], &text[end..]), &[]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("tls"), "{err}");
    // plain_http on a non-loopback address: refused.
    let (code, err) = run(&plain, &["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("loopback"), "{err}");
    // plain_http on loopback under --require-tls (the production unit's flag): refused.
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/cofre-api.service"),
    )
    .unwrap();
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(
        exec.split_whitespace().any(|a| a == "--require-tls"),
        "{exec}"
    );
    let (code, err) = run(&plain, &["--listen", "127.0.0.1:0", "--require-tls"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--require-tls"), "{err}");
    // The positive control: plain HTTP on loopback starts and serves.
    let path = sys.dir.join("plain.toml");
    std::fs::write(&path, &plain).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["api", "run", "--config"])
        .arg(&path)
        .args(["--hsm", &sys.hsm.addr, "--listen", "127.0.0.1:0"])
        .arg("--database")
        .arg(format!(
            "sqlite://{}",
            sys.dir.join("state/plain.db").display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("api listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let mut s = tcp(&addr);
    s.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_until_closed(&mut s)).into_owned();
    assert!(
        out.starts_with("HTTP/1.1 200"),
        "{}",
        &out[..out.len().min(200)]
    );
    let _ = child.kill();
    let _ = child.wait();
}
