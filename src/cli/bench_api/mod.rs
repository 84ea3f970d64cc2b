//! `cofre bench --api --spawn`: load against the REST facade with signed calls, over a
//! real daemon and a real database (SQLite in a private copy of the example set, or a
//! fresh PostgreSQL database with `--api-database postgres://...`). Closed loop:
//! `--connections x --depth` keep-alive HTTP connections, one call in flight each.
//!
//! Operations (`--operation`, default all, in this order):
//! * `issue`: customer + account + embosser card, three signed calls per flow; its
//!   `--api-cards` flows (at least 10,000 by default) are the data set of the others;
//! * `pan-lookup`: `card-pan-l8v2` (function C) of a random card;
//! * `pin-validation`: a random active card's PIN, ISO format 0 under the example ZPK,
//!   with `--wrong-pins` percent of wrong PINs (answered `422 invalid_pin`, counted as
//!   expected, not as errors);
//! * `mass-issue`: one request of `--mass-cards` cards, timed from the request to
//!   `done` in the progress call.
//!
//! The PIN validation data set (the cards activated, their PINs read from the security
//! codes under the example transport key, their PANs from the daemon as the issuing
//! host) is prepared after `issue` and not timed. Output rows are the daemon bench's:
//! one line (or JSON object with `--json`) per operation.

mod http;
mod load;
mod spawn;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use http::{Connection, Credentials};
use load::{Outcome, Report, Target};

use crate::crypto::cipher::BlockCipher;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format, PinBlock};

/// The facade benchmark's own options (`cofre bench --api ...`).
#[derive(Debug, Clone, Args)]
pub struct ApiBenchArgs {
    /// Load the REST facade instead of the daemon (with --spawn: starts both).
    #[arg(long)]
    pub api: bool,
    /// Cards issued by the `issue` operation (the data set of the others); the daemon
    /// bench's `--cards` is a different data set.
    #[arg(long, default_value_t = 10_000)]
    pub api_cards: usize,
    /// Cards of the `mass-issue` request.
    #[arg(long, default_value_t = 100_000)]
    pub mass_cards: u64,
    /// Percent of PIN validations sent with a wrong PIN.
    #[arg(long, default_value_t = 5)]
    pub wrong_pins: u32,
    /// Cards whose PIN the `pin-validation` operation uses (prepared, not timed).
    #[arg(long, default_value_t = 2_000)]
    pub pin_cards: usize,
    /// A PostgreSQL server URL: the facade runs on a fresh database there.
    #[arg(long)]
    pub api_database: Option<String>,
}

const OPERATIONS: &[&str] = &["issue", "pan-lookup", "pin-validation", "mass-issue"];

/// The example API client (keys-example/README.md documents its secret).
const CLIENT: (&str, &str, &str) = (
    "example-client",
    "example-api-key",
    "example-secret-not-for-production",
);

/// What `run` needs of the common bench options.
#[derive(Debug, Clone)]
pub struct Common {
    /// `--spawn` (required).
    pub spawn: bool,
    /// HTTP connections = connections x depth.
    pub connections: usize,
    /// Seconds per timed operation.
    pub duration: u64,
    /// `--operation`.
    pub operation: String,
    /// `--json`.
    pub json: bool,
    /// The example set.
    pub keys: PathBuf,
}

fn clear_key(keys: &Path, name: &str) -> Result<BlockCipher, String> {
    let path = keys.join("clear").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hex_text = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("component = "))
        .ok_or_else(|| format!("{}: no component line", path.display()))?;
    let bytes = hex::decode(hex_text.trim()).map_err(|_| format!("{}: not hex", path.display()))?;
    BlockCipher::tdes(&bytes).map_err(|e| e.to_string())
}

/// `cofre bench --api`: the common options taken from the daemon bench's.
pub fn run_from(args: &crate::cli::bench::BenchArgs) -> Result<String, String> {
    let common = Common {
        spawn: args.spawn,
        connections: args.connections.max(1) * args.depth.max(1),
        duration: args.duration,
        operation: args.operation.clone(),
        json: args.json,
        keys: args.keys.clone(),
    };
    run(&common, &args.api)
}

