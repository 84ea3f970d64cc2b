//! Executing a request in process, without network or TLS, for `cofre bench
//! --in-process` (the "crypto alone" side of the over-the-wire ratio): the same role
//! check and the same dispatch as a connection ([`super::dispatch`]), the same counter
//! commits; there is no frame, so no header to check. Key administration is not offered
//! here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::dispatch::{self, Dispatched};
use super::ops::{Ctx, counted};
use super::state::Shared;
use crate::protocol::{FieldsWriter, Opcode, Status};

/// Executes one request for `identity` and returns its status. `scratch` holds the
/// answer's fields (and is reused between calls).
pub async fn execute(
    shared: &Arc<Shared>,
    identity: &str,
    op: Opcode,
    body: &[u8],
    scratch: &mut Vec<u8>,
) -> Status {
    let policy = shared.policy();
    let role = match dispatch::role_for(&policy, identity, op) {
        Ok(r) => r,
        Err(e) => return e.status,
    };
    let ring = shared.ring();
    let ctx = Ctx {
        ring: &ring,
        secrets: &shared.secrets,
        config: &shared.config,
        store: shared.counters.as_ref(),
        namer: &shared.card_namer,
        metrics: &shared.metrics,
        role,
        now_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        uptime: shared.started.elapsed().as_secs(),
    };
    scratch.clear();
    let mut w = FieldsWriter::new(scratch);
    let result = match dispatch::dispatch(&ctx, op, body, &mut w) {
        Dispatched::Answered(r) => r,
        Dispatched::Commit {
            request,
            computed,
            then,
        } => {
            let decided = shared.counters.decide(request).resolved().await;
            counted::answer(computed, then, decided, &mut w)
        }
        Dispatched::Admin(_) => return Status::NotAuthorised,
    };
    match result {
        Ok(()) => Status::Ok,
        Err(e) => e.status,
    }
}
