//! Phones: `POST`/`GET /api/v1/portadores/{idPortador}/telefones`, `DELETE
//! .../telefones/{idTelefone}`, `POST .../telefones/recebe-sms` (confirming a phone for
//! SMS), and the SMS gateway ([`SmsGateway`]) that PIN delivery uses too.
//!
//! Choices where the document is silent:
//! * The POST body is one phone as in the account-opening example (`tipo`
//!   RESIDENCIAL/COMERCIAL/CELULAR/OUTROS, `area` 2 digits, `telefone` 8-9 digits,
//!   `ramal` up to 6 digits, `receberSMS`, `faturaDigital`), an array of up to 10, or
//!   `{"telefones": [...]}`; the answer (201) lists the phones created with their `id`.
//! * `recebe-sms` body `{"idTelefone", "codigo"?}`. Without `codigo` a random 6-digit
//!   code is sent to the phone through the gateway; only SHA-256(`id:code`) and the
//!   expiry (10 minutes) are stored. With `codigo` the phone is confirmed (`smsConfirmado`)
//!   when it matches; a wrong code is `422 codigo_invalido`, and the 5th wrong one voids
//!   the code (`422 codigo_inexistente` until a new one is asked for). An expired code
//!   is `422 codigo_expirado`.
//! * Only a confirmed phone receives PINs (`senhas/sms`).
//! * The default gateway ([`OutboxGateway`]) writes each message to the table
//!   `sms_outbox` (hex payload), where a carrier connector picks it up.

use sqlx::AnyConnection;
use std::future::Future;

use axum::http::Method;
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::common::from_path;
use super::historico::rfc3339;
use super::referencias::{operation, path_id};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::issuing::number_field;
use crate::api::store::{Records, now_ms};
use crate::handler_tx;

/// Wrong codes after which a confirmation code is void.
const CODE_TRIES: i64 = 5;
/// A confirmation code's lifetime.
const CODE_TTL_MS: i64 = 10 * 60 * 1000;

/// Where SMS messages go. The payload is opaque bytes (a PIN block under the gateway's
/// key for PIN delivery, text for confirmation codes).
pub trait SmsGateway {
    /// Sends `payload` to `phone` (E.164) for the portador `customer_id`.
    fn send(
        &mut self,
        customer_id: i64,
        phone: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// The default gateway: the `sms_outbox` table, written in the call's transaction (a
/// message is queued if and only if the call's changes commit).
#[derive(Debug)]
pub struct OutboxGateway<'a, 'c> {
    records: &'a mut Records<'c>,
}

impl SmsGateway for OutboxGateway<'_, '_> {
    async fn send(
        &mut self,
        customer_id: i64,
        phone: &str,
        payload: &[u8],
    ) -> Result<(), ApiError> {
        self.records.queue_sms(customer_id, phone, payload).await?;
        Ok(())
    }
}

/// The gateway of a call, over its records.
pub fn gateway<'a, 'c>(records: &'a mut Records<'c>) -> OutboxGateway<'a, 'c> {
    OutboxGateway { records }
}

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::POST,
            "/api/v1/portadores/{idPortador}/telefones",
            doc_add,
            handler_tx!(add),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/{idPortador}/telefones",
            doc_list,
            handler_tx!(list),
        ),
        Route::own(
            Method::DELETE,
            "/api/v1/portadores/{idPortador}/telefones/{idTelefone}",
            doc_delete,
            handler_tx!(delete),
        ),
        Route::own(
            Method::POST,
            "/api/v1/portadores/{idPortador}/telefones/recebe-sms",
            doc_confirm,
            handler_tx!(confirm),
        ),
    ]
}

fn phone_schema() -> Value {
    json!({"type": "object", "required": ["tipo", "area", "telefone"], "properties": {
        "tipo": {"type": "string", "enum": ["RESIDENCIAL", "COMERCIAL", "CELULAR", "OUTROS"]},
        "area": {"type": "string", "pattern": "^[1-9][0-9]$"},
        "telefone": {"type": "string", "pattern": "^[0-9]{8,9}$"},
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
        &[path_id(), ("idTelefone", "path", true, "The phone's id")],
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

fn digits(v: &Value, field: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if min > 0 => n.to_string(),
        Value::Null if min == 0 => String::new(),
        _ => String::from("x"),
    };
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field}: {min} to {max} digits"),
        )
        .field(field));
    }
    Ok(s)
}

fn flag(v: &Value, field: &str) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(
            ApiError::unprocessable("invalid_field", format!("{field}: true or false"))
                .field(field),
        ),
    }
}

fn phone_view<T: serde::Serialize>(p: &T) -> Value {
    let v = serde_json::to_value(p).unwrap_or(Value::Null);
    json!({"id": v["id"], "tipo": v["kind"], "area": v["area"], "telefone": v["number"],
        "ramal": v["extension"], "receberSMS": v["wants_sms"], "faturaDigital": v["digital_invoice"],
        "smsConfirmado": v["sms_confirmed"]})
}

