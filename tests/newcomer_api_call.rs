//! `cofre api call` over HTTPS: a TLS server with the example set's server certificate
//! (`keys-example/pki/server.pem`, SAN 127.0.0.1) stands in for a facade that serves TLS,
//! records what it receives and answers a token, then the call. Checked: the call is
//! signed as the facade verifies it (the signature recomputed here with
//! `cofre::api::auth::signature` over the received headers and body), the answer is
//! printed, a certificate from another CA is refused (exit 69), and an `https://` URL
//! without `--ca` is a usage error (exit 64).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("keys-example/pki")
        .join(name)
}

/// Serves two TLS connections (the token, then the call) on a free port; returns the
/// port and what each connection sent.
fn tls_server() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pki("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki("server-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                loop {
                    let n = tls.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    assert!(n > 0, "connection closed mid-request");
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                record.lock().unwrap().push(request);
                // As the facade: a token for /token; a token it does not know refused.
                let (status, body) = if text.starts_with("POST /token ") {
                    (
                        "200 OK",
                        r#"{"access_token":"tok-123","token_type":"Bearer","expires_in":900}"#,
                    )
                } else if text.contains("Authorization: Bearer tok-123\r\n") {
                    ("200 OK", r#"{"customerNumber":"0000000000000000042"}"#)
                } else {
                    (
                        "401 Unauthorized",
                        r#"{"error":{"type":"APIM","code":"invalid_token","message":"invalid or expired token"}}"#,
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                tls.write_all(answer.as_bytes()).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });
    });
    (port, seen)
}

fn header<'a>(request: &'a str, name: &str) -> &'a str {
    request
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .unwrap_or_else(|| panic!("no {name} in {request}"))
}

fn cofre(args: &[&str]) -> (Option<i32>, String, String) {
    cofre_with_runtime_dir(args, None)
}

/// Runs `cofre` with `XDG_RUNTIME_DIR` set to `runtime`, or unset (no token cache).
fn cofre_with_runtime_dir(
    args: &[&str],
    runtime: Option<&std::path::Path>,
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cofre"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(args);
    match runtime {
        Some(dir) => cmd.env("XDG_RUNTIME_DIR", dir),
        None => cmd.env_remove("XDG_RUNTIME_DIR"),
    };
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_signed_call_over_https_verified_against_the_ca() {
    let (port, seen) = tls_server();
    let url = format!("https://127.0.0.1:{port}");
    let ca = pki("ca.pem");
    let (code, out, err) = cofre(&[
        "api",
        "call",
        "POST",
        "/customer",
        "--body",
        r#"{"customerData": {"a": 1}}"#,
        "--set",
        "customerData.b=x",
        "--url",
        &url,
        "--ca",
        ca.to_str().unwrap(),
        "--request-id",
        "req-https-1",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        "HTTP 200\n{\n  \"customerNumber\": \"0000000000000000042\"\n}\n"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let token = String::from_utf8(requests[0].clone()).unwrap();
    assert!(token.starts_with("POST /token HTTP/1.1\r\n"), "{token}");
    assert!(token.ends_with("grant_type=client_credentials"), "{token}");
    let call = String::from_utf8(requests[1].clone()).unwrap();
    assert!(call.starts_with("POST /customer HTTP/1.1\r\n"), "{call}");
    let body = call.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body, r#"{"customerData":{"a":1,"b":"x"}}"#);
    assert_eq!(header(&call, "Authorization"), "Bearer tok-123");
    assert_eq!(header(&call, "apikey"), "example-api-key");
    assert_eq!(header(&call, "X-ClientID"), "example-client");
    assert_eq!(header(&call, "X-Client-Request-Id"), "req-https-1");
    let expected = cofre::api::auth::signature(
        b"example-secret-not-for-production",
        "example-api-key",
        "req-https-1",
        header(&call, "Timestamp"),
        body.as_bytes(),
    );
    assert_eq!(header(&call, "Signature"), expected);
    // Positive control for the grep below: the secret is what signs.
    let other = cofre::api::auth::signature(
        b"another-secret",
        "example-api-key",
        "req-https-1",
        header(&call, "Timestamp"),
        body.as_bytes(),
    );
    assert_ne!(header(&call, "Signature"), other);
    for text in [&out, &err, &call] {
        assert!(!text.contains("example-secret-not-for-production"));
    }
}

#[test]
fn a_facade_certificate_from_another_ca_is_refused() {
    let (port, seen) = tls_server();
    let url = format!("https://127.0.0.1:{port}");
    // The server certificate is not a CA: nothing chains to it.
    let wrong_ca = pki("client-facade-1.pem");
    let (code, out, err) = cofre(&[
        "api",
        "call",
        "GET",
        "/openapi.json",
        "--url",
        &url,
        "--ca",
        wrong_ca.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(69), "{out}{err}");
    assert!(err.contains("TLS with 127.0.0.1"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "nothing was sent");

    let (code, _, err) = cofre(&["api", "call", "GET", "/openapi.json", "--url", &url]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("needs --ca"), "{err}");
}

#[test]
fn the_token_is_kept_between_runs_and_renewed_when_the_facade_forgets_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let (port, seen) = tls_server();
    let url = format!("https://127.0.0.1:{port}");
    let ca = pki("ca.pem");
    let runtime = std::env::temp_dir().join(format!("cofre-runtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runtime);
    std::fs::create_dir_all(&runtime).unwrap();
    let args = [
        "api",
        "call",
        "GET",
        "/customer",
        "--url",
        &url,
        "--ca",
        ca.to_str().unwrap(),
    ];
    let paths = || -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|r| {
                let t = String::from_utf8_lossy(r).into_owned();
                t.split(' ').take(2).collect::<Vec<_>>().join(" ")
            })
            .collect()
    };

    // First run: a token, then the call; the token is kept, readable by the user alone.
    let (code, out, err) = cofre_with_runtime_dir(&args, Some(&runtime));
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(paths(), ["POST /token", "GET /customer"]);
    let kept: Vec<_> = std::fs::read_dir(runtime.join("cofre"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mode = std::fs::metadata(&kept[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(runtime.join("cofre"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(text.trim_end().ends_with(" tok-123"), "{text}");
    assert!(!text.contains("example-secret-not-for-production"));

    // Second run: the kept token, no /token.
    let (code, out, err) = cofre_with_runtime_dir(&args, Some(&runtime));
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(paths()[2..], ["GET /customer"]);

    // The facade restarted (it no longer knows the kept token): refused, then a new
    // token and the call again, which succeeds.
    let expires = text.split(' ').next().unwrap();
    std::fs::write(&kept[0], format!("{expires} tok-old\n")).unwrap();
    let (code, out, err) = cofre_with_runtime_dir(&args, Some(&runtime));
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        paths()[3..],
        ["GET /customer", "POST /token", "GET /customer"]
    );
    assert!(
        std::fs::read_to_string(&kept[0])
            .unwrap()
            .contains("tok-123")
    );

    // --no-token-cache: a token every time.
    let mut no_cache = args.to_vec();
    no_cache.push("--no-token-cache");
    let (code, _, _) = cofre_with_runtime_dir(&no_cache, Some(&runtime));
    assert_eq!(code, Some(0));
    assert_eq!(paths()[6..], ["POST /token", "GET /customer"]);
    let _ = std::fs::remove_dir_all(&runtime);
}
