//! The batch: cards made through the daemon, [`IN_FLIGHT`] at a time, committed every
//! [`COMMIT_EVERY`], then the embosser file. Batches run one at a time, in the
//! background, and are picked up again at start.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::embosser_file::{Line, render, write_atomically};
use super::{COMMIT_EVERY, IN_FLIGHT, expiry_yymm};
use crate::api::call::ApiError;
use crate::api::config::Product;
use crate::api::domain::Tenant;
use crate::api::issuing::{issue_for_bureau, number, today};
use crate::api::state::App;
use crate::api::store::{BatchCard, BoxFuture, Records, StoreError};
use crate::client::Card as HsmCard;

/// Runs `f` on `tenant`'s records in the writer's next transaction, as the system.
async fn write<T, F>(app: &App, tenant: &Tenant, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'c> FnOnce(Records<'c>) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
{
    let (tenant, dialect) = (tenant.clone(), app.store.dialect());
    app.store
        .write(move |db| f(Records::new(db, dialect, tenant, "cofre")))
        .await
}

/// One batch at a time: they share the daemon, so two would only slow each other.
static BATCHES: Semaphore = Semaphore::const_new(1);

/// Runs a queued batch in the background, one batch at a time.
pub(super) fn schedule(app: Arc<App>, tenant: Tenant, id: i64) {
    tokio::spawn(async move {
        let Ok(_turn) = BATCHES.acquire().await else {
            return;
        };
        if let Err(e) = run(&app, &tenant, id).await {
            tracing::error!(mass_issue = id, code = e.code, "mass issue failed");
            let reason = format!("{}: {}", e.code, e.message);
            let recorded = write(&app, &tenant, move |mut r| {
                Box::pin(async move { r.mass_issue_finish(id, "failed", &reason, "").await })
            })
            .await;
            if let Err(e) = recorded {
                tracing::error!(mass_issue = id, error = %e, "cannot record the failure");
            }
        }
    });
}

/// At start: a batch that was `running` when the facade stopped is marked `failed`
/// (`interrupted`; its cards so far are kept, no file is written: submit a new
/// request), and `queued` batches are scheduled again.
pub async fn recover(app: &Arc<App>) -> Result<(), String> {
    let (interrupted, queued) = app
        .store
        .mass_issue_recover()
        .await
        .map_err(|e| format!("mass issue recovery: {e}"))?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "mass issues interrupted by a restart: marked failed"
        );
    }
    for (tenant, id) in queued {
        let tenant = Tenant::new(&tenant).map_err(|e| format!("mass issue {id}: {e}"))?;
        schedule(Arc::clone(app), tenant, id);
    }
    Ok(())
}

