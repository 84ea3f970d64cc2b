//! Card operations: PAN generation and tokens, CVV family, security-code export,
//! dynamic CVV2, MACs.

use zeroize::Zeroizing;

use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::mac::{self, MacAlgorithm};
use crate::crypto::pan::{self, Pan};
use crate::crypto::pinblock::{self, Format};
use crate::crypto::token::{self, Alphabet};
use crate::crypto::{cvv, dcvv2};
use crate::keys::{KeyAlgorithm, Operation};
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::secrets::transport_encrypt;
use super::{Ctx, OpError, OpResult, bad, card, detokenise, pin};

const CARD: [Tag; 3] = [Tag::Pan, Tag::Token, Tag::TokenVersion];

fn with_card(extra: &[Tag]) -> Vec<Tag> {
    let mut v = CARD.to_vec();
    v.extend_from_slice(extra);
    v
}

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

fn transport<'a>(ctx: &Ctx<'a>, id: &str) -> Result<(&'a BlockCipher, u32), OpError> {
    let k = ctx.ring.active(id, Operation::TransportEncrypt)?;
    let c = k
        .cipher
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "transport key has no cipher"))?;
    Ok((c, k.version))
}

/// pan.generate.
pub fn pan_generate(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&[Tag::Bin, Tag::PanLength, Tag::Alphabet, Tag::TransportKey])?;
    let bin = f.req_str(Tag::Bin)?;
    if !(6..=11).contains(&bin.len()) {
        return Err(OpError::field(Tag::Bin, "BIN must be 6-11 digits"));
    }
    let len = usize::from(f.u8(Tag::PanLength)?.unwrap_or(16));
    let mut rng = rand::rng();
    let pan = pan::generate(bin, len, &mut rng).map_err(bad(Tag::PanLength))?;
    write_tokens(ctx, &pan, alphabet(f)?, out)?;
    if let Some(id) = f.str(Tag::TransportKey)? {
        let (cipher, version) = transport(ctx, id)?;
        out.bytes(
            Tag::Encrypted,
            &transport_encrypt(cipher, pan.digits().as_bytes(), &mut rng)?,
        )
        .u32(Tag::TransportKeyVersion, version);
    }
    Ok(())
}

/// pan.tokenise.
pub fn tokenise(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&[Tag::Pan, Tag::Alphabet])?;
    let pan = Pan::new(f.req_str(Tag::Pan)?).map_err(bad(Tag::Pan))?;
    write_tokens(ctx, &pan, alphabet(f)?, out)
}

/// pan.detokenise.
pub fn detokenise_op(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&[Tag::Token, Tag::TokenVersion])?;
    let (pan, version) = detokenise(ctx, f.req_str(Tag::Token)?, f.u32(Tag::TokenVersion)?)?;
    out.str(Tag::Pan, pan.digits())
        .u32(Tag::TokenVersion, version);
    Ok(())
}

fn cvk_active<'a>(ctx: &Ctx<'a>, f: &Fields<'_>) -> Result<(&'a cvv::Cvk, u32), OpError> {
    let k = ctx
        .ring
        .active(f.req_str(Tag::Key)?, Operation::CardVerification)?;
    let cvk = k
        .cvk
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "not a CVK"))?;
    Ok((cvk, k.version))
}

struct Codes {
    cvv: cvv::Cvv,
    cvv2: cvv::Cvv,
    icvv: cvv::Cvv,
}

fn codes(cvk: &cvv::Cvk, pan: &Pan, f: &Fields<'_>) -> Result<Codes, OpError> {
    let expiry = f.req_str(Tag::Expiry)?;
    let sc = f.req_str(Tag::ServiceCode)?;
    let gen_ = |code: &str, tag: Tag| cvv::generate(cvk, pan, expiry, code).map_err(bad(tag));
    Ok(Codes {
        cvv: gen_(sc, Tag::ServiceCode)?,
        cvv2: gen_(cvv::service_code::CVV2, Tag::Expiry)?,
        icvv: gen_(cvv::service_code::ICVV, Tag::Expiry)?,
    })
}

