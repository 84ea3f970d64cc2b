//! Mass card issue: `POST`/`GET /cards/mass-card-issue-L8V3` (the processor's "Mass
//! Card Issue Update" and "Inquiry"), cofre's `GET /cofre/v1/mass-issues/{id}` and
//! `GET /cofre/v1/mass-issues/{id}/embosser-file`, the background batch that makes the
//! cards through the daemon, and the embosser file for the card bureau
//! (`protocol/embosser-file.md`).
//!
//! Owns: `mass_issues` and `batch_cards` (`migrations/0003_mass_issue.sql`) and the files
//! in `bureau.output_dir`. Never sees a clear PAN, PIN or CVV: the daemon returns them
//! only encrypted under the bureau's transport key, and they go only to the file.
//!
//! Choices where the processor's documents are silent:
//! * A request is keyed by (tenant, `organizationNumber`, `logo`, `cardType`; 0 when not
//!   sent). `functionType` `A` (or empty) adds: if a request for the key has not
//!   started (`queued`) it is updated (quantity and body), else a new one is queued.
//!   `M` updates the queued request, `422 mass_issue_not_found` when there is none
//!   (VPL5SMC05S) and `422 mass_issue_started` when it started meanwhile. `status` is 1
//!   or 9 (VPL5SMC07E); 9 cancels the queued request. Other function types are
//!   `422 invalid_function_type`.
//! * `quantityToCreate` is 1 to 10,000 cards ([`MAX_QUANTITY`]) and `minimumQuantity`
//!   0 to 10,000 (kept, not acted on); outside: `422 quantity_out_of_range` naming the
//!   field. `expiryDate` is the cards' expiry (printed as YYMM): after today
//!   (VPL5SMC29E) and at most 20 years ahead, else `422 invalid_expiry_date`.
//! * Batches run one at a time (a queue: a later request waits as `queued`, which is
//!   when it can still be updated), [`IN_FLIGHT`] cards in flight at the daemon, and
//!   progress is committed every [`COMMIT_EVERY`] cards. A card whose daemon calls fail
//!   3 times fails the batch (`failed`, with the error code; no file is written). A batch
//!   cut by a restart stays `running`.
//! * The answer's `outputArea` echoes the request, with `dateLastMaintain` (today) and
//!   `addStatus` 1 (new request), 2 (queued request updated) or 9 (cancelled). The spec
//!   has no field for the request's id, so cofre adds `massIssueId` (19 digits) and
//!   `massIssueState`; the inquiry returns them too, for the newest request of the key.
//! * The inquiry (`organizationNumber`, `logo`, `serviceType` = card type) answers the
//!   processor's card list: one card per batch card (`cardNumber` its PAN token padded
//!   to 19, `cardStatus` `0` and `isActive` false: stock without a cardholder), 50 a page
//!   (`page`, from 1, or `cursor` = the previous answer's `nextCursor`; cofre additions), `totalCardsCount` the cards made so far, plus
//!   `massIssueId`, `state`, `requested`, `issued`, `failed`, `fileName`.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::http::{ApiError, Ctx, Reply, Route};
use super::issuing::{number, parse_number, today};
use crate::handler;

/// Most cards one request may ask for.
pub const MAX_QUANTITY: i64 = 10_000;
/// Cards in flight at the daemon during a batch.
pub const IN_FLIGHT: usize = 16;
/// Cards per progress commit.
pub const COMMIT_EVERY: usize = 50;
/// Cards per inquiry page.
const PAGE: i64 = 50;

/// One batch at a time: they share the daemon, so two would only slow each other.
static BATCHES: Semaphore = Semaphore::const_new(1);

