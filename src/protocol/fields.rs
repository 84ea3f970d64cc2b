//! Body fields: `tag:u8 length:u16be value`, each tag with one fixed type.
//!
//! Parsing is total and strict for requests: a field that overruns the body, a repeated
//! tag, an unknown tag, or a value that does not fit its tag's type is a [`FieldError`]
//! naming the tag. Responses are parsed leniently (unknown tags skipped) so that newer
//! daemons can add response fields without breaking older clients.

use std::fmt;

/// The value type a tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// One byte.
    U8,
    /// Four bytes, big-endian.
    U32,
    /// Eight bytes, big-endian.
    U64,
    /// One byte, 0 or 1.
    Bool,
    /// Printable ASCII (0x20-0x7E), 0-255 bytes.
    Str,
    /// UTF-8 text, newlines allowed.
    Text,
    /// Raw bytes.
    Bytes,
}

macro_rules! tags {
    ($($variant:ident = $code:literal, $name:literal, $ty:ident, $doc:literal;)*) => {
        /// A field tag.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Tag {
            $(#[doc = $doc] $variant,)*
        }

        impl Tag {
            /// Every tag, in code order.
            pub const ALL: &[Tag] = &[$(Tag::$variant,)*];

            /// The wire code.
            pub const fn code(self) -> u8 {
                match self { $(Tag::$variant => $code,)* }
            }

            /// Parses a wire code.
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some(Tag::$variant),)* _ => None }
            }

            /// The field's name in the specification.
            pub fn name(self) -> &'static str {
                match self { $(Tag::$variant => $name,)* }
            }

            /// The field's type.
            pub fn field_type(self) -> FieldType {
                match self { $(Tag::$variant => FieldType::$ty,)* }
            }
        }
    };
}

