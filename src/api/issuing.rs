//! What every issuing path shares: record numbers and card numbers as the processor
//! shows them, finding a card by what a client sends, and issuing a card through the
//! daemon (PAN, token, PVV and LMK-encrypted PIN; the facade never sees a clear value).
//!
//! * Customer and account numbers are the record ids, zero-padded to 19 digits (the
//!   processor's `customerNumber` / `accountNumber` are 19 characters).
//! * A card's `cardNumber` is its numeric FF1 PAN token (which keeps the BIN and the last
//!   4 digits and is never Luhn-valid) zero-padded on the left to 19 characters, the
//!   processor's PAN-token length (`000540208ID5IXX3865` there, `0004555551234567890`
//!   here). Clients may send that form, the bare token, or a clear PAN (tokenised by the
//!   daemon to find the record).

use serde_json::Value;

use super::config::Product;
use crate::api::call::{ApiError, Ctx};
use crate::api::domain::{CardKind, Date, Money};
use crate::api::state::App;
use crate::api::store::{Account, Card, Customer, NewCard, Records};
use crate::client::{Card as HsmCard, PanGenerateRequest, PinGenerateRequest, PinMethod};
use crate::crypto::pan::luhn_valid;
use crate::protocol::Tag;

/// A record id as the processor shows it: 19 digits.
pub fn number(id: i64) -> String {
    format!("{id:019}")
}

/// Parses a 1-19 digit record number.
pub fn parse_number(text: &str, field: &str) -> Result<i64, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            ApiError::unprocessable("invalid_number", format!("{field}: 1-19 digits")).field(field),
        );
    }
    t.parse::<i64>().map_err(|_| {
        ApiError::unprocessable("invalid_number", format!("{field}: out of range")).field(field)
    })
}

/// A JSON string or integer field as a record number.
pub fn number_field(v: &Value, field: &str) -> Result<i64, ApiError> {
    match v {
        Value::String(s) => parse_number(s, field),
        Value::Number(n) => n.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::unprocessable("invalid_number", format!("{field}: not a record number"))
                .field(field)
        }),
        _ => Err(
            ApiError::unprocessable("missing_field", format!("{field} is required")).field(field),
        ),
    }
}

/// A card's `cardNumber`: its token, zero-padded to 19 characters.
pub fn card_number(card: &Card) -> String {
    format!("{:0>19}", card.token)
}

/// The daemon's view of a stored card.
pub fn hsm_card(card: &Card) -> HsmCard {
    HsmCard::Token {
        token: card.token.clone(),
        version: u32::try_from(card.token_version).ok(),
    }
}

/// Finds the card a client names (19-character padded token, bare token, or clear PAN)
/// among the caller's tenant's cards. Unknown: `422 card_not_found` naming `field`.
pub async fn find_card(
    app: &App,
    r: &mut Records<'_>,
    number: &str,
    field: &str,
) -> Result<Card, ApiError> {
    let not_found = || ApiError::unprocessable("card_not_found", "no such card").field(field);
    let n = number.trim();
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    // The padded 19-character form first drops its zeros: tokens are stored as the
    // daemon made them (13-19 characters), so the shorter spellings come first.
    let stripped = n.trim_start_matches('0');
    let mut candidates: Vec<String> = (13..=19)
        .filter(|len| stripped.len() <= *len && n.len() > *len)
        .map(|len| format!("{stripped:0>len$}"))
        .collect();
    candidates.push(n.to_owned());
    if let Some(card) = r.card_by_tokens(&candidates).await? {
        return Ok(card);
    }
    let digits = n.bytes().all(|b| b.is_ascii_digit());
    if digits && (13..=19).contains(&n.len()) && luhn_valid(n.as_bytes()) {
        let t = app.hsm.tokenise(n).await.map_err(ApiError::from)?;
        if let Some(lookup) = t.str(Tag::LookupToken)
            && let Some(card) = r.card_by_lookup(&lookup).await?
        {
            return Ok(card);
        }
    }
    Err(not_found())
}

