//! Phones: `POST`/`GET /api/v1/portadores/{idPortador}/telefones`, `DELETE
//! .../telefones/{idTelefone}`, `POST .../telefones/recebe-sms` (confirming a mobile
//! for SMS).
//!
//! Choices where the document is silent:
//! * The POST body is one phone as in the account-opening example, an array of up to
//!   10, or `{"telefones": [...]}` (rules in `contato`); a number the portador already
//!   has is `409 phone_exists`, twice in one call `422`. The answer (201) lists the
//!   phones created with their `id`.
//! * `recebe-sms` body `{"idTelefone", "codigo"?}`. Only a mobile may be confirmed
//!   (`422 not_mobile`). Without `codigo` a random 6-digit code is queued for the phone
//!   (see `sms`; at most `[sms] codes_per_phone_per_day`); only its HMAC under a key
//!   derived from the facade key and its expiry ([`CODE_TTL_MS`]) are kept. With
//!   `codigo` the phone is confirmed when it matches; a wrong code is `422
//!   invalid_code`, and the [`CODE_TRIES`]th wrong one voids it (`422 no_pending_code`
//!   until a new one is asked for); an expired code is `422 code_expired`.
//! * Only a confirmed mobile receives PINs (`senhas/sms`).

use axum::http::Method;
use serde_json::{Value, json};

use super::common::{from_path, not_the_portadors};
use super::confirmacao::confirm;
use super::contato::{Telefone, TelefoneReq, check_phone, check_phones};
use super::input::{self, Checks, Field, IdText};
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::contact::{Line, PhoneNumber};
use crate::api::store::{Phone, Records};
use crate::handler;

/// Wrong codes after which a confirmation code is void.
pub const CODE_TRIES: i64 = 5;
/// A confirmation code's lifetime.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/v1/portadores/{idPortador}/telefones",
            doc_add,
            handler!(add),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/telefones",
            doc_list,
            handler!(list),
        ),
        route(
            Method::DELETE,
            "/api/v1/portadores/{idPortador}/telefones/{idTelefone}",
            doc_delete,
            handler!(delete),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/{idPortador}/telefones/recebe-sms",
            doc_confirm,
            handler!(confirm),
        ),
    ]
}

fn phone_schema() -> Value {
    json!({"type": "object", "required": ["tipo", "area", "telefone"], "properties": {
        "tipo": {"type": "string", "enum": ["RESIDENCIAL", "COMERCIAL", "CELULAR", "OUTROS"]},
        "area": {"type": "string", "pattern": "^[1-9][1-9]$"},
        "telefone": {"type": "string", "pattern": "^(9[0-9]{8}|[2-5][0-9]{7})$"},
        "ramal": {"type": "string", "pattern": "^[0-9]{0,6}$"},
        "receberSMS": {"type": "boolean"}, "faturaDigital": {"type": "boolean"}
    }})
}

fn phone_list_schema() -> Value {
    let mut item = phone_schema();
    item["properties"]["id"] = json!({"type": "integer"});
    item["properties"]["smsConfirmado"] = json!({"type": "boolean"});
    json!({"type": "array", "items": item})
}

fn doc_add() -> Value {
    operation(
        "Cadastra telefones para um portador",
        &[path_id()],
        Some(
            json!({"oneOf": [phone_schema(), {"type": "array", "items": phone_schema(), "maxItems": 10}]}),
        ),
        ("201", phone_list_schema()),
    )
}

fn doc_list() -> Value {
    operation(
        "Lista os telefones cadastrados para um portador",
        &[path_id()],
        None,
        ("200", phone_list_schema()),
    )
}

fn doc_delete() -> Value {
    operation(
        "Deleta telefones associados a um portador",
        &[path_id(), ("idTelefone", "path", true, "O id do telefone")],
        None,
        (
            "200",
            json!({"type": "object", "properties": {"idTelefone": {"type": "integer"}, "removido": {"type": "boolean"}}}),
        ),
    )
}

fn doc_confirm() -> Value {
    operation(
        "Confirma o telefone para recebimento de SMS",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["idTelefone"], "properties": {
                "idTelefone": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "codigo": {"type": "string", "pattern": "^[0-9]{6}$"}
            }}),
        ),
        (
            "200",
            json!({"type": "object", "properties": {"idTelefone": {"type": "integer"},
            "status": {"type": "string", "enum": ["CODIGO_ENVIADO", "CONFIRMADO"]},
            "expiraEm": {"type": "string", "format": "date-time"}}}),
        ),
    )
}

