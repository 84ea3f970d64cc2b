//! The one dispatch path: from an authenticated request (role, opcode, body) to what
//! happens next, with no I/O. Every listener and the in-process bench path call
//! [`dispatch`] and only move bytes around it (`hsm::connection`,
//! [`super::local`]).
//!
//! One exhaustive `match` on the opcode picks the request type, parses the body into it
//! once, and runs the operation, which resolves the card once. The outcome is one of:
//! * [`Dispatched::Answered`]: the answer is ready (its fields are in the writer);
//! * [`Dispatched::Commit`]: the counter store must decide and make the decision
//!   durable, then [`super::ops::counted::answer`] gives the answer;
//! * [`Dispatched::Admin`]: key administration, to run on a blocking thread.
//!
//! The order of checks (protocol/README.md, "Order of checks"): the frame's version,
//! type, in-flight count, opcode and the role's operations are the caller's; then here:
//! the body's structure (every field's header, tag, type, no repeats), fields the
//! operation does not use, the key ids against the role's key patterns, the values
//! (missing, malformed, or combinations the operation refuses), then when the operation
//! runs: the card (a token that reads as no PAN), the counter store's state, the keys
//! (unknown, wrong usage) and the cryptography.

use std::sync::Arc;

use crate::protocol::{
    Fields, FieldsWriter, MessageType, Opcode, REQUEST_HEADER_LEN, Status, Tag, VERSION,
};

use super::counters;
use super::ops::admin::{self, AdminRequest};
use super::ops::codes::{self, CodesExport, CvvGenerate, CvvVerify};
use super::ops::counted::{self, CardOnly, GuardReset, Plan, Then};
use super::ops::dcvv2::{self, Dcvv2Generate, Dcvv2Verify};
use super::ops::mac::{self, MacGenerate, MacVerify};
use super::ops::pin::{PinChange, PinVerify};
use super::ops::pin_issue::{self, PinDeliver, PinGenerate, PinRebind};
use super::ops::pin_lmk::{self, PinRandom, PinReference};
use super::ops::tokens::{self, Detokenise, PanGenerate, Tokenise};
use super::ops::translate::{self, PinTranslate};
use super::ops::{self, Card, Ctx, Health, OpError, OpResult, Request};
use super::policy::{Policy, Role};

/// A request whose header passed [`admit`]: the operation, its raw code and id, the
/// caller's role, and the body still to parse.
#[derive(Debug)]
pub struct Admitted<'a> {
    /// The operation.
    pub op: Opcode,
    /// The request id.
    pub id: u32,
    /// The caller's role (it may perform `op`).
    pub role: &'a Arc<Role>,
    /// The fields, not yet parsed.
    pub body: &'a [u8],
}

/// A request refused on its header: answer `error` with this opcode and id.
#[derive(Debug)]
pub struct Refused {
    /// The opcode as sent (echoed).
    pub opcode: u16,
    /// The operation, if the opcode names one (metrics).
    pub op: Option<Opcode>,
    /// The request id as sent (echoed).
    pub id: u32,
    /// Why.
    pub error: OpError,
}

/// The header checks, in order: the protocol version, the message type, the
/// connection's in-flight limit (`in_flight_full`), the opcode, and whether the caller's
/// role may perform it. (A request may use id 0; the daemon's answer to a frame it
/// cannot delimit also carries id 0, but always with `reason` = `frame_error`, opcode
/// 0, and the connection's close after it.)
pub fn admit<'a>(
    policy: &'a Policy,
    identity: &str,
    payload: &'a [u8],
    in_flight_full: bool,
) -> Result<Admitted<'a>, Refused> {
    let Some(([version, msg_type, o1, o2, r1, r2, r3, r4], body)) = payload
        .split_first_chunk::<REQUEST_HEADER_LEN>()
        .map(|(h, b)| (*h, b))
    else {
        // The frame length was checked against the header size before: unreachable,
        // and answered as a frame error all the same.
        return Err(Refused {
            opcode: 0,
            op: None,
            id: 0,
            error: OpError::new(Status::MalformedField, "frame shorter than its header")
                .with_reason(FRAME_ERROR),
        });
    };
    let (opcode, id) = (
        u16::from_be_bytes([o1, o2]),
        u32::from_be_bytes([r1, r2, r3, r4]),
    );
    let op = Opcode::from_code(opcode);
    let refuse = |error| Refused {
        opcode,
        op,
        id,
        error,
    };
    if version != VERSION {
        return Err(refuse(OpError::new(
            Status::UnsupportedVersion,
            format!("protocol version {version} is not supported; this daemon speaks {VERSION}"),
        )));
    }
    if msg_type != MessageType::Request as u8 {
        return Err(refuse(OpError::new(
            Status::MalformedField,
            format!("message type {msg_type} is not a request (1)"),
        )));
    }
    if in_flight_full {
        return Err(refuse(OpError::new(
            Status::Overloaded,
            "too many requests in flight on this connection",
        )));
    }
    let Some(op) = op else {
        return Err(refuse(OpError::new(
            Status::UnknownOperation,
            format!("unknown opcode 0x{opcode:04X}"),
        )));
    };
    match role_for(policy, identity, op) {
        Ok(role) => Ok(Admitted { op, id, role, body }),
        Err(e) => Err(refuse(e)),
    }
}

