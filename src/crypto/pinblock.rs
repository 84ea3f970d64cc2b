//! ISO 9564-1 PIN blocks.
//!
//! | format | PIN field                         | PAN bound | cipher        |
//! |--------|-----------------------------------|-----------|---------------|
//! | 0      | `0 N PIN F..F`, XOR PAN field     | yes       | TDES          |
//! | 1      | `1 N PIN` + transaction/random fill | no      | TDES          |
//! | 2      | `2 N PIN F..F` (ICC only)         | no        | TDES          |
//! | 3      | `3 N PIN` + random fill A-F, XOR PAN field | yes | TDES        |
//! | 4      | `4 N PIN A..A` + 8 random bytes   | yes       | AES, enciphered twice around the PAN field |
//!
//! The PAN field for formats 0 and 3 is `0000` followed by the 12 rightmost PAN digits
//! excluding the check digit. For format 4 it is `M` (PAN length - 12) then the PAN, padded
//! with zeros to 32 nibbles (ISO 9564-1:2017 9.4.2.3).
//!
//! Decoders are total and strict: every rule the standard states is checked and each
//! violation has its own [`PinBlockError`], because a wrong key or wrong PAN almost always
//! shows up as one of them.

use rand::{CryptoRng, RngExt};
use zeroize::Zeroizing;

use super::cipher::{Algorithm, BlockCipher};
use super::pan::Pan;
use super::{Error, Pin, PinBlockError};

/// An ISO 9564-1 PIN block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ISO format 0 (ANSI X9.8, "ISO-0").
    Iso0,
    /// ISO format 1 (no PAN).
    Iso1,
    /// ISO format 2 (ICC offline PIN, no PAN).
    Iso2,
    /// ISO format 3 (format 0 with random A-F fill).
    Iso3,
    /// ISO format 4 (AES, 16-byte block).
    Iso4,
}

impl Format {
    /// From the format number 0..=4.
    pub fn from_number(n: u8) -> Result<Self, Error> {
        Ok(match n {
            0 => Format::Iso0,
            1 => Format::Iso1,
            2 => Format::Iso2,
            3 => Format::Iso3,
            4 => Format::Iso4,
            _ => return Err(PinBlockError::Format.into()),
        })
    }

    /// The format number, which is also the control nibble.
    pub fn number(self) -> u8 {
        match self {
            Format::Iso0 => 0,
            Format::Iso1 => 1,
            Format::Iso2 => 2,
            Format::Iso3 => 3,
            Format::Iso4 => 4,
        }
    }

    /// Whether the PAN enters the block (and so must be supplied to decode it).
    pub fn is_pan_bound(self) -> bool {
        matches!(self, Format::Iso0 | Format::Iso3 | Format::Iso4)
    }

    /// Block length in bytes.
    pub fn block_len(self) -> usize {
        if self == Format::Iso4 { 16 } else { 8 }
    }

    /// The cipher family that enciphers this format.
    pub fn algorithm(self) -> Algorithm {
        if self == Format::Iso4 {
            Algorithm::Aes
        } else {
            Algorithm::Tdes
        }
    }
}

/// A PIN block as bytes: 8 for formats 0-3, 16 for format 4. Clear blocks are secret
/// (they contain the PIN), so the buffer zeroizes on drop and `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PinBlock {
    bytes: Zeroizing<[u8; 16]>,
    len: usize,
}

impl PinBlock {
    /// Wraps bytes of a valid block length (8 or 16).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let len = bytes.len();
        if len != 8 && len != 16 {
            return Err(PinBlockError::BlockLength.into());
        }
        let mut buf = Zeroizing::new([0u8; 16]);
        buf[..len].copy_from_slice(bytes);
        Ok(Self { bytes: buf, len })
    }

    /// Parses 16 or 32 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| Error::Hex("PIN block"))?);
        Self::from_bytes(&bytes)
    }

    /// The block bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Upper-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.as_bytes())
    }
}

impl std::fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinBlock([REDACTED]; {} bytes)", self.len)
    }
}

/// Nibble `i` of a byte string (high nibble first).
fn nibble(bytes: &[u8], i: usize) -> u8 {
    let b = bytes.get(i / 2).copied().unwrap_or(0);
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0F
    }
}

