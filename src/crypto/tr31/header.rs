//! The key block header: 16 fixed characters, then optional blocks (X9.143 section 6.2).
//! Parsing is total: it reads through a cursor that returns `Err` at the end of input.

use std::fmt;

use super::Tr31Error;
use super::fields::{
    Exportability, KeyAlgorithm, KeyContext, KeyUsage, KeyVersion, ModeOfUse, Version,
};
use crate::crypto::Error;

/// Largest value the 4-digit length field can hold.
pub(super) const MAX_BLOCK_LEN: usize = 9999;
/// Length of the fixed part of the header.
const FIXED_LEN: usize = 16;
/// The most optional blocks a header can count in its 2-digit field.
const MAX_BLOCKS: usize = 99;
const PAD_ID: &str = "PB";

/// A read cursor over the block's bytes: every read past the end is an `Err`.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    used: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            used: 0,
        }
    }

    pub(super) fn take(&mut self, n: usize, err: Tr31Error) -> Result<&'a [u8], Tr31Error> {
        if n > self.rest.len() {
            return Err(err);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.used += n;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, err: Tr31Error) -> Result<[u8; N], Tr31Error> {
        self.take(N, err)?.try_into().map_err(|_| err)
    }

    fn byte(&mut self, err: Tr31Error) -> Result<u8, Tr31Error> {
        let [b] = self.array::<1>(err)?;
        Ok(b)
    }

    /// How many bytes have been read.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Everything not yet read.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Parses ASCII decimal digits (at most 4, so no overflow).
fn decimal(digits: &[u8], err: Tr31Error) -> Result<usize, Tr31Error> {
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(err);
    }
    Ok(digits.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

/// Parses ASCII hex digits (at most 4, so no overflow).
fn hex_number(digits: &[u8], err: Tr31Error) -> Result<usize, Tr31Error> {
    if digits.is_empty() || digits.len() > 4 {
        return Err(err);
    }
    digits.iter().try_fold(0usize, |n, d| {
        let v = char::from(*d).to_digit(16).ok_or(err)?;
        Ok(n * 16 + v as usize)
    })
}

/// One optional block: a 2-character alphanumeric ID and printable ASCII data. Padding
/// blocks (`PB`) are not kept: they are regenerated when the header is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptionalBlock {
    id: String,
    data: String,
}

impl OptionalBlock {
    /// Makes a block. The ID is two alphanumeric characters other than `PB`; the data is
    /// printable ASCII.
    pub fn new(id: &str, data: &str) -> Result<Self, Error> {
        let id_bytes: [u8; 2] = id
            .as_bytes()
            .try_into()
            .map_err(|_| Tr31Error::OptionalBlock("ID must be 2 alphanumeric characters"))?;
        check_block(id_bytes, data.as_bytes())?;
        if id == PAD_ID {
            return Err(Tr31Error::OptionalBlock("PB is reserved for padding").into());
        }
        if data.len() > MAX_BLOCK_LEN {
            return Err(Tr31Error::TooLong.into());
        }
        Ok(Self {
            id: id.to_owned(),
            data: data.to_owned(),
        })
    }

    /// The block ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The block data.
    pub fn data(&self) -> &str {
        &self.data
    }

    fn write(&self, out: &mut String) {
        out.push_str(&self.id);
        // Short form counts ID, length and data; the extended form (length 00, length of
        // length 02, 4 hex digits) is for blocks longer than 255 characters.
        let short = self.data.len() + 4;
        if short <= 0xFF {
            out.push_str(&format!("{short:02X}"));
        } else {
            out.push_str(&format!("0002{:04X}", self.data.len() + 10));
        }
        out.push_str(&self.data);
    }
}

fn check_block(id: [u8; 2], data: &[u8]) -> Result<(), Tr31Error> {
    if !id.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Tr31Error::OptionalBlock(
            "ID must be 2 alphanumeric characters",
        ));
    }
    if !data.iter().all(|b| (0x20..=0x7E).contains(b)) {
        return Err(Tr31Error::OptionalBlock("data must be printable ASCII"));
    }
    Ok(())
}

/// A key block header. Every field holds a valid value; the length field is not kept:
/// `Header::to_string` writes the header's own length and `wrap` the whole block's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    version: Version,
    usage: KeyUsage,
    algorithm: KeyAlgorithm,
    mode: ModeOfUse,
    key_version: KeyVersion,
    exportability: Exportability,
    context: KeyContext,
    blocks: Vec<OptionalBlock>,
}

impl Header {
    /// A header without optional blocks and with key context `00`.
    pub fn new(
        version: Version,
        usage: KeyUsage,
        algorithm: KeyAlgorithm,
        mode: ModeOfUse,
        key_version: KeyVersion,
        exportability: Exportability,
    ) -> Self {
        Self {
            version,
            usage,
            algorithm,
            mode,
            key_version,
            exportability,
            context: KeyContext::ZERO,
            blocks: Vec::new(),
        }
    }

    /// Sets the key context / reserved field.
    pub fn with_context(mut self, context: KeyContext) -> Self {
        self.context = context;
        self
    }

    /// Appends an optional block, refusing one that would take the header past 99
    /// blocks or past the 4-digit length.
    pub fn with_block(mut self, block: OptionalBlock) -> Result<Self, Error> {
        self.blocks.push(block);
        check_limits(self.version, &self.blocks)?;
        Ok(self)
    }

