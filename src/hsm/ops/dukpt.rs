//! PIN blocks from POS terminals: enciphered under a DUKPT transaction key, named by the
//! BDK id and the KSN the terminal sent (ANSI X9.24-1:2009 for 10-byte KSNs, X9.24-3-2017
//! for 12-byte ones). `pin.verify` and `pin.translate` take one in place of a zone key
//! (protocol/README.md, "DUKPT input"); [`decipher_dukpt`] is the one path every listener
//! uses, so the KSN counter, format and key-usage rules are the same wherever a block
//! comes in.
//!
//! Formats: TDES DUKPT carries ISO 9564 formats 0, 1 and 3 under the 2TDEA PIN variant
//! of the transaction key. AES DUKPT carries format 4 only, under the AES-128 PIN
//! encryption working key (X9.24-3-2017 key usage 0x1000, as its published vectors
//! derive from every BDK size): PCI PIN requires format 4 wherever AES enciphers a PIN,
//! and a terminal on an AES BDK that still sends 8-byte blocks under a TDES working key
//! gains nothing from the AES BDK, so such blocks are refused rather than accepted
//! quietly. Format 2 (offline ICC) never travels under DUKPT.

use crate::crypto::dukpt::{self, Ksn};
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{Format, PinBlock};
use crate::crypto::{DukptError, Error, Pin};
use crate::keys::Operation;
use crate::protocol::{Fields, Status, Tag};

use super::pin::decipher;
use super::{Ctx, OpError};

/// The key a received PIN block is enciphered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKey<'a> {
    /// A ZPK or TPK id.
    Zone(&'a str),
    /// A terminal's DUKPT transaction key: the BDK id and the terminal's KSN.
    Dukpt {
        /// BDK id.
        bdk: &'a str,
        /// The KSN as sent (public).
        ksn: Ksn,
    },
}

impl<'a> PinKey<'a> {
    /// `key` names a zone key, or a BDK when `ksn` is present.
    pub fn parse(f: &Fields<'a>, key: &'a str) -> Result<Self, OpError> {
        Ok(match ksn(f)? {
            Some(ksn) => PinKey::Dukpt { bdk: key, ksn },
            None => PinKey::Zone(key),
        })
    }

    /// Refuses a format the key cannot carry, before any key is looked up: for DUKPT,
    /// the formats of the module documentation. Format 2 is left to the rules every
    /// key shares (pin.translate's `translation_not_allowed`, for one).
    pub fn check_format(&self, format: Format) -> Result<(), OpError> {
        match self {
            PinKey::Dukpt { ksn, .. } if format != Format::Iso2 => dukpt_format(ksn, format),
            _ => Ok(()),
        }
    }
}

/// The request's `ksn`, if any: 10 bytes (TDES DUKPT) or 12 (AES DUKPT).
pub fn ksn(f: &Fields<'_>) -> Result<Option<Ksn>, OpError> {
    f.bytes(Tag::Ksn)?
        .map(|b| {
            Ksn::from_bytes(b).map_err(|_| {
                OpError::field(
                    Tag::Ksn,
                    "a KSN is 10 bytes (TDES DUKPT) or 12 bytes (AES DUKPT)",
                )
            })
        })
        .transpose()
}

/// The formats a DUKPT variant carries (module documentation).
pub fn dukpt_format(ksn: &Ksn, format: Format) -> Result<(), OpError> {
    let refusal = match (ksn, format) {
        (_, Format::Iso2) => "format 2 is for ICC use only, never sent under DUKPT",
        (Ksn::Tdes(_), Format::Iso0 | Format::Iso1 | Format::Iso3) => return Ok(()),
        (Ksn::Aes(_), Format::Iso4) => return Ok(()),
        (Ksn::Tdes(_), _) => "TDES DUKPT (10-byte KSN) PIN blocks are format 0, 1 or 3",
        (Ksn::Aes(_), _) => "AES DUKPT (12-byte KSN) PIN blocks are format 4",
    };
    Err(OpError::field(Tag::Format, refusal))
}

/// Deciphers a received PIN block under a zone key or a DUKPT key. Returns the PIN and
/// the version of the key (ZPK, TPK or BDK) that produced a valid block.
pub fn decipher_received(
    ctx: &Ctx<'_>,
    key: &PinKey<'_>,
    format: Format,
    block: &PinBlock,
    pan: &Pan,
) -> Result<(Pin, u32), OpError> {
    match key {
        PinKey::Zone(id) => decipher(ctx, id, format, block, pan),
        PinKey::Dukpt { bdk, ksn } => decipher_dukpt(ctx, bdk, ksn, format, block, pan),
    }
}

