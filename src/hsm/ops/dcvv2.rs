//! Dynamic CVV2 (protocol/dcvv2.md): dcvv2.generate and the stateless half of
//! dcvv2.verify; one use per code and the tries are the counter store's
//! ([`super::counted`]).

use crate::crypto::dcvv2;
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::codes::code_block;
use super::fields::{self, Expiry};
use super::tokens::transport;
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, bad};

/// Which time step or counter a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A counter moving factor.
    Counter(u64),
    /// The time step of this Unix time (`None`: the daemon's clock).
    UnixTime(Option<u64>),
}

impl Moment {
    fn parse(f: &Fields<'_>) -> Result<Self, OpError> {
        match (f.u64(Tag::Counter)?, f.u64(Tag::UnixTime)?) {
            (Some(_), Some(_)) => Err(OpError::field(
                Tag::Counter,
                "give counter or unix_time, not both",
            )),
            (Some(c), None) => Ok(Moment::Counter(c)),
            (None, t) => Ok(Moment::UnixTime(t)),
        }
    }

    /// The moving factor: the counter, or the 300-second time step from T0 = 0.
    fn factor(self, now: u64) -> Result<u64, OpError> {
        match self {
            Moment::Counter(c) => Ok(c),
            Moment::UnixTime(t) => dcvv2::time_step(
                t.unwrap_or(now),
                dcvv2::DEFAULT_T0,
                dcvv2::DEFAULT_STEP_SECONDS,
            )
            .map_err(bad(Tag::UnixTime)),
        }
    }
}

/// dcvv2.generate (0x0040).
#[derive(Debug, Clone)]
pub struct Dcvv2Generate<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// dCVV2 key id.
    pub key: &'a str,
    /// Expiry.
    pub expiry: Expiry<'a>,
    /// Counter or time.
    pub moment: Moment,
    /// Transport key: the code leaves only as a code block under it.
    pub transport_key: Option<&'a str>,
}

impl<'a> Request<'a> for Dcvv2Generate<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Expiry,
        Tag::Counter,
        Tag::UnixTime,
        Tag::TransportKey,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            key: fields::key_id(f, Tag::Key)?,
            expiry: Expiry::parse(f)?,
            moment: Moment::parse(f)?,
            transport_key: f.str(Tag::TransportKey)?,
        })
    }
}

/// dcvv2.generate of a resolved card. With a transport key the code leaves only as one
/// code block under it, as `card.codes.export` format 1 carries a CVV.
pub fn generate(
    ctx: &Ctx<'_>,
    r: &Dcvv2Generate<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let factor = r.moment.factor(ctx.now_unix)?;
    let k = ctx.ring.active(r.key, Operation::DynamicCvv2)?;
    let transport = r.transport_key.map(|id| transport(ctx, id)).transpose()?;
    let code = dcvv2::dcvv2(&k.key, card.pan.digits(), r.expiry.as_str(), factor)
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
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// dcvv2.verify (0x0041).
#[derive(Debug, Clone)]
pub struct Dcvv2Verify<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// dCVV2 key id.
    pub key: &'a str,
    /// Expiry.
    pub expiry: Expiry<'a>,
    /// Counter or time.
    pub moment: Moment,
    /// The presented code, 3 digits.
    pub code: &'a str,
    /// Steps each side, 0-10.
    pub window: u64,
}

impl<'a> Request<'a> for Dcvv2Verify<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Expiry,
        Tag::Counter,
        Tag::UnixTime,
        Tag::Dcvv2,
        Tag::Window,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let window = u64::from(f.u8(Tag::Window)?.unwrap_or(1));
        if window > dcvv2::MAX_WINDOW_SIDE {
            return Err(OpError::field(Tag::Window, "window must be 0-10"));
        }
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            key: fields::key_id(f, Tag::Key)?,
            expiry: Expiry::parse(f)?,
            moment: Moment::parse(f)?,
            code: fields::dcvv2_code(f)?,
            window,
        })
    }
}

/// dCVV2 verification of a resolved card without state: the matched moving factor and
/// key version, or `verification_failed` (`expired` when the code matches a step
/// outside the window but within the widest window the scheme allows).
pub fn matched(ctx: &Ctx<'_>, r: &Dcvv2Verify<'_>, card: &Card) -> Result<(u64, u32), OpError> {
    let factor = r.moment.factor(ctx.now_unix)?;
    let window = dcvv2::Window {
        back: r.window,
        forward: r.window,
    };
    let widest = dcvv2::Window {
        back: dcvv2::MAX_WINDOW_SIDE,
        forward: dcvv2::MAX_WINDOW_SIDE,
    };
    let (pan, expiry) = (card.pan.digits(), r.expiry.as_str());
    let versions = ctx.ring.verifying(r.key, Operation::DynamicCvv2)?;
    for k in versions {
        let m = dcvv2::verify_window(&k.key, pan, expiry, factor, window, r.code)
            .map_err(bad(Tag::Key))?;
        if let Some(m) = m {
            return Ok((m, k.version));
        }
    }
    for k in versions {
        if let Ok(Some(_)) = dcvv2::verify_window(&k.key, pan, expiry, factor, widest, r.code) {
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
