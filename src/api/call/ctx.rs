//! [`Ctx`]: everything an operation gets, and the two ways it reaches the records: a
//! [`Reader`] on the read pool, or [`Ctx::commit`] into the writer's transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::AnyConnection;

use super::{ApiError, Reply, Style};
use crate::api::domain::Tenant;
use crate::api::state::App;
use crate::api::store::{
    Answer, AppendOnly, Appends, BoxFuture, Claim, Committed, OpOutcome, Records,
};

/// Everything a handler gets.
pub struct Ctx {
    /// The application.
    pub app: Arc<App>,
    /// The calling client (`X-ClientID`): the actor in history rows.
    pub client_id: String,
    /// The client's tenant.
    pub tenant: Tenant,
    /// The parsed JSON body (`Null` when empty).
    pub body: Value,
    /// Path parameters by name.
    pub params: HashMap<String, String>,
    /// Query parameters (first value of each name).
    pub query: HashMap<String, String>,
    /// The call's idempotency claim and, once [`Ctx::commit`] ran, what it committed.
    pub(crate) claim: Option<Arc<ClaimSlot>>,
    /// The route's error shape (a committed refusal is recorded in it).
    pub(crate) style: Style,
}

/// The claim of a staged call and the writer's verdict on it.
#[derive(Debug)]
pub(crate) struct ClaimSlot {
    pub(crate) claim: Claim,
    pub(crate) committed: Mutex<Option<Committed>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx(client {})", self.client_id)
    }
}

/// A read connection of the caller's tenant.
pub struct Reader {
    conn: crate::api::store::ReadConnection,
    tenant: Tenant,
    actor: String,
    dialect: crate::api::store::Dialect,
    cache: Option<Arc<crate::api::store::RecordCache>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reader({})", self.tenant)
    }
}

impl Reader {
    /// The tenant's records over this connection.
    pub fn records(&mut self) -> Records<'_> {
        Records::over_read(
            &mut self.conn,
            self.dialect,
            self.tenant.clone(),
            &self.actor,
        )
        .with_cache(self.cache.clone())
    }
}

/// The answer an operation's result is recorded as.
pub(crate) fn answer_of(result: &Result<Reply, ApiError>, style: Style) -> Answer {
    match result {
        Ok(reply) => Answer {
            status: reply.status.as_u16(),
            body: reply.body.to_string().into_bytes(),
        },
        Err(e) => {
            let (status, _, body) = e.render(style);
            Answer {
                status: status.as_u16(),
                body: body.into_bytes(),
            }
        }
    }
}

/// How the writer treats an operation's result: changes kept with a success, undone
/// with a refusal (recorded) or a server error (not recorded).
pub(crate) fn outcome_of(result: &Result<Reply, ApiError>, style: Style) -> OpOutcome {
    let answer = answer_of(result, style);
    match result {
        Ok(_) => OpOutcome::Keep(answer),
        Err(e) if e.status.is_server_error() => OpOutcome::Fail(answer),
        Err(e) if e.keep_effects => OpOutcome::Keep(answer),
        Err(_) => OpOutcome::Undo(answer),
    }
}