/// A mass issue request and its progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MassIssue {
    /// Record id.
    pub id: i64,
    /// Owning tenant.
    pub tenant: String,
    /// `organizationNumber`.
    pub organization: i64,
    /// `logo`.
    pub logo: i64,
    /// `cardType` (0 when not sent).
    pub card_type: i64,
    /// Cards asked for.
    pub requested: i64,
    /// Cards made so far.
    pub issued: i64,
    /// Cards that could not be made.
    pub failed: i64,
    /// `queued`, `running`, `done`, `failed`, `cancelled`.
    pub state: String,
    /// Why it failed (a stable code and short text; never a value).
    pub error: String,
    /// The embosser file's name in the bureau directory (empty until done).
    pub file_name: String,
    /// The request body as received (the latest, after updates).
    pub body: Value,
    /// Created, epoch ms.
    pub created_ms: i64,
    /// Last changed, epoch ms.
    pub updated_ms: i64,
}

/// One card of a batch (no clear PAN, PIN or CVV).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchCard {
    /// Position in the batch, from 1.
    pub sequence: i64,
    /// PAN token.
    pub token: String,
    /// Token key version.
    pub token_version: i64,
    /// Lookup token.
    pub lookup_token: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// YYMM.
    pub expiry: String,
    /// Service code.
    pub service_code: String,
    /// PVV.
    pub pvv: String,
    /// LMK-encrypted PIN, hex.
    pub pin_blob: String,
}

/// This module's routes.
pub fn routes() -> Vec<Route> {
    const SPEC: &str = "/cards/mass-card-issue-L8V3";
    vec![
        Route::processor(Method::POST, SPEC, SPEC, handler!(add)),
        Route::processor(Method::GET, SPEC, SPEC, handler!(inquiry)),
        Route::own(
            Method::GET,
            "/cofre/v1/mass-issues/{id}",
            progress_doc,
            handler!(progress),
        ),
        Route::own(
            Method::GET,
            "/cofre/v1/mass-issues/{id}/embosser-file",
            file_doc,
            handler!(embosser_file),
        ),
    ]
}

/// `expiryDate` (`YYYY-MM-DD`) as the card's YYMM, after `today` (`YYYY-MM-DD`) and at
/// most 20 years ahead.
pub fn expiry_yymm(date: &str, today: &str) -> Option<String> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) {
        return None;
    }
    if !digits(8..10) {
        return None;
    }
    let year: u32 = date[0..4].parse().ok()?;
    let month: u32 = date[5..7].parse().ok()?;
    let day: u32 = date[8..10].parse().ok()?;
    let this_year: u32 = today.get(0..4)?.parse().ok()?;
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day);
    (valid && date > today && year <= this_year + 20)
        .then(|| format!("{:02}{month:02}", year % 100))
}