tags! {
    Pan = 0x01, "pan", Str, "Card number, 12-19 digits.";
    Token = 0x02, "token", Str, "PAN token (numeric or alphanumeric FF1 token).";
    TokenVersion = 0x03, "token_version", U32, "Version of the token key that made the token (requests: with token only).";
    Key = 0x04, "key", Str, "The operation's main key id.";
    KeyVersion = 0x05, "key_version", U32, "Version of the main key used (responses), or wanted (key.export, key.retire).";
    PinBlock = 0x06, "pin_block", Bytes, "Enciphered PIN block, 8 (TDES) or 16 (AES) bytes.";
    Format = 0x07, "format", U8, "ISO 9564 PIN block format, 0-4 (card.codes.export: the layout, 1).";
    Pvv = 0x08, "pvv", Str, "Visa PVV, 4 digits.";
    Pvki = 0x09, "pvki", U8, "PVV key index, 0-6.";
    Offset = 0x0A, "offset", Str, "IBM 3624 offset, 4-12 digits.";
    Decimalization = 0x0B, "decimalization", Str, "IBM 3624 decimalisation table, 16 digits.";
    ValidationStart = 0x0C, "validation_start", U8, "IBM 3624 validation data: first PAN digit, 0-based.";
    ValidationLength = 0x0D, "validation_length", U8, "IBM 3624 validation data: number of PAN digits.";
    Pad = 0x0E, "pad", Str, "IBM 3624 validation data pad, 1 hex character.";
    Method = 0x0F, "method", U8, "PIN verification method: 0 Visa PVV, 1 IBM 3624 offset.";
    DestKey = 0x10, "dest_key", Str, "Destination key id (translation).";
    DestFormat = 0x11, "dest_format", U8, "Destination PIN block format.";
    DestPan = 0x12, "dest_pan", Str, "Destination PAN (must equal the source PAN for PAN-bound formats).";
    PinBlob = 0x13, "pin_blob", Bytes, "PIN encrypted under the LMK (opaque, 25 bytes).";
    DeliveryKey = 0x14, "delivery_key", Str, "PIN delivery key id (a pin-delivery key).";
    DeliveryBlock = 0x15, "delivery_block", Bytes, "PIN block enciphered under the delivery key.";
    NewPinBlock = 0x16, "new_pin_block", Bytes, "New PIN block (pin.change).";
    PinLength = 0x17, "pin_length", U8, "PIN length for generation, 4-12.";
    DestKeyVersion = 0x18, "dest_key_version", U32, "Version of the destination key used.";
    Pvk = 0x19, "pvk", Str, "PIN verification key id.";
    PvkVersion = 0x1A, "pvk_version", U32, "Version of the PVK used.";
    NewPan = 0x1B, "new_pan", Str, "The new card's PAN (pin.rebind), 12-19 digits.";
    NewToken = 0x1C, "new_token", Str, "The new card's PAN token (pin.rebind).";
    NewTokenVersion = 0x1D, "new_token_version", U32, "Version of the token key that made new_token.";
    WeakDigits = 0x1E, "weak_digits", Str, "Digit strings a new PIN must not equal (the holder's dates), 4-12 digits each, comma-separated, at most 8.";
    Ksn = 0x1F, "ksn", Bytes, "DUKPT key serial number, 10 bytes (TDES, X9.24-1) or 12 (AES, X9.24-3): with it, `key` names a BDK.";
    Expiry = 0x20, "expiry", Str, "Card expiry, YYMM.";
    ServiceCode = 0x21, "service_code", Str, "Service code, 3 digits.";
    Cvv = 0x22, "cvv", Str, "CVV (magnetic stripe), 3 digits.";
    Cvv2 = 0x23, "cvv2", Str, "CVV2 (printed), 3 digits.";
    Icvv = 0x24, "icvv", Str, "iCVV (chip), 3 digits.";
    Encrypted = 0x25, "encrypted", Bytes, "Data encrypted under a transport key: IV || CBC ciphertext, or code blocks (card.codes.export format 1, dcvv2.generate).";
    TransportKey = 0x26, "transport_key", Str, "Transport key id.";
    TransportKeyVersion = 0x27, "transport_key_version", U32, "Version of the transport key used.";
    Bin = 0x28, "bin", Str, "Issuer BIN, 6-11 digits.";
    PanLength = 0x29, "pan_length", U8, "PAN length, 12-19.";
    MaskedPan = 0x2A, "masked_pan", Str, "First 6 and last 4 digits, the rest '*'.";
    LookupToken = 0x2B, "lookup_token", Str, "Irreversible lookup token, 64 hex characters.";
    Alphabet = 0x2C, "alphabet", U8, "Token alphabet: 0 numeric, 1 alphanumeric.";
    PinKeyType = 0x2D, "pin_key_type", U8, "With an AES DUKPT `ksn`: the PIN working key's type, as the X9.24-3-2017 algorithm indicator (2 AES-128, the default; 3 AES-192; 4 AES-256).";
    Dcvv2 = 0x30, "dcvv2", Str, "Dynamic CVV2, 3 digits.";
    Counter = 0x31, "counter", U64, "dCVV2 counter moving factor.";
    UnixTime = 0x32, "unix_time", U64, "Unix time in seconds (dCVV2 time step).";
    Window = 0x33, "window", U8, "dCVV2 verification window, steps each side, 0-10.";
    MovingFactor = 0x34, "moving_factor", U64, "The dCVV2 moving factor used or matched.";
    MacAlgorithm = 0x40, "mac_algorithm", U8, "0 ISO 9797-1 alg. 3, 1 AES-CMAC, 2 HMAC-SHA256.";
    Data = 0x41, "data", Bytes, "Data to MAC.";
    Mac = 0x42, "mac", Bytes, "A MAC.";
    Kind = 0x50, "kind", Str, "Key kind (zpk, tpk, pvk, cvk, dcvv2, token, lookup, mac, kek, transport, pin-delivery, bdk).";
    Algorithm = 0x51, "algorithm", Str, "Key algorithm (tdes, aes, hmac).";
    KeyBlock = 0x52, "key_block", Str, "TR-31 key block.";
    Kek = 0x53, "kek", Str, "KEK id.";
    Kcv = 0x54, "kcv", Str, "Key check value, 6 hex characters.";
    Listing = 0x55, "listing", Text, "Key listing, one key version per line.";
    Exportable = 0x56, "exportable", Bool, "Whether the key may be exported.";
    KeyLength = 0x57, "key_length", U8, "Key length in bytes.";
    MacMinLength = 0x58, "mac_min_length", U8, "The shortest MAC a MAC key's verification accepts, in bytes (at least 4).";
    ServerVersion = 0x60, "server_version", Str, "Daemon version.";
    LmkKcv = 0x61, "lmk_kcv", Str, "KCV of the loaded LMK.";
    Uptime = 0x62, "uptime", U64, "Seconds since the daemon started.";
    Role = 0x63, "role", Str, "The caller's role.";
    Attempts = 0x70, "attempts", U32, "Failed tries counted.";
    Limit = 0x71, "limit", U32, "Tries allowed before the card locks.";
    Locked = 0x72, "locked", Bool, "Whether the card is locked.";
    LastFailure = 0x73, "last_failure", U64, "Unix time of the last failure (0: none).";
    Dcvv2Enabled = 0x74, "dcvv2_enabled", Bool, "Whether dynamic CVV2 is on for the card.";
    Message = 0xF0, "message", Str, "Short reason for a non-ok status (never secret).";
    Field = 0xF1, "field", U8, "Tag of the field a malformed_field status is about.";
    Reason = 0xF2, "reason", Str, "Machine-readable detail of a status (e.g. dcvv2_active).";
}