/// What the daemon made for a new card (no clear value among them).
#[derive(Debug, Clone)]
pub struct Issued {
    /// PAN token.
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token.
    pub lookup_token: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// Visa PVV of the generated PIN.
    pub pvv: String,
    /// The LMK-encrypted PIN, hex.
    pub pin_blob: String,
    /// The PAN under the requested transport key, hex (mass issue).
    pub encrypted_pan: Option<String>,
}

/// Issues a new PAN for `product` (random, Luhn-valid) and a random PIN with its PVV.
/// A PAN already issued (its lookup token is in `issued_pans`) is drawn again; the claim
/// itself is made in the transaction that stores the card, so two concurrent draws of
/// one PAN cannot both commit (the second call fails with a 5xx that is not recorded,
/// and its retry draws again).
pub async fn issue(app: &App, product: &Product) -> Result<Issued, ApiError> {
    draw(app, product, None, true).await
}

/// [`issue`] for a mass issue: the PAN also encrypted under `transport_key`, and no
/// look at `issued_pans` here (the batch insert claims each PAN and reports repeats,
/// which the batch draws again).
pub async fn issue_for_bureau(
    app: &App,
    product: &Product,
    transport_key: &str,
) -> Result<Issued, ApiError> {
    draw(app, product, Some(transport_key), false).await
}

async fn draw(
    app: &App,
    product: &Product,
    transport_key: Option<&str>,
    check_repeats: bool,
) -> Result<Issued, ApiError> {
    for _ in 0..16 {
        let r = app
            .hsm
            .pan_generate(&PanGenerateRequest {
                bin: product.bin.clone(),
                pan_length: product.pan_length,
                transport_key: transport_key.map(str::to_owned),
                ..PanGenerateRequest::default()
            })
            .await?;
        let (Some(token), Some(version), Some(lookup), Some(masked)) = (
            r.str(Tag::Token),
            r.u32(Tag::TokenVersion),
            r.str(Tag::LookupToken),
            r.str(Tag::MaskedPan),
        ) else {
            return Err(ApiError::internal("pan.generate answered without a token"));
        };
        if check_repeats {
            // A read connection only for this look (never held across daemon calls).
            let mut reader = app.store.read().await?;
            if crate::api::store::pan_issued(&mut reader, &lookup).await? {
                continue;
            }
        }
        let card = HsmCard::Token {
            token: token.clone(),
            version: Some(version),
        };
        let p = app
            .hsm
            .pin_generate(&PinGenerateRequest {
                card,
                pvk: app.config.keys.pvk.clone(),
                method: PinMethod::Pvv { pvki: 1 },
                pin_length: Some(4),
                delivery: None,
            })
            .await?;
        let (Some(pvv), Some(blob)) = (p.str(Tag::Pvv), p.bytes(Tag::PinBlob)) else {
            return Err(ApiError::internal("pin.generate answered without a PVV"));
        };
        return Ok(Issued {
            token,
            token_version: i64::from(version),
            lookup_token: lookup,
            masked_pan: masked,
            pvv,
            pin_blob: hex::encode_upper(blob),
            encrypted_pan: r.bytes(Tag::Encrypted).map(hex::encode_upper),
        });
    }
    Err(ApiError::internal(
        "no fresh PAN after 16 draws: the BIN is nearly exhausted",
    ))
}

/// Today (UTC).
pub fn today_date() -> Date {
    Date::from_unix_ms(crate::api::store::now_ms())
}

/// Today as (year, month) in UTC.
pub fn year_month() -> (u32, u32) {
    let d = today_date();
    (
        u32::try_from(d.year()).unwrap_or(2026),
        u32::from(d.month()),
    )
}

/// Today, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    today_date().to_string()
}

