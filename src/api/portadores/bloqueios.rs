//! Blocking a portador: `GET /api/v1/portadores/bloqueios/tipos`,
//! `POST /api/v1/portadores/bloqueios`, `POST /api/v1/portadores/desbloqueios`.
//!
//! Choices where the document is silent:
//! * Body: `{"idPortador", "idConta"?, "idCartao"?, "tipo", "observacao"?,
//!   "emitirNovoCartao"?}` (ids as numbers or digit strings). `tipo` is a block type's
//!   `codigo` (`PERDA`) or `id` (1) from `portador_block_types`. Unblock takes the same
//!   body without `tipo`. A card or account that is not the portador's is `404`.
//! * **Final blocks.** PERDA (card `lost`), ROUBO (`stolen`), FRAUDE and OBITO
//!   (`cancelled`) are final: the card is never unblocked (`422 final_block`), its PIN
//!   and security codes are refused from then on, and a new card (new PAN, new PIN,
//!   active, on the same account and for the same holder) replaces it; `emitirNovoCartao`
//!   (default true; OBITO never issues one) says whether. Without `idCartao` a final
//!   block takes the portador's own cards in use.
//! * **Other blocks** (SUSPEITA_FRAUDE, A_PEDIDO_CLIENTE, INADIMPLENCIA,
//!   BLOQUEIO_JUDICIAL) set `blocked` and may be lifted; without `idCartao`/`idConta`
//!   they take every card in use of the portador, its dependents' included (they are on
//!   its accounts). Unblocking restores `active`.
//! * Blocks and unblocks are occurrences (`ocorrencias`) and card history rows.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{Portador, block_word, card_status_word, load, mask, not_the_portadors};
use super::input::{self, Checks, Field, IdText, Text};
use super::referencias::{code_list, code_list_schema, operation, route};
use super::vipagem::product_of;
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{BlockCode, BlockType, CardStatus};
use crate::api::issuing::{Issued, expiry_in, issue};
use crate::api::store::{Card, NewCard, Records};
use crate::handler;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/v1/portadores/bloqueios/tipos",
            doc_types,
            handler!(types),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/bloqueios",
            doc_block,
            handler!(block),
        ),
        route(
            Method::POST,
            "/api/v1/portadores/desbloqueios",
            doc_unblock,
            handler!(unblock),
        ),
    ]
}

