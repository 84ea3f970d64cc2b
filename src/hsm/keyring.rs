//! The daemon's key cache: every usable key version from the key store, with its cipher
//! schedule expanded once at load (and again on SIGHUP), so a request never unwraps a
//! key block or re-runs a key schedule. Usage rules are the key store's
//! ([`KeyKind::check`]); this only looks keys up.

use std::collections::HashMap;

use crate::crypto::ClearKey;
use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::cvv::Cvk;
use crate::crypto::dukpt::Bdk;
use crate::crypto::pvv::Pvk;
use crate::crypto::token::TokenKey;
use crate::keys::{KeyAlgorithm, KeyKind, KeyStore, KeysError, Operation, Status};

/// One key version, ready to use.
pub struct CachedKey {
    /// Key id.
    pub id: String,
    /// Version.
    pub version: u32,
    /// Kind.
    pub kind: KeyKind,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Active or verify-only.
    pub status: Status,
    /// Clear material (HMAC keys, MAC keys, dCVV2 keys use it directly).
    pub key: ClearKey,
    /// Block cipher for PIN, transport and KEK keys.
    pub cipher: Option<BlockCipher>,
    /// Expanded PVK.
    pub pvk: Option<Pvk>,
    /// Expanded CVK.
    pub cvk: Option<Cvk>,
    /// Expanded FF1 key.
    pub token: Option<TokenKey>,
    /// A BDK, checked for its DUKPT variant (a TDES BDK is double length).
    pub bdk: Option<Bdk>,
    /// MAC keys: the shortest MAC verification accepts (`None`: the full length).
    pub mac_min_length: Option<u8>,
}

impl std::fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CachedKey({} v{} {})", self.id, self.version, self.kind)
    }
}

/// Every usable key version by id: active first, then verify-only newest first.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, Vec<CachedKey>>,
}

fn expand(status: Status, loaded: crate::keys::LoadedKey) -> Result<CachedKey, KeysError> {
    let bad = |e: crate::crypto::Error| KeysError::Invalid(format!("{}: {e}", loaded.id));
    let cipher_alg = match loaded.algorithm {
        KeyAlgorithm::Tdes => Some(Algorithm::Tdes),
        KeyAlgorithm::Aes => Some(Algorithm::Aes),
        KeyAlgorithm::Hmac => None,
    };
    let mut cached = CachedKey {
        id: loaded.id.clone(),
        version: loaded.version,
        kind: loaded.kind,
        algorithm: loaded.algorithm,
        status,
        key: loaded.key.clone(),
        cipher: None,
        pvk: None,
        cvk: None,
        token: None,
        bdk: None,
        mac_min_length: loaded.mac_min_length,
    };
    match loaded.kind {
        KeyKind::Zpk | KeyKind::Tpk | KeyKind::Transport | KeyKind::PinDelivery | KeyKind::Kek => {
            if let Some(a) = cipher_alg {
                cached.cipher = Some(BlockCipher::new(a, &loaded.key).map_err(bad)?);
            }
        }
        KeyKind::Pvk => cached.pvk = Some(Pvk::new(&loaded.key).map_err(bad)?),
        KeyKind::Cvk => cached.cvk = Some(Cvk::new(&loaded.key).map_err(bad)?),
        KeyKind::Token => cached.token = Some(TokenKey::new(&loaded.key).map_err(bad)?),
        // A 24-byte TDES BDK is kept for exchange but derives nothing (X9.24-1 derives
        // from double-length BDKs): it loads, and a KSN with it is `wrong_key_usage`.
        KeyKind::Bdk => cached.bdk = cipher_alg.and_then(|a| Bdk::new(a, &loaded.key).ok()),
        KeyKind::Dcvv2 | KeyKind::Lookup | KeyKind::Mac => {}
    }
    Ok(cached)
}

impl KeyRing {
    /// Expands every usable version in the store.
    pub fn from_store(store: &KeyStore) -> Result<Self, KeysError> {
        let mut keys: HashMap<String, Vec<CachedKey>> = HashMap::new();
        for (status, loaded) in store.usable_versions() {
            let cached = expand(status, loaded)?;
            keys.entry(cached.id.clone()).or_default().push(cached);
        }
        for versions in keys.values_mut() {
            versions.sort_by_key(|k| (k.status != Status::Active, std::cmp::Reverse(k.version)));
        }
        Ok(Self { keys })
    }

    fn lookup(&self, id: &str, operation: Operation) -> Result<&[CachedKey], KeysError> {
        let versions = self
            .keys
            .get(id)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        versions[0].kind.check(operation)?;
        Ok(versions)
    }

    /// The active version, for generating.
    pub fn active(&self, id: &str, operation: Operation) -> Result<&CachedKey, KeysError> {
        self.lookup(id, operation)?
            .iter()
            .find(|k| k.status == Status::Active)
            .ok_or_else(|| KeysError::NoUsableVersion(id.into()))
    }

    /// Active then verify-only versions, for verifying.
    pub fn verifying(&self, id: &str, operation: Operation) -> Result<&[CachedKey], KeysError> {
        self.lookup(id, operation)
    }

    /// A named version (active or verify-only).
    pub fn version(
        &self,
        id: &str,
        operation: Operation,
        version: u32,
    ) -> Result<&CachedKey, KeysError> {
        self.lookup(id, operation)?
            .iter()
            .find(|k| k.version == version)
            .ok_or_else(|| KeysError::UnknownKey(format!("{id} version {version}")))
    }

    /// Number of usable key versions (metrics).
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// (id, version, status) of every usable version (metrics).
    pub fn versions(&self) -> impl Iterator<Item = (&str, u32, Status)> {
        self.keys
            .values()
            .flatten()
            .map(|k| (k.id.as_str(), k.version, k.status))
    }
}
