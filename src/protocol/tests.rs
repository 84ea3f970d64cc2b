//! Codec tests: round trips, and every malformed input class as a typed error.

use super::*;

fn request(fields: impl FnOnce(&mut FieldsWriter<'_>)) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_request(&mut buf, Opcode::PinVerify.code(), 7, fields).unwrap();
    buf
}

#[test]
fn request_round_trip() {
    let frame = request(|w| {
        w.str(Tag::Pan, "4111111111111111")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &[1, 2, 3, 4, 5, 6, 7, 8])
            .u32(Tag::KeyVersion, 3)
            .u64(Tag::Counter, u64::MAX);
    });
    let len = frame_length(frame[..4].try_into().unwrap(), 8, DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(len, frame.len() - 4);
    let (h, body) = decode_request(&frame[4..]).unwrap();
    assert_eq!((h.version, h.opcode, h.request_id), (1, 0x0020, 7));
    let f = Fields::parse_strict(body).unwrap();
    assert_eq!(f.req_str(Tag::Pan).unwrap(), "4111111111111111");
    assert_eq!(f.req_u8(Tag::Format).unwrap(), 0);
    assert_eq!(f.u32(Tag::KeyVersion).unwrap(), Some(3));
    assert_eq!(f.u64(Tag::Counter).unwrap(), Some(u64::MAX));
    assert_eq!(f.req_bytes(Tag::PinBlock).unwrap().len(), 8);
    assert_eq!(f.str(Tag::Pvv).unwrap(), None);
    assert!(f.req_str(Tag::Pvv).is_err());
    assert!(f.only(&[Tag::Pan, Tag::Format]).is_err());
    // Debug shows tags, never values.
    assert!(!format!("{f:?}").contains("4111"));
}

#[test]
fn response_round_trip_and_lenient_unknown_tags() {
    let mut buf = Vec::new();
    encode_response(&mut buf, 0x0001, 9, Status::Ok, |w| {
        w.str(Tag::LmkKcv, "35146C");
    })
    .unwrap();
    // An unknown tag appended by a newer daemon is skipped by the client.
    buf.extend_from_slice(&[0xEE, 0, 1, 0x42]);
    let n = u32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&n.to_be_bytes());
    let (h, f) = decode_response(&buf[4..]).unwrap();
    assert_eq!(h.status, 0);
    assert_eq!(h.request_id, 9);
    assert_eq!(f.req_str(Tag::LmkKcv).unwrap(), "35146C");
}

#[test]
fn length_prefix_limits() {
    assert_eq!(
        frame_length(20_000u32.to_be_bytes(), 8, DEFAULT_MAX_FRAME),
        Err(FrameError::TooLong {
            len: 20_000,
            max: DEFAULT_MAX_FRAME
        })
    );
    assert_eq!(
        frame_length(u32::MAX.to_be_bytes(), 8, usize::MAX),
        Err(FrameError::TooLong {
            len: u32::MAX as usize,
            max: ABSOLUTE_MAX_FRAME
        })
    );
    assert_eq!(
        frame_length(3u32.to_be_bytes(), 8, DEFAULT_MAX_FRAME),
        Err(FrameError::TooShort(3))
    );
}

