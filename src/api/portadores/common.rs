//! Loading a portador (tenant-checked) and helpers shared by the portadores modules.
//!
//! `idPortador` is the customer number. A caller sees only the portadores of its own
//! tenant (the tenant of the API client that signed the request); another tenant's
//! portador is answered exactly like a missing one (404 `portador_not_found`).

use crate::api::call::{ApiError, Ctx};
use crate::api::store::{Account, Card, Customer, Records};

/// A portador: the customer record with its accounts and cards.
#[derive(Debug, Clone)]
pub struct Portador {
    /// The customer record (Portuguese fields in `body`).
    pub customer: Customer,
    /// Its accounts, oldest first.
    pub accounts: Vec<Account>,
    /// The cards of those accounts, oldest first.
    pub cards: Vec<Card>,
}

/// 404 for a portador that does not exist or is another tenant's.
pub fn not_found() -> ApiError {
    ApiError::not_found("portador_not_found", "no such portador").field("idPortador")
}

/// Parses an `idPortador`.
pub fn parse_id(text: &str) -> Result<i64, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            ApiError::unprocessable("invalid_id", "idPortador: 1-19 digits").field("idPortador"),
        );
    }
    t.parse().map_err(|_| not_found())
}

/// The portador `id`, if it is the caller's tenant's.
pub async fn load(r: &mut Records<'_>, id: i64) -> Result<Portador, ApiError> {
    let customer = r.find_customer(id).await?.ok_or_else(not_found)?;
    let accounts = r.accounts_of(customer.id).await?;
    let mut cards = Vec::new();
    for a in &accounts {
        cards.extend(r.cards_of_account(a.id).await?);
    }
    Ok(Portador {
        customer,
        accounts,
        cards,
    })
}

/// The portador named by the `idPortador` path parameter.
pub async fn from_path(ctx: &Ctx, r: &mut Records<'_>) -> Result<Portador, ApiError> {
    let id = parse_id(ctx.param("idPortador")?)?;
    load(r, id).await
}
