//! payShield host messages, without sockets: a 2-byte big-endian length prefix, then
//! the message header (a configured number of characters, echoed in the answer), the
//! 2-character command code and the command's fields. The answer carries the same
//! header, the response code (the command code with its second character's successor:
//! `NC` -> `ND`, `CA` -> `CB`), a 2-character error code, and the answer's fields.
//!
//! [`parse`] is total: any payload gives a request or says why it has none.

/// The length prefix's size.
pub const LENGTH_PREFIX: usize = 2;
/// The largest message a 2-byte prefix can announce.
pub const MAX_MESSAGE: usize = u16::MAX as usize;

/// A payShield error code: two characters (`00` no error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub [u8; 2]);

impl ErrorCode {
    /// No error.
    pub const OK: Self = Self(*b"00");
    /// Verification failure.
    pub const VERIFICATION_FAILED: Self = Self(*b"01");
    /// Source key parity error (cofre: a key field the command cannot use).
    pub const SOURCE_KEY: Self = Self(*b"10");
    /// Destination key parity error (cofre: the destination key field).
    pub const DESTINATION_KEY: Self = Self(*b"11");
    /// Error in the PIN from the host (cofre: the PIN under the LMK does not open for
    /// this account number: altered, or another card's).
    pub const LMK_PIN: Self = Self(*b"14");
    /// Invalid input data (format, characters, or not enough data).
    pub const INVALID_INPUT: Self = Self(*b"15");
    /// Not authorised, or prohibited by security settings (cofre: the role policy,
    /// the brute-force guard).
    pub const NOT_AUTHORISED: Self = Self(*b"17");
    /// The PIN block does not contain valid values.
    pub const PIN_BLOCK: Self = Self(*b"20");
    /// Invalid account number.
    pub const ACCOUNT: Self = Self(*b"22");
    /// Invalid PIN block format code (or a translation the PCI rules forbid).
    pub const PIN_BLOCK_FORMAT: Self = Self(*b"23");
    /// The PIN is fewer than 4 or more than 12 digits, or longer than allowed.
    pub const PIN_LENGTH: Self = Self(*b"24");
    /// Invalid key scheme (a key field that is not an `S` key block).
    pub const KEY_SCHEME: Self = Self(*b"26");
    /// Fraud detection (cofre: the card's PIN tries are exhausted, `pin_locked`).
    pub const PIN_LOCKED: Self = Self(*b"39");
    /// Internal error (cofre: also the counter store unavailable, or overloaded).
    pub const INTERNAL: Self = Self(*b"41");
    /// Command disabled or unknown.
    pub const COMMAND_DISABLED: Self = Self(*b"68");
    /// Data length error.
    pub const DATA_LENGTH: Self = Self(*b"80");
    /// Key block format error.
    pub const KEY_BLOCK_FORMAT: Self = Self(*b"83");
    /// Key block check value error (cofre: the block names a key cofre does not hold).
    pub const KEY_NOT_HELD: Self = Self(*b"84");
    /// Key block authentication failure (its MAC does not verify under this LMK).
    pub const KEY_BLOCK_MAC: Self = Self(*b"A4");
    /// Invalid key usage.
    pub const KEY_USAGE: Self = Self(*b"A6");

    /// The two characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// A request message.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The header, echoed.
    pub header: &'a [u8],
    /// The command code.
    pub command: [u8; 2],
    /// The fields after the command code.
    pub data: &'a [u8],
}

/// A message too short for its header and command code: what of the header there is.
#[derive(Debug, PartialEq, Eq)]
pub struct TooShort<'a>(pub &'a [u8]);

/// Splits a message (the bytes after the length prefix).
pub fn parse(message: &[u8], header_length: usize) -> Result<Request<'_>, TooShort<'_>> {
    let Some((header, rest)) = message.split_at_checked(header_length) else {
        return Err(TooShort(message));
    };
    let Some((command, data)) = rest.split_first_chunk::<2>() else {
        return Err(TooShort(header));
    };
    Ok(Request {
        header,
        command: *command,
        data,
    })
}

/// The response code of a command: its second character's successor (`Z` -> `[`, as
/// byte arithmetic gives; no supported command ends in `Z` or `9`).
pub fn response_code(command: [u8; 2]) -> [u8; 2] {
    [command[0], command[1].wrapping_add(1)]
}

/// Appends one answer, length prefix included. `header` is padded with `0` or cut to
/// `header_length` (a message too short to carry its header). An answer longer than a
/// 2-byte prefix allows (never, for the supported commands) is cut to fit.
pub fn encode(
    out: &mut Vec<u8>,
    header: &[u8],
    header_length: usize,
    code: [u8; 2],
    error: ErrorCode,
    fields: &[u8],
) {
    let room = MAX_MESSAGE.saturating_sub(header_length + 4);
    let fields = &fields[..fields.len().min(room)];
    let len = header_length + 4 + fields.len();
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    let h = &header[..header.len().min(header_length)];
    out.extend_from_slice(h);
    out.resize(out.len() + (header_length - h.len()), b'0');
    out.extend_from_slice(&code);
    out.extend_from_slice(&error.0);
    out.extend_from_slice(fields);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn splits_header_command_and_fields() {
        let r = parse(b"0001NC", 4).unwrap();
        assert_eq!(
            (r.header, &r.command, r.data),
            (&b"0001"[..], b"NC", &b""[..])
        );
        let r = parse(b"CAxyz", 0).unwrap();
        assert_eq!(
            (r.header, &r.command, r.data),
            (&b""[..], b"CA", &b"xyz"[..])
        );
        assert_eq!(parse(b"000", 4), Err(TooShort(b"000")));
        assert_eq!(parse(b"0001N", 4), Err(TooShort(b"0001")));
        assert_eq!(parse(b"", 0), Err(TooShort(b"")));
    }

    #[test]
    fn answers_echo_the_header_with_the_response_code() {
        assert_eq!(response_code(*b"NC"), *b"ND");
        assert_eq!(response_code(*b"CA"), *b"CB");
        assert_eq!(response_code(*b"EC"), *b"ED");
        let mut out = Vec::new();
        encode(&mut out, b"ABCD", 4, *b"ED", ErrorCode::OK, b"");
        assert_eq!(out, b"\x00\x08ABCDED00");
        out.clear();
        encode(&mut out, b"A", 4, *b"ZZ", ErrorCode::INVALID_INPUT, b"x");
        assert_eq!(out, b"\x00\x09A000ZZ15x");
    }
}