fn body_schema(with_type: bool) -> Value {
    let mut s = json!({"type": "object", "required": ["idPortador"], "properties": {
        "idPortador": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "idConta": {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Só os cartões desta conta"},
        "idCartao": {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "Só este cartão"},
        "observacao": {"type": "string", "maxLength": 200}
    }});
    if with_type {
        s["required"] = json!(["idPortador", "tipo"]);
        s["properties"]["tipo"] = json!({"oneOf": [{"type": "integer"}, {"type": "string"}],
            "description": "codigo ou id de GET /api/v1/portadores/bloqueios/tipos"});
        s["properties"]["emitirNovoCartao"] = json!({"type": "boolean", "description": "Bloqueios definitivos: emite um cartão novo (padrão: sim; nunca para OBITO)"});
    }
    s
}

fn result_schema() -> Value {
    json!({"type": "object", "properties": {
        "idPortador": {"type": "integer"},
        "tipo": {"type": "object", "nullable": true},
        "cartoes": {"type": "array", "items": {"type": "object", "properties": {
            "idCartao": {"type": "integer"}, "cartaoMascarado": {"type": "string"},
            "status": {"type": "string"}, "codigoBloqueio": {"type": "string"},
            "novoCartao": {"type": "object", "nullable": true}}}}
    }})
}

fn doc_types() -> Value {
    operation(
        "Lista os tipos de bloqueio aplicados pelo emissor",
        &[],
        None,
        ("200", code_list_schema()),
    )
}
fn doc_block() -> Value {
    operation(
        "Bloqueia um portador",
        &[],
        Some(body_schema(true)),
        ("200", result_schema()),
    )
}
fn doc_unblock() -> Value {
    operation(
        "Desbloqueia um portador",
        &[],
        Some(body_schema(false)),
        ("200", result_schema()),
    )
}

async fn types(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    Reply::ok(code_list(&reader.records().block_types().await?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockReq {
    #[serde(default)]
    id_portador: Field<IdText>,
    #[serde(default)]
    id_conta: Field<IdText>,
    #[serde(default)]
    id_cartao: Field<IdText>,
    #[serde(default)]
    tipo: Field<IdText>,
    #[serde(default)]
    observacao: Field<String>,
    #[serde(default)]
    emitir_novo_cartao: Field<bool>,
}

struct Target {
    portador: Portador,
    cards: Vec<Card>,
    note: String,
}

/// The portador of the body and the cards the body names (`account`/`card` narrow).
async fn targets(
    ctx: &Ctx,
    req: &BlockReq,
    chk: Checks,
    dependents_too: bool,
) -> Result<Target, ApiError> {
    let mut chk = chk;
    let id = chk.id("idPortador", &req.id_portador, true);
    let account = chk.id("idConta", &req.id_conta, false);
    let card = chk.id("idCartao", &req.id_cartao, false);
    let note = chk
        .text("observacao", &req.observacao, false, Text::printable(200))
        .unwrap_or_default();
    chk.finish()?;
    let id = id.ok_or_else(|| ApiError::internal("a checked id is missing"))?;
    let mut reader = ctx.reader().await?;
    let p = load(&mut reader.records(), id).await?;
    let mut cards: Vec<Card> = p.cards.clone();
    if dependents_too || card.is_some() {
        cards.extend(p.dependents.iter().map(|(_, c)| c.clone()));
    }
    cards.retain(|c| c.status != CardStatus::Replaced);
    if let Some(a) = account {
        if !p.accounts.iter().any(|x| x.id == a) {
            return Err(not_the_portadors("account_not_found", "conta", "idConta"));
        }
        cards.retain(|c| c.account_id == a);
    }
    if let Some(c) = card {
        if !cards.iter().any(|x| x.id == c) {
            return Err(not_the_portadors("card_not_found", "cartão", "idCartao"));
        }
        cards.retain(|x| x.id == c);
    }
    Ok(Target {
        portador: p,
        cards,
        note,
    })
}

fn card_view(c: &Card, new: Option<&Card>) -> Value {
    json!({"idCartao": c.id, "cartaoMascarado": mask(c), "status": card_status_word(c.status),
        "codigoBloqueio": block_word(c.block_code),
        "novoCartao": new.map(|n| json!({"idCartao": n.id, "cartaoMascarado": mask(n), "status": card_status_word(n.status)}))})
}

async fn block(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: BlockReq = input::body(&ctx.body, "um objeto")?;
    let types = {
        let mut reader = ctx.reader().await?;
        reader.records().block_types().await?
    };
    let mut chk = Checks::new();
    let row = match &req.tipo {
        Field::Value(IdText::Text(s)) => {
            types.iter().find(|t| t.code.eq_ignore_ascii_case(s.trim()))
        }
        Field::Value(IdText::Number(n)) => types.iter().find(|t| t.id == *n),
        _ => None,
    };
    let kind = row.and_then(|r| BlockType::parse(&r.code).ok());
    if kind.is_none() {
        if req.tipo.is_given() {
            chk.fail(
                "tipo",
                "unknown_block_type",
                "um codigo ou id de GET /api/v1/portadores/bloqueios/tipos",
            );
        } else {
            chk.required("tipo");
        }
    }
    let reissue_asked = chk.flag("emitirNovoCartao", &req.emitir_novo_cartao);
    if kind == Some(BlockType::Obito) && reissue_asked == Some(true) {
        chk.fail(
            "emitirNovoCartao",
            "not_for_death",
            "um bloqueio por óbito não emite cartão novo",
        );
    }
    let final_block = kind.is_some_and(BlockType::is_final);
    let t = targets(&ctx, &req, chk, !final_block).await?;
    let (Some(kind), Some(row)) = (kind, row.cloned()) else {
        return Err(ApiError::internal("a checked block type is missing"));
    };
    let cards: Vec<Card> = t
        .cards
        .into_iter()
        .filter(|c| !c.status.is_final())
        .collect();
    if cards.is_empty() {
        return Err(ApiError::unprocessable(
            "no_card",
            "O portador não tem cartão em uso para bloquear.",
        ));
    }
    let reissue = final_block && kind != BlockType::Obito && reissue_asked.unwrap_or(true);
    // New cards from the daemon before the transaction.
    let mut fresh: Vec<Issued> = Vec::new();
    let product = t
        .portador
        .main_account()
        .and_then(|a| product_of(&ctx.app, a, &t.portador.cards))
        .cloned();
    if reissue {
        let product = product.clone().ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_product",
                "O produto da conta não está configurado.",
            )
        })?;
        for _ in &cards {
            fresh.push(issue(&ctx.app, &product).await?);
        }
    }
    let customer = t.portador.customer.id;
    let note = t.note;
    let (years, service) = product.map_or((5, "201".to_owned()), |p| {
        (
            p.validity_years.unwrap_or(5),
            p.service_code.unwrap_or_else(|| "201".into()),
        )
    });
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut fresh = fresh.into_iter();
            for c in cards {
                let code = BlockCode::Type(kind);
                let updated = r
                    .try_update_card(c.id, "bloqueio", |card| {
                        if card.status.is_final() {
                            return Err(ApiError::conflict("card_changed", "O cartão mudou de estado durante a chamada."));
                        }
                        card.status = kind.card_status();
                        card.block_code = Some(code);
                        Ok(())
                    })
                    .await??;
                let new = match fresh.next() {
                    Some(issued) => Some(replace(&mut r, &updated, issued, years, &service).await?),
                    None => None,
                };
                out.push(card_view(new.as_ref().map_or(&updated, |(old, _)| old), new.as_ref().map(|(_, n)| n)));
            }
            r.record_occurrence(customer, "bloqueio", &format!("tipo={} cartoes={} {note}", row.code, out.len())).await?;
            Reply::ok(json!({"idPortador": customer,
                "tipo": {"id": row.id, "codigo": row.code, "descricao": row.description, "definitivo": final_block},
                "cartoes": out}))
        })
    })
    .await
}