/// cvv.generate.
pub fn cvv_generate(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&with_card(&[Tag::Key, Tag::Expiry, Tag::ServiceCode]))?;
    let (pan, _) = card(ctx, f)?;
    let (cvk, version) = cvk_active(ctx, f)?;
    let c = codes(cvk, &pan, f)?;
    out.str(Tag::Cvv, &c.cvv.expose_secret())
        .str(Tag::Cvv2, &c.cvv2.expose_secret())
        .str(Tag::Icvv, &c.icvv.expose_secret())
        .u32(Tag::KeyVersion, version);
    Ok(())
}

/// cvv.verify.
pub fn cvv_verify(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    pan: &Pan,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    f.only(&with_card(&[
        Tag::Key,
        Tag::Expiry,
        Tag::ServiceCode,
        Tag::Cvv,
    ]))?;
    let presented = cvv::Cvv::new(f.req_str(Tag::Cvv)?).map_err(bad(Tag::Cvv))?;
    let (expiry, sc) = (f.req_str(Tag::Expiry)?, f.req_str(Tag::ServiceCode)?);
    let mut matched = None;
    for k in ctx
        .ring
        .verifying(f.req_str(Tag::Key)?, Operation::CardVerification)?
    {
        let Some(cvk) = &k.cvk else { continue };
        let ok = cvv::verify(cvk, pan, expiry, sc, &presented).map_err(bad(Tag::Expiry))?;
        if ok && matched.is_none() {
            matched = Some(k.version);
        }
    }
    match matched {
        Some(v) => {
            out.u32(Tag::KeyVersion, v);
            Ok(())
        }
        None => Err(OpError::new(
            Status::VerificationFailed,
            "CVV does not verify",
        )),
    }
}

/// card.codes.export. Without `format` the codes travel as one text under
/// transport encryption; `format` 1 asks for the processor's layout, one TDES-ECB
/// block per value (see `value_blocks`).
pub fn codes_export(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&with_card(&[
        Tag::Key,
        Tag::Expiry,
        Tag::ServiceCode,
        Tag::TransportKey,
        Tag::PinBlob,
        Tag::Format,
    ]))?;
    let layout = f.u8(Tag::Format)?;
    if layout.is_some_and(|l| l != BLOCK_LAYOUT) {
        return Err(OpError::field(
            Tag::Format,
            "format must be 1 (one block per value) or absent",
        ));
    }
    let (pan, _) = card(ctx, f)?;
    let (cvk, version) = cvk_active(ctx, f)?;
    let c = codes(cvk, &pan, f)?;
    let pin = pin::open_blob(ctx, f, &pan)?;
    let (cipher, tv) = transport(ctx, f.req_str(Tag::TransportKey)?)?;
    let encrypted = if layout.is_some() {
        value_blocks(cipher, &c, pin.as_ref(), &mut rand::rng())?
    } else {
        let mut text = Zeroizing::new(format!(
            "CVV={};CVV2={};ICVV={}",
            c.cvv.expose_secret(),
            c.cvv2.expose_secret(),
            c.icvv.expose_secret()
        ));
        if let Some(p) = &pin {
            text.push_str(";PIN=");
            text.push_str(p.expose_secret());
        }
        transport_encrypt(cipher, text.as_bytes(), &mut rand::rng())?
    };
    out.bytes(Tag::Encrypted, &encrypted)
        .u32(Tag::KeyVersion, version)
        .u32(Tag::TransportKeyVersion, tv);
    Ok(())
}

/// The `format` value of card.codes.export that asks for one block per value.
pub const BLOCK_LAYOUT: u8 = 1;

/// The processor's layout (SecurityValuesDetailsV2Response: each value is 16 hex
/// characters, one 8-byte block under a double-length TDES key): CVV, CVV2, iCVV and,
/// with a PIN, the PIN, each enciphered alone with TDES-ECB under the transport key.
/// A code block is laid out as an ISO 9564-1 format 1 PIN block (`1`, the length
/// nibble 3, the digits, random fill nibbles), so a receiver decodes all four with one
/// routine; the PIN block is ISO 9564 format 1 (no PAN needed). An AES transport key is
/// `wrong_key_usage`: the processor's blocks are 8 bytes.
fn value_blocks(
    cipher: &BlockCipher,
    c: &Codes,
    pin: Option<&crate::crypto::Pin>,
    rng: &mut impl rand::CryptoRng,
) -> Result<Vec<u8>, OpError> {
    let mut out = Vec::with_capacity(32);
    for code in [&c.cvv, &c.cvv2, &c.icvv] {
        out.extend_from_slice(&code_block(cipher, &code.expose_secret(), rng)?);
    }
    if let Some(p) = pin {
        let b = pinblock::encipher(Format::Iso1, cipher, p, None, rng)
            .map_err(|_| OpError::new(Status::Internal, "code block encryption failed"))?;
        out.extend_from_slice(b.as_bytes());
    }
    Ok(out)
}

