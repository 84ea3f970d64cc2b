//! Typed calls for PINs: verification, translation, generation, change, delivery and
//! the try counters (protocol/README.md, "pin.*").

use super::requests::{
    Card, PinChange, PinChangeRequest, PinDelivery, PinGenerateRequest, PinRebindRequest,
    PinReference, PinTranslateRequest, Verification,
};
use super::{Client, ClientError, Response};
use crate::protocol::{Opcode, Status, Tag};

impl Client {
    /// pin.verify of an enciphered PIN block against the card's PVV or offset. A wrong
    /// PIN is [`Verification::Failed`] (counted by the daemon), a locked card
    /// [`Verification::Locked`]; `invalid_pin_block` (wrong key or PAN) is an error.
    pub async fn pin_verify(
        &self,
        card: &Card,
        key: &str,
        format: u8,
        pin_block: &[u8],
        pvk: &str,
        reference: &PinReference,
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::PinVerify, |w| {
                card.write(w);
                w.str(Tag::Key, key)
                    .u8(Tag::Format, format)
                    .bytes(Tag::PinBlock, pin_block)
                    .str(Tag::Pvk, pvk);
                reference.write(w);
            })
            .await?;
        Verification::from_response(r)
    }

    /// pin.verify of a POS terminal's PIN block under DUKPT (protocol/README.md, "DUKPT
    /// input"): as [`Client::pin_verify`], the tries counted the same way; a KSN counter
    /// no terminal may send is the error `ksn_refused`.
    pub async fn pin_verify_dukpt(
        &self,
        card: &Card,
        block: &DukptPinBlock,
        pvk: &str,
        reference: &PinReference,
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::PinVerify, |w| {
                card.write(w);
                block.write(w);
                w.str(Tag::Pvk, pvk);
                reference.write(w);
            })
            .await?;
        Verification::from_response(r)
    }

    /// pin.translate of a POS terminal's PIN block under DUKPT: `req.key` names the BDK
    /// and `ksn` is the terminal's KSN (10 or 12 bytes).
    pub async fn pin_translate_dukpt(
        &self,
        req: &PinTranslateRequest,
        ksn: &[u8],
    ) -> Result<Vec<u8>, ClientError> {
        self.translate(req, Some((ksn, None))).await
    }

    /// [`Client::pin_translate_dukpt`] of an AES DUKPT block (12-byte `ksn`) whose PIN
    /// key is of the type `pin_key_type` names (the X9.24-3-2017 algorithm indicator: 2
    /// AES-128, 3 AES-192, 4 AES-256); a type stronger than the BDK is the error
    /// `wrong_key_usage`.
    pub async fn pin_translate_dukpt_with_key_type(
        &self,
        req: &PinTranslateRequest,
        ksn: &[u8],
        pin_key_type: u8,
    ) -> Result<Vec<u8>, ClientError> {
        self.translate(req, Some((ksn, Some(pin_key_type)))).await
    }

    /// pin.translate: the PIN block under the destination key and format.
    pub async fn pin_translate(&self, req: &PinTranslateRequest) -> Result<Vec<u8>, ClientError> {
        self.translate(req, None).await
    }

    async fn translate(
        &self,
        req: &PinTranslateRequest,
        dukpt: Option<(&[u8], Option<u8>)>,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(Opcode::PinTranslate, |w| {
            req.card.write(w);
            w.str(Tag::Key, &req.key);
            if let Some((ksn, pin_key_type)) = dukpt {
                w.bytes(Tag::Ksn, ksn);
                if let Some(t) = pin_key_type {
                    w.u8(Tag::PinKeyType, t);
                }
            }
            w.u8(Tag::Format, req.format)
                .bytes(Tag::PinBlock, &req.pin_block)
                .str(Tag::DestKey, &req.dest_key)
                .u8(Tag::DestFormat, req.dest_format);
            if let Some(p) = &req.dest_pan {
                w.str(Tag::DestPan, p);
            }
        })
        .await?
        .ok()?
        .need_bytes(Tag::PinBlock)
    }

    /// pin.generate: `pvv` or `offset`, `pvk_version`, `pin_blob`, and with a delivery
    /// `delivery_block` and `transport_key_version`. The clear PIN never leaves the
    /// daemon, and is never one the daemon's weak-PIN policy refuses.
    pub async fn pin_generate(&self, req: &PinGenerateRequest) -> Result<Response, ClientError> {
        self.pin_generate_avoiding(req, &[]).await
    }

    /// pin.generate drawing no PIN equal to one of `weak_digits` (the holder's dates as
    /// digit strings of 4 to 12 digits, at most 8; protocol/README.md, "Weak PINs").
    pub async fn pin_generate_avoiding(
        &self,
        req: &PinGenerateRequest,
        weak_digits: &[&str],
    ) -> Result<Response, ClientError> {
        self.call(Opcode::PinGenerate, |w| {
            req.card.write(w);
            w.str(Tag::Pvk, &req.pvk);
            req.method.write(w);
            if let Some(n) = req.pin_length {
                w.u8(Tag::PinLength, n);
            }
            if let Some(d) = &req.delivery {
                d.write(w);
            }
            write_weak_digits(w, weak_digits);
        })
        .await?
        .ok()
    }

    /// pin.rebind: the PIN of `pin_blob` (which must belong to `card`) carried over to
    /// `new_card`: `pvv` or `offset`, `pvk_version` and the new card's `pin_blob`. The
    /// new card's PIN tries start from zero; the clear PIN never leaves the daemon.
    pub async fn pin_rebind(&self, req: &PinRebindRequest) -> Result<Response, ClientError> {
        self.call(Opcode::PinRebind, |w| {
            req.card.write(w);
            req.new_card.write_as_new(w);
            w.bytes(Tag::PinBlob, &req.pin_blob).str(Tag::Pvk, &req.pvk);
            req.method.write(w);
        })
        .await?
        .ok()
    }

    /// pin.change: the old PIN is verified first; a wrong one is
    /// [`PinChange::WrongPin`], not an error. A new PIN the weak-PIN policy refuses is
    /// the error `weak_pin` (its message names the rule).
    pub async fn pin_change(&self, req: &PinChangeRequest) -> Result<PinChange, ClientError> {
        self.pin_change_checked(req, &[]).await
    }

    /// pin.change with the holder's dates as `weak_digits` (digit strings of 4 to 12
    /// digits, at most 8: DDMM, MMDD, YYYY, DDMMYY, ...): a new PIN equal to one of them
    /// is `weak_pin`.
    pub async fn pin_change_checked(
        &self,
        req: &PinChangeRequest,
        weak_digits: &[&str],
    ) -> Result<PinChange, ClientError> {
        let r = self
            .call(Opcode::PinChange, |w| {
                req.card.write(w);
                w.str(Tag::Key, &req.key)
                    .u8(Tag::Format, req.format)
                    .bytes(Tag::PinBlock, &req.pin_block)
                    .bytes(Tag::NewPinBlock, &req.new_pin_block)
                    .str(Tag::Pvk, &req.pvk);
                req.reference.write(w);
                write_weak_digits(w, weak_digits);
            })
            .await?;
        match r.status() {
            Some(Status::Ok) => Ok(PinChange::Changed(r)),
            Some(Status::VerificationFailed) => Ok(PinChange::WrongPin),
            Some(Status::PinLocked) => Ok(PinChange::Locked),
            _ => Err(r.status_error()),
        }
    }

    /// pin.deliver: the PIN of an LMK-encrypted blob as a PIN block under the delivery
    /// key. A blob of another card, or altered, is `invalid_blob`.
    pub async fn pin_deliver(
        &self,
        card: &Card,
        pin_blob: &[u8],
        delivery: &PinDelivery,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(Opcode::PinDeliver, |w| {
            card.write(w);
            w.bytes(Tag::PinBlob, pin_blob);
            delivery.write(w);
        })
        .await?
        .ok()?
        .need_bytes(Tag::DeliveryBlock)
    }

    /// pin.attempts: `attempts`, `limit`, `locked`, `last_failure`.
    pub async fn pin_attempts(&self, card: &Card) -> Result<Response, ClientError> {
        self.call(Opcode::PinAttempts, |w| card.write(w))
            .await?
            .ok()
    }

    /// pin.attempts.reset: the same fields as pin.attempts, after the reset.
    pub async fn pin_attempts_reset(&self, card: &Card) -> Result<Response, ClientError> {
        self.call(Opcode::PinAttemptsReset, |w| card.write(w))
            .await?
            .ok()
    }

    /// pin.guard.reset: lifts the global brute-force guard (security officer).
    pub async fn guard_reset(&self) -> Result<(), ClientError> {
        self.call(Opcode::GuardReset, |_| {})
            .await?
            .ok()
            .map(|_| ())
    }
}

