//! MACs: mac.generate and mac.verify. The length a verification accepts is a property
//! of the key: its full length, or the minimum recorded on the key (at least 4 bytes,
//! for ISO 8583 retail MACs). Failures are counted per key id.

use crate::crypto::ct_eq;
use crate::crypto::mac::{self, MacAlgorithm};
use crate::keys::store::mac_length;
use crate::keys::{KeyAlgorithm, Operation};
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::{Ctx, OpError, OpResult, Request, bad, fields};

/// The MAC algorithm of a key: TDES 0 (ISO 9797-1 algorithm 3), AES 1 (AES-CMAC),
/// HMAC 2 (HMAC-SHA256); a request naming another is `wrong_key_usage`.
fn algorithm(asked: Option<u8>, key_alg: KeyAlgorithm) -> Result<MacAlgorithm, OpError> {
    let natural = match key_alg {
        KeyAlgorithm::Tdes => (0, MacAlgorithm::Iso9797Alg3),
        KeyAlgorithm::Aes => (1, MacAlgorithm::AesCmac),
        KeyAlgorithm::Hmac => (2, MacAlgorithm::HmacSha256),
    };
    match asked {
        None => Ok(natural.1),
        Some(n) if n == natural.0 => Ok(natural.1),
        Some(n) => Err(OpError::new(
            Status::WrongKeyUsage,
            format!("a {key_alg} MAC key cannot compute MAC algorithm {n}"),
        )),
    }
}

fn mac_algorithm(f: &Fields<'_>) -> Result<Option<u8>, OpError> {
    match f.u8(Tag::MacAlgorithm)? {
        Some(n) if n > 2 => Err(OpError::field(
            Tag::MacAlgorithm,
            "mac_algorithm must be 0-2",
        )),
        other => Ok(other),
    }
}

/// mac.generate (0x0050).
#[derive(Debug, Clone)]
pub struct MacGenerate<'a> {
    /// MAC key id.
    pub key: &'a str,
    /// The data.
    pub data: &'a [u8],
    /// The algorithm asked for, if any.
    pub algorithm: Option<u8>,
}

impl<'a> Request<'a> for MacGenerate<'a> {
    const TAGS: &'static [Tag] = &[Tag::Key, Tag::Data, Tag::MacAlgorithm];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            key: fields::key_id(f, Tag::Key)?,
            data: fields::required(f.bytes(Tag::Data)?, Tag::Data)?,
            algorithm: mac_algorithm(f)?,
        })
    }
}

/// mac.generate: the full-length MAC under the key's active version.
pub fn generate(ctx: &Ctx<'_>, r: &MacGenerate<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    let k = ctx.ring.active(r.key, Operation::Mac)?;
    let alg = algorithm(r.algorithm, k.algorithm)?;
    let m = mac::generate(alg, &k.key, r.data).map_err(bad(Tag::Data))?;
    out.bytes(Tag::Mac, &m).u32(Tag::KeyVersion, k.version);
    Ok(())
}

/// mac.verify (0x0051).
#[derive(Debug, Clone)]
pub struct MacVerify<'a> {
    /// MAC generate's fields.
    pub generate: MacGenerate<'a>,
    /// The presented MAC.
    pub mac: &'a [u8],
}

impl<'a> Request<'a> for MacVerify<'a> {
    const TAGS: &'static [Tag] = &[Tag::Key, Tag::Data, Tag::Mac, Tag::MacAlgorithm];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            generate: MacGenerate::parse(f)?,
            mac: fields::required(f.bytes(Tag::Mac)?, Tag::Mac)?,
        })
    }
}

/// mac.verify: the presented MAC against the leftmost bytes of the MAC under each
/// usable version, in constant time. Its length must lie between the key's recorded
/// minimum (default: the full length) and the full length.
pub fn verify(ctx: &Ctx<'_>, r: &MacVerify<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    let g = &r.generate;
    let versions = ctx.ring.verifying(g.key, Operation::Mac)?;
    for k in versions {
        let alg = algorithm(g.algorithm, k.algorithm)?;
        let full = usize::from(mac_length(k.algorithm));
        let min = k.mac_min_length.map_or(full, usize::from);
        if !(min..=full).contains(&r.mac.len()) {
            return Err(OpError::field(
                Tag::Mac,
                format!("a MAC under this key is {min} to {full} bytes"),
            ));
        }
        let m = mac::generate(alg, &k.key, g.data).map_err(bad(Tag::Data))?;
        if ct_eq(&m[..r.mac.len()], r.mac) {
            out.u32(Tag::KeyVersion, k.version);
            return Ok(());
        }
    }
    ctx.metrics.mac_failures.with_label_values(&[g.key]).inc();
    Err(OpError::new(
        Status::VerificationFailed,
        "MAC does not verify",
    ))
}