impl Ctx {
    /// A path parameter (missing is a bug in the route table: answered 500).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(format!("route has no parameter {name}")))
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body field at a JSON pointer.
    pub fn at(&self, pointer: &str) -> &Value {
        self.body.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// The caller's records over `db` (the writer's transaction).
    pub fn records<'c>(&self, db: &'c mut AnyConnection) -> Records<'c> {
        Records::new(
            db,
            self.app.store.dialect(),
            self.tenant.clone(),
            &self.client_id,
        )
    }

    /// A read connection of the caller's tenant.
    pub async fn reader(&self) -> Result<Reader, ApiError> {
        Ok(Reader {
            conn: self.app.store.read_lazily(),
            tenant: self.tenant.clone(),
            actor: self.client_id.clone(),
            dialect: self.app.store.dialect(),
            cache: self.app.store.cache().cloned(),
        })
    }

    /// [`Ctx::commit`] with the caller's records over the writer's transaction.
    pub async fn commit_records<F>(&self, op: F) -> Result<Reply, ApiError>
    where
        F: for<'c> FnOnce(Records<'c>) -> BoxFuture<'c, Result<Reply, ApiError>> + Send + 'static,
    {
        let (tenant, actor, dialect) = (
            self.tenant.clone(),
            self.client_id.clone(),
            self.app.store.dialect(),
        );
        self.commit(move |db| op(Records::new(db, dialect, tenant, &actor)))
            .await
    }

    /// Runs `op` in the writer's transaction with this call's claim: its changes, the
    /// claim and its answer commit together, and this returns once they did. Called at
    /// most once per call, as the handler's last step (its result is the answer).
    pub async fn commit<F>(&self, op: F) -> Result<Reply, ApiError>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Reply, ApiError>>
            + Send
            + 'static,
    {
        let style = self.style;
        let Some(slot) = &self.claim else {
            // No claim (a system call): the changes alone.
            return self
                .app
                .store
                .write(move |db| {
                    Box::pin(async move {
                        match op(db).await {
                            Ok(r) => Ok(Ok(r)),
                            Err(e) => Err(crate::api::store::StoreError::Rule(e.message)),
                        }
                    })
                })
                .await?;
        };
        let result = Kept::default();
        let out = Arc::clone(&result);
        let committed = self
            .app
            .store
            .writer()
            .call(
                slot.claim.clone(),
                Box::new(move |db: &mut AnyConnection| keeping(op(db), out, style)),
            )
            .await?;
        settle(slot, committed, &result)
    }

    /// [`Ctx::commit`] for an operation that only appends history and occurrence rows
    /// ([`Appends`]): the writer keeps its read cache of cards and accounts for it.
    pub async fn commit_appends<F>(&self, op: F) -> Result<Reply, ApiError>
    where
        F: for<'c> FnOnce(Appends<'c>) -> BoxFuture<'c, Result<Reply, ApiError>> + Send + 'static,
    {
        let (tenant, actor, dialect, style) = (
            self.tenant.clone(),
            self.client_id.clone(),
            self.app.store.dialect(),
            self.style,
        );
        let Some(slot) = &self.claim else {
            return self
                .commit(move |db| op(Appends::new(AppendOnly::new(db), dialect, tenant, &actor)))
                .await;
        };
        let result = Kept::default();
        let out = Arc::clone(&result);
        let committed = self
            .app
            .store
            .writer()
            .call_appending(
                slot.claim.clone(),
                Box::new(move |db: AppendOnly<'_>| {
                    keeping(op(Appends::new(db, dialect, tenant, &actor)), out, style)
                }),
            )
            .await?;
        settle(slot, committed, &result)
    }
}

/// Where an operation's own result waits while the writer records its outcome.
type Kept = Arc<Mutex<Option<Result<Reply, ApiError>>>>;

/// Runs an operation's future, keeps its result in `out`, hands the writer its outcome.
fn keeping<'c>(
    op: BoxFuture<'c, Result<Reply, ApiError>>,
    out: Kept,
    style: Style,
) -> BoxFuture<'c, OpOutcome> {
    Box::pin(async move {
        let r = op.await;
        let outcome = outcome_of(&r, style);
        if let Ok(mut g) = out.lock() {
            *g = Some(r);
        }
        outcome
    })
}

/// The call's result once the writer committed: its own, or (replayed or refused) a
/// placeholder, the pipeline answering from the slot.
fn settle(slot: &ClaimSlot, committed: Committed, result: &Kept) -> Result<Reply, ApiError> {
    let mine = matches!(committed, Committed::Answer(_));
    if let Ok(mut g) = slot.committed.lock() {
        *g = Some(committed);
    }
    let taken = result.lock().ok().and_then(|mut g| g.take());
    match (mine, taken) {
        (true, Some(r)) => r,
        _ => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "superseded",
            "another call recorded this request first",
        )),
    }
}
