//! The local master key (LMK): an AES-256 key formed by XOR of M >= 2 components, each
//! held by a different custodian and each shown with its KCV.
//!
//! The LMK never leaves this module in clear except through [`Lmk::derive`], which gives
//! purpose-bound keys (key-block protection, store MAC, audit chain) by HMAC-SHA256 over a
//! fixed label, so no two uses ever share key material. The 32 LMK bytes live on the heap
//! at a fixed address, zeroized on drop, and locked in RAM where the OS allows.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::KeysError;
use crate::crypto::ClearKey;
use crate::crypto::cipher::Algorithm;
use crate::crypto::kcv::{Kcv, kcv};
use crate::crypto::mac::hmac_sha256;

/// Length of the LMK and of each component, in bytes (AES-256).
pub const LMK_LEN: usize = 32;

/// The file name the daemon reads from `$CREDENTIALS_DIRECTORY` (systemd
/// `LoadCredentialEncrypted=cofre-lmk:...`).
pub const CREDENTIAL_NAME: &str = "cofre-lmk";

/// One custodian's share of the LMK.
pub struct Component(Zeroizing<[u8; LMK_LEN]>);

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Component([REDACTED], kcv {})", self.kcv())
    }
}

impl Component {
    /// A fresh random component from a CSPRNG.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut c = Zeroizing::new([0u8; LMK_LEN]);
        rng.fill_bytes(&mut c[..]);
        Self(c)
    }

    /// From 64 hex characters. The error never echoes the input.
    pub fn from_hex(text: &str) -> Result<Self, KeysError> {
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| KeysError::Lmk("component is not valid hex".into()))?,
        );
        let arr: [u8; LMK_LEN] = bytes.as_slice().try_into().map_err(|_| {
            KeysError::Lmk(format!(
                "component must be {LMK_LEN} bytes (64 hex characters)"
            ))
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The component's own KCV (AES-256 KCV, X9.24-1-2017).
    pub fn kcv(&self) -> Kcv {
        aes_kcv(&self.0)
    }

    /// The component file text: a comment, the hex, and the KCV to check on entry.
    pub fn to_file_text(&self, index: usize, count: usize) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# cofre LMK component {index} of {count}. Keep offline; one custodian only.\n\
             component = {}\nkcv = {}\n",
            hex::encode_upper(&self.0[..]),
            self.kcv()
        ))
    }

    /// Parses a component file (`component = <hex>`, optional `kcv = <hex>` which must
    /// match). Lines starting with `#` are comments. A bare line of 64 hex characters is
    /// also accepted, for credentials written by other tools.
    pub fn from_file_text(text: &str) -> Result<Self, KeysError> {
        let mut component = None;
        let mut expected_kcv = None;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            match line.split_once('=') {
                Some((k, v)) if k.trim() == "component" => component = Some(Self::from_hex(v)?),
                Some((k, v)) if k.trim() == "kcv" => {
                    expected_kcv =
                        Some(v.trim().parse::<Kcv>().map_err(|_| {
                            KeysError::Lmk("kcv line is not 6 hex characters".into())
                        })?)
                }
                None if component.is_none() => component = Some(Self::from_hex(line)?),
                _ => return Err(KeysError::Lmk("unexpected line in component file".into())),
            }
        }
        let component = component.ok_or_else(|| KeysError::Lmk("no component in file".into()))?;
        if let Some(k) = expected_kcv
            && k != component.kcv()
        {
            return Err(KeysError::Lmk(format!(
                "component KCV is {} but the file says {k}",
                component.kcv()
            )));
        }
        Ok(component)
    }
}

fn aes_kcv(bytes: &[u8; LMK_LEN]) -> Kcv {
    // 32 bytes is always a valid AES key, so the KCV cannot fail; a zero KCV would only
    // ever show up if that invariant broke, and would not match any real component.
    kcv(Algorithm::Aes, &ClearKey::from_array(bytes)).unwrap_or(Kcv([0; 3]))
}

/// The combined LMK.
pub struct Lmk {
    key: Box<Zeroizing<[u8; LMK_LEN]>>,
    locked: bool,
    _guard: Option<region::LockGuard>,
}

impl fmt::Debug for Lmk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Lmk([REDACTED], kcv {}, locked {})",
            self.kcv(),
            self.locked
        )
    }
}

