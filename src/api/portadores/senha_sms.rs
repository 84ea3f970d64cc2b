//! `POST /api/v1/portadores/{idPortador}/senhas/sms`: the PIN by SMS (see `senhas`).

use serde::Deserialize;
use serde_json::json;

use super::common::from_path;
use super::input::{self, Checks, Field, IdText};
use super::senhas::{chosen_card, refusal, refuse};
use super::telefones::pin_phone;
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::hsm_card;
use crate::client::PinDelivery;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmsReq {
    #[serde(default)]
    id_cartao: Field<IdText>,
    #[serde(default)]
    id_telefone: Field<IdText>,
}

fn masked_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i >= 5 && i + 4 < n { '*' } else { c })
        .collect()
}

pub(super) async fn sms(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: SmsReq = if ctx.body.is_null() {
        input::body(&json!({}), "um objeto")?
    } else {
        input::body(&ctx.body, "um objeto")?
    };
    let mut chk = Checks::new();
    let card_id = chk.id("idCartao", &req.id_cartao, false);
    let phone_id = chk.id("idTelefone", &req.id_telefone, false);
    chk.finish()?;
    let (p, card, phone) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        let p = from_path(&ctx, &mut r).await?;
        let card = chosen_card(&p, card_id)?;
        let phone = pin_phone(&mut r, p.customer.id, phone_id).await?;
        (p, card, phone)
    };
    let customer = p.customer.id;
    if let Some(e) = refusal(&card) {
        return refuse(&ctx, customer, &card, "envio_senha_recusado", e).await;
    }
    let key = ctx.app.config.sms.delivery_key.clone().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "sms_unavailable",
            "O envio de senha por SMS não está configurado ([sms] delivery_key).",
        )
    })?;
    let blob = hex::decode(&card.pin_blob)
        .map_err(|_| ApiError::internal("stored PIN blob is not hex"))?;
    let block = ctx
        .app
        .hsm
        .pin_deliver(
            &hsm_card(&card),
            &blob,
            &PinDelivery {
                key,
                format: Some(0),
            },
        )
        .await?;
    let app = std::sync::Arc::clone(&ctx.app);
    let (card_id, seen_blob) = (card.id, card.pin_blob.clone());
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            // The PIN sent is the one read before the daemon call, and the card may
            // still have it sent: a change or a final block in between wins.
            let current = r.card(card_id).await?;
            if current.pin_blob != seen_blob {
                return Err(ApiError::conflict("card_changed", "A senha do cartão mudou durante a chamada; repita com um novo id de requisição."));
            }
            if let Some(e) = refusal(&current) {
                return Err(e);
            }
            let id = super::sms::queue_pin(&app, &mut r, customer, card_id, &phone, &block).await?;
            r.record_occurrence(customer, "senha_enviada_sms", &format!("idCartao={card_id}")).await?;
            Reply::ok(json!({"idCartao": card_id, "telefone": masked_phone(&phone), "status": "ENFILEIRADO", "idMensagem": id}))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_are_masked_in_answers() {
        assert_eq!(super::masked_phone("+5583999990000"), "+5583*****0000");
    }
}