/// The caller's role, if it may perform `op`.
pub fn role_for<'a>(
    policy: &'a Policy,
    identity: &str,
    op: Opcode,
) -> Result<&'a Arc<Role>, OpError> {
    match policy.role(identity) {
        Some(role) if role.allows_operation(op) => Ok(role),
        Some(r) => Err(OpError::new(
            Status::NotAuthorised,
            format!("role {} may not {op}", r.name),
        )),
        None => Err(OpError::new(
            Status::NotAuthorised,
            "this certificate has no role",
        )),
    }
}

/// The `reason` of the id-0 answer to a frame that cannot be delimited.
pub const FRAME_ERROR: &str = "frame_error";

/// What happens to a request after dispatch.
#[derive(Debug)]
pub enum Dispatched {
    /// Answer now with this result (the fields it wrote stand only if it is `Ok`).
    Answered(OpResult),
    /// Ask the counter store to decide, then answer with [`counted::answer`] once the
    /// decision is durable.
    Commit {
        /// The decision to ask for.
        request: counters::Request,
        /// What the operation computed (its fields are written).
        computed: OpResult,
        /// How the decision becomes the answer.
        then: Then,
    },
    /// Key administration: run [`admin::execute`] off the connection's task.
    Admin(AdminRequest),
}

impl From<Result<Plan, OpError>> for Dispatched {
    fn from(p: Result<Plan, OpError>) -> Self {
        match p {
            Ok(Plan::Now(r)) => Dispatched::Answered(r),
            Ok(Plan::Decide {
                request,
                computed,
                then,
            }) => Dispatched::Commit {
                request,
                computed,
                then,
            },
            Err(e) => Dispatched::Answered(Err(e)),
        }
    }
}

/// The typed request `R`: only its tags, keys the role may use, then its values.
fn parsed<'a, R: Request<'a>>(ctx: &Ctx<'_>, f: &Fields<'a>) -> Result<R, OpError> {
    f.only(R::TAGS)?;
    ops::authorise_keys(ctx.role, f)?;
    R::parse(f)
}

/// An administrative request: the same checks, into an owned request.
fn admin_parsed(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    tags: &[Tag],
    parse: fn(&Fields<'_>) -> Result<AdminRequest, OpError>,
) -> Dispatched {
    let r = f
        .only(tags)
        .map_err(OpError::from)
        .and_then(|()| ops::authorise_keys(ctx.role, f))
        .and_then(|()| parse(f));
    match r {
        Ok(a) => Dispatched::Admin(a),
        Err(e) => Dispatched::Answered(Err(e)),
    }
}

/// Runs an operation on its card, resolved once (a token detokenised here only).
fn on_card<'a, R>(
    ctx: &Ctx<'_>,
    r: Result<R, OpError>,
    card: impl FnOnce(&R) -> &ops::CardRef<'a>,
    run: impl FnOnce(&Ctx<'_>, &R, &Card, &mut FieldsWriter<'_>) -> OpResult,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let r = r?;
    let c = Card::resolve(ctx, card(&r))?;
    run(ctx, &r, &c, out)
}