async fn add(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let (list, base): (Vec<&Value>, &str) = match &ctx.body {
        Value::Array(a) => (a.iter().collect(), ""),
        Value::Object(o) => match o.get("telefones") {
            Some(Value::Array(a)) => (a.iter().collect(), "/telefones"),
            _ => (vec![&ctx.body], ""),
        },
        _ => (Vec::new(), ""),
    };
    if list.is_empty() || list.len() > 10 {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "one phone, or an array of 1 to 10",
        ));
    }
    let mut checked = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = |f: &str| {
            if ctx.body.is_array() || !base.is_empty() {
                format!("{base}/{i}/{f}")
            } else {
                format!("/{f}")
            }
        };
        let kind = t["tipo"]
            .as_str()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|k| {
                matches!(
                    k.as_str(),
                    "RESIDENCIAL" | "COMERCIAL" | "CELULAR" | "OUTROS"
                )
            })
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_field",
                    "tipo: RESIDENCIAL, COMERCIAL, CELULAR or OUTROS",
                )
                .field(at("tipo"))
            })?;
        let area = digits(&t["area"], &at("area"), 2, 2)?;
        if area.starts_with('0') {
            return Err(
                ApiError::unprocessable("invalid_field", "area: 11 to 99").field(at("area"))
            );
        }
        let number = digits(&t["telefone"], &at("telefone"), 8, 9)?;
        let ext = digits(&t["ramal"], &at("ramal"), 0, 6)?;
        let sms = flag(&t["receberSMS"], &at("receberSMS"))?;
        let invoice = flag(&t["faturaDigital"], &at("faturaDigital"))?;
        checked.push((kind, area, number, ext, sms, invoice));
    }
    let mut out = Vec::new();
    for (kind, area, number, ext, sms, invoice) in checked {
        let phone = r
            .add_phone(p.customer.id, [&kind, &area, &number, &ext], (sms, invoice))
            .await?;
        out.push(phone_view(&phone));
    }
    Reply::created(Value::Array(out))
}

async fn list(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let phones = r.phones_of(p.customer.id).await?;
    Reply::ok(Value::Array(phones.iter().map(phone_view).collect()))
}

fn phone_not_found(field: &str) -> ApiError {
    ApiError::not_found("telefone_nao_encontrado", "the portador has no such phone").field(field)
}

async fn delete(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let raw = ctx.param("idTelefone")?;
    let id = crate::api::issuing::parse_number(raw, "idTelefone")?;
    if !r.delete_phone(p.customer.id, id).await? {
        return Err(phone_not_found("idTelefone"));
    }
    Reply::ok(json!({"idTelefone": id, "removido": true}))
}

fn code_hash(phone_id: i64, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{phone_id}:{code}").as_bytes()))
}

/// Equal-length comparison whose time does not depend on where the texts differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The E.164 form of a stored phone (Brazil).
fn e164(area: &str, number: &str) -> String {
    format!("+55{area}{number}")
}

/// The SMS destination of a portador: the phone `id`, or its first phone confirmed for
/// SMS. Unconfirmed: `422 telefone_nao_confirmado`.
pub(super) async fn sms_phone(
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
                .ok_or_else(|| phone_not_found("/idTelefone"))?,
        ),
        None => phones.iter().find(|p| *p.sms_confirmed),
    };
    match chosen {
        Some(p) if *p.sms_confirmed => Ok(e164(&p.area, &p.number)),
        _ => Err(ApiError::unprocessable(
            "telefone_nao_confirmado",
            "no phone confirmed for SMS (POST .../telefones/recebe-sms)",
        )
        .field("/idTelefone")),
    }
}

async fn confirm(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let id = number_field(ctx.at("/idTelefone"), "/idTelefone")?;
    let phone = r
        .phone(p.customer.id, id)
        .await?
        .ok_or_else(|| phone_not_found("/idTelefone"))?;
    let now = now_ms();
    let Some(code) = ctx.body.get("codigo").filter(|c| !c.is_null()) else {
        if *phone.sms_confirmed {
            return Err(ApiError::unprocessable(
                "telefone_ja_confirmado",
                "the phone is already confirmed",
            )
            .field("/idTelefone"));
        }
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let expires = now + CODE_TTL_MS;
        r.set_phone_code(phone.id, &code_hash(phone.id, &code), expires)
            .await?;
        let text = format!("cofre: seu codigo de confirmacao e {code}");
        gateway(&mut r)
            .send(
                p.customer.id,
                &e164(&phone.area, &phone.number),
                text.as_bytes(),
            )
            .await?;
        return Reply::ok(json!({"idTelefone": phone.id, "status": "CODIGO_ENVIADO",
            "expiraEm": rfc3339(expires)}));
    };
    let code = match code {
        Value::String(s) if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
        _ => {
            return Err(
                ApiError::unprocessable("codigo_invalido", "codigo: 6 digits").field("/codigo"),
            );
        }
    };
    if phone.code_hash.is_empty() {
        return Err(ApiError::unprocessable(
            "codigo_inexistente",
            "no pending code: ask for a new one",
        )
        .field("/codigo"));
    }
    if now > phone.code_expires_ms {
        r.set_phone_code(phone.id, "", 0).await?;
        return Err(
            ApiError::unprocessable("codigo_expirado", "the code expired").field("/codigo"),
        );
    }
    if !same(&phone.code_hash, &code_hash(phone.id, &code)) {
        let tries = r.phone_code_failed(phone.id, CODE_TRIES).await?;
        let left = (CODE_TRIES - tries).max(0);
        // The wrong try is counted even though the call is refused.
        return Err(ApiError::unprocessable(
            "codigo_invalido",
            format!("wrong code ({left} tries left)"),
        )
        .field("/codigo")
        .keeping_effects());
    }
    r.confirm_phone(phone.id).await?;
    r.record_occurrence(
        p.customer.id,
        "telefone_confirmado",
        &format!("idTelefone={}", phone.id),
    )
    .await?;
    Reply::ok(json!({"idTelefone": phone.id, "status": "CONFIRMADO"}))
}