/// A stored phone as the views show it.
pub fn phone_view(p: &Phone) -> Value {
    json!({"id": p.id, "tipo": p.kind, "area": p.area, "telefone": p.number, "ramal": p.extension,
        "receberSMS": *p.wants_sms, "faturaDigital": *p.digital_invoice, "smsConfirmado": *p.sms_confirmed})
}

/// Stores a checked phone for a portador (in the call's transaction, the portador's
/// row locked): a number it already has is `409 phone_exists`.
pub async fn store_phone(
    r: &mut Records<'_>,
    customer_id: i64,
    t: &Telefone,
) -> Result<Value, ApiError> {
    r.lock_customer(customer_id).await?;
    let area = t.numero.area();
    if r.phones_of(customer_id)
        .await?
        .iter()
        .any(|p| p.area == area && p.number == t.numero.number())
    {
        return Err(ApiError::conflict(
            "phone_exists",
            "O portador já tem este número de telefone.",
        )
        .field("telefone"));
    }
    let phone = r
        .add_phone(
            customer_id,
            [t.tipo, &area, t.numero.number(), &t.ramal],
            (t.receber_sms, t.fatura_digital),
        )
        .await?;
    Ok(phone_view(&phone))
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut chk = Checks::new();
    let phones: Vec<Telefone> = match &ctx.body {
        Value::Array(_) => check_phones(
            &mut chk,
            "telefones",
            &input::body(&ctx.body, "um telefone ou uma lista")?,
            10,
        ),
        Value::Object(o) if o.contains_key("telefones") => {
            let list = input::body(&o["telefones"], "uma lista de telefones")?;
            check_phones(&mut chk, "telefones", &list, 10)
        }
        Value::Object(_) => {
            let one: Field<TelefoneReq> =
                Field::Value(input::body(&ctx.body, "um telefone ou uma lista")?);
            check_phone(&mut chk, "telefone", &one, true)
                .into_iter()
                .collect()
        }
        _ => {
            return Err(
                input::body::<TelefoneReq>(&Value::Null, "um telefone ou uma lista")
                    .err()
                    .unwrap_or_else(|| ApiError::internal("null body")),
            );
        }
    };
    if phones.is_empty() && chk.is_clean() {
        chk.fail("telefones", "count", "de 1 a 10 telefones");
    }
    chk.finish()?;
    let id = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?.customer.id
    };
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let mut out = Vec::new();
            for t in &phones {
                out.push(store_phone(&mut r, id, t).await?);
            }
            Reply::created(Value::Array(out))
        })
    })
    .await
}

async fn list(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let phones = r.phones_of(p.customer.id).await?;
    Reply::ok(Value::Array(phones.iter().map(phone_view).collect()))
}

fn phone_id(raw: &str) -> Result<i64, ApiError> {
    let mut chk = Checks::new();
    let id = chk.id(
        "idTelefone",
        &Field::Value(IdText::Text(raw.to_owned())),
        true,
    );
    chk.finish()?;
    id.ok_or_else(|| ApiError::internal("a checked id is missing"))
}

async fn delete(ctx: Ctx) -> Result<Reply, ApiError> {
    let id = phone_id(ctx.param("idTelefone")?)?;
    let customer = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?.customer.id
    };
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            if !r.delete_phone(customer, id).await? {
                return Err(not_the_portadors(
                    "phone_not_found",
                    "telefone",
                    "idTelefone",
                ));
            }
            Reply::ok(json!({"idTelefone": id, "removido": true}))
        })
    })
    .await
}

/// The E.164 destination of a stored phone that may receive SMS (a mobile).
pub fn sms_destination(p: &Phone) -> Option<String> {
    PhoneNumber::parse(&p.area, &p.number)
        .ok()
        .filter(|n| n.line() == Line::Mobile)
        .map(|n| n.e164())
}

/// The SMS destination of a portador for its PIN: the phone `id`, or its first mobile
/// confirmed for SMS.
pub async fn pin_phone(
    r: &mut Records<'_>,
    customer_id: i64,
    id: Option<i64>,
) -> Result<String, ApiError> {
    let phones = r.phones_of(customer_id).await?;
    let chosen = match id {
        Some(id) => Some(
            phones
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| not_the_portadors("phone_not_found", "telefone", "idTelefone"))?,
        ),
        None => phones
            .iter()
            .find(|p| *p.sms_confirmed && sms_destination(p).is_some()),
    };
    match chosen
        .filter(|p| *p.sms_confirmed)
        .and_then(sms_destination)
    {
        Some(to) => Ok(to),
        None => Err(ApiError::unprocessable(
            "phone_not_confirmed",
            "Nenhum celular confirmado para SMS (POST .../telefones/recebe-sms).",
        )
        .field("idTelefone")),
    }
}
