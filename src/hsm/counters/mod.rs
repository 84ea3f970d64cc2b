//! The counter store: PIN tries and dynamic CVV2 state per card, behind one narrow
//! interface, [`CounterStore`]: *given this card and what the operation found, decide
//! and record*.
//!
//! # Per-card ordering
//!
//! * For each card, decisions are made **in arrival order against the card's latest
//!   state, including every decided-but-not-yet-committed change**. The decision itself
//!   is the pure function [`rules::decide`] of (latest state, what the operation found,
//!   limits, guard, now); a store only supplies the latest state and records the result.
//! * Operations first take a [`Snapshot`] of the card: a locked card is answered
//!   `pin_locked` without its PIN block being looked at. Otherwise the operation computes
//!   its outcome (the PIN matches, or not) and asks the store to decide ([`CounterStore::decide`]); the store
//!   decides against the latest state, not the snapshot, so a lock decided in between
//!   (on any connection) still wins.
//! * An answer leaves only after the durable commit that covers it: the commit of its own
//!   change, or, when it changes nothing but was decided against a change not yet
//!   committed, the commit of that change. An answer that changes nothing on a card with
//!   nothing pending leaves at once (the common success). Commits are grouped: one
//!   durable transaction carries every change decided while the previous one was being
//!   written, for any number of cards.
//! * If a commit fails, the changes decided since the last good commit are dropped, their
//!   answers become `store_unavailable`, and verification is refused until a write
//!   succeeds again: a broken disk never turns into an uncounted guessing oracle.
//!
//! [`RedbCounters`] implements this on one node (redb, an in-memory map of pending
//! states in front of it). [`PgCounters`] implements it for a pair of daemons (or more)
//! on one PostgreSQL database: it decides inside the transaction that records, against
//! the rows it has locked, many cards per round trip; the operations do not change.
//!
//! # Integrity
//!
//! Cards are named by HMAC-SHA256 of the PAN under an LMK-derived key, never by the PAN.
//! Each record is sealed with its own MAC ([`record`]); a record that fails it is
//! treated as locked, counted in `cofre_counter_record_mac_failures_total` and logged
//! without the card. The store's identity is bound to the audit log ([`identity`]).

mod embedded;
pub mod identity;
mod postgres;
pub mod record;
pub mod rules;

use redb::TableDefinition;
use tokio::sync::oneshot;

pub use embedded::RedbCounters;
pub use postgres::{PgCounters, PgTarget};
pub use record::{CardId, CardNamer, CardRecord, Dcvv2State, Seal, StoreId, Tries};
pub use rules::{Attempt, Dcvv2Outcome, Decision, Limits, PinOutcome, Verdict};

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cards");

/// Why the store refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    /// Opening the store failed (message names the file and the cause).
    #[error("counter store {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store on disk is not the one the audit log binds (one line, naming the
    /// command that resets the counters).
    #[error("{0}")]
    Identity(String),
    /// A commit failed or the store is unavailable.
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

/// A card's latest state as an operation saw it before computing its outcome.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// The card.
    pub card: CardId,
    /// Its latest state (pending changes included).
    pub record: CardRecord,
    /// The store's version of the card's neighbourhood when it was read: if nothing
    /// changed since, [`CounterStore::decide`] need not read the card again.
    pub(crate) version: u64,
}

/// A decision, now or once it is durable.
#[derive(Debug)]
pub enum Decided {
    /// Nothing to wait for: the decision changed nothing and depended on nothing
    /// uncommitted (or the store refused).
    Now(Result<Decision, CounterError>),
    /// Answer once this resolves: the commit covering the decision is durable.
    AfterCommit(oneshot::Receiver<Result<Decision, CounterError>>),
}

impl Decided {
    /// The decision, once it may be answered.
    pub async fn resolved(self) -> Result<Decision, CounterError> {
        match self {
            Decided::Now(r) => r,
            Decided::AfterCommit(rx) => rx
                .await
                .map_err(|_| CounterError::Unavailable("the committer stopped".into()))?,
        }
    }
}

/// One decision to make for one card.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// The card.
    pub card: CardId,
    /// What the operation found.
    pub attempt: Attempt,
    /// The limits for this card.
    pub limits: Limits,
    /// Unix seconds now.
    pub now: u64,
    /// The snapshot the operation computed against, if it took one.
    pub seen: Option<Snapshot>,
}

/// The counter store: decide-and-record for one card.
pub trait CounterStore: Send + Sync + std::fmt::Debug {
    /// The card's latest state, including decided-but-uncommitted changes.
    fn snapshot(&self, card: &CardId) -> Result<Snapshot, CounterError>;
    /// The state a verification may be refused on early (a locked card answered
    /// `pin_locked` before its PIN block is looked at), or `None` when the store cannot
    /// say without a round trip: the verification is then computed, and
    /// [`CounterStore::decide`] still answers `pin_locked` for a locked card, whatever
    /// the PIN block held. The default is [`CounterStore::snapshot`].
    fn verification_hint(&self, card: &CardId) -> Result<Option<Snapshot>, CounterError> {
        self.snapshot(card).map(Some)
    }
    /// Decides `request` against the card's latest state, in arrival order, and records
    /// the result. A PIN failure is also counted by the brute-force guard.
    fn decide(&self, request: Request) -> Decided;
    /// Whether the store cannot write (verification must be refused).
    fn is_unavailable(&self) -> bool;
    /// The brute-force guard the decisions consult.
    fn guard(&self) -> &super::guard::Guard;
}

/// The counter store's metrics (registered in the daemon's registry).
#[derive(Debug, Clone)]
pub struct CounterMetrics {
    /// Durable write transactions committed.
    pub commits: prometheus::IntCounter,
    /// Changes applied by them.
    pub changes: prometheus::IntCounter,
    /// Records that failed their MAC when read.
    pub mac_failures: prometheus::IntCounter,
    /// Cards that reached their PIN or dCVV2 limit.
    pub lockouts: prometheus::IntCounter,
}

impl CounterMetrics {
    /// New, unregistered counters.
    pub fn new() -> Result<Self, String> {
        let c = |name: &str, help: &str| {
            prometheus::IntCounter::new(name, help).map_err(|e| e.to_string())
        };
        Ok(Self {
            commits: c(
                "cofre_counter_commits_total",
                "Durable counter-store transactions",
            )?,
            changes: c(
                "cofre_counter_changes_total",
                "Counter changes (failures, resets, dCVV2 uses) those transactions carried",
            )?,
            mac_failures: c(
                "cofre_counter_record_mac_failures_total",
                "Counter records that failed their MAC when read (the card is treated as locked)",
            )?,
            lockouts: c(
                "cofre_lockouts_total",
                "Cards locked by reaching their PIN or dCVV2 try limit",
            )?,
        })
    }

    /// Every counter, for registration.
    pub fn all(&self) -> [&prometheus::IntCounter; 4] {
        [
            &self.commits,
            &self.changes,
            &self.mac_failures,
            &self.lockouts,
        ]
    }
}