/// One 3-digit code as the processor carries it: the clear block `1 3 d d d` followed
/// by 11 random fill nibbles (the layout of an ISO 9564-1 format 1 PIN block of length
/// 3), enciphered alone with TDES-ECB under a TDES transport key. The same for a CVV
/// in `card.codes.export` format 1 and a dCVV2 in `dcvv2.generate` with a transport key.
fn code_block(
    cipher: &BlockCipher,
    code: &str,
    rng: &mut impl rand::CryptoRng,
) -> Result<[u8; 8], OpError> {
    if cipher.algorithm() != Algorithm::Tdes {
        return Err(OpError::new(
            Status::WrongKeyUsage,
            "code blocks need a TDES transport key (8-byte blocks)",
        ));
    }
    let digit = |b: u8| b.checked_sub(b'0').filter(|d| *d < 10);
    let [d1, d2, d3] = match code.as_bytes() {
        &[a, b, c] => match (digit(a), digit(b), digit(c)) {
            (Some(a), Some(b), Some(c)) => [a, b, c],
            _ => return Err(OpError::new(Status::Internal, "a code is not 3 digits")),
        },
        _ => return Err(OpError::new(Status::Internal, "a code is not 3 digits")),
    };
    let mut block = Zeroizing::new([0u8; 8]);
    rng.fill_bytes(&mut block[..]);
    // Nibbles: 1, 3, d1, d2, d3, then 11 random fill nibbles.
    block[0] = 0x13;
    block[1] = (d1 << 4) | d2;
    block[2] = (d3 << 4) | (block[2] & 0x0F);
    cipher
        .encrypt_ecb(&mut block[..])
        .map_err(|_| OpError::new(Status::Internal, "code block encryption failed"))?;
    Ok(*block)
}

fn moving_factor(ctx: &Ctx<'_>, f: &Fields<'_>) -> Result<u64, OpError> {
    match (f.u64(Tag::Counter)?, f.u64(Tag::UnixTime)?) {
        (Some(_), Some(_)) => Err(OpError::field(
            Tag::Counter,
            "give counter or unix_time, not both",
        )),
        (Some(c), None) => Ok(c),
        (None, t) => dcvv2::time_step(
            t.unwrap_or(ctx.now_unix),
            dcvv2::DEFAULT_T0,
            dcvv2::DEFAULT_STEP_SECONDS,
        )
        .map_err(bad(Tag::UnixTime)),
    }
}

/// dcvv2.generate. With `transport_key` the code leaves only as one code block under
/// that (TDES) key, as `card.codes.export` format 1 carries a CVV ([`code_block`]).
pub fn dcvv2_generate(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&with_card(&[
        Tag::Key,
        Tag::Expiry,
        Tag::Counter,
        Tag::UnixTime,
        Tag::TransportKey,
    ]))?;
    let (pan, _) = card(ctx, f)?;
    let factor = moving_factor(ctx, f)?;
    let k = ctx
        .ring
        .active(f.req_str(Tag::Key)?, Operation::DynamicCvv2)?;
    let transport = f
        .str(Tag::TransportKey)?
        .map(|id| transport(ctx, id))
        .transpose()?;
    let code = dcvv2::dcvv2(&k.key, pan.digits(), f.req_str(Tag::Expiry)?, factor)
        .map_err(bad(Tag::Expiry))?;
    match transport {
        Some((cipher, version)) => {
            let block = code_block(cipher, code.expose_secret(), &mut rand::rng())?;
            out.bytes(Tag::Encrypted, &block)
                .u64(Tag::MovingFactor, factor)
                .u32(Tag::KeyVersion, k.version)
                .u32(Tag::TransportKeyVersion, version);
        }
        None => {
            out.str(Tag::Dcvv2, code.expose_secret())
                .u64(Tag::MovingFactor, factor)
                .u32(Tag::KeyVersion, k.version);
        }
    }
    Ok(())
}

