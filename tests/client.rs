//! The client library and `cofre client` against a live daemon: typed calls, many
//! concurrent calls pipelined on one connection, failover across addresses, a daemon
//! that goes away, and the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use std::process::Command;

use cofre::client::{Card, Client, ClientConfig, ClientError, PinReference, Verification};
use cofre::crypto::pan::{self, Pan};
use cofre::crypto::{ClearKey, Pin, cvv, pvv};
use cofre::protocol::{Status, Tag};
use daemon::Daemon;

const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";

fn config(addresses: Vec<String>, identity: &str) -> ClientConfig {
    ClientConfig::for_identity(addresses, &daemon::example_dir().join("pki"), identity)
}

fn block(pan: &str, pin: &str) -> Vec<u8> {
    daemon::iso0_block(pan, pin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_pipelining_and_failover() {
    let d = Daemon::start("client");
    let client = Client::connect(config(vec![d.addr.clone()], "issuing-host-1"))
        .await
        .unwrap();
    let h = client.health().await.unwrap();
    assert_eq!(h.str(Tag::LmkKcv).unwrap(), "35146C");

    let pan = "4111111111111111";
    let t = client.tokenise(pan).await.unwrap();
    let token = t.str(Tag::Token).unwrap();
    assert_eq!(
        client
            .detokenise(&token, t.u32(Tag::TokenVersion))
            .await
            .unwrap(),
        pan
    );
    let card = Card::Token {
        token: token.clone(),
        version: None,
    };

    let pvk = pvv::Pvk::new(&ClearKey::from_hex(ZPK).unwrap()).unwrap();
    let pvv = pvv::visa_pvv(&pvk, 1, &Pin::new("1234").unwrap(), &Pan::new(pan).unwrap())
        .unwrap()
        .to_string();
    let reference = PinReference::Pvv { pvv, pvki: 1 };
    let ok = client
        .pin_verify(
            &card,
            "zpk.example",
            0,
            &block(pan, "1234"),
            "pvk.example",
            &reference,
        )
        .await
        .unwrap();
    assert!(matches!(ok, Verification::Verified { .. }));
    for _ in 0..3 {
        let v = client
            .pin_verify(
                &card,
                "zpk.example",
                0,
                &block(pan, "0000"),
                "pvk.example",
                &reference,
            )
            .await
            .unwrap();
        assert_eq!(v, Verification::Failed);
    }
    let v = client
        .pin_verify(
            &card,
            "zpk.example",
            0,
            &block(pan, "1234"),
            "pvk.example",
            &reference,
        )
        .await
        .unwrap();
    assert_eq!(v, Verification::Locked);
    client.pin_attempts_reset(&card).await.unwrap();
    // A wrong key usage is an error naming the status, without the PAN.
    let e = client
        .cvv_generate(&Card::Pan(pan.into()), "pvk.example", "2812", "201")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Status {
                status: Status::WrongKeyUsage,
                ..
            }
        ),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains(pan));

    // 400 concurrent calls on one connection (in-flight capped at 64 by the client):
    // every answer reaches its own caller.
    let cvk = cvv::Cvk::new(&ClearKey::from_hex(ZPK).unwrap()).unwrap();
    let mut rng = rand::rng();
    let pans: Vec<Pan> = (0..400)
        .map(|_| pan::generate("411111", 16, &mut rng).unwrap())
        .collect();
    let mut cfg = config(vec![d.addr.clone()], "issuing-host-1");
    cfg.max_in_flight = 64;
    let one = Client::connect(cfg).await.unwrap();
    let tasks: Vec<_> = pans
        .iter()
        .map(|p| {
            let c = one.clone();
            let digits = p.digits().to_owned();
            tokio::spawn(async move {
                c.cvv_generate(&Card::Pan(digits), "cvk.example", "2812", "201")
                    .await
                    .unwrap()
                    .str(Tag::Cvv)
                    .unwrap()
            })
        })
        .collect();
    for (p, t) in pans.iter().zip(tasks) {
        let expected = cvv::generate(&cvk, p, "2812", "201")
            .unwrap()
            .expose_secret();
        assert_eq!(t.await.unwrap(), expected);
    }

    // Failover: a dead address first, then the daemon.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut cfg = config(vec![dead_addr.clone(), d.addr.clone()], "issuing-host-1");
    cfg.connections = 2;
    let failover = Client::connect(cfg).await.unwrap();
    assert!(failover.health().await.is_ok());
    // Only dead addresses: a connection error.
    let e = Client::connect(config(vec![dead_addr], "issuing-host-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connection(_)), "{e}");

    // Key administration through the typed calls.
    let so = Client::connect(config(vec![d.addr.clone()], "security-officer-1"))
        .await
        .unwrap();
    so.key_generate("mac.client", "mac", Some("aes"))
        .await
        .unwrap();
    assert_eq!(so.key_rotate("mac.client").await.unwrap(), 2);
    assert!(so.key_list().await.unwrap().contains("mac.client v2"));
    drop(d);
    // The daemon is gone: calls fail with a connection error, not a hang.
    let e = client.health().await.unwrap_err();
    assert!(
        matches!(e, ClientError::Connection(_) | ClientError::Timeout(_)),
        "{e}"
    );
}

fn cli(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["client", "--address", &d.addr])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn command_line_client() {
    let d = Daemon::start("client-cli");
    let (ok, out, _) = cli(&d, &["health"]);
    assert!(ok);
    assert!(
        out.starts_with("ok server_version=") && out.contains("lmk_kcv=35146C"),
        "{out}"
    );
    let (ok, out, _) = cli(
        &d,
        &[
            "--json",
            "cvv.generate",
            "--pan",
            "4111111111111111",
            "--key",
            "cvk.example",
            "--expiry",
            "2812",
            "--service-code",
            "201",
        ],
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["cvv"], "812");
    let b = hex::encode_upper(block("4111111111111111", "9999"));
    let (ok, _, err) = cli(
        &d,
        &[
            "pin.verify",
            "--pan",
            "4111111111111111",
            "--key",
            "zpk.example",
            "--format",
            "0",
            "--pin-block",
            &b,
            "--pvk",
            "pvk.example",
            "--pvv",
            "1234",
        ],
    );
    assert!(!ok);
    assert!(err.contains("verification_failed"), "{err}");
    let (ok, _, err) = cli(
        &d,
        &[
            "--identity",
            "atm-switch-1",
            "cvv.generate",
            "--pan",
            "4111111111111111",
        ],
    );
    assert!(!ok && err.contains("not_authorised"), "{err}");
    // key.list prints a table: a header, then one aligned row per key version.
    let (ok, out, err) = cli(&d, &["--identity", "security-officer-1", "key.list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ok");
    assert!(
        lines[1].starts_with("ID ")
            && lines[1].contains("  KCV  ")
            && lines[1].contains("EXPORTABLE"),
        "{out}"
    );
    let kcv_column = lines[1].find("KCV").unwrap();
    let zpk = lines
        .iter()
        .find(|l| l.starts_with("zpk.example "))
        .expect("zpk.example row");
    assert_eq!(&zpk[kcv_column..kcv_column + 6], "08D7B4", "{out}");
    assert!(!out.contains("\\n") && !out.contains("listing="), "{out}");
    let (ok, _, err) = cli(&d, &["no.such.op"]);
    assert!(!ok && err.contains("unknown operation"), "{err}");
    let (ok, _, err) = cli(&d, &["health", "--format", "x"]);
    assert!(!ok && err.contains("--format"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

#[test]
fn command_line_client_without_a_daemon_fails_quickly() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["client", "--address", &addr, "health"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("connection"), "{err}");
    // Quickly: the operating system's refusal, not the client's timeout running out.
    assert!(
        err.contains("refused") && !err.contains("no answer within"),
        "{err}"
    );
    // A missing certificate is a configuration error.
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args([
            "client",
            "--address",
            &addr,
            "--cert",
            "/nonexistent.pem",
            "health",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("client configuration")
    );
}