/// A POS terminal's PIN block under DUKPT: the BDK id, the KSN the terminal sent, the
/// AES DUKPT PIN key's type if not AES-128, the block's format (TDES DUKPT: 0, 1 or 3;
/// AES DUKPT: 4) and the block.
#[derive(Clone)]
pub struct DukptPinBlock {
    /// BDK id.
    pub bdk: String,
    /// The terminal's KSN: 10 bytes (TDES DUKPT) or 12 (AES DUKPT).
    pub ksn: Vec<u8>,
    /// AES DUKPT only: the PIN working key's type as the X9.24-3-2017 algorithm
    /// indicator (2 AES-128, 3 AES-192, 4 AES-256); `None` is AES-128 (and the only
    /// choice for TDES DUKPT).
    pub pin_key_type: Option<u8>,
    /// ISO 9564 format.
    pub format: u8,
    /// The enciphered PIN block.
    pub pin_block: Vec<u8>,
}

impl DukptPinBlock {
    fn write(&self, w: &mut crate::protocol::FieldsWriter<'_>) {
        w.str(Tag::Key, &self.bdk).bytes(Tag::Ksn, &self.ksn);
        if let Some(t) = self.pin_key_type {
            w.u8(Tag::PinKeyType, t);
        }
        w.u8(Tag::Format, self.format)
            .bytes(Tag::PinBlock, &self.pin_block);
    }
}

impl std::fmt::Debug for DukptPinBlock {
    // The block is never shown, not even enciphered; the KSN is public.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DukptPinBlock")
            .field("bdk", &self.bdk)
            .field("ksn", &hex::encode_upper(&self.ksn))
            .field("pin_key_type", &self.pin_key_type)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// `weak_digits` as the protocol carries it: the entries joined by commas.
fn write_weak_digits(w: &mut crate::protocol::FieldsWriter<'_>, weak_digits: &[&str]) {
    if !weak_digits.is_empty() {
        w.str(Tag::WeakDigits, &weak_digits.join(","));
    }
}
