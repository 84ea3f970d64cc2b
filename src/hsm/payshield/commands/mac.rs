//! `M6` (generate a MAC) and `M8` (verify one): `mac.generate` and `mac.verify` with a
//! TDES MAC key, ISO/IEC 9797-1 MAC algorithm 3 with padding method 1 (the retail MAC,
//! `protocol/algorithms.md`, "MACs"), the one combination of the command's algorithm and
//! padding flags cofre's TDES MAC computes.
//!
//! Fields: mode flag (1N, `0`: the whole message in one command), input format flag (1N:
//! `0` binary, `1` hex-encoded, `2` text), MAC size (1N: `0` 8 hex characters, `1` 16),
//! MAC algorithm (1N, `3`), padding method (1N, `1`), key type (3H, not used: the key
//! block says what the key is), the key, the message length (4H, the number of
//! characters of the message field as sent), the message; `M8` then the MAC (8H or 16H).
//! `M6` answers the MAC (the leftmost bytes, as many as the size says); `M8` answers no
//! fields (`01` when the MAC does not verify). A MAC of 8 hex characters verifies only
//! under a key whose shortest accepted MAC (`mac_min_length`) is 4 bytes.

use crate::keys::KeyKind;
use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, body, no_fields};

/// The native algorithm: ISO 9797-1 algorithm 3, padding method 1.
const RETAIL_MAC: u8 = 0;

struct Request<'a> {
    size: usize,
    key: String,
    message: Vec<u8>,
    rest: Cursor<'a>,
}

fn request<'a>(data: &'a [u8], keys: &Keys<'_>) -> Result<Request<'a>, ErrorCode> {
    let mut c = Cursor::new(data);
    if c.digits(1)? != "0" {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let input = c.digits(1)?;
    let size = match c.digits(1)? {
        "0" => 4,
        "1" => 8,
        _ => return Err(ErrorCode::INVALID_INPUT),
    };
    if (c.digits(1)?, c.digits(1)?) != ("3", "1") {
        return Err(ErrorCode::INVALID_INPUT);
    }
    c.hex(3)?;
    let key = c.key()?;
    let len = usize::from_str_radix(c.hex(4)?, 16).map_err(|_| ErrorCode::INVALID_INPUT)?;
    let raw = c.take(len).map_err(|_| ErrorCode::DATA_LENGTH)?;
    let message = match input {
        "0" | "2" => raw.to_vec(),
        "1" => hex::decode(raw).map_err(|_| ErrorCode::INVALID_INPUT)?,
        _ => return Err(ErrorCode::INVALID_INPUT),
    };
    let key = keys.resolve(key, &[KeyKind::Mac])?;
    Ok(Request {
        size,
        key,
        message,
        rest: c,
    })
}

/// `M6`.
pub fn generate(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let r = request(data, keys)?;
    r.rest.end()?;
    let body = body(|w| {
        w.str(Tag::Key, &r.key)
            .bytes(Tag::Data, &r.message)
            .u8(Tag::MacAlgorithm, RETAIL_MAC);
    })?;
    let answer: Answer = if r.size == 4 {
        Box::new(mac_8h)
    } else {
        Box::new(mac_16h)
    };
    Ok((body, answer))
}

fn mac_hex(f: &Fields<'_>, bytes: usize) -> Result<Vec<u8>, ErrorCode> {
    let mac = f
        .bytes(Tag::Mac)
        .ok()
        .flatten()
        .and_then(|m| m.get(..bytes))
        .ok_or(ErrorCode::INTERNAL)?;
    Ok(hex::encode_upper(mac).into_bytes())
}

fn mac_8h(f: &Fields<'_>) -> Result<Vec<u8>, ErrorCode> {
    mac_hex(f, 4)
}

fn mac_16h(f: &Fields<'_>) -> Result<Vec<u8>, ErrorCode> {
    mac_hex(f, 8)
}

/// `M8`.
pub fn verify(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut r = request(data, keys)?;
    let mac = hex::decode(r.rest.hex(2 * r.size)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    r.rest.end()?;
    let body = body(|w| {
        w.str(Tag::Key, &r.key)
            .bytes(Tag::Data, &r.message)
            .u8(Tag::MacAlgorithm, RETAIL_MAC)
            .bytes(Tag::Mac, &mac);
    })?;
    Ok((body, no_fields()))
}