/// dCVV2 verification of the card `pan` without state: the matched moving factor and
/// key version, or `verification_failed` (`expired` when the code matches a step
/// outside the window but within the widest window the scheme allows).
pub fn dcvv2_match(ctx: &Ctx<'_>, f: &Fields<'_>, pan: &Pan) -> Result<(u64, u32), OpError> {
    f.only(&with_card(&[
        Tag::Key,
        Tag::Expiry,
        Tag::Counter,
        Tag::UnixTime,
        Tag::Dcvv2,
        Tag::Window,
    ]))?;
    let factor = moving_factor(ctx, f)?;
    let side = u64::from(f.u8(Tag::Window)?.unwrap_or(1));
    if side > dcvv2::MAX_WINDOW_SIDE {
        return Err(OpError::field(Tag::Window, "window must be 0-10"));
    }
    let window = dcvv2::Window {
        back: side,
        forward: side,
    };
    let widest = dcvv2::Window {
        back: dcvv2::MAX_WINDOW_SIDE,
        forward: dcvv2::MAX_WINDOW_SIDE,
    };
    let (expiry, presented) = (f.req_str(Tag::Expiry)?, f.req_str(Tag::Dcvv2)?);
    let versions = ctx
        .ring
        .verifying(f.req_str(Tag::Key)?, Operation::DynamicCvv2)?;
    for k in versions {
        let m = dcvv2::verify_window(&k.key, pan.digits(), expiry, factor, window, presented)
            .map_err(bad(Tag::Dcvv2))?;
        if let Some(m) = m {
            return Ok((m, k.version));
        }
    }
    for k in versions {
        if let Ok(Some(_)) =
            dcvv2::verify_window(&k.key, pan.digits(), expiry, factor, widest, presented)
        {
            return Err(OpError::new(
                Status::Expired,
                "dCVV2 code is outside its validity window",
            ));
        }
    }
    Err(OpError::new(
        Status::VerificationFailed,
        "dCVV2 does not verify",
    ))
}

fn mac_algorithm(f: &Fields<'_>, key_alg: KeyAlgorithm) -> Result<MacAlgorithm, OpError> {
    let natural = match key_alg {
        KeyAlgorithm::Tdes => (0, MacAlgorithm::Iso9797Alg3),
        KeyAlgorithm::Aes => (1, MacAlgorithm::AesCmac),
        KeyAlgorithm::Hmac => (2, MacAlgorithm::HmacSha256),
    };
    match f.u8(Tag::MacAlgorithm)? {
        None => Ok(natural.1),
        Some(n) if n == natural.0 => Ok(natural.1),
        Some(n) if n <= 2 => Err(OpError::new(
            Status::WrongKeyUsage,
            format!("a {key_alg} MAC key cannot compute MAC algorithm {n}"),
        )),
        Some(_) => Err(OpError::field(
            Tag::MacAlgorithm,
            "mac_algorithm must be 0-2",
        )),
    }
}

/// mac.generate.
pub fn mac_generate(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&[Tag::Key, Tag::Data, Tag::MacAlgorithm])?;
    let k = ctx.ring.active(f.req_str(Tag::Key)?, Operation::Mac)?;
    let alg = mac_algorithm(f, k.algorithm)?;
    let m = mac::generate(alg, &k.key, f.req_bytes(Tag::Data)?).map_err(bad(Tag::Data))?;
    out.bytes(Tag::Mac, &m).u32(Tag::KeyVersion, k.version);
    Ok(())
}

/// mac.verify.
pub fn mac_verify(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&[Tag::Key, Tag::Data, Tag::Mac, Tag::MacAlgorithm])?;
    let (data, presented) = (f.req_bytes(Tag::Data)?, f.req_bytes(Tag::Mac)?);
    for k in ctx.ring.verifying(f.req_str(Tag::Key)?, Operation::Mac)? {
        let alg = mac_algorithm(f, k.algorithm)?;
        if mac::verify(alg, &k.key, data, presented).map_err(bad(Tag::Mac))? {
            out.u32(Tag::KeyVersion, k.version);
            return Ok(());
        }
    }
    Err(OpError::new(
        Status::VerificationFailed,
        "MAC does not verify",
    ))
}
