//! SMS delivery of the cardholder API through its HTTP gateway (issue 17 item 9), against
//! a stub gateway this test starts on loopback, with real `cofre hsm` and `cofre api`
//! processes on SQLite and PostgreSQL:
//! * the confirmation code reaches the gateway (with its bearer token) and confirms the
//!   phone; a gateway error (503) is retried, and the message ends `sent`;
//! * the PIN reaches the gateway as a PIN block under the PIN-delivery key, and the PIN
//!   it holds validates at `/cards/pin/validation`;
//! * a message the gateway refuses (400) ends `failed` at once;
//! * every message that left the queue has its payload erased.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_portadores_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::{CLIENT_1, Db, System};
use api_portadores_common::{BASE, cpf, pf_example};
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock, decipher};
use cofre::protocol::{Opcode, Status, Tag};
use serde_json::{Value, json};

/// Clear value of `pin-delivery.example` (keys-example/README.md).
const PIN_DELIVERY: &str = "5B5B5B5B5B5B5B5B6D6D6D6D6D6D6D6D";
const TOKEN: &str = "gateway-token-for-tests";

/// What the stub gateway saw and what it answers next.
#[derive(Default)]
struct Stub {
    /// Bodies received, with their Authorization header.
    received: Vec<(String, Value)>,
    /// Statuses to answer, in order (then 202).
    script: Vec<u16>,
    /// Destinations refused with 400.
    refuse: Vec<String>,
}

fn start_stub() -> (String, Arc<Mutex<Stub>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stub = Arc::new(Mutex::new(Stub::default()));
    let shared = Arc::clone(&stub);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut length, mut auth) = (0usize, String::new());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    auth = h["authorization:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            let status = {
                let mut s = shared.lock().unwrap();
                let refused = s.refuse.iter().any(|p| body["para"] == p.as_str());
                let status = if refused {
                    400
                } else if s.script.is_empty() {
                    202
                } else {
                    s.script.remove(0)
                };
                s.received.push((auth, body));
                status
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (addr, stub)
}

fn outbox(sys: &System) -> Vec<(i64, String, String, String, i64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let rows = sqlx::query_as("SELECT id, purpose, status, payload_hex, attempts FROM sms_outbox ORDER BY created_ms, id")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    })
}

/// Waits (up to two minutes: the worker runs every second) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not reached");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn clear_pan(sys: &System, token: &str) -> String {
    let mut raw = sys.hsm.connect("issuing-host-1");
    let r = raw.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, token);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    r.str(Tag::Pan)
}