/// A field problem, naming the tag. Never carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    /// The tag's code (it may be unknown, so not a [`Tag`]).
    pub tag: u8,
    /// What is wrong.
    pub reason: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Tag::from_code(self.tag) {
            Some(t) => write!(f, "field {}: {}", t.name(), self.reason),
            None => write!(f, "field 0x{:02X}: {}", self.tag, self.reason),
        }
    }
}

impl std::error::Error for FieldError {}

fn error(tag: u8, reason: &'static str) -> FieldError {
    FieldError { tag, reason }
}

fn check_value(tag: Tag, value: &[u8]) -> Result<(), FieldError> {
    let ok = match tag.field_type() {
        FieldType::U8 => value.len() == 1,
        FieldType::U32 => value.len() == 4,
        FieldType::U64 => value.len() == 8,
        FieldType::Bool => value.len() == 1 && value[0] <= 1,
        FieldType::Str => value.len() <= 255 && value.iter().all(|b| (0x20..=0x7E).contains(b)),
        FieldType::Text => std::str::from_utf8(value).is_ok(),
        FieldType::Bytes => true,
    };
    if ok {
        Ok(())
    } else {
        Err(error(tag.code(), "value does not fit the field's type"))
    }
}

/// A parsed body: borrowed, no allocation.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    body: &'a [u8],
}

impl fmt::Debug for Fields<'_> {
    // Field values may be PIN blocks or PANs: show tags only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (tag, _) in self.iter() {
            list.entry(&tag);
        }
        list.finish()
    }
}

/// Walks `tag length value` triples; `Err` on overrun.
fn walk(body: &[u8]) -> impl Iterator<Item = Result<(u8, &[u8]), FieldError>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some((&[tag, hi, lo], tail)) = rest.split_first_chunk::<3>() else {
            let tag = rest[0];
            rest = &[];
            return Some(Err(error(tag, "field header is truncated")));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if tail.len() < len {
            rest = &[];
            return Some(Err(error(tag, "length overruns the frame")));
        }
        let (value, after) = tail.split_at(len);
        rest = after;
        Some(Ok((tag, value)))
    })
}

impl<'a> Fields<'a> {
    /// No fields.
    pub const fn empty() -> Self {
        Self { body: &[] }
    }

    /// Parses a request body strictly (see the module comment).
    pub fn parse_strict(body: &'a [u8]) -> Result<Self, FieldError> {
        let mut seen = [0u64; 4];
        for item in walk(body) {
            let (code, value) = item?;
            let tag = Tag::from_code(code).ok_or_else(|| error(code, "unknown tag"))?;
            let (word, bit) = (usize::from(code / 64), code % 64);
            if seen[word] & (1 << bit) != 0 {
                return Err(error(code, "repeated"));
            }
            seen[word] |= 1 << bit;
            check_value(tag, value)?;
        }
        Ok(Self { body })
    }

    /// Parses a response body: structure and known tags' types are checked, unknown
    /// tags are skipped, the first of a repeated tag wins.
    pub fn parse_lenient(body: &'a [u8]) -> Result<Self, FieldError> {
        for item in walk(body) {
            let (code, value) = item?;
            if let Some(tag) = Tag::from_code(code) {
                check_value(tag, value)?;
            }
        }
        Ok(Self { body })
    }