    /// Parses a header alone (for example `D0000P0AE00N0000` with any digits as length).
    /// Trailing characters are refused; [`super::unwrap`] parses headers inside blocks.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut reader = Reader::new(text.as_bytes());
        let (header, _) = Self::read(&mut reader)?;
        if !reader.rest().is_empty() {
            return Err(Tr31Error::TrailingData.into());
        }
        Ok(header)
    }

    /// Reads a header at the cursor; returns it with the value of its length field.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<(Self, usize), Tr31Error> {
        let short = Tr31Error::TooShort;
        let version = Version::from_byte(r.byte(short)?)?;
        let length = decimal(r.take(4, short)?, Tr31Error::LengthField)?;
        let usage = KeyUsage::from_bytes(r.array(short)?)?;
        let algorithm = KeyAlgorithm::from_byte(r.byte(short)?)?;
        let mode = ModeOfUse::from_byte(r.byte(short)?)?;
        let key_version = KeyVersion::from_bytes(r.array(short)?)?;
        let exportability = Exportability::from_byte(r.byte(short)?)?;
        let count = decimal(r.take(2, short)?, Tr31Error::BlockCount)?;
        let context = KeyContext::from_bytes(r.array(short)?)?;
        let mut blocks = Vec::new();
        for _ in 0..count {
            if let Some(block) = read_block(r)? {
                blocks.push(block);
            }
        }
        check_limits(version, &blocks)?;
        let header = Self {
            version,
            usage,
            algorithm,
            mode,
            key_version,
            exportability,
            context,
            blocks,
        };
        Ok((header, length))
    }

    /// Writes the header with `length` in its length field, adding a padding block when
    /// the optional blocks do not end on a cipher block boundary.
    pub(super) fn encode(&self, length: usize) -> String {
        let (count, blocks) = blocks_text(self.version, &self.blocks);
        format!(
            "{}{:04}{}{}{}{}{}{:02}{}{}",
            self.version,
            length,
            self.usage,
            self.algorithm,
            self.mode,
            self.key_version,
            self.exportability,
            count,
            self.context,
            blocks
        )
    }

    /// Length of the header text, optional blocks and padding included.
    pub(super) fn encoded_len(&self) -> usize {
        FIXED_LEN + blocks_text(self.version, &self.blocks).1.len()
    }

    /// Refuses a usage / mode-of-use pair the standard does not allow (a PIN key that
    /// only generates, a MAC key that encrypts). `wrap` calls this; `unwrap` leaves it to
    /// the importer, since HSMs in the field issue blocks with mode `N` for many usages.
    pub fn check_coherent(&self) -> Result<(), Error> {
        match self.usage.allowed_modes() {
            Some(modes) if !modes.contains(&self.mode) => Err(Tr31Error::Incoherent {
                usage: self.usage,
                mode: self.mode,
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// Version ID.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Key usage.
    pub fn usage(&self) -> KeyUsage {
        self.usage
    }
    /// Algorithm of the wrapped key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }
    /// Mode of use.
    pub fn mode_of_use(&self) -> ModeOfUse {
        self.mode
    }
    /// Key version number.
    pub fn key_version(&self) -> KeyVersion {
        self.key_version
    }
    /// Exportability.
    pub fn exportability(&self) -> Exportability {
        self.exportability
    }
    /// Key context / reserved field.
    pub fn context(&self) -> KeyContext {
        self.context
    }
    /// Optional blocks in order, padding blocks left out.
    pub fn blocks(&self) -> &[OptionalBlock] {
        &self.blocks
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode(self.encoded_len()))
    }
}

impl std::str::FromStr for Header {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Reads one optional block; `None` for a padding block.
fn read_block(r: &mut Reader<'_>) -> Result<Option<OptionalBlock>, Tr31Error> {
    let err = Tr31Error::OptionalBlock;
    let id: [u8; 2] = r.array(err("truncated block ID"))?;
    let bad_len = err("length is not hex or too short");
    let short_len = hex_number(r.take(2, bad_len)?, bad_len)?;
    let data_len = if short_len == 0 {
        // Extended form: 2 hex digits giving the byte count of the length, then the length.
        let len_of_len = hex_number(r.take(2, bad_len)?, bad_len)?;
        if !(1..=2).contains(&len_of_len) {
            return Err(err("extended length must be 1 or 2 bytes"));
        }
        let total = hex_number(r.take(len_of_len * 2, bad_len)?, bad_len)?;
        total.checked_sub(6 + len_of_len * 2).ok_or(bad_len)?
    } else {
        short_len.checked_sub(4).ok_or(bad_len)?
    };
    let data = r.take(data_len, err("data shorter than its length"))?;
    check_block(id, data)?;
    if id == *b"PB" {
        return Ok(None);
    }
    // Both checked to be ASCII above.
    let id = String::from_utf8_lossy(&id).into_owned();
    let data = String::from_utf8_lossy(data).into_owned();
    Ok(Some(OptionalBlock { id, data }))
}

/// The optional blocks as written, with a padding block when needed, and their count.
fn blocks_text(version: Version, blocks: &[OptionalBlock]) -> (usize, String) {
    let mut out = String::new();
    for block in blocks {
        block.write(&mut out);
    }
    let bs = version.block_size();
    let mut count = blocks.len();
    if !out.len().is_multiple_of(bs) {
        // The padding block's own ID and length take 4 characters; zeros fill the rest.
        let fill = (bs - (out.len() + 4) % bs) % bs;
        out.push_str(&format!("{PAD_ID}{:02X}{}", fill + 4, "0".repeat(fill)));
        count += 1;
    }
    (count, out)
}

fn check_limits(version: Version, blocks: &[OptionalBlock]) -> Result<(), Tr31Error> {
    if blocks.len() > MAX_BLOCKS {
        return Err(Tr31Error::TooManyBlocks);
    }
    let (count, text) = blocks_text(version, blocks);
    if count > MAX_BLOCKS {
        return Err(Tr31Error::TooManyBlocks);
    }
    if FIXED_LEN + text.len() > MAX_BLOCK_LEN {
        return Err(Tr31Error::TooLong);
    }
    Ok(())
}