/// Issues `issued` in place of the finally blocked `old` (same account, holder and
/// dependent link; active), and points `old` at it.
async fn replace(
    r: &mut Records<'_>,
    old: &Card,
    issued: Issued,
    years: u32,
    service: &str,
) -> Result<(Card, Card), ApiError> {
    let mut body = json!({"origem": "portadores", "substitui": old.id});
    for k in ["embossedName", "dependente", "titular"] {
        if let Some(v) = old.body.get(k) {
            body[k] = v.clone();
        }
    }
    let new = r
        .create_card(
            NewCard {
                account_id: old.account_id,
                customer_id: old.customer_id,
                token: issued.token,
                token_version: issued.token_version,
                lookup_token: issued.lookup_token,
                masked_pan: issued.masked_pan,
                kind: old.kind,
                expiry: expiry_in(years),
                service_code: service.to_owned(),
                pvv: issued.pvv,
                pin_blob: issued.pin_blob,
                body,
                credit_limit: old.credit_limit,
            },
            CardStatus::Active,
            "create-reissue",
        )
        .await?;
    let old = r
        .update_card(old.id, "substituido", |c| c.replaced_by = Some(new.id))
        .await?;
    r.relink_dependent_card(old.id, new.id).await?;
    Ok((old, new))
}

async fn unblock(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: BlockReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    if req.tipo.is_given() {
        chk.fail("tipo", "not_allowed", "o desbloqueio não tem tipo");
    }
    let t = targets(&ctx, &req, chk, true).await?;
    let blocked: Vec<i64> = t
        .cards
        .iter()
        .filter(|c| c.status == CardStatus::Blocked)
        .map(|c| c.id)
        .collect();
    if blocked.is_empty() {
        // A finally blocked card that was replaced is history, unless named.
        let named = req.id_cartao.is_given();
        if let Some(c) = t.cards.iter().find(|c| {
            c.status.is_final()
                && matches!(c.block_code, Some(BlockCode::Type(_)))
                && (named || c.replaced_by.is_none())
        }) {
            return Err(ApiError::unprocessable(
                "final_block",
                format!("Bloqueio definitivo ({}): o cartão não pode ser desbloqueado; um novo cartão é emitido em seu lugar.", block_word(c.block_code)),
            )
            .field("idCartao"));
        }
        return Err(ApiError::unprocessable(
            "not_blocked",
            "Não há cartão bloqueado para desbloquear.",
        ));
    }
    let customer = t.portador.customer.id;
    let note = t.note;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let mut out = Vec::new();
            for id in blocked {
                let updated = r
                    .try_update_card(id, "desbloqueio", |card| {
                        if card.status != CardStatus::Blocked {
                            return Err(ApiError::conflict(
                                "card_changed",
                                "O cartão mudou de estado durante a chamada.",
                            ));
                        }
                        card.status = CardStatus::Active;
                        card.block_code = None;
                        Ok(())
                    })
                    .await??;
                out.push(card_view(&updated, None));
            }
            r.record_occurrence(
                customer,
                "desbloqueio",
                &format!("cartoes={} {note}", out.len()),
            )
            .await?;
            Reply::ok(json!({"idPortador": customer, "tipo": Value::Null, "cartoes": out}))
        })
    })
    .await
}