/// What a derived key is for; each purpose has its own label, so keys never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// AES-256 key-block protection key for the key store's TR-31 version D blocks.
    KeyBlockProtection,
    /// HMAC-SHA256 key for the key store file's MAC.
    StoreMac,
    /// HMAC-SHA256 key for the audit log chain.
    AuditChain,
    /// AES-256 key that encrypts PINs "under the LMK" (the PIN blob hosts store).
    PinEncryption,
    /// AES-256 CMAC key that authenticates PIN blobs.
    PinBlobMac,
    /// HMAC-SHA256 key that names cards in the counter store (never the clear PAN).
    CardCounterKey,
    /// HMAC-SHA256 key that seals the counter store's records and identity.
    CounterRecordMac,
    /// AES-256 key block protection key of the payShield-style key blocks (`S` prefix)
    /// that switches hold in place of key fields (`keys::payshield`).
    PayshieldKeyBlock,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::KeyBlockProtection => b"cofre/lmk/v1/key-block-protection",
            Purpose::StoreMac => b"cofre/lmk/v1/store-mac",
            Purpose::AuditChain => b"cofre/lmk/v1/audit-chain",
            Purpose::PinEncryption => b"cofre/lmk/v1/pin-encryption",
            Purpose::PinBlobMac => b"cofre/lmk/v1/pin-blob-mac",
            Purpose::CardCounterKey => b"cofre/lmk/v1/card-counter-key",
            Purpose::CounterRecordMac => b"cofre/lmk/v1/counter-record-mac",
            Purpose::PayshieldKeyBlock => b"cofre/lmk/v1/payshield-key-block",
        }
    }
}

impl Lmk {
    /// XOR-combines at least two components.
    pub fn from_components(components: &[Component]) -> Result<Self, KeysError> {
        if components.len() < 2 {
            return Err(KeysError::Lmk("an LMK needs at least 2 components".into()));
        }
        let mut key = Box::new(Zeroizing::new([0u8; LMK_LEN]));
        for c in components {
            for (k, b) in key.iter_mut().zip(c.0.iter()) {
                *k ^= b;
            }
        }
        Ok(Self::lock(key))
    }

    /// From the already combined 32 bytes (a systemd credential holds the combined LMK
    /// as 64 hex characters, since the TPM-sealed credential replaces the custodians).
    pub fn from_combined_hex(text: &str) -> Result<Self, KeysError> {
        let c = Component::from_file_text(text)?;
        let key = Box::new(Zeroizing::new(*c.0));
        Ok(Self::lock(key))
    }

    fn lock(key: Box<Zeroizing<[u8; LMK_LEN]>>) -> Self {
        // The box keeps the bytes at one address for the guard's lifetime.
        let guard = region::lock(key.as_ptr(), LMK_LEN).ok();
        Self {
            locked: guard.is_some(),
            key,
            _guard: guard,
        }
    }

    /// The combined LMK as 64 hex characters: the content of the systemd credential
    /// `cofre-lmk` (`cofre keys lmk-combine | systemd-creds encrypt ...`). Secret: only
    /// for piping into the credential encryption, never for display.
    pub fn to_credential_text(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode_upper(&self.key[..]))
    }

    /// Whether the LMK pages are locked in RAM (mlock succeeded).
    pub fn is_locked_in_memory(&self) -> bool {
        self.locked
    }

    /// The LMK's KCV (AES KCV). Public: it identifies which LMK is loaded.
    pub fn kcv(&self) -> Kcv {
        aes_kcv(&self.key)
    }

    /// A 32-byte key for one purpose: HMAC-SHA256(LMK, label).
    pub fn derive(&self, purpose: Purpose) -> ClearKey {
        let out = Zeroizing::new(hmac_sha256(&self.key[..], purpose.label()));
        ClearKey::from_array(&out)
    }
}

/// Where the LMK comes from: component files, or one systemd credential file.
#[derive(Debug, Clone)]
pub enum LmkSource {
    /// Two or more component files, XOR-combined.
    Components(Vec<PathBuf>),
    /// One file holding the combined LMK (`$CREDENTIALS_DIRECTORY/cofre-lmk`).
    Credential(PathBuf),
}

