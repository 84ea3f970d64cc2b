//! PINs: `PATCH /api/v1/portadores/{idPortador}/senha` (change, given the current PIN)
//! and `POST /api/v1/portadores/{idPortador}/senhas/sms` (delivery by SMS).
//!
//! Choices where the document is silent:
//! * Card: `idCartao` (a card of the portador; a titular names its dependents' too),
//!   else the portador's own card in use. Another card is `404 card_not_found`.
//! * `PATCH .../senha` body `{"idCartao"?, "senhaAtual", "novaSenha", "keyAssociation"?}`:
//!   both PINs are ISO 9564 format 0 PIN blocks (16 hex characters) under the ZPK of
//!   `keyAssociation` (api.toml `[key_associations]`; absent: the first one by name).
//!   The daemon verifies the current PIN against the stored PVV, judges the new PIN by
//!   its weak-PIN policy (repeated digits, runs, the current PIN, and the holder's
//!   dates, which the facade passes as digits: DDMM, MMDD, YYYY, DDMMYY, YYMMDD, MMYY,
//!   DDMMYYYY, YYYYMMDD of the card holder's birth date) and derives the new PVV and
//!   LMK-encrypted PIN, which replace the card's. Wrong current PIN: `422 wrong_pin`;
//!   tries exhausted: `422 pin_locked`; a weak new PIN: `422 weak_pin` naming
//!   `novaSenha`; a block that does not decipher: `422 invalid_pin_block`. If the card's
//!   PIN changed meanwhile (another call), `409 card_changed` and nothing is written.
//! * `POST .../senhas/sms` body `{"idCartao"?, "idTelefone"?}`: the PIN goes to a
//!   mobile confirmed for SMS (see `telefones`) as an ISO format 0 PIN block under the
//!   SMS delivery key (`[sms] delivery_key`, a key of its own whose kind the daemon
//!   enforces), queued in the outbox (see `sms`; per-card and per-phone limits). The
//!   facade never sees the PIN.
//! * A card not in use (blocked, lost, stolen, cancelled, replaced) or whose PIN use the
//!   issuer blocked is refused (`422 card_blocked` / `pin_blocked`) before the daemon is
//!   asked, and the refusal is recorded as an occurrence. Changes, wrong PINs and
//!   deliveries are occurrences too (never with a PIN or block).

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{Portador, from_path, not_the_portadors};
use super::input::{self, Chars, Checks, Field, IdText, Text};
use super::referencias::{operation, path_id, route};
use super::senha_sms::sms;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{CardStatus, Date, PinStatus};
use crate::api::issuing::hsm_card;
use crate::api::store::{Card, Records};
use crate::client::{ClientError, PinChange, PinChangeRequest, PinReference};
use crate::handler;
use crate::protocol::{Status, Tag};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}/senha",
            doc_change,
            handler!(change),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/{idPortador}/senhas/sms",
            doc_sms,
            handler!(sms),
        ),
    ]
}

fn doc_change() -> Value {
    operation(
        "Altera a senha do portador usando a senha anterior",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["senhaAtual", "novaSenha"], "properties": {
                "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "senhaAtual": {"type": "string", "pattern": "^[0-9A-Fa-f]{16}$", "description": "Senha atual: bloco ISO 9564 formato 0 sob a ZPK"},
                "novaSenha": {"type": "string", "pattern": "^[0-9A-Fa-f]{16}$", "description": "Nova senha: bloco ISO 9564 formato 0 sob a ZPK"},
                "keyAssociation": {"type": "string"}
            }}),
        ),
        (
            "200",
            json!({"type": "object", "properties": {"idCartao": {"type": "integer"},
            "status": {"type": "string", "enum": ["SENHA_ALTERADA"]}}}),
        ),
    )
}

fn doc_sms() -> Value {
    operation(
        "Envia a senha do portador via SMS",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            "idTelefone": {"oneOf": [{"type": "integer"}, {"type": "string"}]}
        }})),
        (
            "200",
            json!({"type": "object", "properties": {"idCartao": {"type": "integer"},
            "telefone": {"type": "string"}, "status": {"type": "string", "enum": ["ENFILEIRADO"]},
            "idMensagem": {"type": "integer"}}}),
        ),
    )
}

