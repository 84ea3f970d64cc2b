//! Security codes for the card bureau or the issuer (each under a `keyAssociation`'s
//! transport key) and dynamic CVV2: on, off, and a fresh code.

use crate::api::domain::DcvvState;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::{card_at, key_association, rfc3339, usable};
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::{card_number, hsm_card};
use crate::api::store::Card;
use crate::client::{Dcvv2Moment, Dcvv2Request};
use crate::protocol::Tag;

pub(super) async fn security_codes(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let card = card_at(&ctx, &mut reader.records(), "/cardNumber").await?;
    drop(reader);
    let ka = key_association(&ctx, "/keyAssociation")?;
    if !crate::api::domain::BlockCode::allows_code_export(card.status, card.block_code) {
        // Lost, stolen, cancelled, or blocked for theft or fraud: the codes are what a
        // fraudster would ask for.
        return Err(ApiError::unprocessable(
            "card_blocked",
            format!("the card is {}: no security codes", card.status),
        )
        .field("/cardNumber"));
    }
    let blob = if card.pin_blob.is_empty() {
        None
    } else {
        Some(
            hex::decode(&card.pin_blob)
                .map_err(|_| ApiError::internal("a stored PIN blob is not hex"))?,
        )
    };
    let encrypted = ctx
        .app
        .hsm
        .codes_export_blocks(
            &hsm_card(&card),
            &ctx.app.config.keys.cvk,
            &card.expiry,
            &card.service_code,
            &ka.transport_key,
            blob.as_deref(),
        )
        .await?;
    let blocks: Vec<String> = encrypted.chunks(8).map(hex::encode_upper).collect();
    if !(blocks.len() == 3 || blocks.len() == 4) || encrypted.len() % 8 != 0 {
        return Err(ApiError::internal(
            "card.codes.export answered an odd length",
        ));
    }
    let users: Vec<Value> = blocks[..3]
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"key": (i + 1).to_string(), "value": b}))
        .collect();
    let mut out = json!({ "usersDefined": users });
    if let Some(pin) = blocks.get(3) {
        out["pinEncrypt"] = json!(pin);
    }
    tracing::info!(card = card.id, "security codes exported");
    Reply::ok(out)
}

fn account_type(card: &Card) -> &'static str {
    card.kind.account_type()
}

pub(super) async fn dynamic_values(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let card = card_at(&ctx, &mut reader.records(), "/cardNumber").await?;
    drop(reader);
    key_association(&ctx, "/keyAssociation")?;
    let hcard = hsm_card(&card);
    let mut out = json!({
        "cardNumber": card_number(&card),
        "accountType": account_type(&card),
    });
    if ctx.at("/disableDCVV2").as_str() == Some("Y") {
        ctx.app.hsm.dcvv2_set(&hcard, false).await?;
        if card.dcvv2 == DcvvState::Off {
            return Reply::ok(out);
        }
        let id = card.id;
        return ctx
            .commit_records(move |mut r| {
                Box::pin(async move {
                    r.update_card(id, "dcvv2_off", |c| c.dcvv2 = DcvvState::Off)
                        .await?;
                    Reply::ok(out)
                })
            })
            .await;
    }
    usable(&card).map_err(|e| e.field("/cardNumber"))?;
    if card.dcvv2 != DcvvState::On {
        // Enabled before the first code is handed out: static CVV2 stops working
        // before anyone can use the dynamic one.
        ctx.app.hsm.dcvv2_set(&hcard, true).await?;
    }
    let now = SystemTime::now();
    let generated = ctx
        .app
        .hsm
        .dcvv2_generate(&Dcvv2Request {
            card: hcard,
            key: ctx.app.config.keys.dcvv2.clone(),
            expiry: card.expiry.clone(),
            moment: Dcvv2Moment::Now,
        })
        .await?;
    let code = generated
        .str(Tag::Dcvv2)
        .ok_or_else(|| ApiError::internal("dcvv2.generate answered without a code"))?;
    out["dcvv2"] = json!(code);
    out["dcvv2ExpiryMinutes"] = json!("5");
    out["dcvv2GenerationTime"] = json!(rfc3339(now));
    if card.dcvv2 == DcvvState::On {
        return Reply::ok(out);
    }
    // The answer (with the code) is recorded sealed, with the flag change.
    let id = card.id;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            r.update_card(id, "dcvv2_on", |c| c.dcvv2 = DcvvState::On)
                .await?;
            Reply::ok(out)
        })
    })
    .await
}
