//! What the mass issue tests share: a request body, the bureau's
//! decryption of embosser file fields, waiting for a batch to end.

use std::time::{Duration, Instant};

use cofre::crypto::cipher::BlockCipher;
use serde_json::{Value, json};

use super::Api;

pub const SPEC: &str = "/cards/mass-card-issue-L8V3";
/// `transport.example` in keys-example/README.md (the bureau's copy).
pub const BUREAU_KEY: &str = "11111111111111112222222222222222";

pub fn expiry_date() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let year: u32 = now[0..4].parse().unwrap();
    format!("{}-12-31", year + 4)
}

pub fn body(logo: i64, quantity: i64) -> Value {
    json!({
        "organizationNumber": 800, "logo": logo, "cardType": 1, "functionType": "A", "status": 1,
        "bankOrigin": 1, "branch": 1, "minimumQuantity": 0, "quantityToCreate": quantity,
        "creditLimit": 0, "blockCode1": "", "blockCode2": "", "embosserCode": "A",
        "promoCode": "", "scheme": 0, "userCode1": 0, "userCode2": 0, "userCode3": 0,
        "customerNumber": "0000000000000000000", "expiryDate": expiry_date(),
        "prepaidCardFlag": 1, "prepaidPlanNumber": 0, "emblem": 0
    })
}

/// IV || TDES-CBC(data || 80 00..) (protocol/README.md, "Transport encryption").
pub fn decrypt(hex_text: &str) -> String {
    let bytes = hex::decode(hex_text).unwrap();
    assert!(
        bytes.len() >= 16 && bytes.len().is_multiple_of(8),
        "bad ciphertext length"
    );
    let (iv, data) = bytes.split_at(8);
    let mut data = data.to_vec();
    BlockCipher::tdes(&hex::decode(BUREAU_KEY).unwrap())
        .unwrap()
        .decrypt_cbc(iv, &mut data)
        .unwrap();
    let end = data.iter().rposition(|&b| b == 0x80).expect("padding");
    assert!(data[end + 1..].iter().all(|&b| b == 0), "padding");
    String::from_utf8(data[..end].to_vec()).unwrap()
}

pub fn wait_done(c: &Api, id: &str) -> (Value, Vec<i64>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let r = c.call("GET", &format!("/cofre/v1/mass-issues/{id}"), &Value::Null);
        r.expect(200);
        let issued = r.json["issued"].as_i64().unwrap();
        seen.push(issued);
        match r.json["state"].as_str().unwrap() {
            "done" | "failed" | "cancelled" => return (r.json.clone(), seen),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "mass issue not done in 120 s: {}",
            r.text
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
