//! What the cardholder API's tests share: the document's payloads made valid, random
//! documents, and the problem+json checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::RngExt;
use serde_json::{Value, json};

use crate::api::{Api, Resp, System};

/// The tree's prefix.
pub const BASE: &str = "/api/v1/portadores";

/// A fixture of `tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A random valid CPF.
pub fn cpf() -> String {
    let mut d: Vec<u32> = (0..9).map(|_| rand::rng().random_range(0..10)).collect();
    for n in [9usize, 10] {
        let sum: u32 = (0..n).map(|i| d[i] * (n as u32 + 1 - i as u32)).sum();
        d.push((sum * 10) % 11 % 10);
    }
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect()
}

/// The document's PF example (`tests/fixtures/portador-pf.json`) with valid documents
/// in place of its three fictitious ones (holder CPF `holder`).
pub fn pf_example(holder: &str) -> Value {
    let mut pf = fixture("portador-pf.json");
    pf["cpf"] = json!(holder);
    pf["adicionais"][0]["cpf"] = json!(cpf());
    pf["enderecoComercial"]["cnpj"] = json!("22130511000160");
    pf
}

/// Opens the PF example for `holder`; returns the answer (201 checked).
pub fn open_pf(c: &Api, holder: &str) -> Resp {
    let r = c.call("POST", &format!("{BASE}/contas/pf"), &pf_example(holder));
    r.expect(201);
    r
}

/// Asserts a problem+json answer in Portuguese with `status` and `code`.
pub fn problem(r: &Resp, status: u16, code: &str) {
    r.expect(status);
    assert_eq!(r.code(), code, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    for k in ["type", "title", "status", "detail", "code"] {
        assert!(!r.json[k].is_null(), "{k} missing: {}", r.text);
    }
    assert_english_free(&r.json["detail"]);
    assert_english_free(&r.json["title"]);
    if let Some(params) = r.json["invalid-params"].as_array() {
        for p in params {
            assert_english_free(&p["reason"]);
        }
    }
}

/// Fails on a text written in English (common English words that Portuguese text
/// never has).
pub fn assert_english_free(v: &Value) {
    let text = format!(" {} ", v.as_str().unwrap_or("").to_lowercase());
    for w in [
        " the ",
        " is ",
        " not ",
        " must ",
        " no such ",
        " this ",
        " of ",
        " and ",
        " required",
        " invalid ",
    ] {
        assert!(!text.contains(w), "English in {text:?}");
    }
}

/// The invalid-params names of a 422.
pub fn invalid_names(r: &Resp) -> Vec<String> {
    r.json["invalid-params"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The invalid-param `name`'s code.
pub fn param_code(r: &Resp, name: &str) -> String {
    r.json["invalid-params"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{name} not listed: {}", r.text))
}

/// Rows of `sql` on the facade's database.
pub fn query<T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>>(
    sys: &System,
    sql: &str,
) -> Vec<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    })
}

/// Runs one statement on the facade's database (a test ageing a record, say).
pub fn execute(sys: &System, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// The confirmation code in an outbox payload, opened with the facade key.
pub fn sent_code(sys: &System, payload: &[u8]) -> String {
    let key =
        cofre::api::clients::load_facade_key(Some(&sys.dir.join("api-facade-key.txt"))).unwrap();
    let seal = cofre::api::http::FacadeSeal::new(&key);
    use cofre::api::store::AnswerSeal;
    let text = String::from_utf8(
        seal.open(std::str::from_utf8(payload).unwrap())
            .expect("the sealed text opens"),
    )
    .unwrap();
    let code: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(code.len(), 6, "{text}");
    code
}
