//! Which facade instance runs a batch (docs/scale-out.md, "Mass issue leases"): each
//! process draws an owner id at start; a batch it claims is its own while it renews
//! the lease (every third of `bureau.lease`); every instance looks for batches to claim
//! at start and every half lease: `queued` ones, and `running` ones whose owner stopped
//! renewing (killed, cut off), which it finishes from the cards already committed.
//! On SQLite (one facade) a restart claims its own former batches at once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::batch::schedule;
use crate::api::config::Bureau;
use crate::api::domain::Tenant;
use crate::api::state::App;
use crate::api::store::{BatchClaim, Dialect, StoreError, now_ms};

/// This process's owner id: random, drawn once (a restarted process is another owner).
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut raw = [0u8; 8];
        rand::fill(&mut raw);
        format!("{}-{}", std::process::id(), hex::encode(raw))
    })
}

/// The configured lease.
pub fn duration(app: &App) -> Duration {
    app.config
        .bureau
        .as_ref()
        .map_or(Bureau::DEFAULT_LEASE, Bureau::lease)
}

/// When a lease taken or renewed now ends (epoch ms).
pub fn until(lease: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// The batches scheduled in this process (each runs once here at a time).
fn scheduled() -> std::sync::MutexGuard<'static, HashSet<i64>> {
    static SET: OnceLock<Mutex<HashSet<i64>>> = OnceLock::new();
    SET.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Marks `id` scheduled here; `false` if it already is.
pub(super) fn mark_scheduled(id: i64) -> bool {
    scheduled().insert(id)
}

/// Unmarks `id` (its task ended).
pub(super) fn unmark_scheduled(id: i64) {
    scheduled().remove(&id);
}

/// A claimed batch's lease, renewed in the background while this value lives.
pub(super) struct Held {
    lost: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Held {
    /// Renews the lease on `id` every third of `lease` until dropped, or until a renewal
    /// finds the batch no longer this instance's.
    pub(super) fn start(app: &Arc<App>, tenant: &Tenant, id: i64, lease: Duration) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let (app, tenant, flag) = (Arc::clone(app), tenant.clone(), Arc::clone(&lost));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let renewed = super::batch::write(&app, &tenant, move |mut r| {
                    Box::pin(
                        async move { r.mass_issue_renew(id, instance_id(), until(lease)).await },
                    )
                })
                .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            mass_issue = id,
                            "mass issue lease lost: another instance runs it"
                        );
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The next renewal tries again; the fence keeps a late owner out.
                    Err(e) => {
                        tracing::warn!(mass_issue = id, error = %e, "mass issue lease not renewed")
                    }
                }
            }
        });
        Self { lost, task }
    }

    /// Whether a renewal found the batch taken over.
    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Schedules every batch this instance may claim now.
async fn claim_due(app: &Arc<App>, how: BatchClaim) -> Result<usize, StoreError> {
    let due = app.store.mass_issue_claimable(now_ms(), how).await?;
    let n = due.len();
    for (tenant, id) in due {
        let tenant = Tenant::new(&tenant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        schedule(Arc::clone(app), tenant, id, how);
    }
    Ok(n)
}

/// At start: schedules the batches to claim (on SQLite every `running` one too: this
/// process is the only facade, and the owner named is its former self), then looks
/// again every half lease for batches whose owner stopped renewing.
pub async fn recover(app: &Arc<App>) -> Result<(), String> {
    let how = match app.store.dialect() {
        Dialect::Sqlite => BatchClaim::EvenLeased,
        Dialect::Postgres => BatchClaim::Free,
    };
    let n = claim_due(app, how)
        .await
        .map_err(|e| format!("mass issue recovery: {e}"))?;
    if n > 0 {
        tracing::info!(batches = n, "mass issues to run or resume");
    }
    tracing::info!(
        owner = instance_id(),
        "mass issue owner id of this instance"
    );
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let every = duration(&app) / 2;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = claim_due(&app, BatchClaim::Free).await {
                tracing::warn!(error = %e, "mass issue takeover scan failed");
            }
        }
    });
    Ok(())
}
