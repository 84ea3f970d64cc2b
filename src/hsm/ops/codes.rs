//! The CVV family and the card's security codes: cvv.generate, cvv.verify,
//! card.codes.export, and the code block a 3-digit code travels in.

use zeroize::Zeroizing;

use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::cvv::{self, Cvv};
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format};
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::fields::{self, Expiry};
use super::secrets::transport_encrypt;
use super::tokens::transport;
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, bad};

fn cvk_active<'a>(ctx: &Ctx<'a>, id: &str) -> Result<(&'a cvv::Cvk, u32), OpError> {
    let k = ctx.ring.active(id, Operation::CardVerification)?;
    let cvk = k
        .cvk
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "not a CVK"))?;
    Ok((cvk, k.version))
}

struct Codes {
    cvv: Cvv,
    cvv2: Cvv,
    icvv: Cvv,
}

/// The card's codes: CVV with its own service code, CVV2 with 000, iCVV with 999.
fn codes(cvk: &cvv::Cvk, pan: &Pan, expiry: Expiry<'_>, sc: &str) -> Result<Codes, OpError> {
    let gen_ =
        |code: &str| cvv::generate(cvk, pan, expiry.as_str(), code).map_err(bad(Tag::Expiry));
    Ok(Codes {
        cvv: gen_(sc)?,
        cvv2: gen_(cvv::service_code::CVV2)?,
        icvv: gen_(cvv::service_code::ICVV)?,
    })
}

/// The fields every CVV operation names: the card, the CVK, the expiry, the service code.
#[derive(Debug, Clone)]
pub struct CardCodes<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// CVK id.
    pub key: &'a str,
    /// Expiry, YYMM.
    pub expiry: Expiry<'a>,
    /// Service code.
    pub service_code: &'a str,
}

impl<'a> CardCodes<'a> {
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            key: fields::key_id(f, Tag::Key)?,
            expiry: Expiry::parse(f)?,
            service_code: fields::service_code(f)?,
        })
    }
}

/// cvv.generate (0x0030).
#[derive(Debug, Clone)]
pub struct CvvGenerate<'a>(pub CardCodes<'a>);

impl<'a> Request<'a> for CvvGenerate<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Expiry,
        Tag::ServiceCode,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self(CardCodes::parse(f)?))
    }
}

/// cvv.generate of a resolved card.
pub fn cvv_generate(
    ctx: &Ctx<'_>,
    r: &CvvGenerate<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let (cvk, version) = cvk_active(ctx, r.0.key)?;
    let c = codes(cvk, &card.pan, r.0.expiry, r.0.service_code)?;
    out.str(Tag::Cvv, &c.cvv.expose_secret())
        .str(Tag::Cvv2, &c.cvv2.expose_secret())
        .str(Tag::Icvv, &c.icvv.expose_secret())
        .u32(Tag::KeyVersion, version);
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// cvv.verify (0x0031).
#[derive(Debug, Clone)]
pub struct CvvVerify<'a> {
    /// Card, CVK, expiry, service code.
    pub codes: CardCodes<'a>,
    /// The presented code.
    pub cvv: Cvv,
}

impl<'a> Request<'a> for CvvVerify<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Expiry,
        Tag::ServiceCode,
        Tag::Cvv,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            codes: CardCodes::parse(f)?,
            cvv: fields::cvv(f, Tag::Cvv)?,
        })
    }
}

impl CvvVerify<'_> {
    /// Whether this checks a static CVV2 (service code 000).
    pub fn is_static_cvv2(&self) -> bool {
        self.codes.service_code == cvv::service_code::CVV2
    }
}

