//! Keys as a payShield switch holds them: a key block under the LMK ("key-block LMK"
//! mode, a key field starting with `S`), so that a switch's configuration can name the
//! keys cofre holds (`cofre keys export --payshield ID`, `protocol/payshield.md`).
//!
//! The block is `S` followed by an ANSI X9.143 (TR-31) version D block under an AES-256
//! key block protection key derived from the LMK for this purpose alone
//! ([`Purpose::PayshieldKeyBlock`](super::lmk::Purpose::PayshieldKeyBlock)). Its header
//! is the one the key store uses for the key's kind (usage, algorithm, mode of use), not
//! exportable, with two proprietary optional blocks (numeric IDs are reserved for
//! proprietary use by X9.143): `01` the key id and `02` the key version, in decimal.
//! The encrypted key data is the key itself, so a block is bound both by its MAC (made
//! under this LMK) and by its material: the listener accepts it only when the id and
//! version name a usable version cofre holds and the material equals that version's.

use rand::CryptoRng;

use super::kind::{KeyAlgorithm, KeyKind};
use super::store::header_for;
use crate::crypto::tr31::{self, OptionalBlock, Tr31Error};
use crate::crypto::{ClearKey, Error as CryptoError};

/// The key-scheme character of a key block under the LMK.
pub const SCHEME: u8 = b'S';
/// The optional block that carries the key id.
pub const ID_BLOCK: &str = "01";
/// The optional block that carries the key version.
pub const VERSION_BLOCK: &str = "02";

/// A key block as the LMK opened it.
pub struct Named {
    /// Key id.
    pub id: String,
    /// Key version.
    pub version: u32,
    /// The key in the block.
    pub key: ClearKey,
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Named({} v{})", self.id, self.version)
    }
}

/// Why a key block was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Not `S` and a TR-31 block, or without the id and version blocks.
    #[error("not a cofre key block")]
    Format,
    /// The block's MAC does not verify under this LMK.
    #[error("key block authentication failed")]
    Mac,
}

/// `S` + the TR-31 block of `key` (`id` version `version`) under `kbpk`.
pub fn wrap(
    kbpk: &ClearKey,
    kind: KeyKind,
    algorithm: KeyAlgorithm,
    id: &str,
    version: u32,
    key: &ClearKey,
    rng: &mut impl CryptoRng,
) -> Result<String, super::KeysError> {
    let header = header_for('D', kind, algorithm, false)?
        .with_block(OptionalBlock::new(ID_BLOCK, id)?)?
        .with_block(OptionalBlock::new(VERSION_BLOCK, &version.to_string())?)?;
    let block = tr31::wrap(kbpk, &header, key, rng)?;
    Ok(format!("S{block}"))
}

/// Opens `S` + a TR-31 block. The MAC is checked before anything in the block is used.
pub fn unwrap(kbpk: &ClearKey, field: &str) -> Result<Named, BlockError> {
    let block = field
        .strip_prefix(char::from(SCHEME))
        .ok_or(BlockError::Format)?;
    let (header, key) = match tr31::unwrap(kbpk, block) {
        Ok(opened) => opened,
        Err(CryptoError::Tr31(Tr31Error::Mac)) => return Err(BlockError::Mac),
        Err(_) => return Err(BlockError::Format),
    };
    let find = |id: &str| {
        header
            .blocks()
            .iter()
            .find(|b| b.id() == id)
            .map(|b| b.data().to_owned())
    };
    let id = find(ID_BLOCK).ok_or(BlockError::Format)?;
    let version = find(VERSION_BLOCK)
        .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or(BlockError::Format)?;
    Ok(Named { id, version, key })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kbpk(byte: u8) -> ClearKey {
        ClearKey::from_array(&[byte; 32])
    }

    #[test]
    fn a_block_names_its_key_and_fails_under_another_lmk_or_altered() {
        let key = ClearKey::from_array(&[0x11; 16]);
        let mut rng = rand::rng();
        let b = wrap(
            &kbpk(7),
            KeyKind::Zpk,
            KeyAlgorithm::Tdes,
            "zpk.a",
            3,
            &key,
            &mut rng,
        )
        .unwrap();
        assert!(b.starts_with("SD"), "{b}");
        let n = unwrap(&kbpk(7), &b).unwrap();
        assert_eq!((n.id.as_str(), n.version), ("zpk.a", 3));
        assert_eq!(n.key.expose_secret(), key.expose_secret());
        assert_eq!(unwrap(&kbpk(8), &b).unwrap_err(), BlockError::Mac);
        let mut altered = b.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(unwrap(&kbpk(7), &altered).unwrap_err(), BlockError::Mac);
        assert_eq!(unwrap(&kbpk(7), &b[1..]).unwrap_err(), BlockError::Format);
        assert_eq!(unwrap(&kbpk(7), "S").unwrap_err(), BlockError::Format);
        assert_eq!(unwrap(&kbpk(7), "SD0").unwrap_err(), BlockError::Format);
    }
}
