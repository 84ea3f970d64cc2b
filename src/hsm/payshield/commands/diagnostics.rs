//! `NC` (perform diagnostics): `health`. No fields. Answer: the LMK check value (16H:
//! cofre's 6-character LMK KCV, then `0` to 16 characters) and the firmware number (9A:
//! cofre's version, cut or padded with spaces to 9).

use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, body};

/// `NC`.
pub fn nc(data: &[u8]) -> Result<(Vec<u8>, Answer), ErrorCode> {
    Cursor::new(data).end()?;
    Ok((body(|_| {})?, Box::new(answer)))
}

fn answer(f: &Fields<'_>) -> Result<Vec<u8>, ErrorCode> {
    let kcv = f
        .str(Tag::LmkKcv)
        .ok()
        .flatten()
        .ok_or(ErrorCode::INTERNAL)?;
    let version = f
        .str(Tag::ServerVersion)
        .ok()
        .flatten()
        .ok_or(ErrorCode::INTERNAL)?;
    let mut out = format!("{kcv:0<16.16}");
    out.push_str(&format!("{version:<9.9}"));
    Ok(out.into_bytes())
}
