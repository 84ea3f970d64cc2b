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
use super::http::ApiError;
use super::server::App;
use super::store::{Card, StoreError};
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

/// Finds the card a client names (19-character padded token, bare token, or clear PAN).
/// Unknown: `422 card_not_found` naming `field`. Cards of another tenant are unknown.
pub async fn find_card(
    app: &App,
    tenant: &str,
    number: &str,
    field: &str,
) -> Result<Card, ApiError> {
    let not_found = || ApiError::unprocessable("card_not_found", "no such card").field(field);
    let n = number.trim();
    if n.is_empty() || n.len() > 32 || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(not_found());
    }
    let mut candidates = vec![n.to_owned()];
    let stripped = n.trim_start_matches('0');
    for len in 13..=19 {
        if stripped.len() <= len && n.len() > len {
            candidates.push(format!("{stripped:0>len$}"));
        }
    }
    for c in &candidates {
        if let Some(card) = app.store.card_by_token(c).await? {
            return owned(card, tenant).ok_or_else(not_found);
        }
    }
    let digits = n.bytes().all(|b| b.is_ascii_digit());
    if digits && (13..=19).contains(&n.len()) && luhn_valid(n.as_bytes()) {
        let r = app.hsm.tokenise(n).await.map_err(ApiError::from)?;
        if let Some(lookup) = r.str(Tag::LookupToken)
            && let Some(card) = app.store.card_by_lookup(&lookup).await?
        {
            return owned(card, tenant).ok_or_else(not_found);
        }
    }
    Err(not_found())
}

fn owned(card: Card, tenant: &str) -> Option<Card> {
    (card.tenant.is_empty() || card.tenant == tenant).then_some(card)
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

/// Issues a new PAN for `product` (random, Luhn-valid, never issued before: its lookup
/// token is claimed in `issued_pans`, and a repeat is drawn again) and a random PIN
/// with its PVV. With `transport_key`, the daemon also returns the PAN encrypted
/// under it.
pub async fn issue(
    app: &App,
    product: &Product,
    transport_key: Option<&str>,
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
        match app.store.claim_pan(&lookup).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
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

/// Today as (year, month) in UTC.
pub fn year_month() -> (u32, u32) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let y = now.get(0..4).and_then(|s| s.parse().ok()).unwrap_or(2026);
    let m = now.get(5..7).and_then(|s| s.parse().ok()).unwrap_or(1);
    (y, m)
}

/// Today, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    now.get(0..10).unwrap_or("1970-01-01").to_owned()
}

/// Expiry `YYMM` `years` from this month.
pub fn expiry_in(years: u32) -> String {
    let (y, m) = year_month();
    format!("{:02}{m:02}", (y + years) % 100)
}