fn set_nibble(bytes: &mut [u8], i: usize, v: u8) {
    if let Some(b) = bytes.get_mut(i / 2) {
        if i.is_multiple_of(2) {
            *b = (*b & 0x0F) | (v << 4);
        } else {
            *b = (*b & 0xF0) | (v & 0x0F);
        }
    }
}

fn require_pan(pan: Option<&Pan>) -> Result<&Pan, Error> {
    pan.ok_or(Error::Parameter("this PIN block format needs the PAN"))
}

/// The format 0/3 PAN field: `0000` + 12 rightmost digits excluding the check digit.
fn pan_field_8(pan: &Pan) -> [u8; 8] {
    let mut field = [0u8; 8];
    for (i, d) in pan.rightmost12_excluding_check().into_iter().enumerate() {
        set_nibble(&mut field, 4 + i, d);
    }
    field
}

/// The format 4 PAN field: `M` = PAN length - 12, the PAN, zero padding to 32 nibbles.
pub fn pan_field_iso4(pan: &Pan) -> [u8; 16] {
    let mut field = [0u8; 16];
    set_nibble(&mut field, 0, (pan.len() - 12) as u8);
    for (i, d) in pan.digit_values().enumerate() {
        set_nibble(&mut field, 1 + i, d);
    }
    field
}

/// Writes `C N PIN` into the first nibbles of `field`.
fn put_pin(field: &mut [u8], control: u8, pin: &Pin) {
    set_nibble(field, 0, control);
    set_nibble(field, 1, pin.len() as u8);
    for (i, d) in pin.expose_secret().bytes().enumerate() {
        set_nibble(field, 2 + i, d - b'0');
    }
}

/// Builds the clear 8-byte PIN block of format 0, 1, 2 or 3. `rng` supplies the format 1
/// and format 3 fill. Format 4 blocks exist only enciphered: use [`encipher`].
pub fn encode_clear(
    format: Format,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut impl CryptoRng,
) -> Result<PinBlock, Error> {
    let mut fill = Zeroizing::new([0u8; 8]);
    rng.fill_bytes(&mut fill[..]);
    encode_clear_with_fill(format, pin, pan, &fill)
}

/// [`encode_clear`] with the random fill given, so published examples can be reproduced.
/// Fill nibbles are taken in order from `fill`; format 3 maps each to A-F (`0xA + n % 6`).
pub fn encode_clear_with_fill(
    format: Format,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8; 8],
) -> Result<PinBlock, Error> {
    let mut field = Zeroizing::new([0u8; 8]);
    put_pin(&mut field[..], format.number(), pin);
    for i in 2 + pin.len()..16 {
        let r = nibble(fill, i);
        let v = match format {
            Format::Iso0 | Format::Iso2 => 0xF,
            Format::Iso1 => r,
            Format::Iso3 => 0xA + r % 6,
            Format::Iso4 => return Err(Error::Parameter("format 4 is enciphered with AES")),
        };
        set_nibble(&mut field[..], i, v);
    }
    if format.is_pan_bound() {
        let pan_field = pan_field_8(require_pan(pan)?);
        for (b, p) in field.iter_mut().zip(pan_field) {
            *b ^= p;
        }
    }
    PinBlock::from_bytes(&field[..])
}

/// Checks `C N PIN fill` and extracts the PIN; `fill_ok` states the format's fill rule
/// for nibble positions from `2 + N` up to `end`.
fn take_pin(
    field: &[u8],
    control: u8,
    end: usize,
    fill_ok: impl Fn(u8) -> bool,
) -> Result<Pin, Error> {
    if nibble(field, 0) != control {
        return Err(PinBlockError::ControlField.into());
    }
    let n = usize::from(nibble(field, 1));
    if !(Pin::MIN_LEN..=Pin::MAX_LEN).contains(&n) {
        return Err(PinBlockError::LengthNibble.into());
    }
    let mut digits = Zeroizing::new([0u8; 12]);
    for i in 0..n {
        let d = nibble(field, 2 + i);
        if d > 9 {
            return Err(PinBlockError::PinDigit.into());
        }
        digits[i] = d;
    }
    if !(2 + n..end).all(|i| fill_ok(nibble(field, i))) {
        return Err(PinBlockError::Fill.into());
    }
    Pin::from_digit_values(&digits[..n])
}

