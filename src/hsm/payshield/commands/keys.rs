//! `BU` (generate a key check value): `key.list`, answered with the check value of the
//! one key version the request's key block names.
//!
//! `BU` fields: key type code (2, `FF`: the key is a key block), key length flag (1,
//! `F`: likewise), the key (an `S` block); answer: the key check value (6H, cofre's KCV,
//! as `cofre keys list` shows it).
//!
//! Policy: `BU` is `key.list`, so it is allowed exactly to the roles whose operations
//! include `key.list` (the security officer's in the example policy); any other role
//! (a switch's) answers `17`. The block itself is checked first (MAC, held id and
//! version, same material), so a role that may list keys learns nothing from `BU` that
//! `key.list` would not tell it.

use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, Resolved, body};

/// `BU`.
pub fn kcv(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    if c.take(2)? != b"FF" || c.take(1)? != b"F" {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let key = c.key()?;
    c.end()?;
    let named = keys.named(key)?;
    let body = body(|_| {})?;
    Ok((body, Box::new(move |f| listed_kcv(f, &named))))
}

/// The KCV on the listing line of `named`'s id and version (`<id> v<version> ...
/// kcv=<KCV> ...`, [`crate::keys::store::KeyRecord::summary`]).
fn listed_kcv(f: &Fields<'_>, named: &Resolved) -> Result<Vec<u8>, ErrorCode> {
    let listing = f
        .str(Tag::Listing)
        .ok()
        .flatten()
        .ok_or(ErrorCode::INTERNAL)?;
    let version = format!("v{}", named.version);
    let kcv = listing
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|w| w.first() == Some(&named.id.as_str()) && w.get(1) == Some(&version.as_str()))
        .and_then(|w| w.iter().find_map(|t| t.strip_prefix("kcv=")))
        .filter(|k| k.len() == 6 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        // Listed again between the block's check and the listing: retired meanwhile.
        .ok_or(ErrorCode::KEY_NOT_HELD)?;
    Ok(kcv.to_ascii_uppercase().into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::KeyKind;
    use crate::protocol::FieldsWriter;

    fn listing(text: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = FieldsWriter::new(&mut buf);
        w.str(Tag::Listing, text);
        w.finish().unwrap();
        buf
    }

    #[test]
    fn the_kcv_is_the_named_versions_line() {
        let named = Resolved {
            id: "zpk.a".into(),
            version: 2,
            kind: KeyKind::Zpk,
        };
        let text = "zpk.ab v2 zpk tdes active kcv=111111 exportable=false created=x\n\
                    zpk.a v1 zpk tdes verify-only kcv=222222 exportable=false created=x\n\
                    zpk.a v2 zpk tdes active kcv=3a3b3c exportable=false created=x";
        let buf = listing(text);
        let f = Fields::parse_lenient(&buf).unwrap();
        assert_eq!(listed_kcv(&f, &named).unwrap(), b"3A3B3C");
        let gone = Resolved {
            version: 3,
            ..named
        };
        assert_eq!(listed_kcv(&f, &gone), Err(ErrorCode::KEY_NOT_HELD));
        let buf = listing("zpk.a v3 zpk tdes active kcv=12 exportable=false");
        let f = Fields::parse_lenient(&buf).unwrap();
        assert_eq!(listed_kcv(&f, &gone), Err(ErrorCode::KEY_NOT_HELD));
    }
}