/// Runs the facade benchmark; returns the report.
pub fn run(common: &Common, args: &ApiBenchArgs) -> Result<String, String> {
    if !common.spawn {
        return Err("cofre bench --api needs --spawn (it starts the daemon and the facade)".into());
    }
    let names: Vec<&str> = match common.operation.as_str() {
        "all" => OPERATIONS.to_vec(),
        op if OPERATIONS.contains(&op) => vec![op],
        op => {
            return Err(format!(
                "unknown API operation {op:?} (one of: {}, all)",
                OPERATIONS.join(", ")
            ));
        }
    };
    let system = spawn::start_system(&common.keys, args.api_database.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let db_kind = if system.database.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let mut out = Vec::new();
    runtime.block_on(async {
        let mut creds = Credentials::new(CLIENT.0, CLIENT.1, CLIENT.2);
        Connection::open(&system.api.addr)
            .await?
            .token(&mut creds)
            .await?;
        let creds = Arc::new(creds);
        let target = Target {
            addr: system.api.addr.clone(),
            creds: Arc::clone(&creds),
            connections: common.connections.max(1),
        };
        // The data set: `issue` is always run (timed only when asked for).
        let (mut report, cards) = issue(&target, args.api_cards).await?;
        if names.contains(&"issue") {
            out.push(report.line("issue", db_kind, common.json));
        }
        let duration = Duration::from_secs(common.duration.max(1));
        if names.contains(&"pan-lookup") {
            let cards = Arc::new(cards.clone());
            let mut r = load::closed_loop(&target, duration, move |i| {
                let card = &cards[i % cards.len()];
                (
                    "POST",
                    "/cards/embosser/card-pan-l8v2".to_owned(),
                    json!({"organizationNumber": 800, "cardNumber": card, "cardSequence": 1,
                        "functionType": "C"}),
                    None,
                )
            })
            .await?;
            out.push(r.line("pan-lookup", db_kind, common.json));
        }
        if names.contains(&"pin-validation") {
            let blocks = Arc::new(pin_data(&target, &system, &common.keys, &cards, args).await?);
            // Wrong PINs go to their own tenth of the cards, which lock after a few
            // (`pin_locked` is then their expected answer); the others only ever get
            // their right PIN, so they never lock.
            let wrong_every = if args.wrong_pins == 0 {
                usize::MAX
            } else {
                (100 / args.wrong_pins.min(100)) as usize
            };
            let victims = (blocks.len() / 10).max(1);
            let honest = blocks.len().saturating_sub(victims).max(1);
            let mut r = load::closed_loop(&target, duration, move |i| {
                let wrong_pin = i % wrong_every == wrong_every - 1;
                let (card, block) = if wrong_pin {
                    let (card, _, wrong) = &blocks[blocks.len() - 1 - (i / wrong_every) % victims];
                    (card, wrong)
                } else {
                    let (card, right, _) = &blocks[i % honest];
                    (card, right)
                };
                (
                    "POST",
                    "/cards/pin/validation".to_owned(),
                    json!({"organizationNumber": 800, "cardNumber": card,
                        "currentPinBlock": block, "channel": "A", "keyAssociation": "IYY"}),
                    wrong_pin.then_some("invalid_pin|pin_locked"),
                )
            })
            .await?;
            out.push(r.line("pin-validation", db_kind, common.json));
        }
        if names.contains(&"mass-issue") {
            let (cards_per_sec, elapsed) = mass_issue(&target, args.mass_cards).await?;
            out.push(if common.json {
                json!({"operation": "mass-issue", "mode": db_kind, "cards": args.mass_cards,
                    "seconds": (elapsed.as_secs_f64() * 100.0).round() / 100.0,
                    "cards_per_sec": cards_per_sec.round()})
                .to_string()
            } else {
                format!(
                    "{:<15} {db_kind:<9} {cards_per_sec:>10.0} cards/s  ({} cards in {:.2} s)",
                    "mass-issue",
                    args.mass_cards,
                    elapsed.as_secs_f64()
                )
            });
        }
        Ok::<(), String>(())
    })?;
    drop(system);
    Ok(out.join("\n"))
}

/// `cards` issue flows (customer, account, embosser card) over the connections; the
/// report counts flows. Answers the cards' `cardNumber`s.
async fn issue(target: &Target, cards: usize) -> Result<(Report, Vec<String>), String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run = std::process::id();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..target.connections {
        let (next, creds, addr) = (
            Arc::clone(&next),
            Arc::clone(&target.creds),
            target.addr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(&addr).await?;
            let mut report = Report::default();
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= cards {
                    break;
                }
                let t = Instant::now();
                match issue_one(&mut conn, &creds, &format!("B{run}X{i}")).await? {
                    Ok(card) => {
                        report.record(t.elapsed(), Outcome::Ok);
                        made.push(card);
                    }
                    Err(why) => report.record(t.elapsed(), Outcome::Error(why)),
                }
            }
            Ok::<_, String>((report, made))
        }));
    }
    let mut total = Report::default();
    let mut all = Vec::with_capacity(cards);
    for t in tasks {
        let (r, made) = t.await.map_err(|e| e.to_string())??;
        total.merge(r);
        all.extend(made);
    }
    total.elapsed = started.elapsed();
    if all.is_empty() {
        return Err(format!("no card was issued: {:?}", total.errors));
    }
    Ok((total, all))
}

