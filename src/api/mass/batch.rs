//! The batch: cards made through the daemon, [`IN_FLIGHT`] at a time, committed as soon
//! as the previous commit is done (at most [`COMMIT_EVERY`] a commit), then the embosser
//! file. Batches run one at a time per instance, in the background, under a lease
//! ([`super::lease`]): whoever claims a batch (the instance that queued it, another one
//! after its owner stopped, or a restart) makes only the sequences not yet committed,
//! and writes the file from every committed card.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::embosser_file::{Line, render, write_atomically};
use super::lease::{self, Held, instance_id};
use super::{COMMIT_EVERY, IN_FLIGHT, expiry_yymm};
use crate::api::call::ApiError;
use crate::api::config::Product;
use crate::api::domain::Tenant;
use crate::api::domain::processor::MassIssueUpdate;
use crate::api::issuing::{issue_for_bureau, number, today_date};
use crate::api::state::App;
use crate::api::store::{BatchCard, BatchClaim, BoxFuture, CommittedCard, Records, StoreError};
use crate::client::Card as HsmCard;
use serde::Deserialize as _;

/// Runs `f` on `tenant`'s records in the writer's next transaction, as the system.
pub(super) async fn write<T, F>(app: &App, tenant: &Tenant, f: F) -> Result<T, StoreError>
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

/// Claims and runs a batch in the background, one batch at a time (nothing if it is
/// already scheduled in this process). A failure is recorded only while this instance
/// still owns the batch.
pub(super) fn schedule(app: Arc<App>, tenant: Tenant, id: i64, how: BatchClaim) {
    if !lease::mark_scheduled(id) {
        return;
    }
    tokio::spawn(async move {
        if let Ok(_turn) = BATCHES.acquire().await
            && let Err(e) = run(&app, &tenant, id, how).await
        {
            let reason = format!("{}: {}", e.code, e.message);
            let recorded = write(&app, &tenant, move |mut r| {
                Box::pin(async move {
                    r.mass_issue_finish(id, instance_id(), "failed", &reason, "")
                        .await
                })
            })
            .await;
            match recorded {
                Ok(true) => tracing::error!(mass_issue = id, code = e.code, "mass issue failed"),
                // Fenced: the batch is another instance's now, and goes on there.
                Ok(false) => tracing::warn!(
                    mass_issue = id,
                    "mass issue taken over by another instance: stopped here"
                ),
                Err(e) => {
                    tracing::error!(mass_issue = id, error = %e, "cannot record the failure");
                }
            }
        }
        lease::unmark_scheduled(id);
    });
}

/// The embosser lines of the cards committed before this instance claimed the batch.
fn committed_lines(cards: Vec<CommittedCard>) -> Result<Vec<Line>, ApiError> {
    cards
        .into_iter()
        .map(|c| {
            if c.encrypted_pan.is_empty() || c.encrypted_codes.is_empty() {
                return Err(ApiError::internal(
                    "a committed card has no bureau values to resume from",
                ));
            }
            Ok(Line {
                sequence: c.sequence,
                masked_pan: c.masked_pan,
                encrypted_pan: c.encrypted_pan,
                encrypted_codes: c.encrypted_codes,
            })
        })
        .collect()
}

/// Claims a request and runs it to its end (`Err`: the caller records `failed`, if
/// this instance still owns it).
pub async fn run(
    app: &Arc<App>,
    tenant: &Tenant,
    id: i64,
    how: BatchClaim,
) -> Result<(), ApiError> {
    let lease = lease::duration(app);
    let claimed = write(app, tenant, move |mut r| {
        Box::pin(async move {
            r.mass_issue_claim(id, instance_id(), lease::until(lease), how)
                .await
        })
    })
    .await?;
    let Some(job) = claimed else {
        return Ok(()); // cancelled while queued, ended, or another instance runs it
    };
    let held = Held::start(app, tenant, id, lease);
    let committed = write(app, tenant, move |mut r| {
        Box::pin(async move { r.batch_cards_committed(id).await })
    })
    .await?;
    let mut lines = committed_lines(committed)?;
    if !lines.is_empty() {
        tracing::info!(
            mass_issue = id,
            committed = lines.len(),
            "mass issue resumed"
        );
    }
    let done: HashSet<i64> = lines.iter().map(|l| l.sequence).collect();
    let mut missing = (1..=job.requested).filter(move |s| !done.contains(s));
    let mut next_missing = missing.next();
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
    let expiry = MassIssueUpdate::deserialize(&job.body.0)
        .ok()
        .and_then(|m| expiry_yymm(m.expiry_date, today_date()))
        .ok_or_else(|| ApiError::internal("stored expiryDate no longer valid"))?;
    let service_code = product.service_code.clone().unwrap_or_else(|| "201".into());
    let mut tasks = JoinSet::new();
    // Sequences whose drawn PAN turned out to be issued before: drawn again.
    let mut redraw: Vec<i64> = Vec::new();
    let mut pending = Vec::with_capacity(COMMIT_EVERY);
    let (mut issued, mut failed) = (i64::try_from(lines.len()).unwrap_or(0), 0);
    let mut first_error = None;
    // At most one commit in flight while the cards go on being made.
    let mut committing: Option<tokio::task::JoinHandle<Result<Vec<i64>, StoreError>>> = None;
    loop {
        if held.lost() {
            first_error.get_or_insert(ApiError::conflict(
                "mass_issue_taken_over",
                "another instance runs this mass issue",
            ));
        }
        while first_error.is_none()
            && (next_missing.is_some() || !redraw.is_empty())
            && tasks.len() < IN_FLIGHT
        {
            let (app, product) = (Arc::clone(app), Arc::clone(&product));
            let (expiry, service_code) = (expiry.clone(), service_code.clone());
            let key = bureau.transport_key.clone();
            let sequence = match redraw.pop() {
                Some(s) => s,
                None => match next_missing {
                    Some(s) => {
                        next_missing = missing.next();
                        s
                    }
                    None => break,
                },
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
        let previous_done = committing
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished);
        if !pending.is_empty() && (previous_done || pending.len() >= COMMIT_EVERY || idle) {
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
                    Box::pin(async move {
                        let until = lease::until(lease);
                        r.batch_cards_add(id, instance_id(), until, &cards, (issued, failed))
                            .await
                    })
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
    let finished = write(app, tenant, move |mut r| {
        Box::pin(async move {
            r.mass_issue_finish(id, instance_id(), "done", "", &file)
                .await
        })
    })
    .await?;
    if finished {
        tracing::info!(mass_issue = id, issued, file = %name, "mass issue done");
    } else {
        tracing::warn!(
            mass_issue = id,
            "mass issue taken over before it was marked done"
        );
    }
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
        encrypted_pan: line.encrypted_pan.clone(),
        encrypted_codes: line.encrypted_codes.clone(),
    };
    Ok((card, line))
}
