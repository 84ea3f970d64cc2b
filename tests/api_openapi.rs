//! The facade's OpenAPI document and the processor's examples:
//! * `/openapi.json` as served equals the repository's `openapi.json` (regenerate with
//!   `COFRE_WRITE_OPENAPI=1 cargo test --test api_openapi`);
//! * every route the router serves is in the document, every operation in the document
//!   is served, and the cardholder API's paths are there exactly as its documentation
//!   lists them;
//! * the request examples of the processor's spec (built from the `example` of every
//!   property, as the spec gives no whole-body examples; a required field without an
//!   example gets its smallest valid value), sent as they are with a valid signature,
//!   pass the gateway (authentication and schema: never 400/401), and every answer
//!   validates against the spec. Examples that name records which do not exist
//!   here (the spec's sample customer and card numbers) get the documented 422.
//! * `cofre up` starts both services and prints where they listen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use api::{CLIENT_1, Db, System, raw_http};
use cofre::api::openapi::Spec;
use serde_json::{Map, Value};

fn repo_file() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn served_document_matches_the_repository() {
    let sys = System::start("api-openapi", Db::Sqlite).unwrap();
    let r = raw_http(&sys.addr, "GET", "/openapi.json", &[], b"");
    r.expect(200);
    assert_eq!(r.text, cofre::api::http::doc::openapi_text());
    if std::env::var_os("COFRE_WRITE_OPENAPI").is_some() {
        std::fs::write(repo_file(), &r.text).unwrap();
    }
    let file = std::fs::read_to_string(repo_file()).expect("openapi.json in the repository");
    assert!(
        file == r.text,
        "openapi.json differs from what the router serves; regenerate with COFRE_WRITE_OPENAPI=1 cargo test --test api_openapi"
    );
    // Every documented operation is served (unauthenticated: 401, never 404/405).
    let doc: Value = serde_json::from_str(&file).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if path == "/openapi.json" || path == "/token" {
                continue;
            }
            let concrete = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let r = raw_http(&sys.addr, &method.to_ascii_uppercase(), &concrete, &[], b"");
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text);
        }
    }
}

#[test]
fn every_route_is_documented_once() {
    let routes = cofre::api::http::routes::all();
    assert!(
        cofre::api::http::server::duplicate_routes(&routes).is_empty(),
        "{:?}",
        cofre::api::http::server::duplicate_routes(&routes)
    );
    let doc = cofre::api::http::doc::openapi();
    for r in &routes {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is not documented", r.method, r.path);
        assert!(
            op["responses"].is_object(),
            "{} {} has no responses",
            r.method,
            r.path
        );
    }
    // The processor's operations at the spec's paths and at the seed pages' names.
    for (m, p) in [
        ("post", "/customer"),
        ("post", "/customer/l8v2"),
        ("put", "/customer"),
        ("put", "/customer/"),
        ("post", "/customer/activation"),
        ("post", "/account"),
        ("post", "/account/add-L8V3"),
        ("post", "/account/v2/instantCard"),
        ("post", "/cards/embosser"),
        ("post", "/cards/embosser/l8vf"),
        ("put", "/cards/activation"),
        ("post", "/cards/embosser/card-pan-l8v2"),
        ("post", "/cards/mass-card-issue-L8V3"),
        ("get", "/cards/mass-card-issue-L8V3"),
        ("put", "/cards/embosser/cardAction-L8V2"),
        ("post", "/cards/pin/security-codes"),
        ("post", "/cards/v1/pin/codes"),
        ("post", "/cards/pin/dynamic-values"),
        ("post", "/cards/pin/invalid-attempts"),
        ("post", "/cards/pin/validation"),
        ("put", "/cards/embosser/block"),
        ("put", "/cards/pin/status"),
        ("put", "/cards/status-L8V1"),
        ("put", "/cards/credit-limit"),
    ] {
        assert!(doc["paths"][p][m].is_object(), "{m} {p} missing");
    }
    // The cardholder API, paths exactly as its documentation lists them.
    let base = "/api/v1/portadores";
    for (m, p) in [
        ("post", "/contas/pf"),
        ("post", "/contas/pj"),
        ("get", "/{idPortador}"),
        ("get", "/{idPortador}/informacoes"),
        ("get", "/contas"),
        ("get", "/rg"),
        ("get", "/completo/cpf"),
        ("get", "/simplificado/cpf"),
        ("get", "/nomes"),
        ("get", "/cnpj"),
        ("get", "/lote"),
        ("patch", "/{idPortador}"),
        ("patch", "/{idPortador}/limites"),
        ("get", "/{idPortador}/ciclo"),
        ("patch", "/produto"),
        ("post", "/bloqueios"),
        ("post", "/desbloqueios"),
        ("get", "/bloqueios/tipos"),
        ("post", "/{idPortador}/vipagem"),
        ("post", "/{idPortador}/dependentes"),
        ("get", "/{idPortador}/dependentes"),
        ("get", "/dependentes/cpf"),
        ("patch", "/{idPortador}/senha"),
        ("post", "/{idPortador}/senhas/sms"),
        ("get", "/{idPortador}/historico"),
        ("get", "/{idPortador}/limites/historico"),
        ("get", "/{idPortador}/inadimplencias"),
        ("get", "/{idPortador}/ocorrencias"),
        ("post", "/{idPortador}/telefones"),
        ("get", "/{idPortador}/telefones"),
        ("delete", "/{idPortador}/telefones/{idTelefone}"),
        ("post", "/{idPortador}/telefones/recebe-sms"),
        ("get", "/escolaridade"),
        ("get", "/ocupacoes"),
    ] {
        let path = format!("{base}{p}");
        assert!(doc["paths"][&path][m].is_object(), "{m} {path} missing");
    }
}