fn int(ctx: &Ctx, field: &str) -> i64 {
    ctx.body[field].as_i64().unwrap_or(0)
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let function = ctx.body["functionType"].as_str().unwrap_or("").trim();
    let modify = match function {
        "" | "A" | "a" => false,
        "M" | "m" => true,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_function_type",
                "functionType: A (add) or M (modify)",
            )
            .field("/functionType"));
        }
    };
    let status = int(&ctx, "status");
    if status != 1 && status != 9 {
        return Err(ApiError::unprocessable("invalid_status", "status: 1 or 9").field("/status"));
    }
    let (org, logo) = (int(&ctx, "organizationNumber"), int(&ctx, "logo"));
    if ctx.app.config.product(org, Some(logo)).is_none() {
        let field = if ctx.app.config.product(org, None).is_none() {
            "/organizationNumber"
        } else {
            "/logo"
        };
        return Err(ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field(field));
    }
    let quantity = int(&ctx, "quantityToCreate");
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::unprocessable(
            "quantity_out_of_range",
            format!("quantityToCreate: 1 to {MAX_QUANTITY} cards"),
        )
        .field("/quantityToCreate"));
    }
    if !(0..=MAX_QUANTITY).contains(&int(&ctx, "minimumQuantity")) {
        return Err(ApiError::unprocessable(
            "quantity_out_of_range",
            format!("minimumQuantity: 0 to {MAX_QUANTITY}"),
        )
        .field("/minimumQuantity"));
    }
    let expiry = ctx.body["expiryDate"].as_str().unwrap_or("");
    if expiry_yymm(expiry, &today()).is_none() {
        return Err(ApiError::unprocessable(
            "invalid_expiry_date",
            "expiryDate: a date after today, at most 20 years ahead",
        )
        .field("/expiryDate"));
    }
    if !matches!(int(&ctx, "prepaidCardFlag"), 0 | 1) {
        return Err(
            ApiError::unprocessable("invalid_prepaid_flag", "prepaidCardFlag: 0 or 1")
                .field("/prepaidCardFlag"),
        );
    }
    if ctx.app.config.bureau.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bureau_not_configured",
            "no card bureau is configured for embosser files",
        ));
    }
    let card_type = int(&ctx, "cardType");
    let store = &ctx.app.store;
    let queued = store
        .mass_issue_latest(&ctx.tenant, org, logo, card_type, true)
        .await?;
    let cancel = status == 9;
    let (record, add_status) = match queued {
        Some(q) => {
            match store
                .mass_issue_update_queued(&ctx.client_id, q.id, quantity, &ctx.body, cancel)
                .await?
            {
                Some(m) => (m, if cancel { 9 } else { 2 }),
                None if modify || cancel => return Err(started()),
                None => (create(&ctx, org, logo, card_type, quantity).await?, 1),
            }
        }
        None if modify || cancel => {
            return Err(ApiError::unprocessable(
                "mass_issue_not_found",
                "no request for this product that has not started",
            )
            .field("/logo"));
        }
        None => (create(&ctx, org, logo, card_type, quantity).await?, 1),
    };
    tracing::info!(
        mass_issue = record.id,
        requested = quantity,
        add_status,
        "mass issue"
    );
    let mut out = ctx.body.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("functionType");
        o.insert("dateLastMaintain".into(), json!(today()));
        o.insert("addStatus".into(), json!(add_status));
        o.insert("massIssueId".into(), json!(number(record.id)));
        o.insert("massIssueState".into(), json!(record.state));
    }
    Reply::ok(json!({ "outputArea": out }))
}

fn started() -> ApiError {
    ApiError::unprocessable(
        "mass_issue_started",
        "the request has started and can no longer be changed",
    )
    .field("/logo")
}

/// Queues a new request and starts its worker (which waits its turn).
async fn create(
    ctx: &Ctx,
    org: i64,
    logo: i64,
    card_type: i64,
    quantity: i64,
) -> Result<MassIssue, ApiError> {
    let m = ctx
        .app
        .store
        .mass_issue_create(
            &ctx.client_id,
            &ctx.tenant,
            org,
            logo,
            card_type,
            quantity,
            &ctx.body,
        )
        .await?;
    schedule(Arc::clone(&ctx.app), m.id);
    Ok(m)
}

/// Runs a queued batch in the background, one batch at a time.
fn schedule(app: Arc<crate::api::server::App>, id: i64) {
    tokio::spawn(async move {
        let Ok(_turn) = BATCHES.acquire().await else {
            return;
        };
        if let Err(e) = batch::run(&app, id).await {
            tracing::error!(mass_issue = id, code = e.code, "mass issue failed");
            let reason = format!("{}: {}", e.code, e.message);
            if let Err(e) = app.store.mass_issue_finish(id, "failed", &reason, "").await {
                tracing::error!(mass_issue = id, error = %e, "cannot record the failure");
            }
        }
    });
}

