//! A portador as the cardholder API sees it, loaded tenant-checked, and the words every
//! view shares (status words, masks, the errors of the tree).
//!
//! `idPortador` is the customer number. A portador is a **titular** (a customer that
//! owns accounts: opened with `POST /contas/pf|pj`, or through the processor's paths)
//! or an **adicional** (a dependent: a customer of its own with cards on a titular's
//! account, linked in `portador_dependents`). A titular's own cards are the cards of
//! its accounts that are not a dependent's. A caller sees only its own tenant's
//! portadores; another tenant's is answered exactly like a missing one
//! (`404 portador_not_found`).

use crate::api::call::{ApiError, Ctx};
use crate::api::domain::br::{Cnpj, Cpf};
use crate::api::domain::{BlockCode, CardStatus};
use crate::api::store::{Account, Card, Customer, DependentLink, Records};

/// What a portador is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Owns accounts (or none yet).
    Titular,
    /// A dependent of the titular `holder`.
    Adicional {
        /// The titular's customer number.
        holder: i64,
    },
}

/// A portador's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Documento {
    /// An individual.
    Cpf(Cpf),
    /// A company.
    Cnpj(Cnpj),
    /// A customer made through the processor's paths whose document is neither.
    Outro(String),
}

impl Documento {
    /// The document's characters.
    pub fn as_str(&self) -> &str {
        match self {
            Documento::Cpf(c) => c.as_str(),
            Documento::Cnpj(c) => c.as_str(),
            Documento::Outro(t) => t,
        }
    }
}

/// A portador: the customer record, its accounts and its cards.
#[derive(Debug, Clone)]
pub struct Portador {
    /// The customer record (its fields in `body`, under the document's names).
    pub customer: Customer,
    /// Titular or adicional.
    pub role: Role,
    /// The document.
    pub documento: Documento,
    /// The accounts: a titular's own; an adicional's, the titular's it has cards on.
    pub accounts: Vec<Account>,
    /// The portador's own cards, oldest first.
    pub cards: Vec<Card>,
    /// A titular's dependents: their link and card.
    pub dependents: Vec<(DependentLink, Card)>,
}

impl Portador {
    /// The card the views show: the newest own card still in use, else the newest.
    pub fn main_card(&self) -> Option<&Card> {
        self.cards
            .iter()
            .rev()
            .find(|c| !c.status.is_final())
            .or(self.cards.last())
    }

    /// The account the views show (the first).
    pub fn main_account(&self) -> Option<&Account> {
        self.accounts.first()
    }

    /// Whether the portador is a titular.
    pub fn is_titular(&self) -> bool {
        self.role == Role::Titular
    }
}

/// The document key a portador opened with `POST /contas/pf|pj` is stored under (one
/// per document per tenant, apart from the processor paths' documents).
pub fn document_key(tipo: &str, documento: &str, tenant: &str) -> String {
    format!("{tipo}:{documento}@{tenant}")
}

/// The document of a customer record: `PF:<cpf>@tenant`, `PJ:<cnpj>@tenant`, or the
/// processor paths' / dependents' bare document.
pub fn documento_of(customer: &Customer) -> Documento {
    let (tipo, rest) = customer
        .document
        .split_once(':')
        .unwrap_or(("", &customer.document));
    let digits = rest.split('@').next().unwrap_or("");
    match tipo {
        "PJ" => {
            Cnpj::parse(digits).map_or_else(|_| Documento::Outro(digits.into()), Documento::Cnpj)
        }
        _ => Cpf::parse(digits).map_or_else(|_| Documento::Outro(digits.into()), Documento::Cpf),
    }
}

/// `404 portador_not_found` (missing, or another tenant's).
pub fn not_found() -> ApiError {
    ApiError::not_found("portador_not_found", "Portador não encontrado.").field("idPortador")
}

/// `404 <code>` for a record the body or path names that is not the portador's.
pub fn not_the_portadors(code: &'static str, what: &str, field: &str) -> ApiError {
    ApiError::not_found(code, format!("O portador não tem {what} com este id.")).field(field)
}

