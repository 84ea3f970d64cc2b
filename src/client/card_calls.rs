//! Typed calls for health, PANs and tokens, card security codes, dCVV2 and MACs
//! (protocol/README.md, "Operations"). Results with several fields are the
//! [`Response`], read by [`Tag`]; single values are typed; checks are [`Verification`].

use super::requests::{Alphabet, Card, Dcvv2Request, PanGenerateRequest, Verification};
use super::{Client, ClientError, Response};
use crate::protocol::{Opcode, Tag};

impl Client {
    /// health: `server_version`, `lmk_kcv`, `uptime`, `role`.
    pub async fn health(&self) -> Result<Response, ClientError> {
        self.call(Opcode::Health, |_| {}).await?.ok()
    }

    /// pan.generate: `token`, `token_version`, `masked_pan`, `lookup_token`, and with a
    /// transport key `encrypted` and `transport_key_version`.
    pub async fn pan_generate(&self, req: &PanGenerateRequest) -> Result<Response, ClientError> {
        self.call(Opcode::PanGenerate, |w| {
            w.str(Tag::Bin, &req.bin)
                .u8(Tag::Alphabet, req.alphabet.code());
            if let Some(n) = req.pan_length {
                w.u8(Tag::PanLength, n);
            }
            if let Some(t) = &req.transport_key {
                w.str(Tag::TransportKey, t);
            }
        })
        .await?
        .ok()
    }

    /// pan.tokenise to a numeric token: `token`, `token_version`, `masked_pan`,
    /// `lookup_token`.
    pub async fn tokenise(&self, pan: &str) -> Result<Response, ClientError> {
        self.tokenise_as(pan, Alphabet::Numeric).await
    }

    /// pan.tokenise with the given token alphabet.
    pub async fn tokenise_as(
        &self,
        pan: &str,
        alphabet: Alphabet,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::Tokenise, |w| {
            w.str(Tag::Pan, pan).u8(Tag::Alphabet, alphabet.code());
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
        let card = Card::Token {
            token: token.to_owned(),
            version,
        };
        self.call(Opcode::Detokenise, |w| card.write(w))
            .await?
            .ok()?
            .need_str(Tag::Pan)
    }

    /// cvv.generate: `cvv` (with the service code), `cvv2` (000), `icvv` (999),
    /// `key_version`.
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

    /// cvv.verify: service code 000 checks a CVV2, 999 an iCVV. While dCVV2 is on for
    /// the card a static CVV2 is [`Verification::Failed`].
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
        Verification::from_response(r)
    }

    /// card.codes.export: the `CVV=..;CVV2=..;ICVV=..[;PIN=..]` text encrypted under the
    /// transport key (IV first).
    pub async fn codes_export(
        &self,
        card: &Card,
        cvk: &str,
        expiry: &str,
        service_code: &str,
        transport_key: &str,
        pin_blob: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let codes = CodesExport {
            card,
            cvk,
            expiry,
            service_code,
            transport_key,
            pin_blob,
        };
        self.codes_export_as(&codes, None).await
    }

    /// card.codes.export with `format` 1: CVV, CVV2 and iCVV blocks, then the PIN block
    /// when `pin_blob` is given, each 8 bytes of TDES-ECB under the (TDES) transport
    /// key (protocol/README.md, card.codes.export).
    pub async fn codes_export_blocks(
        &self,
        card: &Card,
        cvk: &str,
        expiry: &str,
        service_code: &str,
        transport_key: &str,
        pin_blob: Option<&[u8]>,
    ) -> Result<Vec<u8>, ClientError> {
        let codes = CodesExport {
            card,
            cvk,
            expiry,
            service_code,
            transport_key,
            pin_blob,
        };
        self.codes_export_as(&codes, Some(1)).await
    }