/// The card `id` names among the portador's (a titular's dependents' included), else
/// its own card in use.
pub(super) fn chosen_card(p: &Portador, id: Option<i64>) -> Result<Card, ApiError> {
    let found = match id {
        None => p.main_card().filter(|c| !c.status.is_final()),
        Some(id) => p
            .cards
            .iter()
            .chain(p.dependents.iter().map(|(_, c)| c))
            .find(|c| c.id == id),
    };
    found
        .cloned()
        .ok_or_else(|| not_the_portadors("card_not_found", "cartão", "idCartao"))
}

/// Why a card may not use its PIN, if it may not.
pub(super) fn refusal(card: &Card) -> Option<ApiError> {
    let (code, msg) = if card.status != CardStatus::Active {
        (
            "card_blocked",
            format!(
                "O cartão não está em uso ({}).",
                super::common::card_status_word(card.status)
            ),
        )
    } else if card.pin_status == PinStatus::Blocked {
        (
            "pin_blocked",
            "O emissor bloqueou a senha deste cartão.".to_owned(),
        )
    } else {
        return None;
    };
    Some(ApiError::unprocessable(code, msg).field("idCartao"))
}

/// Records the refusal as an occurrence (committed with the answer) and answers it.
pub(super) async fn refuse(
    ctx: &Ctx,
    customer: i64,
    card: &Card,
    kind: &'static str,
    err: ApiError,
) -> Result<Reply, ApiError> {
    let detail = format!(
        "idCartao={} motivo={} bloqueio={}",
        card.id,
        err.code,
        super::common::block_word(card.block_code)
    );
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            r.record_occurrence(customer, kind, &detail).await?;
            Err(err.keeping_effects())
        })
    })
    .await
}

/// The holder's dates as the weak-PIN policy takes them (protocol/README.md, "Weak
/// PINs"): at most 8 digit strings of 4 to 12 digits.
pub fn weak_digits(born: Date) -> Vec<String> {
    let (y, m, d) = (born.year(), born.month(), born.day());
    let yy = y.rem_euclid(100);
    vec![
        format!("{d:02}{m:02}"),
        format!("{m:02}{d:02}"),
        format!("{y:04}"),
        format!("{d:02}{m:02}{yy:02}"),
        format!("{yy:02}{m:02}{d:02}"),
        format!("{m:02}{yy:02}"),
        format!("{d:02}{m:02}{y:04}"),
        format!("{y:04}{m:02}{d:02}"),
    ]
}