/// One issue flow; `Err` inside: the refusal (status and code).
async fn issue_one(
    conn: &mut Connection,
    creds: &Credentials,
    document: &str,
) -> Result<Result<String, String>, String> {
    let refused = |a: &http::Answer| format!("{} {}", a.status, a.code());
    let c = conn
        .call(
            creds,
            "POST",
            "/customer",
            &json!({"customerData": {
                "customerKeyData": {"organizationNumber": 800,
                    "customerNumber": "0000000000000000000",
                    "accountNumber": "0000000000000000000"},
                "ownerCoOwnerData": {"ownerData": {
                    "nameLine1": "CLIENTE DE CARGA", "identificationNumber": document,
                    "dateOfBirth": "1985-07-14", "houseAddress1": "Rua das Flores 10",
                    "city": "Sao Paulo", "state": "SP", "postalCode": "01001000",
                    "countryCode": "BRA", "mobilePhoneNumber": "11-99999-0000",
                    "email": "cliente@example.com", "address2Indicator": "",
                    "address2Line1": "", "address2Line2": "", "address2Line3": "",
                    "address3Indicator": "", "address3Line1": "", "address3Line2": "",
                    "address3Line3": "", "city2": "", "city3": "", "countryCode2": "",
                    "countryCode3": "", "cuit": "20374645497", "ffNumber": "", "income": 5000,
                    "ivaPosition": "1", "occupationCode": "123456", "postalCode2": "",
                    "postalCode3": "", "statement2Indicator": "", "userDate3": "2023-01-13"}}}}),
        )
        .await?;
    let Some(customer) = c.json["customerNumber"].as_str().map(str::to_owned) else {
        return Ok(Err(refused(&c)));
    };
    let a = conn
        .call(
            creds,
            "POST",
            "/account",
            &json!({"accountData": {
                "customerNumber": customer, "organization": 800, "logo": 1,
                "creditLimit": 5000, "billingCycle": 10,
                "accountNumber": "0000000000000000000", "billingLevel": 0,
                "cashPlanInstallmentPayment": 0, "customerSelectedDueDay": "10",
                "ddaAccountNumber": "0000000000000000000", "dualBillingFlag": 0,
                "feeMonthOverride": 0, "installmentBillingCashCreditLimit": 0,
                "installmentBillingRetailCreditLimit": 0, "promotionalPlanNumber": 0,
                "qualification": "0", "retailPlanInstallmentPayments": 0,
                "savingsAccountNumber": "0000000000000000000"}}),
        )
        .await?;
    let Some(account) = a.json["accountNumber"].as_str().map(str::to_owned) else {
        return Ok(Err(refused(&a)));
    };
    let e = conn
        .call(
            creds,
            "POST",
            "/cards/embosser",
            &json!({"organizationNumber": 800, "postToAccount": account, "cardNumber": "",
                "customerNumber": customer, "cardAction": 1,
                "embossedName1": "CLIENTE DE CARGA"}),
        )
        .await?;
    Ok(e.json["cardNumber"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| refused(&e)))
}

