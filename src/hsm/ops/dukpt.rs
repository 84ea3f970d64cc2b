//! PIN blocks from POS terminals: enciphered under a DUKPT transaction key, named by the
//! BDK id and the KSN the terminal sent (ANSI X9.24-1:2009 for 10-byte KSNs, X9.24-3-2017
//! for 12-byte ones). `pin.verify` and `pin.translate` take one in place of a zone key
//! (protocol/README.md, "DUKPT input"); [`decipher_dukpt`] is the one path every listener
//! uses, so the KSN counter, format and key-usage rules are the same wherever a block
//! comes in.
//!
//! Formats: TDES DUKPT carries ISO 9564 formats 0, 1 and 3 under the 2TDEA PIN variant
//! of the transaction key. AES DUKPT carries format 4 only, under the AES PIN encryption
//! working key (X9.24-3-2017 key usage 0x1000) of the type the request's `pin_key_type`
//! names: AES-128 by default (as the standard's published vectors derive from every BDK
//! size), AES-192 or AES-256 where the BDK is at least as strong (X9.24-3-2017 6.3: a
//! working key is never stronger than the key it comes from). PCI PIN requires format 4
//! wherever AES enciphers a PIN, and a terminal on an AES BDK that still sends 8-byte
//! blocks under a TDES working key gains nothing from the AES BDK, so such blocks (and
//! the 2TDEA/3TDEA working key types) are refused rather than accepted quietly. Format 2
//! (offline ICC) never travels under DUKPT.

use crate::crypto::cipher::Algorithm;
use crate::crypto::dukpt::{KeyType, Ksn};
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
    /// A terminal's DUKPT transaction key: the BDK id, the terminal's KSN and the type
    /// of the PIN working key derived from it.
    Dukpt {
        /// BDK id.
        bdk: &'a str,
        /// The KSN as sent (public).
        ksn: Ksn,
        /// The PIN working key's type: the request's `pin_key_type`, or the variant's
        /// default (2TDEA for TDES DUKPT, AES-128 for AES DUKPT).
        pin_key: KeyType,
    },
}