/// Dispatches one request whose role may perform `op` (checked by the caller). The
/// operation's fields go to `out`.
pub fn dispatch(ctx: &Ctx<'_>, op: Opcode, body: &[u8], out: &mut FieldsWriter<'_>) -> Dispatched {
    let f = match Fields::parse_strict(body) {
        Ok(f) => f,
        Err(e) => return Dispatched::Answered(Err(e.into())),
    };
    let now = Dispatched::Answered;
    match op {
        Opcode::Health => now(parsed::<Health>(ctx, &f).and_then(|r| ops::health(ctx, &r, out))),
        Opcode::PanGenerate => {
            now(parsed::<PanGenerate>(ctx, &f).and_then(|r| tokens::pan_generate(ctx, &r, out)))
        }
        Opcode::Tokenise => {
            now(parsed::<Tokenise>(ctx, &f).and_then(|r| tokens::tokenise(ctx, &r, out)))
        }
        Opcode::Detokenise => {
            now(parsed::<Detokenise>(ctx, &f).and_then(|r| tokens::detokenise_op(ctx, &r, out)))
        }
        Opcode::PinVerify => parsed::<PinVerify>(ctx, &f)
            .and_then(|r| counted::pin_verify(ctx, &r, out))
            .into(),
        Opcode::PinTranslate => now(on_card(
            ctx,
            parsed::<PinTranslate>(ctx, &f),
            |r| &r.card,
            translate::translate,
            out,
        )),
        Opcode::PinGenerate => parsed::<PinGenerate>(ctx, &f)
            .and_then(|r| counted::pin_generate(ctx, &r, out))
            .into(),
        Opcode::PinChange => parsed::<PinChange>(ctx, &f)
            .and_then(|r| counted::pin_change(ctx, &r, out))
            .into(),
        Opcode::PinDeliver => now(on_card(
            ctx,
            parsed::<PinDeliver>(ctx, &f),
            |r| &r.card,
            pin_issue::deliver,
            out,
        )),
        Opcode::PinAttempts => parsed::<CardOnly>(ctx, &f)
            .and_then(|r| counted::pin_attempts(ctx, &r, out))
            .into(),
        Opcode::PinAttemptsReset => parsed::<CardOnly>(ctx, &f)
            .and_then(|r| counted::pin_attempts_reset(ctx, &r, out))
            .into(),
        Opcode::GuardReset => parsed::<GuardReset>(ctx, &f)
            .and_then(|r| counted::guard_reset(ctx, &r))
            .into(),
        Opcode::PinRebind => parsed::<PinRebind>(ctx, &f)
            .and_then(|r| counted::pin_rebind(ctx, &r, out))
            .into(),
        Opcode::PinRandom => now(on_card(
            ctx,
            parsed::<PinRandom>(ctx, &f),
            |r| &r.card,
            pin_lmk::random,
            out,
        )),
        Opcode::PinReference => now(on_card(
            ctx,
            parsed::<PinReference>(ctx, &f),
            |r| &r.card,
            pin_lmk::reference,
            out,
        )),
        Opcode::CvvGenerate => now(on_card(
            ctx,
            parsed::<CvvGenerate>(ctx, &f),
            |r| &r.0.card,
            codes::cvv_generate,
            out,
        )),
        Opcode::CvvVerify => parsed::<CvvVerify>(ctx, &f)
            .and_then(|r| counted::cvv_verify(ctx, &r, out))
            .into(),
        Opcode::SecurityCodesExport => now(on_card(
            ctx,
            parsed::<CodesExport>(ctx, &f),
            |r| &r.codes.card,
            codes::codes_export,
            out,
        )),
        Opcode::Dcvv2Generate => now(on_card(
            ctx,
            parsed::<Dcvv2Generate>(ctx, &f),
            |r| &r.card,
            dcvv2::generate,
            out,
        )),
        Opcode::Dcvv2Verify => parsed::<Dcvv2Verify>(ctx, &f)
            .and_then(|r| counted::dcvv2_verify(ctx, &r, out))
            .into(),
        Opcode::Dcvv2Enable => parsed::<CardOnly>(ctx, &f)
            .and_then(|r| counted::dcvv2_set(ctx, &r, true, out))
            .into(),
        Opcode::Dcvv2Disable => parsed::<CardOnly>(ctx, &f)
            .and_then(|r| counted::dcvv2_set(ctx, &r, false, out))
            .into(),
        Opcode::Dcvv2State => parsed::<CardOnly>(ctx, &f)
            .and_then(|r| counted::dcvv2_state(ctx, &r, out))
            .into(),
        Opcode::MacGenerate => {
            now(parsed::<MacGenerate>(ctx, &f).and_then(|r| mac::generate(ctx, &r, out)))
        }
        Opcode::MacVerify => {
            now(parsed::<MacVerify>(ctx, &f).and_then(|r| mac::verify(ctx, &r, out)))
        }
        Opcode::KeyList => admin_parsed(ctx, &f, admin::tags::LIST, AdminRequest::list),
        Opcode::KeyGenerate => admin_parsed(ctx, &f, admin::tags::GENERATE, AdminRequest::generate),
        Opcode::KeyImport => admin_parsed(ctx, &f, admin::tags::IMPORT, AdminRequest::import),
        Opcode::KeyExport => admin_parsed(ctx, &f, admin::tags::EXPORT, AdminRequest::export),
        Opcode::KeyRotate => admin_parsed(ctx, &f, admin::tags::ROTATE, AdminRequest::rotate),
        Opcode::KeyRetire => admin_parsed(ctx, &f, admin::tags::RETIRE, AdminRequest::retire),
    }
}
