//! The client without a daemon: configuration errors, a closed port, and a peer that
//! does not speak TLS all fail quickly with one clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cofre::client::{Client, ClientConfig, ClientError};

fn pki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example/pki")
}

/// An address nothing listens on.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn config(addresses: Vec<String>) -> ClientConfig {
    let mut c = ClientConfig::for_identity(addresses, &pki(), "issuing-host-1");
    c.timeout = Duration::from_secs(5);
    c
}

#[test]
fn command_line_against_a_closed_port_fails_quickly_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["client", "--address", &closed_port(), "health"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("cofre: connection: 127.0.0.1:"), "{err}");
    // Quickly: the operating system's refusal, not the client's timeout running out.
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("no answer within"), "{err}");

    // After the operation `--key` is the request's field, not the client's key file:
    // the call gets as far as connecting.
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["client", "--address", &closed_port(), "mac.generate"])
        .args(["--key", "mac.example.cmac", "--data", "00"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("cofre: connection: "), "{err}");
}

#[test]
fn command_line_usage_errors_need_no_daemon() {
    for (args, expect) in [
        (&["no.such.op"][..], "unknown operation \"no.such.op\""),
        (
            &["health", "--no-such-field", "1"][..],
            "unknown field --no_such_field",
        ),
        (
            &["pin.verify", "--pin-block", "XYZ"][..],
            "--pin_block: not a valid",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["client", "--address", &closed_port()])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(expect), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[tokio::test]
async fn missing_or_empty_files_are_configuration_errors_naming_the_file() {
    let addr = vec![closed_port()];
    let mut c = config(addr.clone());
    c.cert = PathBuf::from("/nonexistent/client.pem");
    let e = Client::connect(c).await.unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
    assert!(e.to_string().contains("/nonexistent/client.pem"), "{e}");

    let mut c = config(addr.clone());
    c.key = PathBuf::from("/nonexistent/key.pem");
    let e = Client::connect(c).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Config(ref m) if m.contains("key.pem")),
        "{e}"
    );

    // A CA file without a certificate in it (here: a private key).
    let mut c = config(addr.clone());
    c.ca = pki().join("client-issuing-host-1-key.pem");
    let e = Client::connect(c).await.unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");

    let e = Client::connect(config(Vec::new())).await.unwrap_err();
    assert!(matches!(e, ClientError::Config(_)), "{e}");
}

#[tokio::test]
async fn failover_reports_every_address_and_a_non_tls_peer_is_a_tls_error() {
    // A peer that answers the ClientHello with plain text and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let not_tls = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 64];
        let _ = s.read(&mut hello);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let dead = closed_port();
    let e = Client::connect(config(vec![dead.clone(), not_tls.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e}");
    let shown = e.to_string();
    assert!(shown.contains(&dead) && shown.contains(&not_tls), "{shown}");
    // Without waiting: the closed port refused and the peer's text broke the handshake
    // (neither ran out the 5 s timeout).
    assert!(shown.contains("refused"), "{shown}");
    assert!(
        !shown.contains("no answer within") && !shown.contains("no handshake within"),
        "{shown}"
    );
    peer.join().unwrap();

    // Only closed ports: a connection error.
    let e = Client::connect(config(vec![closed_port(), closed_port()]))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connection(_)), "{e}");
}