fn sms(db: Db) {
    let edits = [(
        "pin_delivery_transport_keys = true",
        "pin_delivery_transport_keys = false",
    )];
    let Some(mut sys) = System::start_with_hsm_edits("api-portadores-sms", db, &edits) else {
        return;
    };
    let (addr, stub) = start_stub();
    // The facade again, with the gateway configured.
    sys.kill_api();
    std::fs::write(sys.dir.join("sms-token.txt"), format!("{TOKEN}\n")).unwrap();
    let config = sys.dir.join("api.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "# gateway = \"http://127.0.0.1:8090/sms\"",
        &format!("gateway = \"http://{addr}/sms\"\ngateway_token_file = \"sms-token.txt\""),
    );
    let text = text
        .replace("max_attempts = 6", "max_attempts = 4")
        .replace("retry_base = \"5s\"", "retry_base = \"50ms\"");
    assert!(text.contains(&addr));
    std::fs::write(&config, text).unwrap();
    sys.restart_api();
    let c = sys.client(CLIENT_1);

    let mut pf = pf_example(&cpf());
    pf["telefones"] = json!([{"tipo": "CELULAR", "area": "83", "telefone": "999990000", "receberSMS": true},
        {"tipo": "CELULAR", "area": "11", "telefone": "912345678"}]);
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf);
    r.expect(201);
    let id = r.json["idPortador"].as_i64().unwrap();
    let (mobile, refused) = (
        r.json["telefones"][0]["id"].as_i64().unwrap(),
        r.json["telefones"][1]["id"].as_i64().unwrap(),
    );

    // The code: the gateway answers 503 once, then takes it.
    stub.lock().unwrap().script = vec![503];
    c.call(
        "POST",
        &format!("{BASE}/{id}/telefones/recebe-sms"),
        &json!({"idTelefone": mobile}),
    )
    .expect(200);
    wait_for("code sent", || {
        outbox(&sys).iter().any(|m| m.1 == "code" && m.2 == "sent")
    });
    let (auth, body) = stub.lock().unwrap().received.last().cloned().unwrap();
    assert_eq!(auth, format!("Bearer {TOKEN}"));
    assert_eq!(
        (body["para"].as_str(), body["tipo"].as_str()),
        (Some("+5583999990000"), Some("texto"))
    );
    assert_eq!(
        stub.lock().unwrap().received.len(),
        2,
        "the 503 was retried once"
    );
    let code: String = body["texto"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    let r = c.call(
        "POST",
        &format!("{BASE}/{id}/telefones/recebe-sms"),
        &json!({"idTelefone": mobile, "codigo": code}),
    );
    r.expect(200);
    assert_eq!(r.json["status"], "CONFIRMADO");

    // The PIN under the PIN-delivery key; it validates.
    c.call("POST", &format!("{BASE}/{id}/senhas/sms"), &json!({}))
        .expect(200);
    wait_for("PIN sent", || {
        outbox(&sys).iter().any(|m| m.1 == "pin" && m.2 == "sent")
    });
    let body = stub.lock().unwrap().received.last().cloned().unwrap().1;
    assert_eq!(body["tipo"], "senha");
    let v = c.call("GET", &format!("{BASE}/{id}"), &Value::Null);
    let token = v.json["cartao"].as_str().unwrap().to_owned();
    let pan = clear_pan(&sys, token.trim_start_matches('0'));
    let key = BlockCipher::tdes(&hex::decode(PIN_DELIVERY).unwrap()).unwrap();
    let block =
        PinBlock::from_bytes(&hex::decode(body["blocoSenha"].as_str().unwrap()).unwrap()).unwrap();
    let pin = decipher(Format::Iso0, &key, &block, Some(&Pan::new(&pan).unwrap())).unwrap();
    let zpk_block = hex::encode_upper(api::daemon::iso0_block(&pan, pin.expose_secret()));
    let r = api::flow::validate(&c, &token, &zpk_block);
    r.expect(200);

    // A destination the gateway refuses: failed at once, not retried.
    stub.lock().unwrap().refuse.push("+5511912345678".into());
    let before = stub.lock().unwrap().received.len();
    c.call(
        "POST",
        &format!("{BASE}/{id}/telefones/recebe-sms"),
        &json!({"idTelefone": refused}),
    )
    .expect(200);
    wait_for("refused message failed", || {
        outbox(&sys)
            .iter()
            .any(|m| m.1 == "code" && m.2 == "failed")
    });
    assert_eq!(stub.lock().unwrap().received.len(), before + 1);
    // Nothing that left the queue keeps its payload.
    for (id, purpose, status, payload, attempts) in outbox(&sys) {
        assert!(
            status == "sent" || status == "failed",
            "{id} {purpose} {status}"
        );
        assert!(
            payload.is_empty(),
            "message {id} ({purpose}, {status}) kept its payload"
        );
        assert!(attempts >= 1);
    }

    // Secrecy: neither the database nor the facade's log holds the PAN, the delivered
    // PIN block, the confirmation text, the PIN-delivery key or the gateway's token.
    // (The dump plants and finds its own control; the log's control is the retried
    // 503's warning, which it must hold.)
    let dump = sys.dump_database();
    let log = sys.api_log();
    assert!(
        log.contains("SMS not delivered yet"),
        "the log read is the facade's"
    );
    let delivered = body["blocoSenha"].as_str().unwrap().to_owned();
    let code_text = format!("é {code}");
    for (what, secret) in [
        ("PAN", pan.as_str()),
        ("PAN digits 7-15", &pan[6..15]),
        ("delivered PIN block", delivered.as_str()),
        ("PIN block under the ZPK", zpk_block.as_str()),
        ("confirmation text", code_text.as_str()),
        ("PIN-delivery key", PIN_DELIVERY),
        ("gateway token", TOKEN),
    ] {
        assert!(!dump.contains(secret), "{what} in the database");
        assert!(!log.contains(secret), "{what} in the facade log");
    }
}

#[test]
fn sms_sqlite() {
    sms(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn sms_postgres() {
    sms(Db::Postgres);
}