/// Parses an `idPortador` path or query parameter.
pub fn parse_id(text: &str) -> Result<i64, ApiError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 18 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_fields(
            "invalid_field",
            "Campo inválido: idPortador.",
            vec![crate::api::error::InvalidParam {
                name: "idPortador".into(),
                code: "invalid_id",
                reason: "um identificador de 1 a 18 dígitos".into(),
            }],
        ));
    }
    t.parse().map_err(|_| not_found())
}

/// The portador `id`, if it is the caller's tenant's.
pub async fn load(r: &mut Records<'_>, id: i64) -> Result<Portador, ApiError> {
    let customer = r.find_customer(id).await?.ok_or_else(not_found)?;
    let documento = documento_of(&customer);
    let own_accounts = r.accounts_of(customer.id).await?;
    if own_accounts.is_empty() {
        let links = r.holders_of(customer.id).await?;
        if let Some(first) = links.first() {
            let holder = first.holder_id;
            let mut accounts = Vec::new();
            let mut cards = Vec::new();
            for l in &links {
                if !accounts.iter().any(|a: &Account| a.id == l.account_id) {
                    accounts.push(r.account(l.account_id).await?);
                }
                cards.push(r.card(l.card_id).await?);
            }
            return Ok(Portador {
                customer,
                role: Role::Adicional { holder },
                documento,
                accounts,
                cards,
                dependents: Vec::new(),
            });
        }
    }
    let links = r.dependents_of(customer.id).await?;
    let mut cards = Vec::new();
    let mut dependents = Vec::new();
    for a in &own_accounts {
        for c in r.cards_of_account(a.id).await? {
            match links.iter().find(|l| l.card_id == c.id) {
                Some(l) => dependents.push((l.clone(), c)),
                // A dependent's earlier card (replaced) is neither the titular's nor
                // listed: its history stays with it.
                None if c.body.get("dependente").is_some() => {}
                None => cards.push(c),
            }
        }
    }
    Ok(Portador {
        customer,
        role: Role::Titular,
        documento,
        accounts: own_accounts,
        cards,
        dependents,
    })
}

/// The portador named by the `idPortador` path parameter.
pub async fn from_path(ctx: &Ctx, r: &mut Records<'_>) -> Result<Portador, ApiError> {
    let id = parse_id(ctx.param("idPortador")?)?;
    load(r, id).await
}

/// A masked card number as every view shows it: first 6 and last 4, `X` between.
pub fn mask(card: &Card) -> String {
    card.masked_pan.replace('*', "X")
}

/// A card status as every view words it.
pub fn card_status_word(status: CardStatus) -> &'static str {
    match status {
        CardStatus::Active => "ATIVO",
        CardStatus::Inactive => "INATIVO",
        CardStatus::Blocked => "BLOQUEADO",
        CardStatus::Lost => "PERDIDO",
        CardStatus::Stolen => "ROUBADO",
        CardStatus::Replaced => "SUBSTITUIDO",
        CardStatus::Cancelled => "CANCELADO",
    }
}

/// A customer or account status (`active`, `inactive`, `status-N`) as the views word it.
pub fn record_status_word(status: &str) -> &'static str {
    match status {
        "active" => "ATIVO",
        "inactive" => "INATIVO",
        "blocked" => "BLOQUEADO",
        "cancelled" => "CANCELADO",
        _ => "OUTRO",
    }
}

/// The words' description.
pub fn status_description(word: &str) -> &'static str {
    match word {
        "ATIVO" => "Ativo",
        "INATIVO" => "Inativo",
        "BLOQUEADO" => "Bloqueado",
        "PERDIDO" => "Perdido",
        "ROUBADO" => "Roubado",
        "SUBSTITUIDO" => "Substituído",
        "CANCELADO" => "Cancelado",
        _ => "Outro",
    }
}

/// A card's block code as the views show it (empty: none).
pub fn block_word(block: Option<BlockCode>) -> String {
    block.map(|b| b.as_string()).unwrap_or_default()
}

/// The tenant as `idLoja`: a number when the tenant id is digits (the store ids the
/// document uses), else its text.
pub fn id_loja(tenant: &str) -> serde_json::Value {
    tenant
        .parse::<i64>()
        .map_or_else(|_| serde_json::json!(tenant), |n| serde_json::json!(n))
}
