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
use crate::api::domain::processor::EmbosserFields;
use crate::api::domain::{CardKind, CardRef, Date, Money, Organization};
use crate::api::state::App;
use crate::api::store::{Account, Card, Customer, NewCard, Records};
use crate::client::{Card as HsmCard, PanGenerateRequest, PinGenerateRequest, PinMethod};
use crate::protocol::{Status, Tag};

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

/// Finds the card a client names among the caller's tenant's cards: by its token
/// spellings, or a clear PAN through its lookup token (tokenised by the daemon). A card
/// that is not there, or a PAN the daemon will not tokenise (it cannot be one of
/// cofre's cards: they are all stored by token), is `422 card_not_found` naming `field`.
pub async fn find_card(
    app: &App,
    r: &mut Records<'_>,
    card: &CardRef,
    field: &str,
) -> Result<Card, ApiError> {
    let not_found = || ApiError::unprocessable("card_not_found", "no such card").field(field);
    match card {
        CardRef::Token(_) => r
            .card_by_tokens(&card.token_spellings())
            .await?
            .ok_or_else(not_found),
        CardRef::Pan(pan) => {
            let t = match app.hsm.tokenise(pan).await {
                Ok(t) => t,
                Err(crate::client::ClientError::Status {
                    status: Status::MalformedField | Status::InvalidToken,
                    ..
                }) => {
                    return Err(not_found());
                }
                Err(e) => return Err(e.into()),
            };
            match t.str(Tag::LookupToken) {
                Some(lookup) => r.card_by_lookup(&lookup).await?.ok_or_else(not_found),
                None => Err(not_found()),
            }
        }
    }
}

/// `org` must be a configured organization, else `422 unknown_organization` naming
/// `field` (the processor's "organization record not found").
pub fn known_organization(ctx: &Ctx, org: Organization, field: &str) -> Result<(), ApiError> {
    if ctx.app.config.organization_known(org) {
        Ok(())
    } else {
        Err(ApiError::unprocessable("unknown_organization", "no such organization").field(field))
    }
}

/// An organization sent with a call on a card: configured, and the one of the card's
/// account (`422 organization_mismatch` otherwise).
pub fn card_organization(
    ctx: &Ctx,
    org: Option<Organization>,
    account: &Account,
    field: &str,
) -> Result<(), ApiError> {
    let Some(org) = org else {
        return Ok(());
    };
    known_organization(ctx, org, field)?;
    match product_of(&ctx.app, account) {
        Some(p) if p.organization != org.0 => Err(ApiError::unprocessable(
            "organization_mismatch",
            "the card belongs to another organization",
        )
        .field(field)),
        _ => Ok(()),
    }
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

/// Today, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    today_date().to_string()
}

/// Expiry `YYMM` `years` from this month.
pub fn expiry_in(years: u32) -> String {
    let today = today_date();
    let years = i32::try_from(years).unwrap_or(0);
    Date::from_ymd(today.year() + years, today.month(), 1)
        .unwrap_or(today)
        .expiry()
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
    org: Organization,
    logo: Option<i64>,
    field: &str,
) -> Result<&'a Product, ApiError> {
    let unknown = || {
        ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field(field)
    };
    let logo = logo.ok_or_else(unknown)?;
    app.config.product(org.0, Some(logo)).ok_or_else(unknown)
}

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
    /// Checks the embosser fields (at JSON pointer `base`); `kind` overrides the card
    /// kind fields.
    pub fn read(
        data: &EmbosserFields,
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
        let expiry = match data.expiration_date {
            Some(d) => expiry_of(d, &format!("{base}/expirationDate"))?,
            None => expiry_in(product.validity_years.unwrap_or(5)),
        };
        let service_code = match data.pos_service_code {
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
        for (name, limit) in data.limits.each() {
            if limit.is_some_and(|m| m < Money::ZERO) {
                return Err(ApiError::unprocessable(
                    "limit_out_of_range",
                    format!("{name}: 0 to 100000000000.00, at most 2 decimals"),
                )
                .field(format!("{base}/{name}")));
            }
        }
        Ok(Self {
            kind,
            expiry,
            service_code,
        })
    }
}

fn card_kind(data: &EmbosserFields, base: &str) -> Result<CardKind, ApiError> {
    let device = data.device_indicator.as_deref().unwrap_or("").trim();
    if matches!(device, "D" | "V" | "W" | "d" | "v" | "w") {
        return Ok(CardKind::DigitalWallet);
    }
    let kind = match data.type_of_card {
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

fn embossed_name(
    data: &EmbosserFields,
    base: &str,
    customer: &Customer,
) -> Result<String, ApiError> {
    let given = [
        ("embossedName1", &data.embossed_name1),
        ("name1", &data.name1),
    ]
    .into_iter()
    .find_map(|(k, v)| v.as_deref().map(|s| (k, s.trim())))
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

/// A card's expiry date as `YYMM`, from this month to 20 years on.
fn expiry_of(date: Date, field: &str) -> Result<String, ApiError> {
    let today = today_date();
    let months = |d: Date| i64::from(d.year()) * 12 + i64::from(d.month());
    if months(date) < months(today) || date.year() > today.year() + 20 {
        return Err(ApiError::unprocessable(
            "invalid_expiry",
            "the expiry is a date from this month to 20 years on",
        )
        .field(field));
    }
    Ok(date.expiry())
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