/// The example body of a schema: every property's `example`, recursively.
fn example(spec: &Spec, schema: &Value, depth: usize) -> Option<Value> {
    let doc = spec.document();
    let mut s = schema;
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")];
    }
    if depth > 12 {
        return None;
    }
    if let Some(e) = s.get("example") {
        // A YAML 1.2 reader takes an unquoted `0995000000000000515` for an integer;
        // the field is a string, as the example's author meant (YAML 1.1 readers agree).
        if s.get("type").and_then(Value::as_str) == Some("string") && e.is_number() {
            let text = e.to_string();
            let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            return Some(Value::String(format!("{text:0>min$}")));
        }
        return Some(e.clone());
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let mut o = Map::new();
        for (k, v) in props {
            if let Some(e) = example(spec, v, depth + 1) {
                o.insert(k.clone(), e);
            }
        }
        // A required field the spec gives no example for gets the smallest valid value.
        for k in s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(k) {
                o.insert(k.to_owned(), minimal(spec, &props[k]));
            }
        }
        return (!o.is_empty()).then_some(Value::Object(o));
    }
    if s.get("type").and_then(Value::as_str) == Some("array") {
        return example(spec, &s["items"], depth + 1).map(|e| Value::Array(vec![e]));
    }
    None
}

/// The schema at a JSON pointer of a value of `schema`.
fn schema_at<'a>(spec: &'a Spec, schema: &'a Value, pointer: &str) -> &'a Value {
    let doc = spec.document();
    let mut s = schema;
    for seg in pointer.split('/').skip(1) {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")];
        }
        s = if seg.bytes().all(|b| b.is_ascii_digit()) && s.get("items").is_some() {
            &s["items"]
        } else {
            &s["properties"][seg]
        };
    }
    s
}

/// Some property examples break their own field's rules (a 19-character example on a
/// 17-character field): documentation slips. Each such value is replaced by the
/// smallest valid one, and the slips are printed.
fn mend_slips(spec: &Spec, schema: &Value, mut body: Value, op: &str) -> Value {
    for _ in 0..64 {
        let Some(v) = spec.validate(schema, &body).into_iter().next() else {
            return body;
        };
        let pointer = v.pointer.clone();
        eprintln!(
            "{op}: the spec's example breaks its own schema at {pointer} ({}); using the smallest valid value",
            v.rule
        );
        let value = minimal(spec, schema_at(spec, schema, &pointer));
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            Some(&mut body)
        } else {
            body.pointer_mut(parent)
        };
        match target {
            Some(Value::Object(o)) => {
                o.insert(key.to_owned(), value);
            }
            Some(Value::Array(a)) => {
                if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *slot = value;
                }
            }
            _ => return body,
        }
    }
    body
}

