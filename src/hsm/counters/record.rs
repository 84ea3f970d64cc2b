//! One card's counter record, its name in the store, and the MAC that seals it.
//!
//! A record holds both the PIN tries and the dynamic CVV2 state of one card, so a
//! decision about a card reads and writes one value. On disk it is 36 bytes of fields
//! followed by HMAC-SHA256 under an LMK-derived key over a label, the store's identity,
//! the card's name and those fields: a record edited, moved to another card or copied
//! from another store fails its MAC, and the card is then treated as locked.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::crypto::ClearKey;
use crate::crypto::mac::hmac_sha256;
use crate::crypto::pan::Pan;

/// A card's name in the store: HMAC-SHA256 of the PAN under an LMK-derived key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardId(pub(super) [u8; 32]);

impl std::fmt::Debug for CardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even the HMAC is not printed whole: logs never name a card.
        write!(f, "CardId({}..)", hex::encode(&self.0[..2]))
    }
}

const CARD_LABEL: &[u8] = b"cofre/card/v1:";

impl CardId {
    /// HMAC-SHA256(key, "cofre/card/v1:" || PAN).
    pub fn new(key: &ClearKey, pan: &Pan) -> Self {
        let mut data = CARD_LABEL.to_vec();
        data.extend_from_slice(pan.digits().as_bytes());
        Self(hmac_sha256(key.expose_secret(), &data))
    }

    /// The name as stored (the table's key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A name from raw bytes (tests and tools that walk the store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Which of `n` shards the card belongs to.
    pub(super) fn shard(&self, n: usize) -> usize {
        usize::from(u16::from_be_bytes([self.0[0], self.0[1]])) % n.max(1)
    }
}

/// Names cards ([`CardId::new`]) with the HMAC key schedule done once, not per request.
pub struct CardNamer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CardNamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardNamer([REDACTED])")
    }
}

impl CardNamer {
    /// A namer under `key` (the LMK's card-counter key); `None` for an empty key.
    pub fn new(key: &ClearKey) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret()).ok()?;
        Some(Self { mac })
    }

    /// The card's name: the same value as [`CardId::new`].
    pub fn name(&self, pan: &Pan) -> CardId {
        let mut m = self.mac.clone();
        m.update(CARD_LABEL);
        m.update(pan.digits().as_bytes());
        CardId(m.finalize().into_bytes().into())
    }
}

/// Tries of one kind (PIN or dCVV2) for one card.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tries {
    /// Failures since the last success or reset.
    pub failures: u32,
    /// Unix seconds of the last failure (0: none).
    pub last_failure: u64,
    /// Locked: verification answers `pin_locked` without looking.
    pub locked: bool,
}

/// A card's dynamic CVV2 state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dcvv2State {
    /// Whether dCVV2 is on (static CVV2 then fails).
    pub enabled: bool,
    /// dCVV2 tries.
    pub tries: Tries,
    /// The highest moving factor already accepted (codes at or below it are replays).
    pub last_used: Option<u64>,
}

/// Everything the store keeps about one card. The default is a card never seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardRecord {
    /// PIN tries.
    pub pin: Tries,
    /// Dynamic CVV2.
    pub dcvv2: Dcvv2State,
}

impl CardRecord {
    /// What a record that fails its MAC stands for: PIN and dCVV2 locked, dCVV2 on (so
    /// static CVV2 is refused too). A reset by the issuer writes a fresh, sealed record.
    pub fn tampered() -> Self {
        let locked = Tries {
            locked: true,
            ..Tries::default()
        };
        Self {
            pin: locked,
            dcvv2: Dcvv2State {
                enabled: true,
                tries: locked,
                last_used: None,
            },
        }
    }
}

/// Bytes of the fields of a record.
const BODY_LEN: usize = 36;
/// Bytes of a sealed record: fields and MAC.
pub const SEALED_LEN: usize = BODY_LEN + 32;
const RECORD_LABEL: &[u8] = b"cofre/counters/v2/record";
const IDENTITY_LABEL: &[u8] = b"cofre/counters/v2/identity";

fn encode_body(r: &CardRecord) -> [u8; BODY_LEN] {
    let mut b = [0u8; BODY_LEN];
    b[0..4].copy_from_slice(&r.pin.failures.to_be_bytes());
    b[4..12].copy_from_slice(&r.pin.last_failure.to_be_bytes());
    b[12] = u8::from(r.pin.locked);
    b[13] = u8::from(r.dcvv2.enabled);
    b[14..18].copy_from_slice(&r.dcvv2.tries.failures.to_be_bytes());
    b[18..26].copy_from_slice(&r.dcvv2.tries.last_failure.to_be_bytes());
    b[26] = u8::from(r.dcvv2.tries.locked);
    b[27] = u8::from(r.dcvv2.last_used.is_some());
    b[28..36].copy_from_slice(&r.dcvv2.last_used.unwrap_or(0).to_be_bytes());
    b
}

