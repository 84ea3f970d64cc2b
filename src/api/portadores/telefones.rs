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
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{from_path, not_the_portadors};
use super::contato::{Telefone, TelefoneReq, check_phone, check_phones};
use super::historico::rfc3339;
use super::input::{self, Checks, Field, IdText, Text};
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::contact::{Line, PhoneNumber};
use crate::api::state::CodeKey;
use crate::api::store::{Phone, Records, now_ms};
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

/// Equal-length comparison whose time does not depend on where the texts differ.
fn same(a: &str, b: &str) -> bool {
    crate::crypto::ct_eq(a.as_bytes(), b.as_bytes())
}

/// The E.164 destination of a stored phone that may receive SMS (a mobile).
pub fn sms_destination(p: &Phone) -> Option<String> {
    PhoneNumber::parse(&p.area, &p.number)
        .ok()
        .filter(|n| n.line() == Line::Mobile)
        .map(|n| n.e164())
}

/// What a code check decided, at `now_ms` (a pure rule: the clock is a parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// No code pending.
    NonePending,
    /// The pending code expired.
    Expired,
    /// The code is wrong.
    Wrong,
    /// The code is right.
    Right,
}

/// Checks `code` against the phone's pending code hash at `now_ms`.
pub fn check_code(key: &CodeKey, tenant: &str, p: &Phone, code: &str, now_ms: i64) -> CodeCheck {
    if p.code_hash.is_empty() {
        CodeCheck::NonePending
    } else if now_ms > p.code_expires_ms {
        CodeCheck::Expired
    } else if same(&p.code_hash, &key.hash(tenant, p.id, code)) {
        CodeCheck::Right
    } else {
        CodeCheck::Wrong
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmReq {
    #[serde(default)]
    id_telefone: Field<IdText>,
    #[serde(default)]
    codigo: Field<String>,
}

async fn confirm(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ConfirmReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    let id = chk.id("idTelefone", &req.id_telefone, true);
    let code = chk.text(
        "codigo",
        &req.codigo,
        false,
        Text {
            min: 6,
            max: 6,
            chars: input::Chars::Digits,
        },
    );
    chk.finish()?;
    let id = id.ok_or_else(|| ApiError::internal("a checked id is missing"))?;
    let customer = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?.customer.id
    };
    let app = std::sync::Arc::clone(&ctx.app);
    let tenant = ctx.tenant.as_str().to_owned();
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let phone = r.phone(customer, id).await?.ok_or_else(|| not_the_portadors("phone_not_found", "telefone", "idTelefone"))?;
            let Some(to) = sms_destination(&phone) else {
                return Err(ApiError::unprocessable("not_mobile", "Só um celular pode receber SMS.").field("idTelefone"));
            };
            let now = now_ms();
            let Some(code) = code else {
                if *phone.sms_confirmed {
                    return Err(ApiError::unprocessable("already_confirmed", "O telefone já está confirmado.").field("idTelefone"));
                }
                let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
                let expires = now + CODE_TTL_MS;
                r.set_phone_code(phone.id, &app.code_key.hash(&tenant, phone.id, &code), expires).await?;
                let text = format!("Seu código de confirmação é {code}. Ele vale por 10 minutos.");
                super::sms::queue_code(&app, &mut r, customer, &to, &text).await?;
                return Reply::ok(json!({"idTelefone": phone.id, "status": "CODIGO_ENVIADO", "expiraEm": rfc3339(expires)}));
            };
            match check_code(&app.code_key, &tenant, &phone, &code, now) {
                CodeCheck::NonePending => Err(ApiError::unprocessable("no_pending_code", "Não há código pendente: peça um novo.").field("codigo")),
                CodeCheck::Expired => {
                    r.set_phone_code(phone.id, "", 0).await?;
                    Err(ApiError::unprocessable("code_expired", "O código expirou: peça um novo.").field("codigo").keeping_effects())
                }
                CodeCheck::Wrong => {
                    let tries = r.phone_code_failed(phone.id, CODE_TRIES).await?;
                    let left = (CODE_TRIES - tries).max(0);
                    // The wrong try is counted even though the call is refused.
                    Err(ApiError::unprocessable("invalid_code", format!("Código incorreto ({left} tentativas restantes)."))
                        .field("codigo")
                        .keeping_effects())
                }
                CodeCheck::Right => {
                    r.confirm_phone(phone.id).await?;
                    r.record_occurrence(customer, "telefone_confirmado", &format!("idTelefone={}", phone.id)).await?;
                    Reply::ok(json!({"idTelefone": phone.id, "status": "CONFIRMADO"}))
                }
            }
        })
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::store::Phone;

    fn phone(hash: String, expires: i64) -> Phone {
        Phone {
            id: 7,
            customer_id: 1,
            kind: "CELULAR".into(),
            area: "83".into(),
            number: "999990000".into(),
            extension: String::new(),
            wants_sms: crate::api::store::Flag(true),
            digital_invoice: crate::api::store::Flag(false),
            sms_confirmed: crate::api::store::Flag(false),
            code_hash: hash,
            code_expires_ms: expires,
            code_failures: 0,
        }
    }

    // The expiry rule with an injected clock: right until the last millisecond of its
    // life, expired one millisecond later; a code under another key or tenant is wrong.
    #[test]
    fn codes_expire_by_the_clock_passed_in() {
        let key = CodeKey::derive(&[9u8; 32]);
        let issued = 1_000_000;
        let p = phone(key.hash("15", 7, "123456"), issued + CODE_TTL_MS);
        assert_eq!(
            check_code(&key, "15", &p, "123456", issued),
            CodeCheck::Right
        );
        assert_eq!(
            check_code(&key, "15", &p, "123456", issued + CODE_TTL_MS),
            CodeCheck::Right
        );
        assert_eq!(
            check_code(&key, "15", &p, "123456", issued + CODE_TTL_MS + 1),
            CodeCheck::Expired
        );
        assert_eq!(
            check_code(&key, "15", &p, "654321", issued + 1),
            CodeCheck::Wrong
        );
        assert_eq!(
            check_code(&key, "16", &p, "123456", issued + 1),
            CodeCheck::Wrong
        );
        let other = CodeKey::derive(&[8u8; 32]);
        assert_eq!(
            check_code(&other, "15", &p, "123456", issued + 1),
            CodeCheck::Wrong
        );
        assert_eq!(
            check_code(&key, "15", &phone(String::new(), 0), "123456", 0),
            CodeCheck::NonePending
        );
        // The stored hash is not the code, nor an unkeyed hash of it.
        assert!(!p.code_hash.contains("123456"));
        assert_eq!(sms_destination(&p).as_deref(), Some("+5583999990000"));
        let mut landline = p.clone();
        landline.number = "32221111".into();
        assert_eq!(sms_destination(&landline), None);
    }
}
