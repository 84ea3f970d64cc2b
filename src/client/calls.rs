//! Typed calls, one per operation of protocol/README.md. Each builds the request's
//! fields from typed arguments; verifications answer [`Verification`] rather than an
//! error, every other non-ok status is a [`ClientError::Status`].

use super::{Client, ClientError, Response};
use crate::protocol::{FieldsWriter, Opcode, Status, Tag};

/// The card of a request.
#[derive(Clone)]
pub enum Card {
    /// A clear PAN (what switches send).
    Pan(String),
    /// A PAN token (what the records service holds), with its token key version if known.
    Token {
        /// The token.
        token: String,
        /// The token key version that made it.
        version: Option<u32>,
    },
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Card::Pan(_) => f.write_str("Card::Pan([REDACTED])"),
            Card::Token { version, .. } => write!(f, "Card::Token(v{version:?})"),
        }
    }
}

impl Card {
    fn write(&self, w: &mut FieldsWriter<'_>) {
        match self {
            Card::Pan(p) => {
                w.str(Tag::Pan, p);
            }
            Card::Token { token, version } => {
                w.str(Tag::Token, token);
                if let Some(v) = version {
                    w.u32(Tag::TokenVersion, *v);
                }
            }
        }
    }
}

/// IBM 3624 validation data parameters (all or none).
#[derive(Debug, Clone)]
pub struct IbmParams {
    /// Decimalisation table, 16 digits.
    pub decimalization: String,
    /// First PAN digit of the validation data (0-based).
    pub validation_start: u8,
    /// Number of PAN digits.
    pub validation_length: u8,
    /// Pad character (hex).
    pub pad: String,
}

/// The stored PIN verification value.
#[derive(Debug, Clone)]
pub enum PinReference {
    /// Visa PVV with its PVKI.
    Pvv {
        /// 4 digits.
        pvv: String,
        /// 0-6.
        pvki: u8,
    },
    /// IBM 3624 offset, with optional non-default parameters.
    Offset {
        /// The offset digits.
        offset: String,
        /// Parameters (`None`: the defaults of protocol/README.md).
        params: Option<IbmParams>,
    },
}

impl PinReference {
    fn write(&self, w: &mut FieldsWriter<'_>) {
        match self {
            PinReference::Pvv { pvv, pvki } => {
                w.str(Tag::Pvv, pvv).u8(Tag::Pvki, *pvki);
            }
            PinReference::Offset { offset, params } => {
                w.str(Tag::Offset, offset);
                if let Some(p) = params {
                    write_ibm(w, p);
                }
            }
        }
    }
}

fn write_ibm(w: &mut FieldsWriter<'_>, p: &IbmParams) {
    w.str(Tag::Decimalization, &p.decimalization)
        .u8(Tag::ValidationStart, p.validation_start)
        .u8(Tag::ValidationLength, p.validation_length)
        .str(Tag::Pad, &p.pad);
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Verified; the key version that verified.
    Verified {
        /// Version of the verifying key.
        key_version: Option<u32>,
    },
    /// Did not verify (and, for PINs, the failure was counted).
    Failed,
    /// The card's tries are exhausted; nothing was verified.
    Locked,
}

fn verification(r: Response) -> Result<Verification, ClientError> {
    match r.status() {
        Some(Status::Ok) => Ok(Verification::Verified {
            key_version: r.u32(Tag::KeyVersion).or(r.u32(Tag::PvkVersion)),
        }),
        Some(Status::VerificationFailed) => Ok(Verification::Failed),
        Some(Status::PinLocked) => Ok(Verification::Locked),
        _ => r.ok().map(|_| Verification::Failed),
    }
}

impl Client {
    /// health: version, LMK KCV, uptime, role.
    pub async fn health(&self) -> Result<Response, ClientError> {
        self.call(Opcode::Health, |_| {}).await?.ok()
    }