impl LmkSource {
    /// The systemd credential, if `$CREDENTIALS_DIRECTORY` is set and holds `cofre-lmk`.
    /// Only the directory *path* comes from the environment, never key material.
    pub fn from_credentials_directory() -> Option<Self> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        path.exists().then_some(LmkSource::Credential(path))
    }

    /// Reads and combines.
    pub fn load(&self) -> Result<Lmk, KeysError> {
        match self {
            LmkSource::Components(paths) => {
                let components = paths
                    .iter()
                    .map(|p| {
                        let text = Zeroizing::new(read_secret_file(p)?);
                        Component::from_file_text(&text)
                            .map_err(|e| KeysError::Lmk(format!("{}: {e}", p.display())))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Lmk::from_components(&components)
            }
            LmkSource::Credential(path) => {
                let text = Zeroizing::new(read_secret_file(path)?);
                Lmk::from_combined_hex(&text)
                    .map_err(|e| KeysError::Lmk(format!("{}: {e}", path.display())))
            }
        }
    }
}

fn read_secret_file(path: &Path) -> Result<String, KeysError> {
    std::fs::read_to_string(path).map_err(|e| KeysError::Io(format!("{}: {e}", path.display())))
}

/// Generates `count` random components (the ceremony), returning them with the KCV of
/// the LMK they combine to.
pub fn ceremony(
    count: usize,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<Component>, Kcv), KeysError> {
    if count < 2 {
        return Err(KeysError::Lmk(
            "a ceremony needs at least 2 components".into(),
        ));
    }
    let components: Vec<Component> = (0..count).map(|_| Component::random(rng)).collect();
    let kcv = Lmk::from_components(&components)?.kcv();
    Ok((components, kcv))
}

/// Makes the process undumpable and sets the core-file limit to zero, so a crash never
/// writes key material to disk. Returns what could not be done, for a warning.
pub fn harden_process() -> Vec<String> {
    let mut warnings = Vec::new();
    if let Err(e) = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0) {
        warnings.push(format!("could not disable core dumps (RLIMIT_CORE): {e}"));
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        warnings.push(format!("could not mark the process undumpable: {e}"));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ceremony_round_trip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let (components, kcv) = ceremony(3, &mut rng).unwrap();
        let texts: Vec<_> = components
            .iter()
            .enumerate()
            .map(|(i, c)| c.to_file_text(i + 1, 3))
            .collect();
        let parsed: Vec<Component> = texts
            .iter()
            .map(|t| Component::from_file_text(t).unwrap())
            .collect();
        let lmk = Lmk::from_components(&parsed).unwrap();
        assert_eq!(lmk.kcv(), kcv);
        // Order does not matter (XOR), a missing component gives another LMK.
        let reversed: Vec<Component> = texts
            .iter()
            .rev()
            .map(|t| Component::from_file_text(t).unwrap())
            .collect();
        assert_eq!(Lmk::from_components(&reversed).unwrap().kcv(), kcv);
        assert_ne!(Lmk::from_components(&parsed[..2]).unwrap().kcv(), kcv);
        assert!(ceremony(1, &mut rng).is_err());
        assert!(Lmk::from_components(&parsed[..1]).is_err());
    }

    #[test]
    fn component_file_errors_are_clear_and_secret_free() {
        let c = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";
        let bad_kcv = format!("component = {c}\nkcv = 000000\n");
        let err = Component::from_file_text(&bad_kcv).unwrap_err().to_string();
        assert!(err.contains("KCV") && !err.contains("00112233"), "{err}");
        assert!(Component::from_file_text("component = 0011").is_err());
        assert!(Component::from_file_text("# nothing").is_err());
        assert!(Component::from_file_text(&format!("component = {c}\nfoo = bar")).is_err());
        assert!(Component::from_file_text(c).is_ok());
    }

    #[test]
    fn derived_keys_differ_per_purpose_and_debug_is_redacted() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let (components, _) = ceremony(2, &mut rng).unwrap();
        let lmk = Lmk::from_components(&components).unwrap();
        let a = lmk.derive(Purpose::KeyBlockProtection);
        let b = lmk.derive(Purpose::StoreMac);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.len(), 32);
        let shown = format!("{lmk:?} {:?}", components[0]);
        assert!(shown.contains("REDACTED"));
        let c0 = hex::encode_upper(&components[0].0[..]);
        assert!(!shown.contains(&c0[..16]));
    }
}