#[test]
fn malformed_bodies_name_the_field() {
    let bad = |body: &[u8]| Fields::parse_strict(body).unwrap_err();
    assert_eq!(bad(&[0x01]).reason, "field header is truncated");
    assert_eq!(bad(&[0x01, 0, 5, b'1']).reason, "length overruns the frame");
    assert_eq!(bad(&[0xEE, 0, 0]).reason, "unknown tag");
    assert_eq!(bad(&[0x07, 0, 1, 0, 0x07, 0, 1, 0]).reason, "repeated");
    let e = bad(&[0x07, 0, 2, 0, 0]);
    assert_eq!(
        (e.tag, e.reason),
        (0x07, "value does not fit the field's type")
    );
    assert_eq!(bad(&[0x01, 0, 1, b'\n']).tag, 0x01);
    assert_eq!(bad(&[0x56, 0, 1, 2]).tag, 0x56);
    assert!(bad(&[0x07, 0, 2, 0, 0]).to_string().contains("format"));
    assert!(decode_request(&[1, 2, 0, 1, 0, 0, 0, 1]).is_err());
    assert!(decode_request(&[1, 1, 0]).is_err());
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_a_value_never_a_panic() {
    let frame = request(|w| {
        w.str(Tag::Pan, "4111111111111111")
            .u8(Tag::Format, 4)
            .bytes(Tag::PinBlock, &[0xAB; 16]);
    });
    for cut in 0..frame.len() {
        let p = &frame[4..cut.max(4)];
        if let Ok((_, body)) = decode_request(p) {
            let _ = Fields::parse_strict(body);
        }
    }
    for i in 4..frame.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut f = frame.clone();
            f[i] ^= flip;
            if let Ok((_, body)) = decode_request(&f[4..]) {
                let _ = Fields::parse_strict(body);
                let _ = Fields::parse_lenient(body);
            }
        }
    }
}

#[test]
fn codes_and_names_are_unique_and_round_trip() {
    for (i, op) in Opcode::ALL.iter().enumerate() {
        assert_eq!(Opcode::from_code(op.code()), Some(*op));
        assert_eq!(Opcode::from_name(op.name()), Some(*op));
        assert_eq!(op.index(), i);
    }
    // Status codes are 0, 1, 2, ... (the daemon's metrics index by them).
    for (i, s) in Status::ALL.iter().enumerate() {
        assert_eq!(Status::from_code(s.code()), Some(*s));
        assert_eq!(usize::from(s.code()), i);
    }
    for t in Tag::ALL {
        assert_eq!(Tag::from_code(t.code()), Some(*t));
    }
}

#[test]
fn writer_refuses_values_that_do_not_fit() {
    let mut buf = Vec::new();
    let r = encode_request(&mut buf, 1, 1, |w| {
        w.str(Tag::Pan, "bad\nvalue");
    });
    assert!(r.is_err());
    assert!(buf.is_empty(), "nothing half-written");
}

/// The rows of the markdown table under `heading` in protocol/README.md: cells with
/// their backquotes removed.
fn spec_table(heading: &str) -> Vec<Vec<String>> {
    let spec = include_str!("../../protocol/README.md");
    let start = spec.find(heading).unwrap_or_else(|| panic!("no {heading}"));
    spec[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

// The specification's tables are the code's, row for row and in code order, so that a
// client written from the specification speaks what the daemon speaks.
#[test]
fn the_spec_tables_are_the_code() {
    let statuses: Vec<(String, String)> = Status::ALL
        .iter()
        .map(|s| (s.code().to_string(), s.name().to_owned()))
        .collect();
    let rows: Vec<(String, String)> = spec_table("## Status codes")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(rows, statuses);
    let opcodes: Vec<(String, String)> = Opcode::ALL
        .iter()
        .map(|o| (format!("0x{:04X}", o.code()), o.name().to_owned()))
        .collect();
    let rows: Vec<(String, String)> = spec_table("## Opcodes")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(rows, opcodes);
    let tags: Vec<(String, String, String)> = Tag::ALL
        .iter()
        .map(|t| {
            let ty = match t.field_type() {
                FieldType::U8 => "u8",
                FieldType::U32 => "u32",
                FieldType::U64 => "u64",
                FieldType::Bool => "bool",
                FieldType::Str => "str",
                FieldType::Text => "text",
                FieldType::Bytes => "bytes",
            };
            (
                format!("0x{:02X}", t.code()),
                t.name().to_owned(),
                ty.to_owned(),
            )
        })
        .collect();
    let rows: Vec<(String, String, String)> = spec_table("## Field tags")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(rows, tags);
}