/// Expiry `YYMM` `years` from this month.
pub fn expiry_in(years: u32) -> String {
    let (y, m) = year_month();
    format!("{:02}{m:02}", (y + years) % 100)
}

/// A card expiry `YYMM` as the last day of its month, `YYYY-MM-DD`.
pub fn expiry_date(yymm: &str) -> Option<String> {
    Date::from_expiry(yymm).map(|d| d.to_string())
}

/// The largest credit or purchase limit, in minor units.
pub const MAX_LIMIT_MINOR: i64 = 10_000_000_000_000;
const _: () = assert!(MAX_LIMIT_MINOR == Money::MAX.minor());

/// How an account names its product.
pub fn product_code(p: &Product) -> String {
    format!("{}/{}", p.organization, p.logo)
}

/// The configured product of an account (`None`: its code names no product today).
pub fn product_of<'a>(app: &'a App, account: &Account) -> Option<&'a Product> {
    let (org, logo) = account.product.split_once('/')?;
    let (org, logo) = (org.parse().ok()?, logo.parse().ok()?);
    app.config.product(org, Some(logo))
}

/// A configured product by organization and logo, else `422 unknown_product`.
pub fn product<'a>(
    app: &'a App,
    org: &Value,
    logo: &Value,
    field: &str,
) -> Result<&'a Product, ApiError> {
    let unknown = || {
        ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field(field)
    };
    let (Some(org), Some(logo)) = (org.as_i64(), logo.as_i64()) else {
        return Err(unknown());
    };
    app.config.product(org, Some(logo)).ok_or_else(unknown)
}

/// An amount in major units (JSON number, absent = 0) as minor units: exact, at most
/// two decimals (more is refused, never rounded), 0 to 100,000,000,000.00
/// (`422 limit_out_of_range` naming the field).
pub fn minor_units(v: &Value, field: &str) -> Result<i64, ApiError> {
    if v.is_null() {
        return Ok(0);
    }
    Money::limit_from_json(v).map(Money::minor).map_err(|_| {
        ApiError::unprocessable(
            "limit_out_of_range",
            format!("{field}: 0 to 100000000000.00, at most 2 decimals"),
        )
        .field(field)
    })
}

/// Purchase-limit fields of an embosser request (major units).
const LIMIT_FIELDS: [&str; 12] = [
    "atmCashAmount",
    "atmCashSingleTransactionLimit",
    "overTheCounterCashAmount",
    "overTheCounterCashSingleTransactionLimit",
    "retailPurchaseAmt",
    "retailPurchaseSingleTransactionLimit",
    "internetPurchaseAmount",
    "internetPurchaseSingleTransactionLimit",
    "icAmountLimitSingleTransaction",
    "atmCashNumber",
    "retailPurchaseNumber",
    "internetPurchaseNumber",
];

/// What a request says about a new card, checked (nothing issued yet).
#[derive(Debug, Clone)]
pub struct CardSpec {
    /// What the card is.
    pub kind: CardKind,
    /// YYMM.
    pub expiry: String,
    /// Three digits.
    pub service_code: String,
}

impl CardSpec {
    /// Reads the embosser fields of `data` (at JSON pointer `base`); `kind` overrides the
    /// card kind fields.
    pub fn read(
        data: &Value,
        base: &str,
        product: &Product,
        customer: &Customer,
        kind: Option<CardKind>,
    ) -> Result<Self, ApiError> {
        let kind = match kind {
            Some(k) => k,
            None => card_kind(data, base)?,
        };
        embossed_name(data, base, customer)?;
        let expiry = match data["expirationDate"].as_str() {
            Some(d) => expiry_of(d, &format!("{base}/expirationDate"))?,
            None => expiry_in(product.validity_years.unwrap_or(5)),
        };
        let service_code = match data["posServiceCode"].as_i64() {
            None | Some(0) => product.service_code.clone().unwrap_or_else(|| "201".into()),
            Some(n) => {
                let code = format!("{n:03}");
                let ok = (100..=999).contains(&n) && matches!(n / 100, 1 | 2 | 5 | 6 | 7 | 9);
                if !ok {
                    return Err(ApiError::unprocessable(
                        "invalid_service_code",
                        "the service code is 3 digits starting 1, 2, 5, 6, 7 or 9",
                    )
                    .field(format!("{base}/posServiceCode")));
                }
                code
            }
        };
        for f in LIMIT_FIELDS {
            minor_units(&data[f], &format!("{base}/{f}"))?;
        }
        Ok(Self {
            kind,
            expiry,
            service_code,
        })
    }
}

