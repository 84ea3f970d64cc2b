//! Frames: the length prefix and the fixed headers. Pure functions over byte slices, in
//! the manner of a `check` then `parse`: the caller reads the 4-byte prefix, asks
//! [`frame_length`] whether to read that many bytes (the cap is checked before anything
//! is reserved), then decodes the payload.

use super::fields::{FieldError, Fields, FieldsWriter};
use super::{ABSOLUTE_MAX_FRAME, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN, VERSION};
use crate::protocol::Status;

/// The header's message type byte (protocol/README.md, "Frames").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client to daemon.
    Request = 1,
    /// Daemon to client.
    Response = 2,
}

/// Why a frame cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is smaller than a header.
    #[error("frame of {0} bytes is shorter than its header")]
    TooShort(usize),
    /// The length prefix is over the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Declared length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The type byte is not the expected one.
    #[error("message type {0} is not expected here")]
    WrongType(u8),
    /// A body field is malformed.
    #[error("{0}")]
    Field(#[from] FieldError),
}

/// Validates a length prefix against `max` (itself capped at [`ABSOLUTE_MAX_FRAME`])
/// and the smallest header `min`, before the caller reads or reserves anything.
pub fn frame_length(prefix: [u8; 4], min: usize, max: usize) -> Result<usize, FrameError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    let max = max.min(ABSOLUTE_MAX_FRAME);
    if len > max {
        return Err(FrameError::TooLong { len, max });
    }
    if len < min {
        return Err(FrameError::TooShort(len));
    }
    Ok(len)
}

/// A request's fixed header. The opcode stays a raw code so that an unknown one can be
/// echoed in the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// Protocol version byte as sent.
    pub version: u8,
    /// Opcode as sent.
    pub opcode: u16,
    /// Client-chosen id, echoed in the response.
    pub request_id: u32,
}

/// A response's fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Protocol version byte.
    pub version: u8,
    /// The request's opcode, echoed.
    pub opcode: u16,
    /// The request's id, echoed.
    pub request_id: u32,
    /// Raw status code ([`Status::from_code`] names it).
    pub status: u16,
}

/// Splits a request payload (after the prefix) into its header and its unparsed body.
/// The body is parsed by the handler once the version and opcode are known to be good.
pub fn decode_request(payload: &[u8]) -> Result<(RequestHeader, &[u8]), FrameError> {
    let Some((head, body)) = payload.split_first_chunk::<REQUEST_HEADER_LEN>() else {
        return Err(FrameError::TooShort(payload.len()));
    };
    let [version, msg_type, o1, o2, r1, r2, r3, r4] = *head;
    let header = RequestHeader {
        version,
        opcode: u16::from_be_bytes([o1, o2]),
        request_id: u32::from_be_bytes([r1, r2, r3, r4]),
    };
    if msg_type != MessageType::Request as u8 {
        return Err(FrameError::WrongType(msg_type));
    }
    Ok((header, body))
}

/// Parses a response payload (after the prefix), with a leniently parsed body.
pub fn decode_response(payload: &[u8]) -> Result<(ResponseHeader, Fields<'_>), FrameError> {
    let Some((head, body)) = payload.split_first_chunk::<RESPONSE_HEADER_LEN>() else {
        return Err(FrameError::TooShort(payload.len()));
    };
    let [version, msg_type, o1, o2, r1, r2, r3, r4, s1, s2] = *head;
    if msg_type != MessageType::Response as u8 {
        return Err(FrameError::WrongType(msg_type));
    }
    let header = ResponseHeader {
        version,
        opcode: u16::from_be_bytes([o1, o2]),
        request_id: u32::from_be_bytes([r1, r2, r3, r4]),
        status: u16::from_be_bytes([s1, s2]),
    };
    Ok((header, Fields::parse_lenient(body)?))
}

fn patch_length(buf: &mut [u8], start: usize) -> Result<(), FieldError> {
    let len = buf.len() - start - 4;
    let too_long = FieldError {
        tag: 0,
        reason: "frame longer than the absolute maximum",
    };
    if len > ABSOLUTE_MAX_FRAME {
        return Err(too_long);
    }
    let len = u32::try_from(len).map_err(|_| too_long)?;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Appends a whole request frame (prefix included) to `buf`.
pub fn encode_request(
    buf: &mut Vec<u8>,
    opcode: u16,
    request_id: u32,
    body: impl FnOnce(&mut FieldsWriter<'_>),
) -> Result<(), FieldError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&[VERSION, MessageType::Request as u8]);
    buf.extend_from_slice(&opcode.to_be_bytes());
    buf.extend_from_slice(&request_id.to_be_bytes());
    let mut w = FieldsWriter::new(buf);
    body(&mut w);
    let r = w.finish().and_then(|()| patch_length(buf, start));
    if r.is_err() {
        buf.truncate(start);
    }
    r
}

/// Appends a whole response frame (prefix included) to `buf`. On a field error nothing
/// is appended and the caller should answer `internal` instead.
pub fn encode_response(
    buf: &mut Vec<u8>,
    opcode: u16,
    request_id: u32,
    status: Status,
    body: impl FnOnce(&mut FieldsWriter<'_>),
) -> Result<(), FieldError> {
    encode_response_with(buf, opcode, request_id, |w| {
        body(w);
        status
    })
    .map(|_| ())
}

/// Appends a response frame whose status is decided by the body writer: `body` writes
/// fields and returns the status (resetting the writer first if it fails half-way).
/// On a field error nothing is appended.
pub fn encode_response_with(
    buf: &mut Vec<u8>,
    opcode: u16,
    request_id: u32,
    body: impl FnOnce(&mut FieldsWriter<'_>) -> Status,
) -> Result<Status, FieldError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&[VERSION, MessageType::Response as u8]);
    buf.extend_from_slice(&opcode.to_be_bytes());
    buf.extend_from_slice(&request_id.to_be_bytes());
    let status_at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    let mut w = FieldsWriter::new(buf);
    let status = body(&mut w);
    let r = w
        .finish()
        .and_then(|()| patch_length(buf, start))
        .map(|()| status);
    match r {
        Ok(s) => buf[status_at..status_at + 2].copy_from_slice(&s.code().to_be_bytes()),
        Err(_) => buf.truncate(start),
    }
    r
}
