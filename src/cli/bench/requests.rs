//! The requests of each benchmarked operation, built from the published example keys
//! (keys-example/README.md). By default they come from the realistic card set
//! ([`super::cards`]); `--fixed` sends one fixed request per operation (one PAN, PIN
//! 1234, always right: the best case, where the counter store is never written). dCVV2
//! is the same in both: each verification uses a fresh code of its worker's own card,
//! so each one commits its use durably.

use std::borrow::Cow;

use crate::crypto::cipher::BlockCipher;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format};
use crate::crypto::{ClearKey, Pin, cvv, dcvv2, pvv};
use crate::hsm::config::Lockout;
use crate::protocol::{FieldsWriter, LENGTH_PREFIX, Opcode, Tag, encode_request};

use super::cards::{Cards, Expected, Kind, Workload, body_of};

/// Where the request id sits in an encoded request frame: after the length prefix,
/// the version and kind bytes and the two-byte opcode.
const ID_AT: usize = LENGTH_PREFIX + 4;

const PAN: &str = "4111111111111111";

/// A pre-built request.
#[derive(Clone)]
pub(super) struct Request {
    pub(super) op: Opcode,
    pub(super) body: Vec<u8>,
}

fn body(f: impl FnOnce(&mut FieldsWriter<'_>)) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = FieldsWriter::new(&mut b);
    f(&mut w);
    b
}

pub(super) fn hexkey(h: &str) -> Result<ClearKey, String> {
    ClearKey::from_hex(h).map_err(|e| e.to_string())
}

/// Builds the fixed requests of one operation.
fn fixed(name: &str) -> Result<Vec<Request>, String> {
    let e = |e: crate::crypto::Error| e.to_string();
    let pan = Pan::new(PAN).map_err(e)?;
    let pin = Pin::new("1234").map_err(e)?;
    let pvk = pvv::Pvk::new(&hexkey("0123456789ABCDEFFEDCBA9876543210")?).map_err(e)?;
    let pvv = pvv::visa_pvv(&pvk, 1, &pin, &pan).map_err(e)?.to_string();
    let verify = |format: Format, key: &str, cipher: BlockCipher| -> Result<Request, String> {
        let block =
            pinblock::encipher(format, &cipher, &pin, Some(&pan), &mut rand::rng()).map_err(e)?;
        Ok(Request {
            op: Opcode::PinVerify,
            body: body(|w| {
                w.str(Tag::Pan, PAN)
                    .str(Tag::Key, key)
                    .u8(Tag::Format, format.number())
                    .bytes(Tag::PinBlock, block.as_bytes())
                    .str(Tag::Pvk, "pvk.example")
                    .str(Tag::Pvv, &pvv);
            }),
        })
    };
    let tdes = BlockCipher::tdes(
        &hex::decode("0123456789ABCDEFFEDCBA9876543210").map_err(|e| e.to_string())?,
    )
    .map_err(e)?;
    let aes = BlockCipher::aes(
        &hex::decode("00112233445566778899AABBCCDDEEFF").map_err(|e| e.to_string())?,
    )
    .map_err(e)?;
    let cvk = cvv::Cvk::new(&hexkey("0123456789ABCDEFFEDCBA9876543210")?).map_err(e)?;
    let code = cvv::generate(&cvk, &pan, "2812", "201")
        .map_err(e)?
        .expose_secret();
    let cvv_req = Request {
        op: Opcode::CvvVerify,
        body: body(|w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201")
                .str(Tag::Cvv, &code);
        }),
    };
    let tok = Request {
        op: Opcode::Tokenise,
        body: body(|w| {
            w.str(Tag::Pan, PAN);
        }),
    };
    Ok(match name {
        "pin-verify-0" => vec![verify(Format::Iso0, "zpk.example", tdes)?],
        "pin-verify-4" => vec![verify(Format::Iso4, "zpk.example.aes", aes)?],
        "cvv-verify" => vec![cvv_req],
        "tokenise" => vec![tok],
        "mix" => {
            let p0 = verify(Format::Iso0, "zpk.example", tdes)?;
            let p4 = verify(Format::Iso4, "zpk.example.aes", aes)?;
            vec![
                p0.clone(),
                p0.clone(),
                p0.clone(),
                p0,
                p4,
                cvv_req.clone(),
                cvv_req,
                tok.clone(),
                tok,
            ]
        }
        _ => Vec::new(),
    })
}