/// The birth date of the card's holder (a dependent's card: the dependent's).
async fn holder_birth(
    r: &mut Records<'_>,
    p: &Portador,
    card: &Card,
) -> Result<Option<Date>, ApiError> {
    let born = match p.dependents.iter().find(|(_, c)| c.id == card.id) {
        Some((link, _)) => r
            .customer(link.dependent_id)
            .await?
            .body
            .get("dataNascimento")
            .cloned(),
        None => p.customer.body.get("dataNascimento").cloned(),
    };
    Ok(born.and_then(|v| v.as_str().and_then(|s| Date::parse(s).ok())))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeReq {
    #[serde(default)]
    id_cartao: Field<IdText>,
    #[serde(default)]
    senha_atual: Field<String>,
    #[serde(default)]
    nova_senha: Field<String>,
    #[serde(default)]
    key_association: Field<String>,
}

async fn change(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ChangeReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    let card_id = chk.id("idCartao", &req.id_cartao, false);
    let hex16 = Text {
        min: 16,
        max: 16,
        chars: Chars::Alphanumeric,
    };
    let blocks: Vec<Option<Vec<u8>>> = [
        ("senhaAtual", &req.senha_atual),
        ("novaSenha", &req.nova_senha),
    ]
    .into_iter()
    .map(|(name, f)| {
        let t = chk.text(name, f, true, hex16)?;
        let b = hex::decode(&t).ok();
        if b.is_none() {
            chk.fail(
                name,
                "invalid_pin_block",
                "um bloco de senha: 16 caracteres hexadecimais",
            );
        }
        b
    })
    .collect();
    let assoc = &ctx.app.config.key_associations;
    let keys = match chk.text(
        "keyAssociation",
        &req.key_association,
        false,
        Text::printable(32),
    ) {
        // Absent, null or blank (a blank optional text is no value): the first
        // configured association. A value the text rule refused has failed the checks,
        // so `chk.finish()` answers 400 before this choice is used.
        None => assoc.values().next(),
        Some(name) => {
            let k = assoc.get(name.as_str());
            if k.is_none() {
                chk.fail(
                    "keyAssociation",
                    "unknown_key_association",
                    "uma keyAssociation configurada",
                );
            }
            k
        }
    }
    .cloned();
    chk.finish()?;
    let (Some(Some(old)), Some(Some(new)), Some(keys)) =
        (blocks.first().cloned(), blocks.get(1).cloned(), keys)
    else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    let (p, card, born) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        let p = from_path(&ctx, &mut r).await?;
        let card = chosen_card(&p, card_id)?;
        let born = holder_birth(&mut r, &p, &card).await?;
        (p, card, born)
    };
    let customer = p.customer.id;
    if let Some(e) = refusal(&card) {
        return refuse(&ctx, customer, &card, "senha_recusada", e).await;
    }
    let weak = born.map(weak_digits).unwrap_or_default();
    let weak: Vec<&str> = weak.iter().map(String::as_str).collect();
    let outcome = ctx
        .app
        .hsm
        .pin_change_checked(
            &PinChangeRequest {
                card: hsm_card(&card),
                key: keys.pin_key.clone(),
                format: 0,
                pin_block: old,
                new_pin_block: new,
                pvk: ctx.app.config.keys.pvk.clone(),
                reference: PinReference::Pvv {
                    pvv: card.pvv.clone(),
                    pvki: 1,
                },
            },
            &weak,
        )
        .await;
    let detail = format!("idCartao={}", card.id);
    let (card_id, seen_pvv) = (card.id, card.pvv.clone());
    match outcome {
        Ok(PinChange::Changed(changed)) => {
            let (Some(pvv), Some(blob)) = (changed.str(Tag::Pvv), changed.bytes(Tag::PinBlob))
            else {
                return Err(ApiError::internal("pin.change answered without a PVV"));
            };
            ctx.commit_records(move |mut r| {
                Box::pin(async move {
                    r.try_update_card(card_id, "senha", |c| {
                        // The PIN verified was the one read before the daemon call.
                        if c.pvv != seen_pvv {
                            return Err(ApiError::conflict("card_changed", "A senha do cartão mudou durante a chamada; repita com um novo id de requisição."));
                        }
                        c.pvv = pvv;
                        c.pin_blob = hex::encode_upper(blob);
                        Ok(())
                    })
                    .await??;
                    r.record_occurrence(customer, "senha_alterada", &detail).await?;
                    Reply::ok(json!({"idCartao": card_id, "status": "SENHA_ALTERADA"}))
                })
            })
            .await
        }
        Ok(PinChange::WrongPin) => {
            let e = ApiError::unprocessable("wrong_pin", "A senha atual está incorreta.")
                .field("senhaAtual");
            refuse(&ctx, customer, &card, "senha_invalida", e).await
        }
        Ok(PinChange::Locked) => {
            let e = ApiError::unprocessable(
                "pin_locked",
                "As tentativas de senha deste cartão se esgotaram.",
            )
            .field("senhaAtual");
            refuse(&ctx, customer, &card, "senha_bloqueada", e).await
        }
        Err(ClientError::Status {
            status: Status::WeakPin,
            message,
        }) => {
            // The daemon names the rule (current, repeated, sequence, excluded,
            // caller_digits); the answer says which in Portuguese, never the PIN.
            let why = match message.as_str() {
                m if m.contains("current") => "é igual à senha atual",
                m if m.contains("repeated") => "repete um só dígito",
                m if m.contains("sequence") => "é uma sequência de dígitos",
                m if m.contains("caller_digits") => "é uma data do portador",
                _ => "está na lista de senhas proibidas",
            };
            let mut chk = Checks::new();
            chk.fail("novaSenha", "weak_pin", format!("senha fraca: {why}"));
            let mut e = chk
                .finish()
                .err()
                .unwrap_or_else(|| ApiError::internal("no error"));
            e.code = "weak_pin";
            e.message = format!("Senha fraca: a nova senha {why}.");
            Err(e)
        }
        Err(ClientError::Status {
            status: Status::InvalidPinBlock,
            ..
        }) => Err(ApiError::unprocessable(
            "invalid_pin_block",
            "Um bloco de senha não decifra como bloco formato 0 deste cartão.",
        )
        .field("senhaAtual")),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_dates_as_digits() {
        let d = weak_digits(Date::parse("1980-05-17").unwrap());
        assert_eq!(
            d,
            [
                "1705", "0517", "1980", "170580", "800517", "0580", "17051980", "19800517"
            ]
        );
        assert!(d.len() <= 8 && d.iter().all(|e| (4..=12).contains(&e.len())));
    }
}
