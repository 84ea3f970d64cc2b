//! Reading a command's fields: fixed-length digits and hex, delimited fields, and key
//! fields (an `S` key block, whose length its own header gives). Every read is checked
//! and total: running out of data or a wrong character is [`ErrorCode::INVALID_INPUT`],
//! a key field in another scheme is [`ErrorCode::KEY_SCHEME`].

use super::frame::ErrorCode;

/// The unread part of a command's fields.
#[derive(Debug)]
pub struct Cursor<'a> {
    rest: &'a [u8],
}

/// The longest key block accepted in a key field (X9.143 allows 9,999 characters).
pub const MAX_KEY_BLOCK: usize = 9_999;

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ErrorCode> {
        let (taken, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or(ErrorCode::INVALID_INPUT)?;
        self.rest = rest;
        Ok(taken)
    }

    fn text(&mut self, n: usize, ok: fn(&u8) -> bool) -> Result<&'a str, ErrorCode> {
        let t = self.take(n)?;
        if !t.iter().all(ok) {
            return Err(ErrorCode::INVALID_INPUT);
        }
        std::str::from_utf8(t).map_err(|_| ErrorCode::INVALID_INPUT)
    }

    /// `n` decimal digits.
    pub fn digits(&mut self, n: usize) -> Result<&'a str, ErrorCode> {
        self.text(n, u8::is_ascii_digit)
    }

    /// `n` hexadecimal characters (either case).
    pub fn hex(&mut self, n: usize) -> Result<&'a str, ErrorCode> {
        self.text(n, u8::is_ascii_hexdigit)
    }

    /// 1 to `max` digits up to (and consuming) `delimiter`.
    pub fn digits_until(&mut self, delimiter: u8, max: usize) -> Result<&'a str, ErrorCode> {
        let at = self
            .rest
            .iter()
            .take(max + 1)
            .position(|&b| b == delimiter)
            .filter(|&at| at > 0)
            .ok_or(ErrorCode::INVALID_INPUT)?;
        let digits = self.digits(at)?;
        self.take(1)?;
        Ok(digits)
    }

    /// A key field: `S`, then an X9.143 block whose header (version character, then 4
    /// decimal digits) says its length. Any other key scheme is `26`.
    pub fn key(&mut self) -> Result<&'a str, ErrorCode> {
        match self.rest.first() {
            Some(b'S') => {}
            Some(_) => return Err(ErrorCode::KEY_SCHEME),
            None => return Err(ErrorCode::INVALID_INPUT),
        }
        let len = self
            .rest
            .get(2..6)
            .filter(|l| l.iter().all(u8::is_ascii_digit))
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| (16..=MAX_KEY_BLOCK).contains(&l))
            .ok_or(ErrorCode::KEY_BLOCK_FORMAT)?;
        if self.rest.len() < 1 + len {
            return Err(ErrorCode::KEY_BLOCK_FORMAT);
        }
        self.text(1 + len, |b| b.is_ascii_graphic())
            .map_err(|_| ErrorCode::KEY_BLOCK_FORMAT)
    }

    /// Nothing may follow the last field.
    pub fn end(&self) -> Result<(), ErrorCode> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ErrorCode::INVALID_INPUT)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_are_checked_and_total() {
        let mut c = Cursor::new(b"0123ABcd4111;rest");
        assert_eq!(c.digits(4).unwrap(), "0123");
        assert_eq!(c.hex(4).unwrap(), "ABcd");
        assert_eq!(c.digits_until(b';', 19).unwrap(), "4111");
        assert_eq!(c.digits(2), Err(ErrorCode::INVALID_INPUT));
        let mut c = Cursor::new(b"12");
        assert_eq!(c.digits(3), Err(ErrorCode::INVALID_INPUT));
        assert_eq!(Cursor::new(b"G1").hex(2), Err(ErrorCode::INVALID_INPUT));
        assert_eq!(
            Cursor::new(b";1").digits_until(b';', 19),
            Err(ErrorCode::INVALID_INPUT)
        );
        assert_eq!(
            Cursor::new(b"12345").digits_until(b';', 3),
            Err(ErrorCode::INVALID_INPUT)
        );
        assert!(Cursor::new(b"x").end().is_err());
        assert!(Cursor::new(b"").end().is_ok());
    }

    #[test]
    fn key_fields_take_the_length_their_header_says() {
        let block = format!("SD0016{}", "A".repeat(11));
        let mut c = Cursor::new(format!("{block}01").as_bytes().to_vec().leak());
        assert_eq!(c.key().unwrap(), block);
        assert_eq!(c.digits(2).unwrap(), "01");
        assert_eq!(Cursor::new(b"U0123").key(), Err(ErrorCode::KEY_SCHEME));
        assert_eq!(Cursor::new(b"0123").key(), Err(ErrorCode::KEY_SCHEME));
        assert_eq!(Cursor::new(b"SD00").key(), Err(ErrorCode::KEY_BLOCK_FORMAT));
        assert_eq!(
            Cursor::new(b"SDxxxx").key(),
            Err(ErrorCode::KEY_BLOCK_FORMAT)
        );
        assert_eq!(
            Cursor::new(b"SD0100AAA").key(),
            Err(ErrorCode::KEY_BLOCK_FORMAT)
        );
        assert_eq!(Cursor::new(b"").key(), Err(ErrorCode::INVALID_INPUT));
    }
}