/// dCVV2 requests for worker `worker`, request `n`: even n generate, odd n verify a
/// fresh code (its own card per worker and process, counters rising), so every
/// verify commits.
fn dcvv2_request(worker: usize, n: u64, key: &ClearKey) -> Result<Request, String> {
    let card_no = (std::process::id() as usize % 100_000) * 100_000 + worker % 100_000;
    let body_digits = format!("4000{card_no:011}");
    let check = crate::crypto::pan::luhn_check_digit(body_digits.as_bytes()).ok_or("luhn")?;
    let card = format!("{body_digits}{check}");
    let counter = n / 2 + 1;
    if n.is_multiple_of(2) {
        Ok(Request {
            op: Opcode::Dcvv2Generate,
            body: body(|w| {
                w.str(Tag::Pan, &card)
                    .str(Tag::Key, "dcvv2.example")
                    .str(Tag::Expiry, "2812")
                    .u64(Tag::Counter, counter);
            }),
        })
    } else {
        let code = dcvv2::dcvv2(key, &card, "2812", counter).map_err(|e| e.to_string())?;
        Ok(Request {
            op: Opcode::Dcvv2Verify,
            body: body(|w| {
                w.str(Tag::Pan, &card)
                    .str(Tag::Key, "dcvv2.example")
                    .str(Tag::Expiry, "2812")
                    .u64(Tag::Counter, counter)
                    .u8(Tag::Window, 0)
                    .str(Tag::Dcvv2, code.expose_secret());
            }),
        })
    }
}

/// Where an operation's requests come from.
enum Source {
    /// The fixed best case: requests taken in turn.
    Fixed {
        fixed: Vec<Request>,
        /// `fixed`, encoded with request id 0 (the id is patched in when sent).
        frames: Vec<Vec<u8>>,
    },
    /// dCVV2, built one by one with this key.
    Dcvv2(ClearKey),
    /// The realistic cards, with the kinds of request taken in turn.
    Cards(Cards, &'static [Kind]),
}

/// The mix: 4:1:2:2 PIN verify ISO 0 : ISO 4 : CVV verify : tokenise.
const MIX: &[Kind] = &[
    Kind::Pin0,
    Kind::Pin0,
    Kind::Pin4,
    Kind::Cvv,
    Kind::Pin0,
    Kind::Tokenise,
    Kind::Cvv,
    Kind::Pin0,
    Kind::Tokenise,
];

fn kinds(name: &str) -> Option<&'static [Kind]> {
    match name {
        "pin-verify-0" => Some(&[Kind::Pin0]),
        "pin-verify-4" => Some(&[Kind::Pin4]),
        "cvv-verify" => Some(&[Kind::Cvv]),
        "tokenise" => Some(&[Kind::Tokenise]),
        "mix" => Some(MIX),
        _ => None,
    }
}

/// The requests of one operation, for one side of the benchmark, shared by `workers`
/// workers.
pub(super) struct Requests {
    source: Source,
    workers: usize,
}

impl Requests {
    /// The requests of operation `name`: realistic cards for `workload`, or the fixed
    /// best case with `None`. `lockout` gives each card's PIN limit.
    pub(super) fn new(
        name: &str,
        workload: Option<Workload>,
        workers: usize,
        lockout: &Lockout,
    ) -> Result<Self, String> {
        let source = match (name, workload, kinds(name)) {
            ("dcvv2", _, _) => Source::Dcvv2(hexkey(
                "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
            )?),
            (_, Some(w), Some(mix)) => {
                let mut unique: Vec<Kind> = Vec::new();
                for k in mix {
                    if !unique.contains(k) {
                        unique.push(*k);
                    }
                }
                Source::Cards(Cards::build(w, &unique, lockout)?, mix)
            }
            (_, None, Some(_)) => {
                let fixed = fixed(name)?;
                let frames = fixed
                    .iter()
                    .map(|r| {
                        let mut f = Vec::new();
                        encode_request(&mut f, r.op.code(), 0, |w| {
                            w.encoded(&r.body);
                        })
                        .map(|()| f)
                        .map_err(|e| e.to_string())
                    })
                    .collect::<Result<_, _>>()?;
                Source::Fixed { fixed, frames }
            }
            _ => return Err(format!("no requests for operation {name:?}")),
        };
        Ok(Self {
            source,
            workers: workers.max(1),
        })
    }

    /// The realistic workload, if that is what these requests are.
    pub(super) fn workload(&self) -> Option<Workload> {
        match &self.source {
            Source::Cards(cards, _) => Some(cards.workload()),
            _ => None,
        }
    }

