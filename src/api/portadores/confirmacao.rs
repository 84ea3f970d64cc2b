//! Confirming a mobile for SMS: `POST /api/v1/portadores/{idPortador}/telefones/recebe-sms`
//! (see `telefones` for the rules), and the pure rule of a code check at a given time.

use rand::RngExt;
use serde::Deserialize;
use serde_json::json;

use super::common::{from_path, not_the_portadors};
use super::historico::rfc3339;
use super::input::{self, Checks, Field, IdText, Text};
use super::telefones::{CODE_TRIES, CODE_TTL_MS, sms_destination};
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::state::CodeKey;
use crate::api::store::{Phone, now_ms};

/// Equal-length comparison whose time does not depend on where the texts differ.
fn same(a: &str, b: &str) -> bool {
    crate::crypto::ct_eq(a.as_bytes(), b.as_bytes())
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

pub(super) async fn confirm(ctx: Ctx) -> Result<Reply, ApiError> {
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
