//! PANs and tokens: pan.generate, pan.tokenise, pan.detokenise.

use crate::crypto::cipher::BlockCipher;
use crate::crypto::pan::{self, Pan};
use crate::crypto::token::{self, Alphabet};
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::secrets::transport_encrypt;
use super::{Ctx, OpError, OpResult, Request, bad, detokenise, fields};

fn alphabet(f: &Fields<'_>) -> Result<Alphabet, OpError> {
    match f.u8(Tag::Alphabet)?.unwrap_or(0) {
        0 => Ok(Alphabet::Numeric),
        1 => Ok(Alphabet::Alphanumeric),
        _ => Err(OpError::field(Tag::Alphabet, "alphabet must be 0 or 1")),
    }
}

/// Writes token, token version, masked PAN and lookup token.
fn write_tokens(
    ctx: &Ctx<'_>,
    pan: &Pan,
    alphabet: Alphabet,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let tk = ctx
        .ring
        .active(&ctx.secrets.token_key, Operation::Tokenise)?;
    let ff1 = tk
        .token
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "token key is not an FF1 key"))?;
    let token = ff1.tokenise(pan, alphabet).map_err(bad(Tag::Pan))?;
    let lookup = ctx
        .ring
        .active(&ctx.secrets.lookup_key, Operation::LookupToken)?;
    out.str(Tag::Token, &token)
        .u32(Tag::TokenVersion, tk.version)
        .str(Tag::MaskedPan, &pan.masked())
        .str(Tag::LookupToken, &token::lookup_token(&lookup.key, pan));
    Ok(())
}

/// A transport key's cipher and version.
pub fn transport<'a>(ctx: &Ctx<'a>, id: &str) -> Result<(&'a BlockCipher, u32), OpError> {
    let k = ctx.ring.active(id, Operation::TransportEncrypt)?;
    let c = k
        .cipher
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "transport key has no cipher"))?;
    Ok((c, k.version))
}

/// pan.generate (0x0010).
#[derive(Debug, Clone)]
pub struct PanGenerate<'a> {
    /// Issuer BIN, 6-11 digits.
    pub bin: &'a str,
    /// PAN length, 12-19, at least 2 more than the BIN.
    pub pan_length: usize,
    /// Token alphabet.
    pub alphabet: Alphabet,
    /// Transport key for the PAN, if asked.
    pub transport_key: Option<&'a str>,
}

impl<'a> Request<'a> for PanGenerate<'a> {
    const TAGS: &'static [Tag] = &[Tag::Bin, Tag::PanLength, Tag::Alphabet, Tag::TransportKey];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let bin = fields::required(f.str(Tag::Bin)?, Tag::Bin)?;
        if !(6..=11).contains(&bin.len()) || !bin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OpError::field(Tag::Bin, "BIN must be 6-11 digits"));
        }
        let pan_length = usize::from(f.u8(Tag::PanLength)?.unwrap_or(16));
        if !(12..=19).contains(&pan_length) || bin.len() + 2 > pan_length {
            return Err(OpError::field(
                Tag::PanLength,
                "pan_length must be 12-19 and at least 2 more than the BIN",
            ));
        }
        Ok(Self {
            bin,
            pan_length,
            alphabet: alphabet(f)?,
            transport_key: f.str(Tag::TransportKey)?,
        })
    }
}

/// pan.generate.
pub fn pan_generate(ctx: &Ctx<'_>, r: &PanGenerate<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    let mut rng = rand::rng();
    let pan = pan::generate(r.bin, r.pan_length, &mut rng).map_err(bad(Tag::PanLength))?;
    write_tokens(ctx, &pan, r.alphabet, out)?;
    if let Some(id) = r.transport_key {
        let (cipher, version) = transport(ctx, id)?;
        out.bytes(
            Tag::Encrypted,
            &transport_encrypt(cipher, pan.digits().as_bytes(), &mut rng)?,
        )
        .u32(Tag::TransportKeyVersion, version);
    }
    Ok(())
}

/// pan.tokenise (0x0011).
#[derive(Debug, Clone)]
pub struct Tokenise {
    /// The PAN (12-19 digits; a numeric token needs it Luhn-valid).
    pub pan: Pan,
    /// Token alphabet.
    pub alphabet: Alphabet,
}

impl Request<'_> for Tokenise {
    const TAGS: &'static [Tag] = &[Tag::Pan, Tag::Alphabet];
    fn parse(f: &Fields<'_>) -> Result<Self, OpError> {
        let pan = fields::required(f.str(Tag::Pan)?, Tag::Pan)?;
        let pan = Pan::new(pan).map_err(bad(Tag::Pan))?;
        let alphabet = alphabet(f)?;
        if alphabet == Alphabet::Numeric && !pan.is_luhn_valid() {
            return Err(OpError::field(
                Tag::Pan,
                "pan: a numeric token needs a PAN that passes the Luhn check",
            ));
        }
        Ok(Self { pan, alphabet })
    }
}

/// pan.tokenise.
pub fn tokenise(ctx: &Ctx<'_>, r: &Tokenise, out: &mut FieldsWriter<'_>) -> OpResult {
    write_tokens(ctx, &r.pan, r.alphabet, out)
}

/// pan.detokenise (0x0012).
#[derive(Debug, Clone)]
pub struct Detokenise<'a> {
    /// The token.
    pub token: &'a str,
    /// The token key version, if known.
    pub version: Option<u32>,
}

impl<'a> Request<'a> for Detokenise<'a> {
    const TAGS: &'static [Tag] = &[Tag::Token, Tag::TokenVersion];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            token: fields::required(f.str(Tag::Token)?, Tag::Token)?,
            version: f.u32(Tag::TokenVersion)?,
        })
    }
}

/// pan.detokenise.
pub fn detokenise_op(ctx: &Ctx<'_>, r: &Detokenise<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    let (pan, version) = detokenise(ctx, r.token, r.version)?;
    out.str(Tag::Pan, pan.digits())
        .u32(Tag::TokenVersion, version);
    Ok(())
}
