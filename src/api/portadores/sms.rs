//! SMS delivery: the outbox (`sms_outbox`, written in the call's transaction), its
//! rate limits, and the delivery worker that hands queued messages to an
//! [`SmsGateway`] with retries and back-off.
//!
//! * **States.** A message is `queued` when its call commits; the worker claims it
//!   (a lease: the row's next attempt is moved [`LEASE_MS`] ahead, so a second facade on
//!   the same database does not take it too), gives it to the gateway, and marks it
//!   `sent`, or after `[sms] max_attempts` failed attempts `failed`; a gateway that
//!   refuses the message itself (HTTP 4xx) fails it at once. Retries wait
//!   `retry_base * 2^(attempt-1)`, at most 10 minutes. The payload is erased when the
//!   message leaves the queue. A worker killed mid-send leaves the message leased; it
//!   is sent again after the lease (at least once: the gateway dedupes by message id).
//! * **Payloads.** A PIN message carries the PIN block under the SMS delivery key
//!   (made by the daemon; the facade never sees the PIN); a confirmation message
//!   carries its text sealed under the facade key. Neither is readable from the
//!   database alone, and both are erased once sent.
//! * **Rate limits** (`[sms]`, per 24 hours, counted over the outbox in the call's
//!   transaction): PIN messages per card and per phone, confirmation codes per phone.
//!   Over the limit: `429 sms_rate_limited`, nothing queued.

use std::sync::Arc;
use std::time::Duration;

use crate::api::call::ApiError;
use crate::api::state::App;
use crate::api::store::{BoxFuture, NewSms, OutboxMessage, Records, now_ms, outbox};

/// How long a claimed message is left to its sender before another may take it.
pub const LEASE_MS: i64 = 120_000;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 600_000;
const DAY_MS: i64 = 86_400_000;

/// What a gateway is given: the message id (the same on every retry), the destination
/// and the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The outbox id.
    pub id: i64,
    /// E.164 destination.
    pub to: String,
    /// The content.
    pub content: Content,
}

/// A message's content.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// A PIN block under the SMS delivery key (hex): the gateway deciphers it.
    PinBlock(String),
    /// A text (a confirmation code message).
    Text(String),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Content::PinBlock(_) => "PinBlock([REDACTED])",
            Content::Text(_) => "Text([REDACTED])",
        })
    }
}

/// Why a gateway did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Try again later (unreachable, timeout, 5xx, 429).
    #[error("temporary: {0}")]
    Temporary(String),
    /// The gateway refused the message itself (4xx): it will never be taken.
    #[error("refused: {0}")]
    Refused(String),
}

/// Where SMS messages go.
pub trait SmsGateway: Send + Sync + std::fmt::Debug {
    /// Hands one message over.
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), GatewayError>>;
}

/// When attempt `attempts + 1` (after `attempts` failures) is due, or `None` when the
/// message has had all its attempts.
pub fn next_attempt(attempts: i64, now_ms: i64, base_ms: i64, max_attempts: i64) -> Option<i64> {
    if attempts + 1 >= max_attempts {
        return None;
    }
    let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let wait = base_ms.saturating_mul(1_i64 << shift).min(MAX_BACKOFF_MS);
    Some(now_ms.saturating_add(wait))
}

fn rate_limited(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "sms_rate_limited",
        format!("Limite de SMS atingido para {what} nas últimas 24 horas."),
    )
}

/// Queues a PIN message in the call's transaction, within the per-card and per-phone
/// limits.
pub async fn queue_pin(
    app: &App,
    r: &mut Records<'_>,
    customer_id: i64,
    card_id: i64,
    phone: &str,
    block: &[u8],
) -> Result<i64, ApiError> {
    let since = now_ms() - DAY_MS;
    let limits = &app.config.sms;
    if r.sms_count_for_card(card_id, since).await? >= limits.pin_per_card_per_day {
        return Err(rate_limited("este cartão"));
    }
    if r.sms_count_for_phone(phone, "pin", since).await? >= limits.pin_per_phone_per_day {
        return Err(rate_limited("este telefone"));
    }
    let sms = NewSms {
        customer_id,
        card_id,
        phone,
        purpose: "pin",
        payload: block,
    };
    Ok(r.queue_sms_message(&sms).await?)
}