impl<'a> PinKey<'a> {
    /// `key` names a zone key, or a BDK when `ksn` is present (with `pin_key_type`
    /// naming the AES DUKPT PIN key's type).
    pub fn parse(f: &Fields<'a>, key: &'a str) -> Result<Self, OpError> {
        let ksn = ksn(f)?;
        let named = pin_key_type(f, ksn.as_ref())?;
        Ok(match ksn {
            Some(ksn) => PinKey::Dukpt {
                bdk: key,
                pin_key: named.unwrap_or(match ksn {
                    Ksn::Tdes(_) => KeyType::Tdes2,
                    Ksn::Aes(_) => KeyType::Aes128,
                }),
                ksn,
            },
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

/// The request's `pin_key_type`, if any: the X9.24-3-2017 algorithm indicator of an AES
/// PIN working key (2 AES-128, 3 AES-192, 4 AES-256). Refused (`malformed_field`, field
/// `pin_key_type`) without a KSN, with a TDES KSN (X9.24-1 has one PIN key), for the
/// TDEA indicators (0, 1: their blocks are formats 0, 1, 3, which AES DUKPT input does
/// not take) and for any other value.
pub fn pin_key_type(f: &Fields<'_>, ksn: Option<&Ksn>) -> Result<Option<KeyType>, OpError> {
    let Some(code) = f.u8(Tag::PinKeyType)? else {
        return Ok(None);
    };
    let refusal = match ksn {
        None => "pin_key_type goes with ksn only (a DUKPT PIN block)",
        Some(Ksn::Tdes(_)) => {
            "TDES DUKPT (10-byte KSN) has one PIN key type, 2TDEA: leave pin_key_type out"
        }
        Some(Ksn::Aes(_)) => match KeyType::ALL
            .into_iter()
            .find(|t| t.indicator() == u16::from(code))
        {
            Some(t) if t.algorithm() == Algorithm::Aes => return Ok(Some(t)),
            Some(_) => {
                "AES DUKPT PIN blocks are format 4, under an AES PIN key: pin_key_type is 2 (AES-128), 3 (AES-192) or 4 (AES-256)"
            }
            None => "pin_key_type is 2 (AES-128), 3 (AES-192) or 4 (AES-256)",
        },
    };
    Err(OpError::field(Tag::PinKeyType, refusal))
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
        PinKey::Dukpt { bdk, ksn, pin_key } => {
            decipher_dukpt(ctx, bdk, (ksn, *pin_key), format, block, pan)
        }
    }
}

/// Deciphers a terminal's PIN block under the DUKPT PIN key of type `pin_key` for
/// `ksn`, derived from any usable version of the BDK `bdk_id`. Returns the PIN (a
/// zeroizing value that never leaves the daemon) and the BDK version that produced a
/// valid block.
///
/// Checked in this order: the format suits the KSN's variant (`malformed_field`, field
/// `format`; format 2 as under a zone key); the key is a BDK (`unknown_key`,
/// `wrong_key_usage`); the KSN's counter is one a terminal may send (`ksn_refused`,
/// reason `counter_zero`, `counter_exhausted` or `counter_one_bits`: X9.24-1 allows at
/// most 10 one-bits in its 21-bit counter, X9.24-3 16 in its 32-bit one); the BDK is of
/// the KSN's variant (`wrong_key_usage`); the BDK is at least as strong as the PIN key
/// type (`wrong_key_usage`, reason `pin_key_type_too_strong`); the block decodes
/// (`invalid_pin_block`).
pub fn decipher_dukpt(
    ctx: &Ctx<'_>,
    bdk_id: &str,
    (ksn, pin_key): (&Ksn, KeyType),
    format: Format,
    block: &PinBlock,
    pan: &Pan,
) -> Result<(Pin, u32), OpError> {
    dukpt_format(ksn, format)?;
    let versions = ctx.ring.verifying(bdk_id, Operation::DukptDerivation)?;
    ksn.check_counter().map_err(ksn_refused)?;
    let (mut fitting, mut too_weak) = (false, false);
    for k in versions {
        let Some(bdk) = &k.bdk else { continue };
        let Ok(transaction) = bdk.transaction_key(ksn) else {
            continue;
        };
        match transaction.decipher_pin(pin_key, format, block, Some(pan)) {
            Ok(pin) => return Ok((pin, k.version)),
            Err(Error::Dukpt(DukptError::WorkingKeyTooStrong { .. })) => too_weak = true,
            Err(_) => fitting = true,
        }
    }
    if !fitting && too_weak {
        return Err(OpError::new(
            Status::WrongKeyUsage,
            format!(
                "an {pin_key} PIN key cannot be derived from this BDK (AES-192 needs an AES-192 or AES-256 BDK, AES-256 an AES-256 BDK)"
            ),
        )
        .with_reason("pin_key_type_too_strong"));
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
            pin_key: KeyType::Tdes2,
        };
        assert!(terminal.check_format(Format::Iso2).is_ok());
        assert!(terminal.check_format(Format::Iso4).is_err());
        assert!(zone.check_format(Format::Iso4).is_ok());
    }

    #[test]
    fn pin_key_type_names_an_aes_key_with_an_aes_ksn_only() {
        use crate::protocol::FieldsWriter;
        let parse = |ksn: Option<&str>, code: Option<u8>| {
            let mut body = Vec::new();
            let mut w = FieldsWriter::new(&mut body);
            if let Some(k) = ksn {
                w.bytes(Tag::Ksn, &hex::decode(k).unwrap());
            }
            if let Some(c) = code {
                w.u8(Tag::PinKeyType, c);
            }
            let f = Fields::parse_strict(&body).unwrap();
            PinKey::parse(&f, "bdk").map(|k| match k {
                PinKey::Dukpt { pin_key, .. } => Some(pin_key),
                PinKey::Zone(_) => None,
            })
        };
        let aes = Some("123456789012345600000001");
        let tdes = Some("FFFF9876543210E00001");
        // Defaults: 2TDEA for TDES DUKPT, AES-128 for AES DUKPT; no KSN, a zone key.
        assert_eq!(parse(tdes, None).unwrap(), Some(KeyType::Tdes2));
        assert_eq!(parse(aes, None).unwrap(), Some(KeyType::Aes128));
        assert_eq!(parse(None, None).unwrap(), None);
        for (code, key_type) in [
            (2, KeyType::Aes128),
            (3, KeyType::Aes192),
            (4, KeyType::Aes256),
        ] {
            assert_eq!(parse(aes, Some(code)).unwrap(), Some(key_type), "{code}");
        }
        // Refused: the TDEA indicators, unknown values, a TDES KSN, no KSN.
        for (ksn, code) in [
            (aes, 0),
            (aes, 1),
            (aes, 5),
            (aes, 255),
            (tdes, 2),
            (None, 2),
        ] {
            let e = parse(ksn, Some(code)).unwrap_err();
            assert_eq!(
                (e.status, e.field),
                (Status::MalformedField, Some(Tag::PinKeyType.code())),
                "{ksn:?} {code}"
            );
        }
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
