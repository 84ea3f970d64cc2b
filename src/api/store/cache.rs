//! A read cache of cards and accounts for the read pool, kept coherent with the writer
//! by a generation counter (a seqlock): the writer makes the generation odd before a
//! transaction that may change records, empties the cache after it commits and before
//! any of its calls is answered, and makes the generation even again. A reader uses the
//! cache only while the generation is even, and stores what it read from the database
//! only if the generation did not move during its read. So an answer given after a
//! commit is never contradicted by a cached row older than that commit. Batches that
//! only record idempotency answers (the hot read paths) or only append rows (a refused
//! PIN validation's history row and occurrence, [`super::Appends`]) keep the cache.
//!
//! SQLite only: there the writer of this process is the only writer of the file. On
//! PostgreSQL another facade may write the same rows, so the store runs without it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Account, Card};

/// Entries kept before the cache starts over (a bound on memory, not an eviction policy).
const MAX_ENTRIES: usize = 200_000;

/// The cache.
#[derive(Debug, Default)]
pub struct RecordCache {
    generation: AtomicU64,
    cards: Mutex<HashMap<(String, String), Card>>,
    accounts: Mutex<HashMap<(String, i64), Account>>,
}

/// A reader's view: the generation it started at (`None`: a write is in progress, the
/// cache is not used).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot(Option<u64>);

impl RecordCache {
    /// Called by the writer before a transaction that may change records.
    pub fn begin_write(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Called by the writer after that transaction ended (committed or not), before
    /// answering its calls.
    pub fn end_write(&self) {
        self.lock_cards().clear();
        self.lock_accounts().clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The generation a read starts at.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.generation.load(Ordering::SeqCst);
        Snapshot(g.is_multiple_of(2).then_some(g))
    }

    fn still(&self, s: Snapshot) -> bool {
        s.0 == Some(self.generation.load(Ordering::SeqCst))
    }

    fn lock_cards(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Card>> {
        self.cards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_accounts(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i64), Account>> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A cached card of `tenant` by PAN token.
    pub fn card(&self, s: Snapshot, tenant: &str, token: &str) -> Option<Card> {
        s.0?;
        let hit = self
            .lock_cards()
            .get(&(tenant.to_owned(), token.to_owned()))
            .cloned();
        hit.filter(|_| self.still(s))
    }

    /// Keeps a card read at snapshot `s`.
    pub fn keep_card(&self, s: Snapshot, card: &Card) {
        let mut cards = self.lock_cards();
        if !self.still(s) {
            return;
        }
        if cards.len() >= MAX_ENTRIES {
            cards.clear();
        }
        cards.insert((card.tenant.clone(), card.token.clone()), card.clone());
    }

    /// A cached account of `tenant`.
    pub fn account(&self, s: Snapshot, tenant: &str, id: i64) -> Option<Account> {
        s.0?;
        let hit = self.lock_accounts().get(&(tenant.to_owned(), id)).cloned();
        hit.filter(|_| self.still(s))
    }

    /// Keeps an account read at snapshot `s`.
    pub fn keep_account(&self, s: Snapshot, account: &Account) {
        let mut accounts = self.lock_accounts();
        if !self.still(s) {
            return;
        }
        if accounts.len() >= MAX_ENTRIES {
            accounts.clear();
        }
        accounts.insert((account.tenant.clone(), account.id), account.clone());
    }
}