/// Queues a confirmation text (sealed under the facade key) within the per-phone limit.
pub async fn queue_code(
    app: &App,
    r: &mut Records<'_>,
    customer_id: i64,
    phone: &str,
    text: &str,
) -> Result<i64, ApiError> {
    let since = now_ms() - DAY_MS;
    if r.sms_count_for_phone(phone, "code", since).await? >= app.config.sms.codes_per_phone_per_day
    {
        return Err(rate_limited("este telefone"));
    }
    let sealed = app.seal.seal(text.as_bytes());
    let sms = NewSms {
        customer_id,
        card_id: 0,
        phone,
        purpose: "code",
        payload: sealed.as_bytes(),
    };
    Ok(r.queue_sms_message(&sms).await?)
}

/// The content of a queued message, opened.
fn content_of(app: &App, m: &OutboxMessage) -> Option<Content> {
    let raw = hex::decode(&m.payload_hex).ok()?;
    match m.purpose.as_str() {
        "pin" => Some(Content::PinBlock(hex::encode_upper(raw))),
        "code" => {
            let sealed = String::from_utf8(raw).ok()?;
            let text = app.seal.open(&sealed)?;
            String::from_utf8(text).ok().map(Content::Text)
        }
        _ => None,
    }
}

/// Claims a due message (lease); `false` if another worker took it.
async fn claim(app: &App, id: i64, now: i64) -> Result<bool, ApiError> {
    Ok(app
        .store
        .write(move |db| Box::pin(async move { outbox::claim(db, id, now, now + LEASE_MS).await }))
        .await?)
}

/// One pass of the worker at `now`: every due message (up to 100) tried once.
/// Returns how many were handed over.
pub async fn deliver_due(app: &App, gateway: &dyn SmsGateway, now: i64) -> Result<usize, ApiError> {
    let due = {
        let mut conn = app.store.read().await?;
        outbox::due(&mut conn, now, 100).await?
    };
    let mut sent = 0;
    let sms = &app.config.sms;
    let base = i64::try_from(sms.retry_base.as_millis()).unwrap_or(5000);
    for m in due {
        if !claim(app, m.id, now).await? {
            continue;
        }
        let (id, attempts) = (m.id, m.attempts);
        let outcome = match content_of(app, &m) {
            None => Err(GatewayError::Refused("the payload does not open".into())),
            Some(content) => {
                let out = Outgoing {
                    id: m.id,
                    to: m.phone.clone(),
                    content,
                };
                gateway.send(&out).await
            }
        };
        let next = next_attempt(attempts, now_ms(), base, sms.max_attempts);
        let result = app
            .store
            .write(move |db| {
                Box::pin(async move {
                    match (&outcome, next) {
                        (Ok(()), _) => outbox::finish(db, id, "sent", now_ms(), "").await,
                        (Err(GatewayError::Temporary(e)), Some(at)) => {
                            outbox::retry(db, id, at, e).await
                        }
                        (Err(e), _) => {
                            outbox::finish(db, id, "failed", now_ms(), &e.to_string()).await
                        }
                    }
                    .map(|()| outcome.is_ok())
                })
            })
            .await?;
        if result {
            sent += 1;
        } else {
            tracing::warn!(
                message = id,
                attempts = attempts + 1,
                "SMS not delivered yet"
            );
        }
    }
    Ok(sent)
}

/// Starts the delivery worker when `[sms] gateway` is set: a pass every second.
pub fn start_worker(app: &Arc<App>) -> Result<(), String> {
    let Some(url) = app.config.sms.gateway.clone() else {
        return Ok(());
    };
    let token = match &app.config.sms.gateway_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("sms.gateway_token_file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let gateway = super::sms_http::HttpGateway::new(&url, token, app.config.sms.gateway_timeout)?;
    let app = Arc::clone(app);
    tokio::spawn(async move {
        loop {
            if let Err(e) = deliver_due(&app, &gateway, now_ms()).await {
                tracing::warn!(code = e.code, "SMS delivery pass failed; tried again");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_ten_minutes_and_stops() {
        assert_eq!(next_attempt(0, 1_000, 5_000, 6), Some(6_000));
        assert_eq!(next_attempt(1, 1_000, 5_000, 6), Some(11_000));
        assert_eq!(next_attempt(4, 0, 5_000, 6), Some(80_000));
        assert_eq!(next_attempt(5, 0, 5_000, 6), None);
        assert_eq!(next_attempt(3, 0, 200_000, 10), Some(MAX_BACKOFF_MS));
        assert_eq!(
            format!("{:?}", Content::Text("código 123456".into())),
            "Text([REDACTED])"
        );
    }
}