/// At start: a batch that was `running` when the facade stopped is marked `failed`
/// (`interrupted`; its cards so far are kept, no file is written: submit a new
/// request), and `queued` batches are scheduled again.
pub async fn recover(app: &Arc<crate::api::server::App>) -> Result<(), String> {
    let (interrupted, queued) = app
        .store
        .mass_issue_recover()
        .await
        .map_err(|e| format!("mass issue recovery: {e}"))?;
    for id in interrupted {
        tracing::warn!(
            mass_issue = id,
            "mass issue interrupted by a restart: marked failed"
        );
    }
    for id in queued {
        schedule(Arc::clone(app), id);
    }
    Ok(())
}

/// A query parameter of 1 to `max` digits.
fn query_number(ctx: &Ctx, name: &'static str, max: usize) -> Result<i64, ApiError> {
    let v = ctx.query(name).ok_or_else(|| {
        ApiError::bad_request("missing_parameter", format!("{name} is required")).field(name)
    })?;
    let t = v.trim();
    if t.is_empty() || t.len() > max || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name}: 1 to {max} digits"),
        )
        .field(name));
    }
    t.parse()
        .map_err(|_| ApiError::bad_request("invalid_parameter", name).field(name))
}

async fn inquiry(ctx: Ctx) -> Result<Reply, ApiError> {
    let org = query_number(&ctx, "organizationNumber", 3)?;
    let logo = query_number(&ctx, "logo", 3)?;
    let card_type = query_number(&ctx, "serviceType", 2)?;
    let page = match ctx.query("page") {
        None => 1,
        Some(_) => query_number(&ctx, "page", 6)?.max(1),
    };
    // Cursor pagination (cofre's lists all offer it): `cursor` is the `nextCursor` of the
    // previous answer (the last card sequence seen); it takes precedence over `page`.
    let cursor = match ctx.query("cursor") {
        None => None,
        Some(_) => Some(query_number(&ctx, "cursor", 6)?),
    };
    if ctx.app.config.product(org, Some(logo)).is_none() {
        return Err(ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field("logo"));
    }
    let m = ctx
        .app
        .store
        .mass_issue_latest(&ctx.tenant, org, logo, card_type, false)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable("mass_issue_not_found", "no mass issue for this product")
                .field("logo")
        })?;
    let cards = ctx
        .app
        .store
        .batch_cards(m.id, cursor.unwrap_or((page - 1) * PAGE), PAGE)
        .await?;
    let pages = ((m.issued + PAGE - 1) / PAGE).max(1);
    let offset = cursor.unwrap_or((page - 1) * PAGE);
    let next = offset + i64::try_from(cards.len()).unwrap_or(0);
    let page = cursor.map_or(page, |c| c / PAGE + 1);
    let cards: Vec<Value> = cards
        .iter()
        .map(|c| {
            json!({
                "cardNumber": format!("{:0>19}", c.token),
                "cardType": card_type.to_string(),
                "cardStatus": "0",
                "isActive": false,
            })
        })
        .collect();
    Reply::ok(json!({ "outputArea": {
        "hasMoreRecords": next < m.issued,
        "nextCursor": (next < m.issued).then(|| next.to_string()),
        "totalCardsCount": m.issued,
        "totalPagesCount": pages,
        "currentPage": page,
        "cards": cards,
        "massIssueId": number(m.id),
        "state": m.state,
        "requested": m.requested,
        "issued": m.issued,
        "failed": m.failed,
        "fileName": m.file_name,
    }}))
}