    /// Known fields in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &'a [u8])> + use<'a> {
        walk(self.body)
            .filter_map(Result::ok)
            .filter_map(|(c, v)| Tag::from_code(c).map(|t| (t, v)))
    }

    /// The raw value of a field, if present.
    pub fn raw(&self, tag: Tag) -> Option<&'a [u8]> {
        self.iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    fn typed(&self, tag: Tag, ty: FieldType) -> Result<Option<&'a [u8]>, FieldError> {
        if tag.field_type() != ty {
            return Err(error(tag.code(), "read as the wrong type"));
        }
        Ok(self.raw(tag))
    }

    /// Whether the field is present.
    pub fn has(&self, tag: Tag) -> bool {
        self.raw(tag).is_some()
    }

    /// An optional string field.
    pub fn str(&self, tag: Tag) -> Result<Option<&'a str>, FieldError> {
        let ty = tag.field_type();
        if ty != FieldType::Str && ty != FieldType::Text {
            return Err(error(tag.code(), "read as the wrong type"));
        }
        self.raw(tag)
            .map(|v| std::str::from_utf8(v).map_err(|_| error(tag.code(), "not text")))
            .transpose()
    }

    /// A required string field.
    pub fn req_str(&self, tag: Tag) -> Result<&'a str, FieldError> {
        self.str(tag)?.ok_or_else(|| error(tag.code(), "missing"))
    }

    /// An optional bytes field.
    pub fn bytes(&self, tag: Tag) -> Result<Option<&'a [u8]>, FieldError> {
        self.typed(tag, FieldType::Bytes)
    }

    /// A required bytes field.
    pub fn req_bytes(&self, tag: Tag) -> Result<&'a [u8], FieldError> {
        self.bytes(tag)?.ok_or_else(|| error(tag.code(), "missing"))
    }

    /// An optional u8 field.
    pub fn u8(&self, tag: Tag) -> Result<Option<u8>, FieldError> {
        Ok(self
            .typed(tag, FieldType::U8)?
            .and_then(|v| v.first().copied()))
    }

    /// A required u8 field.
    pub fn req_u8(&self, tag: Tag) -> Result<u8, FieldError> {
        self.u8(tag)?.ok_or_else(|| error(tag.code(), "missing"))
    }

    /// An optional bool field.
    pub fn bool(&self, tag: Tag) -> Result<Option<bool>, FieldError> {
        Ok(self
            .typed(tag, FieldType::Bool)?
            .and_then(|v| v.first().map(|b| *b == 1)))
    }

    /// An optional u32 field.
    pub fn u32(&self, tag: Tag) -> Result<Option<u32>, FieldError> {
        Ok(self
            .typed(tag, FieldType::U32)?
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes))
    }

    /// An optional u64 field.
    pub fn u64(&self, tag: Tag) -> Result<Option<u64>, FieldError> {
        Ok(self
            .typed(tag, FieldType::U64)?
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes))
    }

    /// Refuses any field not in `allowed` (each operation lists the fields it reads, so
    /// a field sent to the wrong operation is reported rather than ignored).
    pub fn only(&self, allowed: &[Tag]) -> Result<(), FieldError> {
        match self.iter().find(|(t, _)| !allowed.contains(t)) {
            Some((t, _)) => Err(error(t.code(), "not used by this operation")),
            None => Ok(()),
        }
    }
}

/// Appends fields to a frame buffer. Values longer than the field format allows are
/// recorded as an error reported by [`FieldsWriter::finish`], never truncated.
pub struct FieldsWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
    error: Option<FieldError>,
}

impl fmt::Debug for FieldsWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldsWriter")
            .field("len", &self.buf.len())
            .finish()
    }
}

impl<'a> FieldsWriter<'a> {
    /// Writes into `buf` (after whatever is already there).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        let start = buf.len();
        Self {
            buf,
            start,
            error: None,
        }
    }

    /// Drops every field written so far (an operation that fails after writing some
    /// fields answers with the error fields only).
    pub fn reset(&mut self) {
        self.buf.truncate(self.start);
        self.error = None;
    }

    fn put(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        if self.error.is_none() {
            if let Err(e) = check_value(tag, value) {
                self.error = Some(e);
            } else if let Ok(len) = u16::try_from(value.len()) {
                self.buf.push(tag.code());
                self.buf.extend_from_slice(&len.to_be_bytes());
                self.buf.extend_from_slice(value);
            } else {
                self.error = Some(error(tag.code(), "value longer than 65535 bytes"));
            }
        }
        self
    }

    /// A string or text field.
    pub fn str(&mut self, tag: Tag, value: &str) -> &mut Self {
        self.put(tag, value.as_bytes())
    }

    /// Fields already encoded by another writer (a body prepared before a commit).
    pub fn encoded(&mut self, fields: &[u8]) -> &mut Self {
        if self.error.is_none() {
            if let Err(e) = Fields::parse_lenient(fields) {
                self.error = Some(e);
            } else {
                self.buf.extend_from_slice(fields);
            }
        }
        self
    }

    /// Fields another writer of this crate already encoded (and so checked): copied as
    /// they are, without the re-parse [`FieldsWriter::encoded`] does.
    pub(crate) fn encoded_unchecked(&mut self, fields: &[u8]) -> &mut Self {
        if self.error.is_none() {
            self.buf.extend_from_slice(fields);
        }
        self
    }

    /// A bytes field.
    pub fn bytes(&mut self, tag: Tag, value: &[u8]) -> &mut Self {
        self.put(tag, value)
    }

    /// A u8 field.
    pub fn u8(&mut self, tag: Tag, value: u8) -> &mut Self {
        self.put(tag, &[value])
    }

    /// A bool field.
    pub fn bool(&mut self, tag: Tag, value: bool) -> &mut Self {
        self.put(tag, &[u8::from(value)])
    }

    /// A u32 field.
    pub fn u32(&mut self, tag: Tag, value: u32) -> &mut Self {
        self.put(tag, &value.to_be_bytes())
    }

    /// A u64 field.
    pub fn u64(&mut self, tag: Tag, value: u64) -> &mut Self {
        self.put(tag, &value.to_be_bytes())
    }

    /// Ends writing: the first error, if any.
    pub fn finish(&mut self) -> Result<(), FieldError> {
        self.error.map_or(Ok(()), Err)
    }
}
