//! The record types, mapped from rows by column name. Statuses and kinds are the
//! domain's enums; a stored body is JSON that must parse.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::api::domain::{BlockCode, CardKind, CardStatus, DcvvState, Invalid, PinStatus};

/// A stored JSON document (a request body as received, with later changes merged in).
/// A stored text that does not parse is a decode error, never `null`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct Body(pub serde_json::Value);

impl TryFrom<String> for Body {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        serde_json::from_str(&text)
            .map(Body)
            .map_err(|_| Invalid("a stored body is not JSON"))
    }
}

impl std::ops::Deref for Body {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl std::ops::DerefMut for Body {
    fn deref_mut(&mut self) -> &mut serde_json::Value {
        &mut self.0
    }
}

/// A customer record.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Customer {
    /// Customer number (unique per tenant).
    pub id: i64,
    /// Document (CPF/CNPJ or other id), unique per tenant.
    pub document: String,
    /// Name.
    pub name: String,
    /// The request body as received (every field kept, none dropped).
    #[sqlx(try_from = "String")]
    pub body: Body,
    /// `active`, `inactive`, `status-N`.
    pub status: String,
    /// The API tenant that owns the record.
    pub tenant: String,
}

/// An account record.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct Account {
    /// Account number (unique per tenant).
    pub id: i64,
    /// Owner.
    pub customer_id: i64,
    /// Product code (`ORG/LOGO`).
    pub product: String,
    /// Credit limit in minor units.
    pub credit_limit: i64,
    /// Billing cycle day.
    pub cycle_day: i64,
    /// The request body as received.
    #[sqlx(try_from = "String")]
    pub body: Body,
    /// Status.
    pub status: String,
    /// The API tenant that owns the record.
    pub tenant: String,
}

/// A card record (no clear PAN, PIN or CVV).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    /// Card record id.
    pub id: i64,
    /// Account.
    pub account_id: i64,
    /// Customer.
    pub customer_id: i64,
    /// PAN token (FF1).
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token (HMAC), unique per PAN.
    pub lookup_token: String,
    /// First 6 and last 4.
    pub masked_pan: String,
    /// What the card is.
    pub kind: CardKind,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PIN verification value (PVV).
    #[serde(skip)]
    pub pvv: String,
    /// The LMK-encrypted PIN from the daemon, hex.
    #[serde(skip)]
    pub pin_blob: String,
    /// Life-cycle status.
    pub status: CardStatus,
    /// The request body as received (and later non-secret changes merged in).
    pub body: Body,
    /// Whether the issuer blocked the PIN.
    pub pin_status: PinStatus,
    /// The block code last applied, if any.
    pub block_code: Option<BlockCode>,
    /// Card credit limit in minor units (0: the account's).
    pub credit_limit: i64,
    /// The card that replaced this one, if reissued.
    pub replaced_by: Option<i64>,
    /// Dynamic CVV2 state.
    pub dcvv2: DcvvState,
    /// The API tenant that owns the record.
    pub tenant: String,
}

fn decode<T>(column: &str, r: Result<T, Invalid>) -> Result<T, sqlx::Error> {
    r.map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

impl FromRow<'_, AnyRow> for Card {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let block: String = row.try_get("block_code")?;
        Ok(Card {
            id: row.try_get("id")?,
            account_id: row.try_get("account_id")?,
            customer_id: row.try_get("customer_id")?,
            token: row.try_get("token")?,
            token_version: row.try_get("token_version")?,
            lookup_token: row.try_get("lookup_token")?,
            masked_pan: row.try_get("masked_pan")?,
            kind: decode("kind", CardKind::parse(row.try_get("kind")?))?,
            expiry: row.try_get("expiry")?,
            service_code: row.try_get("service_code")?,
            pvv: row.try_get("pvv")?,
            pin_blob: row.try_get("pin_blob")?,
            status: decode("status", CardStatus::parse(row.try_get("status")?))?,
            body: decode("body", Body::try_from(row.try_get::<String, _>("body")?))?,
            pin_status: decode("pin_status", PinStatus::parse(row.try_get("pin_status")?))?,
            block_code: if block.is_empty() {
                None
            } else {
                Some(decode("block_code", BlockCode::parse(&block))?)
            },
            credit_limit: row.try_get("credit_limit")?,
            replaced_by: row.try_get("replaced_by")?,
            dcvv2: decode("dcvv2", DcvvState::parse(row.try_get("dcvv2")?))?,
            tenant: row.try_get("tenant")?,
        })
    }
}

impl Card {
    /// The history view of a card: everything but the PVV and PIN blob (opaque, but no
    /// reason to copy them around) and the body.
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "account_id": self.account_id, "customer_id": self.customer_id,
            "token": self.token, "masked_pan": self.masked_pan, "kind": self.kind,
            "expiry": self.expiry, "service_code": self.service_code, "status": self.status,
            "pin_status": self.pin_status, "block_code": self.block_code,
            "credit_limit": self.credit_limit, "replaced_by": self.replaced_by,
            "dcvv2": self.dcvv2, "tenant": self.tenant,
        })
    }
}

/// A new card's values (from the daemon) and request body.
#[derive(Debug, Clone)]
pub struct NewCard {
    /// Account (of the card's customer, in the caller's tenant).
    pub account_id: i64,
    /// Customer.
    pub customer_id: i64,
    /// PAN token.
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token.
    pub lookup_token: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// Card kind.
    pub kind: CardKind,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PVV.
    pub pvv: String,
    /// LMK-encrypted PIN, hex.
    pub pin_blob: String,
    /// The request body.
    pub body: serde_json::Value,
    /// Card credit limit in minor units (0: the account's).
    pub credit_limit: i64,
}

/// One history row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    /// Row id (a page cursor).
    #[serde(skip)]
    pub id: i64,
    /// `customer`, `account`, `card`, `mass_issue`.
    pub entity: String,
    /// The record's id.
    pub entity_id: i64,
    /// Who (API client id).
    pub actor: String,
    /// What (`create`, `status`, ...).
    pub action: String,
    /// When, epoch ms.
    pub at_ms: i64,
    /// Non-secret fields before.
    pub before: Option<serde_json::Value>,
    /// Non-secret fields after.
    pub after: Option<serde_json::Value>,
}

fn optional_json(
    column: &str,
    text: Option<String>,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    text.map(|t| decode(column, Body::try_from(t).map(|b| b.0)))
        .transpose()
}

impl FromRow<'_, AnyRow> for HistoryRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(HistoryRow {
            id: row.try_get("id")?,
            entity: row.try_get("entity")?,
            entity_id: row.try_get("entity_id")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            at_ms: row.try_get("at_ms")?,
            before: optional_json("before_json", row.try_get("before_json")?)?,
            after: optional_json("after_json", row.try_get("after_json")?)?,
        })
    }
}