/// The caller's mass issue named by the `{id}` path parameter (another tenant's is
/// unknown).
async fn owned(ctx: &Ctx) -> Result<MassIssue, ApiError> {
    let not_found = || ApiError::not_found("mass_issue_not_found", "no such mass issue");
    let id = parse_number(ctx.param("id")?, "id").map_err(|_| not_found())?;
    match ctx.app.store.mass_issue(id).await {
        Ok(m) if m.tenant.is_empty() || m.tenant == ctx.tenant => Ok(m),
        Ok(_) | Err(super::store::StoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn progress(ctx: Ctx) -> Result<Reply, ApiError> {
    let m = owned(&ctx).await?;
    Reply::ok(json!({
        "id": number(m.id),
        "state": m.state,
        "organizationNumber": m.organization,
        "logo": m.logo,
        "cardType": m.card_type,
        "requested": m.requested,
        "issued": m.issued,
        "failed": m.failed,
        "error": (!m.error.is_empty()).then_some(&m.error),
        "fileName": (!m.file_name.is_empty()).then_some(&m.file_name),
        "createdAt": rfc3339(m.created_ms),
        "updatedAt": rfc3339(m.updated_ms),
    }))
}

async fn embosser_file(ctx: Ctx) -> Result<Reply, ApiError> {
    let m = owned(&ctx).await?;
    if m.state != "done" {
        return Err(ApiError::conflict(
            "mass_issue_not_done",
            format!("the mass issue is {}", m.state),
        ));
    }
    let dir = ctx
        .app
        .config
        .bureau
        .as_ref()
        .map(|b| b.output_dir.clone())
        .ok_or_else(|| ApiError::internal("no bureau configured"))?;
    let path = dir.join(&m.file_name);
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
        .await
        .map_err(|e| ApiError::internal(format!("file read task: {e}")))?
        .map_err(|e| {
            tracing::error!(mass_issue = m.id, error = %e, "embosser file unreadable");
            ApiError::new(
                StatusCode::GONE,
                "embosser_file_missing",
                "the embosser file is no longer in the bureau directory",
            )
        })?;
    Reply::ok(json!({ "name": m.file_name, "lines": text.lines().collect::<Vec<_>>() }))
}

fn problem_responses(ok: Value) -> Value {
    let problem = json!({"description": "Problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"type": "object"}}}});
    json!({"200": ok, "401": problem, "404": problem, "409": problem, "410": problem})
}

fn id_parameter() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "description": "The mass issue id (`massIssueId` of the processor answer).", "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}}])
}

fn progress_doc() -> Value {
    json!({
        "summary": "Progress of a mass card issue",
        "operationId": "cofre_mass_issue_progress",
        "parameters": id_parameter(),
        "responses": problem_responses(json!({"description": "The request's progress", "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
                "organizationNumber": {"type": "integer"}, "logo": {"type": "integer"}, "cardType": {"type": "integer"},
                "requested": {"type": "integer"}, "issued": {"type": "integer"}, "failed": {"type": "integer"},
                "error": {"type": "string", "nullable": true},
                "fileName": {"type": "string", "nullable": true},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        }}}})),
    })
}

fn file_doc() -> Value {
    json!({
        "summary": "The embosser file of a finished mass card issue",
        "description": "The file as written to the bureau directory, one string a line (format: protocol/embosser-file.md). 409 `mass_issue_not_done` until the batch is done.",
        "operationId": "cofre_mass_issue_embosser_file",
        "parameters": id_parameter(),
        "responses": problem_responses(json!({"description": "The file", "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "lines": {"type": "array", "items": {"type": "string"}}}
        }}}})),
    })
}

/// The batch: cards made through the daemon, [`IN_FLIGHT`] at a time, committed every
/// [`COMMIT_EVERY`], then the embosser file.
mod batch {
    use std::path::Path;
    use std::sync::Arc;

    use tokio::task::JoinSet;

    use super::{BatchCard, COMMIT_EVERY, IN_FLIGHT, MassIssue, expiry_yymm};
    use crate::api::config::Product;
    use crate::api::http::ApiError;
    use crate::api::issuing::{issue, number, today};
    use crate::api::server::App;
    use crate::client::Card as HsmCard;

    /// What one card puts in the embosser file (no clear value).
    #[derive(Debug, Clone)]
    pub struct Line {
        /// Position in the batch.
        pub sequence: i64,
        /// Masked PAN.
        pub masked_pan: String,
        /// The PAN under the bureau's transport key, hex.
        pub encrypted_pan: String,
        /// `CVV=..;CVV2=..;ICVV=..;PIN=..` under the bureau's transport key, hex.
        pub encrypted_codes: String,
    }