/// Deciphers a terminal's PIN block under the DUKPT PIN key for `ksn`, derived from any
/// usable version of the BDK `bdk_id`. Returns the PIN (a zeroizing value that never
/// leaves the daemon) and the BDK version that produced a valid block.
///
/// Checked in this order: the format suits the KSN's variant (`malformed_field`, field
/// `format`; format 2 as under a zone key); the key is a BDK (`unknown_key`,
/// `wrong_key_usage`); the KSN's counter is one a terminal may send (`ksn_refused`,
/// reason `counter_zero`, `counter_exhausted` or `counter_one_bits`: X9.24-1 allows at
/// most 10 one-bits in its 21-bit counter, X9.24-3 16 in its 32-bit one); the BDK is of
/// the KSN's variant (`wrong_key_usage`); the block decodes (`invalid_pin_block`).
pub fn decipher_dukpt(
    ctx: &Ctx<'_>,
    bdk_id: &str,
    ksn: &Ksn,
    format: Format,
    block: &PinBlock,
    pan: &Pan,
) -> Result<(Pin, u32), OpError> {
    dukpt_format(ksn, format)?;
    let versions = ctx.ring.verifying(bdk_id, Operation::DukptDerivation)?;
    ksn.check_counter().map_err(ksn_refused)?;
    let key_type = dukpt::default_pin_key_type(ksn, format);
    let mut fitting = false;
    for k in versions {
        let Some(bdk) = &k.bdk else { continue };
        let Ok(transaction) = bdk.transaction_key(ksn) else {
            continue;
        };
        fitting = true;
        if let Ok(pin) = transaction.decipher_pin(key_type, format, block, Some(pan)) {
            return Ok((pin, k.version));
        }
    }
    if !fitting {
        return Err(OpError::new(
            Status::WrongKeyUsage,
            format!(
                "a {}-byte KSN is {} DUKPT; the BDK is not (or is a 24-byte TDES key)",
                match ksn {
                    Ksn::Tdes(_) => 10,
                    Ksn::Aes(_) => 12,
                },
                ksn.variant()
            ),
        ));
    }
    Err(OpError::new(
        Status::InvalidPinBlock,
        "PIN block is not valid under the DUKPT key (wrong BDK, KSN or PAN, or corrupted)",
    ))
}

/// The `ksn_refused` answer for a counter no transaction may carry.
fn ksn_refused(e: Error) -> OpError {
    let reason = match e {
        Error::Dukpt(DukptError::CounterZero) => "counter_zero",
        Error::Dukpt(DukptError::CounterExhausted) => "counter_exhausted",
        Error::Dukpt(DukptError::CounterOneBits { .. }) => "counter_one_bits",
        _ => return OpError::field(Tag::Ksn, format!("ksn: {e}")),
    };
    OpError::new(Status::KsnRefused, e.to_string()).with_reason(reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tdes() -> Ksn {
        Ksn::from_hex("FFFF9876543210E00001").unwrap()
    }

    fn aes() -> Ksn {
        Ksn::from_hex("123456789012345600000001").unwrap()
    }

    #[test]
    fn each_variant_carries_its_formats_only() {
        let carried = |ksn: &Ksn| {
            [
                Format::Iso0,
                Format::Iso1,
                Format::Iso2,
                Format::Iso3,
                Format::Iso4,
            ]
            .into_iter()
            .filter(|f| dukpt_format(ksn, *f).is_ok())
            .collect::<Vec<_>>()
        };
        assert_eq!(carried(&tdes()), [Format::Iso0, Format::Iso1, Format::Iso3]);
        assert_eq!(carried(&aes()), [Format::Iso4]);
        let e = dukpt_format(&aes(), Format::Iso0).unwrap_err();
        assert_eq!(
            (e.status, e.field),
            (Status::MalformedField, Some(Tag::Format.code()))
        );
        // Format 2 is left to the shared rules (pin.translate's translation_not_allowed).
        let zone = PinKey::Zone("zpk.example");
        let terminal = PinKey::Dukpt {
            bdk: "bdk",
            ksn: tdes(),
        };
        assert!(terminal.check_format(Format::Iso2).is_ok());
        assert!(terminal.check_format(Format::Iso4).is_err());
        assert!(zone.check_format(Format::Iso4).is_ok());
    }

    #[test]
    fn counter_refusals_name_their_reason() {
        let refused = |hex: &str| {
            let e = ksn_refused(Ksn::from_hex(hex).unwrap().check_counter().unwrap_err());
            (e.status, e.reason)
        };
        for (ksn, reason) in [
            ("FFFF9876543210E00000", "counter_zero"),
            ("FFFF9876543210FFFFFF", "counter_exhausted"),
            ("FFFF9876543210E007FF", "counter_one_bits"),
            ("1234567890123456FFFFFFFF", "counter_exhausted"),
            ("12345678901234560001FFFF", "counter_one_bits"),
        ] {
            assert_eq!(refused(ksn), (Status::KsnRefused, Some(reason)), "{ksn}");
        }
        // Anything else the KSN layer says is about the field, not the counter.
        let e = ksn_refused(Error::Hex("KSN"));
        assert_eq!(
            (e.status, e.field),
            (Status::MalformedField, Some(Tag::Ksn.code()))
        );
    }
}