    /// pan.generate: token, token_version, masked_pan, lookup_token (+ encrypted PAN).
    pub async fn pan_generate(
        &self,
        bin: &str,
        pan_length: u8,
        transport_key: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::PanGenerate, |w| {
            w.str(Tag::Bin, bin).u8(Tag::PanLength, pan_length);
            if let Some(t) = transport_key {
                w.str(Tag::TransportKey, t);
            }
        })
        .await?
        .ok()
    }

    /// pan.tokenise: token, token_version, masked_pan, lookup_token.
    pub async fn tokenise(&self, pan: &str) -> Result<Response, ClientError> {
        self.call(Opcode::Tokenise, |w| {
            w.str(Tag::Pan, pan);
        })
        .await?
        .ok()
    }

    /// pan.detokenise: the clear PAN.
    pub async fn detokenise(
        &self,
        token: &str,
        version: Option<u32>,
    ) -> Result<String, ClientError> {
        let r = self
            .call(Opcode::Detokenise, |w| {
                w.str(Tag::Token, token);
                if let Some(v) = version {
                    w.u32(Tag::TokenVersion, v);
                }
            })
            .await?
            .ok()?;
        r.str(Tag::Pan)
            .ok_or_else(|| ClientError::Protocol("no pan in the response".into()))
    }

    /// pin.verify.
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
        verification(r)
    }

    /// pin.translate: the PIN block under the destination key and format.
    #[allow(clippy::too_many_arguments)]
    pub async fn pin_translate(
        &self,
        card: &Card,
        key: &str,
        format: u8,
        pin_block: &[u8],
        dest_key: &str,
        dest_format: u8,
    ) -> Result<Vec<u8>, ClientError> {
        let r = self
            .call(Opcode::PinTranslate, |w| {
                card.write(w);
                w.str(Tag::Key, key)
                    .u8(Tag::Format, format)
                    .bytes(Tag::PinBlock, pin_block)
                    .str(Tag::DestKey, dest_key)
                    .u8(Tag::DestFormat, dest_format);
            })
            .await?
            .ok()?;
        r.bytes(Tag::PinBlock)
            .ok_or_else(|| ClientError::Protocol("no pin_block in the response".into()))
    }

    /// pin.generate with a Visa PVV (`ibm: None`) or an IBM 3624 offset: pvv or offset,
    /// pin_blob, and delivery_block when a delivery key is named.
    pub async fn pin_generate(
        &self,
        card: &Card,
        pvk: &str,
        pin_length: u8,
        ibm: Option<Option<IbmParams>>,
        delivery_key: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::PinGenerate, |w| {
            card.write(w);
            w.str(Tag::Pvk, pvk).u8(Tag::PinLength, pin_length);
            if let Some(params) = &ibm {
                w.u8(Tag::Method, 1);
                if let Some(p) = params {
                    write_ibm(w, p);
                }
            }
            if let Some(d) = delivery_key {
                w.str(Tag::DeliveryKey, d);
            }
        })
        .await?
        .ok()
    }

    /// pin.change: new pvv or offset and pin_blob.
    #[allow(clippy::too_many_arguments)]
    pub async fn pin_change(
        &self,
        card: &Card,
        key: &str,
        format: u8,
        old_block: &[u8],
        new_block: &[u8],
        pvk: &str,
        reference: &PinReference,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::PinChange, |w| {
            card.write(w);
            w.str(Tag::Key, key)
                .u8(Tag::Format, format)
                .bytes(Tag::PinBlock, old_block)
                .bytes(Tag::NewPinBlock, new_block)
                .str(Tag::Pvk, pvk);
            reference.write(w);
        })
        .await?
        .ok()
    }

    /// pin.deliver: the PIN of a blob under a delivery key.
    pub async fn pin_deliver(
        &self,
        card: &Card,
        blob: &[u8],
        delivery_key: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let r = self
            .call(Opcode::PinDeliver, |w| {
                card.write(w);
                w.bytes(Tag::PinBlob, blob)
                    .str(Tag::DeliveryKey, delivery_key);
            })
            .await?
            .ok()?;
        r.bytes(Tag::DeliveryBlock)
            .ok_or_else(|| ClientError::Protocol("no delivery_block in the response".into()))
    }

    /// pin.attempts: attempts, limit, locked, last_failure.
    pub async fn pin_attempts(&self, card: &Card) -> Result<Response, ClientError> {
        self.call(Opcode::PinAttempts, |w| card.write(w))
            .await?
            .ok()
    }

    /// pin.attempts.reset.
    pub async fn pin_attempts_reset(&self, card: &Card) -> Result<Response, ClientError> {
        self.call(Opcode::PinAttemptsReset, |w| card.write(w))
            .await?
            .ok()
    }

    /// pin.guard.reset.
    pub async fn guard_reset(&self) -> Result<(), ClientError> {
        self.call(Opcode::GuardReset, |_| {})
            .await?
            .ok()
            .map(|_| ())
    }

    /// cvv.generate: cvv, cvv2, icvv.
    pub async fn cvv_generate(
        &self,
        card: &Card,
        cvk: &str,
        expiry: &str,
        service_code: &str,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::CvvGenerate, |w| {
            card.write(w);
            w.str(Tag::Key, cvk)
                .str(Tag::Expiry, expiry)
                .str(Tag::ServiceCode, service_code);
        })
        .await?
        .ok()
    }

    /// cvv.verify (service code 000 for CVV2, 999 for iCVV).
    pub async fn cvv_verify(
        &self,
        card: &Card,
        cvk: &str,
        expiry: &str,
        service_code: &str,
        cvv: &str,
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::CvvVerify, |w| {
                card.write(w);
                w.str(Tag::Key, cvk)
                    .str(Tag::Expiry, expiry)
                    .str(Tag::ServiceCode, service_code)
                    .str(Tag::Cvv, cvv);
            })
            .await?;
        verification(r)
    }

    /// card.codes.export: the codes (and PIN) encrypted under a transport key.
    pub async fn codes_export(
        &self,
        card: &Card,
        cvk: &str,
        expiry: &str,
        service_code: &str,
        transport_key: &str,
        pin_blob: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let r = self
            .call(Opcode::SecurityCodesExport, |w| {
                card.write(w);
                w.str(Tag::Key, cvk)
                    .str(Tag::Expiry, expiry)
                    .str(Tag::ServiceCode, service_code)
                    .str(Tag::TransportKey, transport_key);
                if let Some(b) = pin_blob {
                    w.bytes(Tag::PinBlob, b);
                }
            })
            .await?
            .ok()?;
        r.bytes(Tag::Encrypted)
            .ok_or_else(|| ClientError::Protocol("no encrypted field in the response".into()))
    }

    /// dcvv2.generate for a counter (or the daemon's current time step with `None`).
    pub async fn dcvv2_generate(
        &self,
        card: &Card,
        key: &str,
        expiry: &str,
        counter: Option<u64>,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::Dcvv2Generate, |w| {
            card.write(w);
            w.str(Tag::Key, key).str(Tag::Expiry, expiry);
            if let Some(c) = counter {
                w.u64(Tag::Counter, c);
            }
        })
        .await?
        .ok()
    }

    /// dcvv2.verify (one use per code; `replayed` and `expired` are errors).
    pub async fn dcvv2_verify(
        &self,
        card: &Card,
        key: &str,
        expiry: &str,
        counter: Option<u64>,
        code: &str,
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::Dcvv2Verify, |w| {
                card.write(w);
                w.str(Tag::Key, key)
                    .str(Tag::Expiry, expiry)
                    .str(Tag::Dcvv2, code);
                if let Some(c) = counter {
                    w.u64(Tag::Counter, c);
                }
            })
            .await?;
        verification(r)
    }

    /// dcvv2.enable / dcvv2.disable.
    pub async fn dcvv2_set(&self, card: &Card, enabled: bool) -> Result<(), ClientError> {
        let op = if enabled {
            Opcode::Dcvv2Enable
        } else {
            Opcode::Dcvv2Disable
        };
        self.call(op, |w| card.write(w)).await?.ok().map(|_| ())
    }

    /// mac.generate with the key's own algorithm.
    pub async fn mac_generate(&self, key: &str, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        let r = self
            .call(Opcode::MacGenerate, |w| {
                w.str(Tag::Key, key).bytes(Tag::Data, data);
            })
            .await?
            .ok()?;
        r.bytes(Tag::Mac)
            .ok_or_else(|| ClientError::Protocol("no mac in the response".into()))
    }

    /// mac.verify.
    pub async fn mac_verify(
        &self,
        key: &str,
        data: &[u8],
        mac: &[u8],
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::MacVerify, |w| {
                w.str(Tag::Key, key)
                    .bytes(Tag::Data, data)
                    .bytes(Tag::Mac, mac);
            })
            .await?;
        verification(r)
    }

    /// key.list: one line per key version.
    pub async fn key_list(&self) -> Result<String, ClientError> {
        let r = self.call(Opcode::KeyList, |_| {}).await?.ok()?;
        Ok(r.str(Tag::Listing).unwrap_or_default())
    }

    /// key.generate: kcv and key_version.
    pub async fn key_generate(
        &self,
        id: &str,
        kind: &str,
        algorithm: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::KeyGenerate, |w| {
            w.str(Tag::Key, id).str(Tag::Kind, kind);
            if let Some(a) = algorithm {
                w.str(Tag::Algorithm, a);
            }
        })
        .await?
        .ok()
    }

    /// key.import of a TR-31 block under a KEK.
    pub async fn key_import(
        &self,
        id: &str,
        kek: &str,
        block: &str,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::KeyImport, |w| {
            w.str(Tag::Key, id)
                .str(Tag::Kek, kek)
                .str(Tag::KeyBlock, block);
        })
        .await?
        .ok()
    }

    /// key.export as TR-31 under a KEK.
    pub async fn key_export(&self, id: &str, kek: &str) -> Result<String, ClientError> {
        let r = self
            .call(Opcode::KeyExport, |w| {
                w.str(Tag::Key, id).str(Tag::Kek, kek);
            })
            .await?
            .ok()?;
        r.str(Tag::KeyBlock)
            .ok_or_else(|| ClientError::Protocol("no key_block in the response".into()))
    }

    /// key.rotate: the new active version.
    pub async fn key_rotate(&self, id: &str) -> Result<u32, ClientError> {
        let r = self
            .call(Opcode::KeyRotate, |w| {
                w.str(Tag::Key, id);
            })
            .await?
            .ok()?;
        r.u32(Tag::KeyVersion)
            .ok_or_else(|| ClientError::Protocol("no key_version in the response".into()))
    }

    /// key.retire.
    pub async fn key_retire(&self, id: &str, version: u32) -> Result<(), ClientError> {
        self.call(Opcode::KeyRetire, |w| {
            w.str(Tag::Key, id).u32(Tag::KeyVersion, version);
        })
        .await?
        .ok()
        .map(|_| ())
    }
}