/// The PIN validation set: (cardNumber, right ISO-0 block, wrong ISO-0 block) of
/// `--pin-cards` cards, activated first.
async fn pin_data(
    target: &Target,
    system: &spawn::System,
    keys: &Path,
    cards: &[String],
    args: &ApiBenchArgs,
) -> Result<Vec<(String, String, String)>, String> {
    let zpk = clear_key(keys, "zpk.example")?;
    let transport = clear_key(keys, "transport.example")?;
    let mut daemon = crate::client::ClientConfig::for_identity(
        vec![system.hsm.addr.clone()],
        &keys.join("pki"),
        "issuing-host-1",
    );
    daemon.connections = 1;
    let daemon = crate::client::Client::connect(daemon)
        .await
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::open(&target.addr).await?;
    let mut out = Vec::new();
    let mut rng = rand::rng();
    for card in cards.iter().take(args.pin_cards.max(1)) {
        let a = conn
            .call(
                &target.creds,
                "PUT",
                "/cards/activation",
                &json!({"organizationNumber": 800, "cardNumber": card, "serviceType": "S"}),
            )
            .await?;
        if a.status != 200 {
            return Err(format!("activation answered {} {}", a.status, a.code()));
        }
        let codes = conn
            .call(
                &target.creds,
                "POST",
                "/cards/pin/security-codes",
                &json!({"organizationNumber": 800, "cardNumber": card,
                    "channelIndicator": "W", "keyAssociation": "IYY"}),
            )
            .await?;
        let enc = codes.json["pinEncrypt"]
            .as_str()
            .ok_or_else(|| format!("security codes answered {}", codes.status))?;
        let mut block = hex::decode(enc).map_err(|_| "pinEncrypt is not hex")?;
        transport
            .decrypt_ecb(&mut block)
            .map_err(|e| e.to_string())?;
        let block = PinBlock::from_hex(&hex::encode_upper(&block)).map_err(|e| e.to_string())?;
        let pin = pinblock::decode_clear(Format::Iso1, &block, None).map_err(|e| e.to_string())?;
        let pan = daemon
            .detokenise(card.trim_start_matches('0'), None)
            .await
            .map_err(|e| e.to_string())?;
        let pan = Pan::new(&pan).map_err(|e| e.to_string())?;
        let digits = pin.expose_secret();
        let wrong_digits: String = digits
            .chars()
            .map(|c| {
                if c == '9' {
                    '0'
                } else {
                    char::from(c as u8 + 1)
                }
            })
            .collect();
        let wrong = crate::crypto::Pin::new(&wrong_digits).map_err(|e| e.to_string())?;
        let right = pinblock::encipher(Format::Iso0, &zpk, &pin, Some(&pan), &mut rng)
            .map_err(|e| e.to_string())?;
        let wrong = pinblock::encipher(Format::Iso0, &zpk, &wrong, Some(&pan), &mut rng)
            .map_err(|e| e.to_string())?;
        out.push((card.clone(), right.to_hex(), wrong.to_hex()));
    }
    Ok(out)
}

/// One mass issue of `cards` cards: (cards per second, time to `done`).
async fn mass_issue(target: &Target, cards: u64) -> Result<(f64, Duration), String> {
    let mut conn = Connection::open(&target.addr).await?;
    let year = crate::api::domain::Date::from_unix_ms(crate::api::store::now_ms()).year() + 5;
    let started = Instant::now();
    let r = conn
        .call(
            &target.creds,
            "POST",
            "/cards/mass-card-issue-L8V3",
            &json!({
                "organizationNumber": 800, "logo": 2, "cardType": 1, "functionType": "A",
                "status": 1, "bankOrigin": 1, "branch": 1, "minimumQuantity": 0,
                "quantityToCreate": cards, "creditLimit": 0, "blockCode1": "",
                "blockCode2": "", "embosserCode": "A", "promoCode": "", "scheme": 0,
                "userCode1": 0, "userCode2": 0, "userCode3": 0,
                "customerNumber": "0000000000000000000",
                "expiryDate": format!("{year}-12-31"), "prepaidCardFlag": 1,
                "prepaidPlanNumber": 0, "emblem": 0
            }),
        )
        .await?;
    let id = r.json["outputArea"]["massIssueId"]
        .as_str()
        .ok_or_else(|| format!("mass issue answered {} {}", r.status, r.code()))?
        .to_owned();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let p = conn
            .call(
                &target.creds,
                "GET",
                &format!("/cofre/v1/mass-issues/{id}"),
                &Value::Null,
            )
            .await?;
        match p.json["state"].as_str() {
            Some("done") => break,
            Some("failed" | "cancelled") => {
                return Err(format!("the mass issue ended {}", p.json));
            }
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    Ok((cards as f64 / elapsed.as_secs_f64(), elapsed))
}

/// Used by [`load`]: the outcome of one call.
pub(crate) fn outcome(status: u16, code: &str, expected: Option<&str>) -> Outcome {
    match (status, expected) {
        (200, None) => Outcome::Ok,
        (_, Some(want)) if want.split('|').any(|w| w == code) => Outcome::Ok,
        _ => Outcome::Error(format!("{status} {code}")),
    }
}