/// The smallest value a schema accepts (for required fields without an example).
fn minimal(spec: &Spec, schema: &Value) -> Value {
    let doc = spec.document();
    let mut s = schema;
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")];
    }
    match s.get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => s.get("minimum").cloned().unwrap_or(Value::from(0)),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => example(spec, s, 0).unwrap_or(Value::Object(Map::new())),
        _ if s.get("format").and_then(Value::as_str) == Some("date") => Value::from("2026-01-01"),
        _ if s.get("properties").is_some() => {
            example(spec, s, 0).unwrap_or(Value::Object(Map::new()))
        }
        _ => {
            let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            Value::String("0".repeat(min))
        }
    }
}

#[test]
fn processor_examples_pass_the_gateway_and_answers_follow_the_spec() {
    let sys = System::start("api-examples", Db::Sqlite).unwrap();
    let c = sys.client(CLIENT_1);
    let spec = Spec::firstvision();
    let mut accepted = 0;
    for (path, ops) in spec.document()["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let body = if schema.is_null() {
                Value::Null
            } else {
                example(spec, schema, 0).unwrap_or(Value::Null)
            };
            let body = if schema.is_null() {
                body
            } else {
                mend_slips(spec, schema, body, &format!("{method} {path}"))
            };
            let mut target = path.clone();
            if method == "get" {
                // Query parameters from their examples.
                let q: Vec<String> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "query")
                    .map(|p| {
                        let v = p["example"].clone();
                        let v = if v.is_null() {
                            p["schema"]["example"].clone()
                        } else {
                            v
                        };
                        let text = match v {
                            Value::String(s) => s,
                            Value::Null => "1".into(),
                            other => other.to_string(),
                        };
                        format!("{}={}", p["name"].as_str().unwrap(), text)
                    })
                    .collect();
                target = format!("{path}?{}", q.join("&"));
            }
            let r = c.call(&method.to_ascii_uppercase(), &target, &body);
            assert!(
                ![400, 401, 404, 405, 413].contains(&r.status),
                "{method} {path}: the spec's example was refused at the gateway: {} {}\nbody sent: {body}",
                r.status,
                r.text
            );
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text);
            r.check(method, path);
            if r.status == 200 {
                accepted += 1;
            }
            eprintln!("{method} {path}: {} {}", r.status, r.code());
        }
    }
    // The customer example is self-contained: it must be executed, not just admitted.
    assert!(accepted >= 1, "no example was executed");
    let log = sys.api_log();
    assert!(!log.contains("response breaks the spec"), "{log}");
}

#[test]
fn cofre_up_starts_both() {
    let dir = api::daemon::scratch("up");
    // As on a fresh checkout: no state yet (the daemon and the facade create it).
    let _ = std::fs::remove_dir_all(dir.join("state"));
    let ports: Vec<String> = (0..3)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["up", "--dir"])
        .arg(&dir)
        .args([
            "--hsm-listen",
            &ports[0],
            "--metrics-listen",
            &ports[1],
            "--api-listen",
            &ports[2],
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("cofre up did not report both listeners within 60 s: {seen:?}");
            }
        }
    }
    assert!(
        seen.iter()
            .any(|l| l == &format!("listening on {}", ports[0])),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l == &format!("api listening on http://{}", ports[2])),
        "{seen:?}"
    );
    let r = raw_http(&ports[2], "GET", "/openapi.json", &[], b"");
    r.expect(200);
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{}", CLIENT_1.1, CLIENT_1.2),
    );
    let t = raw_http(
        &ports[2],
        "POST",
        "/token",
        &[("Authorization", format!("Basic {basic}"))],
        b"grant_type=client_credentials",
    );
    t.expect(200);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        dir.join("state/working-copy/state/api.db").exists(),
        "the SQLite file is created on first start, in the working copy"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