fn card_kind(data: &Value, base: &str) -> Result<CardKind, ApiError> {
    let device = data["deviceIndicator"].as_str().unwrap_or("").trim();
    if matches!(device, "D" | "V" | "W" | "d" | "v" | "w") {
        return Ok(CardKind::DigitalWallet);
    }
    let kind = match data["typeOfCard"].as_i64() {
        None | Some(0 | 1) => CardKind::PhysicalCredit,
        Some(2) => CardKind::Debit,
        Some(3) => CardKind::Prepaid,
        Some(4) => CardKind::DigitalWallet,
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_card_type",
                "typeOfCard is 1 (credit), 2 (debit), 3 (prepaid) or 4 (digital wallet)",
            )
            .field(format!("{base}/typeOfCard")));
        }
    };
    Ok(kind)
}

fn embossed_name(data: &Value, base: &str, customer: &Customer) -> Result<String, ApiError> {
    let given = ["embossedName1", "name1"]
        .iter()
        .find_map(|k| data[*k].as_str().map(|s| (*k, s.trim())))
        .filter(|(_, s)| !s.is_empty());
    let (field, name) = match given {
        Some((k, s)) => (format!("{base}/{k}"), s.to_owned()),
        None => (format!("{base}/embossedName1"), customer.name.clone()),
    };
    if name.is_empty() || name.chars().count() > 26 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_embossed_name",
            "the embossed name is 1-26 printable characters",
        )
        .field(field));
    }
    Ok(name)
}

/// `YYYY-MM-DD` (or `YYMM`) as a card expiry `YYMM`, from this month to 20 years on.
fn expiry_of(text: &str, field: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_expiry",
            "the expiry is a date from this month to 20 years on",
        )
        .field(field)
    };
    let t = text.trim();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        t.get(r)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
    };
    let parsed = match t.len() {
        4 => num(0..2).zip(num(2..4)).map(|(yy, mm)| (2000 + yy, mm)),
        10 => Date::parse(t)
            .ok()
            .map(|d| (u32::try_from(d.year()).unwrap_or(0), u32::from(d.month()))),
        _ => None,
    };
    let (y, m) = parsed.ok_or_else(bad)?;
    let (cy, cm) = year_month();
    let months = |y: u32, m: u32| y * 12 + m;
    if !(1..=12).contains(&m) || months(y, m) < months(cy, cm) || y > cy + 20 {
        return Err(bad());
    }
    Ok(format!("{:02}{m:02}", y % 100))
}

/// Has the daemon issue a card (PAN, token, PIN, PVV) for `spec` on `account`.
pub async fn new_card(
    ctx: &Ctx,
    product: &Product,
    account: &Account,
    customer: &Customer,
    spec: &CardSpec,
    body: Value,
) -> Result<NewCard, ApiError> {
    let issued = issue(&ctx.app, product).await?;
    Ok(NewCard {
        account_id: account.id,
        customer_id: customer.id,
        token: issued.token,
        token_version: issued.token_version,
        lookup_token: issued.lookup_token,
        masked_pan: issued.masked_pan,
        kind: spec.kind,
        expiry: spec.expiry.clone(),
        service_code: spec.service_code.clone(),
        pvv: issued.pvv,
        pin_blob: issued.pin_blob,
        body,
        credit_limit: 0,
    })
}
