//! Executing a request in process, without network or TLS: the same authorisation,
//! field parsing, operations and counter commits as a connection, for `cofre bench
//! --in-process` (the "crypto alone" side of the over-the-wire ratio). Key
//! administration is not offered here.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::ops::{self, Ctx, OpError, counted};
use super::state::Shared;
use crate::protocol::{Fields, FieldsWriter, Opcode, Status};

/// Executes one request for `identity` and returns its status.
pub async fn execute(
    shared: &Arc<Shared>,
    identity: &str,
    op: Opcode,
    body: &[u8],
    scratch: &mut Vec<u8>,
) -> Status {
    let policy = shared.policy();
    let Some(role) = policy.role(identity).filter(|r| r.allows_operation(op)) else {
        return Status::NotAuthorised;
    };
    if ops::is_admin(op) {
        return Status::NotAuthorised;
    }
    let ring = shared.ring();
    let ctx = Ctx {
        ring: &ring,
        secrets: &shared.secrets,
        config: &shared.config,
        role,
        now_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        uptime: shared.started.elapsed().as_secs(),
    };
    scratch.clear();
    let mut w = FieldsWriter::new(scratch);
    let fields = match Fields::parse_strict(body)
        .map_err(OpError::from)
        .and_then(|f| ops::authorise_keys(role, &f, op).map(|()| f))
    {
        Ok(f) => f,
        Err(e) => return e.status,
    };
    if !counted::handles(op) {
        return match ops::execute(&ctx, op, &fields, &mut w) {
            Ok(()) => Status::Ok,
            Err(e) => e.status,
        };
    }
    let cc = counted::CountCtx {
        store: shared.counters.as_ref(),
        namer: &shared.card_namer,
        lockout: &shared.config.lockout,
    };
    let result = match counted::plan(&ctx, &cc, op, &fields, &mut w) {
        counted::Plan::Now(r) => r,
        counted::Plan::Decide {
            request,
            computed,
            then,
        } => {
            let decided = shared.counters.decide(request).resolved().await;
            counted::answer(computed, then, decided, &mut w)
        }
    };
    match result {
        Ok(()) => Status::Ok,
        Err(e) => e.status,
    }
}
