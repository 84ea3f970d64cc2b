//! `BU` (generate a key check value): `key.list`, answered with the check value of the
//! one key version the request's key block names. `A0` (generate a key): `key.generate`,
//! answered with the new key as an `S` block (as `cofre keys export --payshield`).
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

use std::sync::Arc;

use crate::crypto::ClearKey;
use crate::keys::{KeyKind, payshield};
use crate::protocol::{Fields, Tag};

use super::super::super::state::Shared;
use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, Resolved, body};

/// The longest key id an `A0` optional block can carry (its length is 2H, header
/// included).
const MAX_ID: usize = 0xFF - 4;

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

/// What `A0` asks for.
#[derive(Debug, PartialEq, Eq)]
struct NewKey<'a> {
    id: &'a str,
    kind: KeyKind,
    algorithm: crate::keys::KeyAlgorithm,
    exportable: bool,
}

/// `A0` fields: mode (1, `0`: generate only), key type (3, `FFF`: key block), key
/// scheme (1, `S`), `#`, key usage (2), algorithm (1), mode of use (1), key version
/// number (2, `00`), exportability (1, `N` or `E`), number of optional blocks (2, `01`),
/// then optional block `01` (2), its length (2H, its 4 header characters included) and
/// the new key's id. The id's first component names cofre's kind (`zpk.acquirer-2` is
/// a ZPK); usage, algorithm and mode of use must be that kind's TR-31 header (`A6`
/// otherwise).
fn new_key(data: &[u8]) -> Result<NewKey<'_>, ErrorCode> {
    let mut c = Cursor::new(data);
    let fixed = |c: &mut Cursor<'_>, want: &[u8]| -> Result<(), ErrorCode> {
        if c.take(want.len())? == want {
            Ok(())
        } else {
            Err(ErrorCode::INVALID_INPUT)
        }
    };
    fixed(&mut c, b"0FFFS#")?;
    let usage = c.take(2)?;
    let [algorithm] = *c.take(1)? else {
        return Err(ErrorCode::INVALID_INPUT);
    };
    let [mode] = *c.take(1)? else {
        return Err(ErrorCode::INVALID_INPUT);
    };
    fixed(&mut c, b"00")?;
    let exportable = match c.take(1)? {
        b"N" => false,
        b"E" => true,
        _ => return Err(ErrorCode::INVALID_INPUT),
    };
    fixed(&mut c, b"0101")?;
    let len = usize::from_str_radix(c.hex(2)?, 16).map_err(|_| ErrorCode::INVALID_INPUT)?;
    let id_len = len
        .checked_sub(4)
        .filter(|n| (1..=MAX_ID).contains(n))
        .ok_or(ErrorCode::INVALID_INPUT)?;
    let id = std::str::from_utf8(c.take(id_len)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    c.end()?;
    let kind: KeyKind = id
        .split('.')
        .next()
        .and_then(|k| k.parse().ok())
        .ok_or(ErrorCode::INVALID_INPUT)?;
    let algorithm = kind
        .allowed_algorithms()
        .iter()
        .copied()
        .find(|a| a.tr31_code() as u32 == u32::from(algorithm))
        .ok_or(ErrorCode::KEY_USAGE)?;
    if kind.tr31_usage(algorithm).as_bytes() != usage || kind.tr31_mode() as u32 != u32::from(mode)
    {
        return Err(ErrorCode::KEY_USAGE);
    }
    Ok(NewKey {
        id,
        kind,
        algorithm,
        exportable,
    })
}

/// `A0`: `key.generate` with the id, kind, algorithm (its default length) and
/// exportability; answer: the new key as an `S` block under the LMK, then its KCV (6H).
pub fn generate(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let new = new_key(data)?;
    let shared = Arc::clone(keys.shared.ok_or(ErrorCode::INTERNAL)?);
    let body = body(|w| {
        w.str(Tag::Key, new.id)
            .str(Tag::Kind, &new.kind.to_string())
            .str(Tag::Algorithm, &new.algorithm.to_string())
            .bool(Tag::Exportable, new.exportable);
    })?;
    let id = new.id.to_owned();
    let kbpk = keys.kbpk.clone();
    Ok((body, Box::new(move |f| generated(f, &shared, &kbpk, &id))))
}

/// The block of the version `key.generate` made, read from the ring it installed.
fn generated(
    f: &Fields<'_>,
    shared: &Shared,
    kbpk: &ClearKey,
    id: &str,
) -> Result<Vec<u8>, ErrorCode> {
    let version = f
        .u32(Tag::KeyVersion)
        .ok()
        .flatten()
        .ok_or(ErrorCode::INTERNAL)?;
    let kcv = f.str(Tag::Kcv).ok().flatten().ok_or(ErrorCode::INTERNAL)?;
    let ring = shared.ring();
    let held = ring.held(id, version).ok_or(ErrorCode::INTERNAL)?;
    let block = payshield::wrap(
        kbpk,
        held.kind,
        held.algorithm,
        id,
        version,
        &held.key,
        &mut rand::rng(),
    )
    .map_err(|_| ErrorCode::INTERNAL)?;
    Ok(format!("{block}{kcv}").into_bytes())
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
    fn a0_fields_name_a_kind_whose_header_they_repeat() {
        let new = new_key(b"0FFFS#P0TB00N010110zpk.acquirer").unwrap();
        assert_eq!(new.id, "zpk.acquirer");
        assert_eq!(new.kind, KeyKind::Zpk);
        assert!(!new.exportable);
        assert!(new_key(b"0FFFS#P0TB00E010109zpk.a").unwrap().exportable);
        // A CVK's header for a ZPK id: key usage.
        assert_eq!(
            new_key(b"0FFFS#C0TC00N010109zpk.a"),
            Err(ErrorCode::KEY_USAGE)
        );
        for bad in [
            &b"1FFFS#P0TB00N010109zpk.a"[..],
            b"0FFFS#P0TB00N01010Azpk.a",
            b"0FFFS#P0TB00N010109zpk.ax",
            b"0FFFS#P0TB00N010104",
            b"0FFFS#P0TB00N0101GGzpk.a",
            b"0FFFS#P0TB00X010109zpk.a",
            b"0FFFS#P0TB00N010109xyz.a",
            b"0FFFS#P0TB01N010109zpk.a",
            b"0FFFS#P0",
            b"",
        ] {
            assert_eq!(new_key(bad), Err(ErrorCode::INVALID_INPUT), "{bad:?}");
        }
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