    /// Runs a queued request to its end (`Err`: the caller records `failed`).
    pub async fn run(app: &Arc<App>, id: i64) -> Result<(), ApiError> {
        let Some(job) = app.store.mass_issue_start(id).await? else {
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
        let mut pending = Vec::with_capacity(COMMIT_EVERY);
        let mut lines = Vec::new();
        let (mut issued, mut failed) = (0, 0);
        let mut first_error = None;
        loop {
            while first_error.is_none() && next <= job.requested && tasks.len() < IN_FLIGHT {
                let (app, product) = (Arc::clone(app), Arc::clone(&product));
                let (expiry, service_code) = (expiry.clone(), service_code.clone());
                let key = bureau.transport_key.clone();
                let sequence = next;
                tasks.spawn(async move {
                    make_card(&app, &product, sequence, &expiry, &service_code, &key).await
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok(Ok((card, line))) => {
                    pending.push(card);
                    lines.push(line);
                    issued += 1;
                }
                Ok(Err(e)) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(ApiError::internal(format!("card task: {e}")));
                }
            }
            if pending.len() >= COMMIT_EVERY {
                app.store
                    .batch_cards_add(id, &pending, issued, failed)
                    .await?;
                pending.clear();
            }
        }
        app.store
            .batch_cards_add(id, &pending, issued, failed)
            .await?;
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
        app.store.mass_issue_finish(id, "done", "", &name).await?;
        tracing::info!(mass_issue = id, issued, file = %name, "mass issue done");
        Ok(())
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
        let made = issue(app, product, Some(transport_key)).await?;
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

    /// A field safe inside the `|`-separated format: printable ASCII without `|`.
    fn field(text: &str) -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '|' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The embosser file (protocol/embosser-file.md): header, one `D` line per card,
    /// trailer with the count.
    pub fn render(
        job: &MassIssue,
        product: &Product,
        transport_key: &str,
        expiry: &str,
        service_code: &str,
        lines: &[Line],
    ) -> String {
        let product_code = product.name.as_deref().map_or_else(
            || format!("{}-{}", product.organization, product.logo),
            field,
        );
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut out = String::with_capacity(64 + lines.len() * 160);
        out.push_str(&format!(
            "H|COFRE-EMBOSSER|1|{}|{}|{}|{}|{}|{created}|{}|{}\n",
            number(job.id),
            job.organization,
            job.logo,
            job.card_type,
            product_code,
            field(transport_key),
            lines.len(),
        ));
        for l in lines {
            out.push_str(&format!(
                "D|{:06}|{product_code}|{}|{expiry}|{service_code}|{}|{}\n",
                l.sequence, l.masked_pan, l.encrypted_pan, l.encrypted_codes
            ));
        }
        out.push_str(&format!("T|{:06}\n", lines.len()));
        out
    }

    /// Writes `dir/name` whole or not at all: a hidden temporary file, synced, renamed.
    pub fn write_atomically(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::expiry_yymm;

    #[test]
    fn expiry_dates() {
        assert_eq!(
            expiry_yymm("2031-09-30", "2026-05-01").as_deref(),
            Some("3109")
        );
        assert_eq!(expiry_yymm("2026-05-01", "2026-05-01"), None);
        assert_eq!(expiry_yymm("2026-04-30", "2026-05-01"), None);
        assert_eq!(expiry_yymm("2047-01-01", "2026-05-01"), None);
        assert_eq!(expiry_yymm("2031-13-01", "2026-05-01"), None);
        assert_eq!(expiry_yymm("2031-1-01", "2026-05-01"), None);
        assert_eq!(expiry_yymm("２031-01-01", "2026-05-01"), None);
        assert_eq!(expiry_yymm("", "2026-05-01"), None);
    }
}