/// Decodes a clear 8-byte PIN block of format 0, 1, 2 or 3.
pub fn decode_clear(format: Format, block: &PinBlock, pan: Option<&Pan>) -> Result<Pin, Error> {
    if format == Format::Iso4 {
        return Err(Error::Parameter("format 4 is enciphered with AES"));
    }
    let mut field = Zeroizing::new([0u8; 8]);
    field.copy_from_slice(
        block
            .as_bytes()
            .get(..8)
            .filter(|_| block.len == 8)
            .ok_or(PinBlockError::BlockLength)?,
    );
    if format.is_pan_bound() {
        let pan_field = pan_field_8(require_pan(pan)?);
        for (b, p) in field.iter_mut().zip(pan_field) {
            *b ^= p;
        }
    }
    let fill_ok: fn(u8) -> bool = match format {
        Format::Iso0 | Format::Iso2 => |v| v == 0xF,
        Format::Iso3 => |v| v >= 0xA,
        _ => |_| true,
    };
    take_pin(&field[..], format.number(), 16, fill_ok)
}

/// Enciphers a PIN into a block of `format` under `key` (TDES for 0-3, AES for 4).
pub fn encipher(
    format: Format,
    key: &BlockCipher,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut impl CryptoRng,
) -> Result<PinBlock, Error> {
    let mut fill = Zeroizing::new([0u8; 8]);
    rng.fill_bytes(&mut fill[..]);
    encipher_with_fill(format, key, pin, pan, &fill)
}

/// [`encipher`] with the random fill given (format 1 and 3 fill; format 4's random
/// 8 bytes), so published examples can be reproduced.
pub fn encipher_with_fill(
    format: Format,
    key: &BlockCipher,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8; 8],
) -> Result<PinBlock, Error> {
    check_key(format, key)?;
    if format == Format::Iso4 {
        let pan = require_pan(pan)?;
        let mut field = Zeroizing::new([0xAAu8; 16]);
        put_pin(&mut field[..], 4, pin);
        field[8..].copy_from_slice(fill);
        // ISO 9564-1:2017 9.4.2.4: encipher the PIN field, XOR the PAN field, encipher again.
        key.encrypt_ecb(&mut field[..])?;
        for (b, p) in field.iter_mut().zip(pan_field_iso4(pan)) {
            *b ^= p;
        }
        key.encrypt_ecb(&mut field[..])?;
        return PinBlock::from_bytes(&field[..]);
    }
    let mut block = encode_clear_with_fill(format, pin, pan, fill)?;
    let len = block.len;
    key.encrypt_ecb(&mut block.bytes[..len])?;
    Ok(block)
}

/// Deciphers and decodes a PIN block of `format` under `key`.
pub fn decipher(
    format: Format,
    key: &BlockCipher,
    block: &PinBlock,
    pan: Option<&Pan>,
) -> Result<Pin, Error> {
    check_key(format, key)?;
    if block.len != format.block_len() {
        return Err(PinBlockError::BlockLength.into());
    }
    let mut work = block.clone();
    let len = work.len;
    key.decrypt_ecb(&mut work.bytes[..len])?;
    if format == Format::Iso4 {
        let pan = require_pan(pan)?;
        for (b, p) in work.bytes.iter_mut().zip(pan_field_iso4(pan)) {
            *b ^= p;
        }
        key.decrypt_ecb(&mut work.bytes[..])?;
        // The fill up to nibble 16 must be A; the last 8 bytes are random and unchecked.
        return take_pin(&work.bytes[..], 4, 16, |v| v == 0xA);
    }
    decode_clear(format, &work, pan)
}

fn check_key(format: Format, key: &BlockCipher) -> Result<(), Error> {
    if key.algorithm() != format.algorithm() {
        return Err(Error::Parameter(if format == Format::Iso4 {
            "PIN block format 4 needs an AES key"
        } else {
            "PIN block formats 0-3 need a TDES key"
        }));
    }
    Ok(())
}

/// Draws a uniformly random PIN of `len` digits (4..=12) from a CSPRNG.
pub fn random_pin(len: usize, rng: &mut impl CryptoRng) -> Result<Pin, Error> {
    if !(Pin::MIN_LEN..=Pin::MAX_LEN).contains(&len) {
        return Err(Error::PinLength { got: len });
    }
    let mut digits = Zeroizing::new([0u8; 12]);
    for d in digits.iter_mut().take(len) {
        *d = rng.random_range(0..10u8);
    }
    Pin::from_digit_values(&digits[..len])
}

#[cfg(test)]
#[path = "pinblock_tests.rs"]
mod tests;