/// cvv.verify of a resolved card, under every usable CVK version.
pub fn cvv_verify(
    ctx: &Ctx<'_>,
    r: &CvvVerify<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let c = &r.codes;
    let mut matched = None;
    for k in ctx.ring.verifying(c.key, Operation::CardVerification)? {
        let Some(cvk) = &k.cvk else { continue };
        let ok = cvv::verify(cvk, &card.pan, c.expiry.as_str(), c.service_code, &r.cvv)
            .map_err(bad(Tag::Expiry))?;
        if ok && matched.is_none() {
            matched = Some(k.version);
        }
    }
    match matched {
        Some(v) => {
            out.u32(Tag::KeyVersion, v);
            card.write_version(Tag::TokenVersion, out);
            Ok(())
        }
        None => Err(OpError::new(
            Status::VerificationFailed,
            "CVV does not verify",
        )),
    }
}

/// The `format` value of card.codes.export that asks for one block per value.
pub const BLOCK_LAYOUT: u8 = 1;

/// card.codes.export (0x0032).
#[derive(Debug, Clone)]
pub struct CodesExport<'a> {
    /// Card, CVK, expiry, service code.
    pub codes: CardCodes<'a>,
    /// Transport key id.
    pub transport_key: &'a str,
    /// The card's LMK-encrypted PIN, to include.
    pub pin_blob: Option<&'a [u8]>,
    /// One block per value (`format` 1) rather than the text layout.
    pub blocks: bool,
}

impl<'a> Request<'a> for CodesExport<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Expiry,
        Tag::ServiceCode,
        Tag::TransportKey,
        Tag::PinBlob,
        Tag::Format,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let codes = CardCodes::parse(f)?;
        let transport_key = fields::key_id(f, Tag::TransportKey)?;
        let pin_blob = fields::pin_blob(f, true)?;
        let blocks = match f.u8(Tag::Format)? {
            None => false,
            Some(BLOCK_LAYOUT) => true,
            Some(_) => {
                return Err(OpError::field(
                    Tag::Format,
                    "format must be 1 (one block per value) or absent",
                ));
            }
        };
        Ok(Self {
            codes,
            transport_key,
            pin_blob,
            blocks,
        })
    }
}

/// card.codes.export of a resolved card. Without `format` the codes travel as one text
/// under transport encryption; `format` 1 is the processor's layout, one code block per
/// value ([`code_block`]) and the PIN as an ISO 9564 format 1 block.
pub fn codes_export(
    ctx: &Ctx<'_>,
    r: &CodesExport<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let (cvk, version) = cvk_active(ctx, r.codes.key)?;
    let c = codes(cvk, &card.pan, r.codes.expiry, r.codes.service_code)?;
    let pin = r
        .pin_blob
        .map(|b| ctx.secrets.open_pin(b, &card.pan))
        .transpose()?;
    let (cipher, tv) = transport(ctx, r.transport_key)?;
    let mut rng = rand::rng();
    let encrypted = if r.blocks {
        let mut out = Vec::with_capacity(32);
        for code in [&c.cvv, &c.cvv2, &c.icvv] {
            out.extend_from_slice(&code_block(cipher, &code.expose_secret(), &mut rng)?);
        }
        if let Some(p) = &pin {
            let b = pinblock::encipher(Format::Iso1, cipher, p, None, &mut rng)
                .map_err(|_| OpError::new(Status::Internal, "code block encryption failed"))?;
            out.extend_from_slice(b.as_bytes());
        }
        out
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
        transport_encrypt(cipher, text.as_bytes(), &mut rng)?
    };
    out.bytes(Tag::Encrypted, &encrypted)
        .u32(Tag::KeyVersion, version)
        .u32(Tag::TransportKeyVersion, tv);
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// One 3-digit code as the card processor carries it (SecurityValuesDetailsV2Response:
/// 16 hex characters, one block under a double-length TDES key): the clear block
/// `1 3 d d d` followed by 11 random fill nibbles (the layout of an ISO 9564-1 format 1
/// PIN block of length 3), enciphered alone with TDES-ECB under a TDES transport key.
/// The same for a CVV in `card.codes.export` format 1 and a dCVV2 in `dcvv2.generate`
/// with a transport key. An AES transport key is `wrong_key_usage`.
pub fn code_block(
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