    fn kind(mix: &[Kind], worker: usize, n: u64) -> Kind {
        mix[(n as usize).wrapping_add(worker) % mix.len()]
    }

    /// Request `n` of worker `worker` (workers take the fixed requests in turn, each
    /// from its own starting point): its opcode and body, and the answer it must get.
    pub(super) fn request(
        &self,
        worker: usize,
        n: u64,
    ) -> Result<(Opcode, Cow<'_, [u8]>, Expected), String> {
        match &self.source {
            Source::Dcvv2(key) => {
                let r = dcvv2_request(worker, n, key)?;
                Ok((r.op, Cow::Owned(r.body), Expected::OK))
            }
            Source::Fixed { fixed, .. } => fixed
                .get((n as usize).wrapping_add(worker) % fixed.len().max(1))
                .map(|r| (r.op, Cow::Borrowed(r.body.as_slice()), Expected::OK))
                .ok_or_else(|| "no requests".to_owned()),
            Source::Cards(cards, mix) => {
                let kind = Self::kind(mix, worker, n);
                let (frame, op, expected) = cards.next(kind, worker, self.workers, n)?;
                Ok((op, Cow::Borrowed(body_of(frame)), expected))
            }
        }
    }

    /// Appends the frame of request `n` of worker `worker`, with request id `id`, and
    /// returns the answer it must get.
    pub(super) fn push_frame(
        &self,
        out: &mut Vec<u8>,
        worker: usize,
        n: u64,
        id: u32,
    ) -> Result<Expected, String> {
        let (frame, expected) = match &self.source {
            Source::Dcvv2(key) => {
                let r = dcvv2_request(worker, n, key)?;
                encode_request(out, r.op.code(), id, |w| {
                    w.encoded(&r.body);
                })
                .map_err(|e| e.to_string())?;
                return Ok(Expected::OK);
            }
            Source::Fixed { frames, .. } => (
                frames
                    .get((n as usize).wrapping_add(worker) % frames.len().max(1))
                    .ok_or("no requests")?
                    .as_slice(),
                Expected::OK,
            ),
            Source::Cards(cards, mix) => {
                let kind = Self::kind(mix, worker, n);
                let (frame, _, expected) = cards.next(kind, worker, self.workers, n)?;
                (frame, expected)
            }
        };
        let at = out.len() + ID_AT;
        out.extend_from_slice(frame);
        out[at..at + 4].copy_from_slice(&id.to_be_bytes());
        Ok(expected)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::{REQUEST_HEADER_LEN, decode_request, frame_length};

    fn lockout() -> Lockout {
        let text = include_str!("../../../keys-example/hsm.toml");
        crate::hsm::HsmConfig::parse(text, std::path::Path::new("/x"))
            .unwrap()
            .lockout
    }

    /// Every frame decodes, with the id that was patched in and the request's body,
    /// for the fixed, realistic and dCVV2 requests alike.
    #[test]
    fn frames_carry_their_ids() {
        let realistic = Some(Workload {
            cards: 200,
            wrong_pin_share: 0.05,
        });
        for (name, workload) in [("mix", None), ("mix", realistic), ("dcvv2", None)] {
            let reqs = Requests::new(name, workload, 8, &lockout()).unwrap();
            // A second instance for the in-process side: the fixed requests are the
            // same; realistic cards are drawn afresh (only their kinds must agree).
            let local = Requests::new(name, workload, 8, &lockout()).unwrap();
            let mut out = Vec::new();
            for n in 0..12u64 {
                out.clear();
                let id = 0x0102_0304 + n as u32;
                let expected = reqs.push_frame(&mut out, 3, n, id).unwrap();
                let len =
                    frame_length(out[..4].try_into().unwrap(), REQUEST_HEADER_LEN, usize::MAX)
                        .unwrap();
                assert_eq!(len + 4, out.len());
                let (header, body) = decode_request(&out[4..]).unwrap();
                assert_eq!(header.request_id, id);
                let (op, req_body, local_expected) = local.request(3, n).unwrap();
                assert_eq!(header.opcode, op.code(), "{name} {n}");
                if workload.is_none() {
                    assert_eq!((expected, local_expected), (Expected::OK, Expected::OK));
                }
                if name == "dcvv2" {
                    assert_eq!(body, &req_body[..], "{name}");
                }
            }
        }
        assert!(Requests::new("nothing", None, 1, &lockout()).is_err());
    }
}