fn flag(b: u8) -> Option<bool> {
    match b {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn decode_body(b: &[u8]) -> Option<CardRecord> {
    if b.len() != BODY_LEN {
        return None;
    }
    let has_last_used = flag(b[27])?;
    Some(CardRecord {
        pin: Tries {
            failures: u32_at(b, 0)?,
            last_failure: u64_at(b, 4)?,
            locked: flag(b[12])?,
        },
        dcvv2: Dcvv2State {
            enabled: flag(b[13])?,
            tries: Tries {
                failures: u32_at(b, 14)?,
                last_failure: u64_at(b, 18)?,
                locked: flag(b[26])?,
            },
            last_used: if has_last_used {
                Some(u64_at(b, 28)?)
            } else {
                None
            },
        },
    })
}

/// The store's identity: 16 random bytes made when the store is created (or reset),
/// recorded in the audit log, and the time it was made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StoreId(pub(super) [u8; 16]);

impl StoreId {
    /// A fresh random identity.
    pub fn random(rng: &mut impl rand::CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// Parses 32 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// 32 hex characters, as the audit log records it.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreId({})", self.to_hex())
    }
}

impl std::fmt::Display for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Bytes of the sealed identity: id, creation time, MAC.
pub const IDENTITY_LEN: usize = 16 + 8 + 32;

/// Seals and opens records and the identity of one store under the LMK-derived
/// counter MAC key.
pub struct Seal {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal([REDACTED])")
    }
}

impl Seal {
    /// A seal under `key` (the LMK's counter-record MAC key). `None` only for an
    /// empty key (HMAC takes every other length).
    pub fn new(key: &ClearKey) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret()).ok()?;
        Some(Self { mac })
    }

    fn record_mac(&self, store: StoreId, card: &CardId, body: &[u8]) -> Hmac<Sha256> {
        let mut m = self.mac.clone();
        m.update(RECORD_LABEL);
        m.update(&store.0);
        m.update(&card.0);
        m.update(body);
        m
    }

    /// The sealed bytes of `record` for `card` in store `store`.
    pub fn seal(&self, store: StoreId, card: &CardId, record: &CardRecord) -> [u8; SEALED_LEN] {
        let body = encode_body(record);
        let tag = self.record_mac(store, card, &body).finalize().into_bytes();
        let mut out = [0u8; SEALED_LEN];
        out[..BODY_LEN].copy_from_slice(&body);
        out[BODY_LEN..].copy_from_slice(&tag);
        out
    }

    /// Opens sealed bytes: `None` when they are not a well-formed record whose MAC
    /// verifies (in constant time) for this card and store.
    pub fn open(&self, store: StoreId, card: &CardId, sealed: &[u8]) -> Option<CardRecord> {
        if sealed.len() != SEALED_LEN {
            return None;
        }
        let (body, tag) = sealed.split_at(BODY_LEN);
        self.record_mac(store, card, body).verify_slice(tag).ok()?;
        decode_body(body)
    }

    fn identity_mac(&self, id: StoreId, created: u64) -> Hmac<Sha256> {
        let mut m = self.mac.clone();
        m.update(IDENTITY_LABEL);
        m.update(&id.0);
        m.update(&created.to_be_bytes());
        m
    }

    /// The sealed identity record of a store.
    pub fn seal_identity(&self, id: StoreId, created: u64) -> [u8; IDENTITY_LEN] {
        let tag = self.identity_mac(id, created).finalize().into_bytes();
        let mut out = [0u8; IDENTITY_LEN];
        out[..16].copy_from_slice(&id.0);
        out[16..24].copy_from_slice(&created.to_be_bytes());
        out[24..].copy_from_slice(&tag);
        out
    }

    /// Opens a sealed identity: the id and creation time, or `None` if it does not
    /// verify (another LMK, or edited).
    pub fn open_identity(&self, sealed: &[u8]) -> Option<(StoreId, u64)> {
        if sealed.len() != IDENTITY_LEN {
            return None;
        }
        let id = StoreId(sealed[..16].try_into().ok()?);
        let created = u64_at(sealed, 16)?;
        self.identity_mac(id, created)
            .verify_slice(&sealed[24..])
            .ok()?;
        Some((id, created))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seal(k: u8) -> Seal {
        Seal::new(&ClearKey::from_bytes(&[k; 32]).unwrap()).unwrap()
    }

    fn sample() -> CardRecord {
        CardRecord {
            pin: Tries {
                failures: 2,
                last_failure: 1_700_000_000,
                locked: false,
            },
            dcvv2: Dcvv2State {
                enabled: true,
                tries: Tries {
                    failures: 1,
                    last_failure: 9,
                    locked: true,
                },
                last_used: Some(42),
            },
        }
    }

    #[test]
    fn records_round_trip_and_any_change_fails_the_mac() {
        let (s, id, card) = (seal(1), StoreId([7; 16]), CardId([3; 32]));
        let sealed = s.seal(id, &card, &sample());
        assert_eq!(s.open(id, &card, &sealed), Some(sample()));
        assert_eq!(
            s.open(id, &card, &s.seal(id, &card, &CardRecord::default())),
            Some(CardRecord::default())
        );
        // Every single bit flipped, anywhere, is refused.
        for i in 0..SEALED_LEN * 8 {
            let mut bad = sealed;
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(s.open(id, &card, &bad), None, "bit {i}");
        }
        // Another card, another store, another key, a short or long value: refused.
        assert_eq!(s.open(id, &CardId([4; 32]), &sealed), None);
        assert_eq!(s.open(StoreId([8; 16]), &card, &sealed), None);
        assert_eq!(seal(2).open(id, &card, &sealed), None);
        assert_eq!(s.open(id, &card, &sealed[..SEALED_LEN - 1]), None);
        assert_eq!(s.open(id, &card, &[sealed.as_slice(), &[0]].concat()), None);
    }

    #[test]
    fn a_well_sealed_body_with_a_bad_flag_is_refused() {
        // A record whose MAC verifies but whose flag byte is not 0 or 1 (a writer bug)
        // is not read as "true": it is refused like a bad MAC.
        let (s, id, card) = (seal(1), StoreId([7; 16]), CardId([3; 32]));
        let mut body = encode_body(&sample());
        body[12] = 2;
        let tag = s.record_mac(id, &card, &body).finalize().into_bytes();
        let sealed = [body.as_slice(), tag.as_slice()].concat();
        assert_eq!(s.open(id, &card, &sealed), None);
    }

    #[test]
    fn identities_are_sealed_too() {
        let s = seal(1);
        let sealed = s.seal_identity(StoreId([5; 16]), 77);
        assert_eq!(s.open_identity(&sealed), Some((StoreId([5; 16]), 77)));
        assert_eq!(seal(2).open_identity(&sealed), None);
        let mut bad = sealed;
        bad[3] ^= 1;
        assert_eq!(s.open_identity(&bad), None);
        let id = StoreId([0xAB; 16]);
        assert_eq!(StoreId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(StoreId::from_hex("abc"), None);
    }

    #[test]
    fn the_namer_names_cards_as_card_id_does() {
        let key = ClearKey::from_bytes(&[9; 32]).unwrap();
        let namer = CardNamer::new(&key).unwrap();
        for pan in ["4111111111111111", "5555554000000009", "400000123456789012"] {
            let pan = Pan::new(pan).unwrap();
            assert_eq!(namer.name(&pan), CardId::new(&key, &pan));
        }
        assert_ne!(
            namer.name(&Pan::new("4111111111111111").unwrap()),
            namer.name(&Pan::new("4000001234567899").unwrap())
        );
    }

    #[test]
    fn debug_never_prints_a_whole_card_name() {
        let text = format!("{:?}", CardId([0xAB; 32]));
        assert_eq!(text, "CardId(abab..)");
    }

    /// The shard is the name's first two bytes, big-endian, modulo the shard count (at
    /// least one): cards spread over every shard, each always in the same one.
    #[test]
    fn a_card_s_shard_is_its_first_two_bytes_modulo_the_count() {
        let mut name = [0u8; 32];
        name[..2].copy_from_slice(&[0x01, 0x02]);
        let card = CardId(name);
        assert_eq!(card.shard(256), 2);
        assert_eq!(card.shard(7), 258 % 7);
        assert_eq!(card.shard(1000), 258);
        assert_eq!(card.shard(1), 0);
        assert_eq!(card.shard(0), 0, "no shard count is treated as one");
        assert_eq!(CardId([0xFF; 32]).shard(256), 255);
        assert_eq!(CardId([0; 32]).shard(256), 0);
    }

    #[test]
    fn a_card_s_stored_name_is_its_bytes() {
        assert_eq!(CardId([7; 32]).as_bytes(), &[7; 32]);
        assert_eq!(CardId::from_bytes([9; 32]).as_bytes(), &[9; 32]);
    }

    /// Keys are redacted in every `Debug` form; the store's identity is not a secret
    /// and is printed whole (as the audit log records it).
    #[test]
    fn debug_and_display_forms_are_exact() {
        let key = ClearKey::from_bytes(&[0xAB; 32]).unwrap();
        assert_eq!(
            format!("{:?}", CardNamer::new(&key).unwrap()),
            "CardNamer([REDACTED])"
        );
        assert_eq!(
            format!("{:?}", Seal::new(&key).unwrap()),
            "Seal([REDACTED])"
        );
        let id = StoreId([0xAB; 16]);
        assert_eq!(id.to_hex(), "ab".repeat(16));
        assert_eq!(format!("{id}"), "ab".repeat(16));
        assert_eq!(format!("{id:?}"), format!("StoreId({})", "ab".repeat(16)));
    }

    /// A record that fails its MAC stands for a card locked both ways with dCVV2 on
    /// (so a static CVV2 is refused too), and no other state.
    #[test]
    fn a_tampered_record_is_locked_both_ways() {
        let locked = Tries {
            failures: 0,
            last_failure: 0,
            locked: true,
        };
        assert_eq!(
            CardRecord::tampered(),
            CardRecord {
                pin: locked,
                dcvv2: Dcvv2State {
                    enabled: true,
                    tries: locked,
                    last_used: None,
                },
            }
        );
    }
}