    async fn codes_export_as(
        &self,
        c: &CodesExport<'_>,
        format: Option<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(Opcode::SecurityCodesExport, |w| {
            c.card.write(w);
            w.str(Tag::Key, c.cvk)
                .str(Tag::Expiry, c.expiry)
                .str(Tag::ServiceCode, c.service_code)
                .str(Tag::TransportKey, c.transport_key);
            if let Some(f) = format {
                w.u8(Tag::Format, f);
            }
            if let Some(b) = c.pin_blob {
                w.bytes(Tag::PinBlob, b);
            }
        })
        .await?
        .ok()?
        .need_bytes(Tag::Encrypted)
    }

    /// dcvv2.generate: `dcvv2`, `moving_factor`, `key_version`.
    pub async fn dcvv2_generate(&self, req: &Dcvv2Request) -> Result<Response, ClientError> {
        self.call(Opcode::Dcvv2Generate, |w| {
            req.card.write(w);
            w.str(Tag::Key, &req.key).str(Tag::Expiry, &req.expiry);
            req.moment.write(w);
        })
        .await?
        .ok()
    }

    /// dcvv2.generate with the code enciphered under a TDES transport key, never in
    /// clear: `encrypted` (one 8-byte code block, laid out as `card.codes.export`
    /// format 1 lays out a CVV), `moving_factor`, `key_version`, `transport_key_version`.
    pub async fn dcvv2_generate_encrypted(
        &self,
        req: &Dcvv2Request,
        transport_key: &str,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::Dcvv2Generate, |w| {
            req.card.write(w);
            w.str(Tag::Key, &req.key)
                .str(Tag::Expiry, &req.expiry)
                .str(Tag::TransportKey, transport_key);
            req.moment.write(w);
        })
        .await?
        .ok()
    }

    /// dcvv2.verify of `code`, `window` steps each side (`None`: 1). A code used
    /// before is [`Verification::Replayed`], one outside the window
    /// [`Verification::Expired`].
    pub async fn dcvv2_verify(
        &self,
        req: &Dcvv2Request,
        code: &str,
        window: Option<u8>,
    ) -> Result<Verification, ClientError> {
        let r = self
            .call(Opcode::Dcvv2Verify, |w| {
                req.card.write(w);
                w.str(Tag::Key, &req.key)
                    .str(Tag::Expiry, &req.expiry)
                    .str(Tag::Dcvv2, code);
                req.moment.write(w);
                if let Some(n) = window {
                    w.u8(Tag::Window, n);
                }
            })
            .await?;
        Verification::from_response(r)
    }

    /// dcvv2.enable (`true`, which also clears the card's dCVV2 tries) or dcvv2.disable.
    pub async fn dcvv2_set(&self, card: &Card, enabled: bool) -> Result<(), ClientError> {
        let op = if enabled {
            Opcode::Dcvv2Enable
        } else {
            Opcode::Dcvv2Disable
        };
        self.call(op, |w| card.write(w)).await?.ok().map(|_| ())
    }

    /// dcvv2.state: `dcvv2_enabled`, `attempts`, `limit`, `locked`, `last_failure`.
    pub async fn dcvv2_state(&self, card: &Card) -> Result<Response, ClientError> {
        self.call(Opcode::Dcvv2State, |w| card.write(w)).await?.ok()
    }

    /// mac.generate with the key's own algorithm: the MAC.
    pub async fn mac_generate(&self, key: &str, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.call(Opcode::MacGenerate, |w| {
            w.str(Tag::Key, key).bytes(Tag::Data, data);
        })
        .await?
        .ok()?
        .need_bytes(Tag::Mac)
    }

    /// mac.verify of a full-length MAC.
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
        Verification::from_response(r)
    }
}

/// The arguments both forms of card.codes.export share.
struct CodesExport<'a> {
    card: &'a Card,
    cvk: &'a str,
    expiry: &'a str,
    service_code: &'a str,
    transport_key: &'a str,
    pin_blob: Option<&'a [u8]>,
}