/// Runs a queued request to its end (`Err`: the caller records `failed`).
pub async fn run(app: &Arc<App>, tenant: &Tenant, id: i64) -> Result<(), ApiError> {
    let started = write(app, tenant, move |mut r| {
        Box::pin(async move { r.mass_issue_start(id).await })
    })
    .await?;
    let Some(job) = started else {
        return Ok(()); // cancelled while queued
    };
    let bureau = app
        .config
        .bureau
        .clone()
        .ok_or_else(|| ApiError::internal("no bureau configured"))?;
    let product = Arc::new(
        app.config
            .product(job.organization, Some(job.logo))
            .cloned()
            .ok_or_else(|| ApiError::internal("the product left the configuration"))?,
    );
    let expiry = job.body["expiryDate"]
        .as_str()
        .and_then(|d| expiry_yymm(d, &today()))
        .ok_or_else(|| ApiError::internal("stored expiryDate no longer valid"))?;
    let service_code = product.service_code.clone().unwrap_or_else(|| "201".into());
    let mut tasks = JoinSet::new();
    let mut next = 1;
    // Sequences whose drawn PAN turned out to be issued before: drawn again.
    let mut redraw: Vec<i64> = Vec::new();
    let mut pending = Vec::with_capacity(COMMIT_EVERY);
    let mut lines = Vec::new();
    let (mut issued, mut failed) = (0, 0);
    let mut first_error = None;
    // At most one commit in flight while the cards go on being made.
    let mut committing: Option<tokio::task::JoinHandle<Result<Vec<i64>, StoreError>>> = None;
    loop {
        while first_error.is_none()
            && (next <= job.requested || !redraw.is_empty())
            && tasks.len() < IN_FLIGHT
        {
            let (app, product) = (Arc::clone(app), Arc::clone(&product));
            let (expiry, service_code) = (expiry.clone(), service_code.clone());
            let key = bureau.transport_key.clone();
            let sequence = match redraw.pop() {
                Some(s) => s,
                None => {
                    next += 1;
                    next - 1
                }
            };
            tasks.spawn(async move {
                make_card(&app, &product, sequence, &expiry, &service_code, &key).await
            });
        }
        let joined = tasks.join_next().await;
        match joined {
            Some(Ok(Ok((card, line)))) => {
                pending.push(card);
                lines.push(line);
                issued += 1;
            }
            Some(Ok(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Some(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(ApiError::internal(format!("card task: {e}")));
            }
            None => {}
        }
        let idle = tasks.is_empty();
        if pending.len() >= COMMIT_EVERY || (idle && !pending.is_empty()) {
            if let Some(previous) = committing.take() {
                let repeats = previous
                    .await
                    .map_err(|e| ApiError::internal(format!("commit task: {e}")))??;
                take_back(&repeats, &mut lines, &mut issued, &mut redraw);
            }
            let cards = std::mem::take(&mut pending);
            let (app, tenant) = (Arc::clone(app), tenant.clone());
            committing = Some(tokio::spawn(async move {
                write(&app, &tenant, move |mut r| {
                    Box::pin(async move { r.batch_cards_add(id, &cards, issued, failed).await })
                })
                .await
            }));
        }
        if idle {
            if let Some(last) = committing.take() {
                let repeats = last
                    .await
                    .map_err(|e| ApiError::internal(format!("commit task: {e}")))??;
                take_back(&repeats, &mut lines, &mut issued, &mut redraw);
            }
            if redraw.is_empty() || first_error.is_some() {
                break;
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    lines.sort_by_key(|l| l.sequence);
    let name = format!("cofre-mass-{}.txt", number(id));
    let text = render(
        &job,
        &product,
        &bureau.transport_key,
        &expiry,
        &service_code,
        &lines,
    );
    let dir = bureau.output_dir.clone();
    let file = name.clone();
    tokio::task::spawn_blocking(move || write_atomically(&dir, &file, &text))
        .await
        .map_err(|e| ApiError::internal(format!("file task: {e}")))?
        .map_err(|e| ApiError::internal(format!("embosser file: {e}")))?;
    let file = name.clone();
    write(app, tenant, move |mut r| {
        Box::pin(async move { r.mass_issue_finish(id, "done", "", &file).await })
    })
    .await?;
    tracing::info!(mass_issue = id, issued, file = %name, "mass issue done");
    Ok(())
}

/// Takes back the cards whose PAN was a repeat: out of the file, counted again, drawn
/// again.
fn take_back(repeats: &[i64], lines: &mut Vec<Line>, issued: &mut i64, redraw: &mut Vec<i64>) {
    if repeats.is_empty() {
        return;
    }
    lines.retain(|l| !repeats.contains(&l.sequence));
    *issued -= i64::try_from(repeats.len()).unwrap_or(0);
    redraw.extend_from_slice(repeats);
}

/// One card: PAN, token, PIN and PVV (`issuing::issue`), then its codes for the
/// bureau. Tried 3 times (a claimed PAN whose later step failed is never reused).
async fn make_card(
    app: &App,
    product: &Product,
    sequence: i64,
    expiry: &str,
    service_code: &str,
    transport_key: &str,
) -> Result<(BatchCard, Line), ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_card(app, product, sequence, expiry, service_code, transport_key).await {
            Ok(made) => return Ok(made),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(sequence, code = e.code, attempt, "mass issue card retried");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
        }
    }
}

async fn try_card(
    app: &App,
    product: &Product,
    sequence: i64,
    expiry: &str,
    service_code: &str,
    transport_key: &str,
) -> Result<(BatchCard, Line), ApiError> {
    let made = issue_for_bureau(app, product, transport_key).await?;
    let encrypted_pan = made
        .encrypted_pan
        .clone()
        .ok_or_else(|| ApiError::internal("pan.generate answered without the PAN"))?;
    let blob = hex::decode(&made.pin_blob)
        .map_err(|_| ApiError::internal("pin.generate answered a bad blob"))?;
    let card = HsmCard::Token {
        token: made.token.clone(),
        version: u32::try_from(made.token_version).ok(),
    };
    let codes = app
        .hsm
        .codes_export(
            &card,
            &app.config.keys.cvk,
            expiry,
            service_code,
            transport_key,
            Some(&blob),
        )
        .await?;
    let line = Line {
        sequence,
        masked_pan: made.masked_pan.clone(),
        encrypted_pan,
        encrypted_codes: hex::encode_upper(codes),
    };
    let card = BatchCard {
        sequence,
        token: made.token,
        token_version: made.token_version,
        lookup_token: made.lookup_token,
        masked_pan: made.masked_pan,
        expiry: expiry.to_owned(),
        service_code: service_code.to_owned(),
        pvv: made.pvv,
        pin_blob: made.pin_blob,
    };
    Ok((card, line))
}
