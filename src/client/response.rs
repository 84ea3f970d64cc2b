//! A daemon's answer, owned: the status and the body bytes, read through typed getters.
//! The body is checked once when the frame arrives, so the getters cannot meet a
//! malformed field; `Debug` shows field names only, never values.

use std::fmt;

use super::ClientError;
use crate::protocol::{Fields, RESPONSE_HEADER_LEN, ResponseHeader, Status, Tag, decode_response};

/// A response: the raw status code and the body's fields.
#[derive(Clone)]
pub struct Response {
    /// The raw status code ([`Response::status`] names it when this client knows it).
    pub status_code: u16,
    body: Vec<u8>,
}

impl fmt::Debug for Response {
    // Field values may be PANs or PIN blocks: names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.fields().iter().map(|(t, _)| t.name()).collect();
        f.debug_struct("Response")
            .field("status", &self.status_name())
            .field("fields", &names)
            .finish()
    }
}

impl Response {
    /// Parses a whole response payload (the frame after its length prefix). A frame
    /// that is not a well-formed response is [`ClientError::Protocol`].
    pub fn decode(mut payload: Vec<u8>) -> Result<(ResponseHeader, Self), ClientError> {
        let header = decode_response(&payload)
            .map_err(|e| ClientError::Protocol(format!("bad response frame: {e}")))?
            .0;
        let body = payload.split_off(RESPONSE_HEADER_LEN.min(payload.len()));
        Ok((
            header,
            Self {
                status_code: header.status,
                body,
            },
        ))
    }

    /// The status, if this client knows the code (an unknown code is a failure).
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.status_code)
    }

    /// The status's name, or `status_<code>` for a code this client does not know.
    pub fn status_name(&self) -> String {
        self.status().map_or_else(
            || format!("status_{}", self.status_code),
            |s| s.name().to_owned(),
        )
    }

    /// Whether the status is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status() == Some(Status::Ok)
    }

    /// The encoded body fields.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body fields.
    pub fn fields(&self) -> Fields<'_> {
        // Checked in `decode`; an empty body is the fallback that cannot happen.
        Fields::parse_lenient(&self.body).unwrap_or(Fields::empty())
    }

    /// A `str` (or `text`) field.
    pub fn str(&self, tag: Tag) -> Option<String> {
        self.fields().str(tag).ok().flatten().map(str::to_owned)
    }

    /// A `bytes` field.
    pub fn bytes(&self, tag: Tag) -> Option<Vec<u8>> {
        self.fields().bytes(tag).ok().flatten().map(<[u8]>::to_vec)
    }

    /// A `u8` field.
    pub fn u8(&self, tag: Tag) -> Option<u8> {
        self.fields().u8(tag).ok().flatten()
    }

    /// A `u32` field.
    pub fn u32(&self, tag: Tag) -> Option<u32> {
        self.fields().u32(tag).ok().flatten()
    }

    /// A `u64` field.
    pub fn u64(&self, tag: Tag) -> Option<u64> {
        self.fields().u64(tag).ok().flatten()
    }

    /// A `bool` field.
    pub fn bool(&self, tag: Tag) -> Option<bool> {
        self.fields().bool(tag).ok().flatten()
    }

    /// The daemon's short reason for a non-ok status (empty if none).
    pub fn message(&self) -> String {
        self.str(Tag::Message).unwrap_or_default()
    }

    /// The machine-readable detail of a status (e.g. `dcvv2_active`).
    pub fn reason(&self) -> Option<String> {
        self.str(Tag::Reason)
    }

    /// For `malformed_field`: the tag at fault (`None` if absent or unknown here).
    pub fn field_at_fault(&self) -> Option<Tag> {
        self.u8(Tag::Field).and_then(Tag::from_code)
    }

    /// `Ok(self)` for status `ok`; any other status (an unknown code included) as
    /// [`ClientError::Status`].
    pub fn ok(self) -> Result<Self, ClientError> {
        if self.is_ok() {
            Ok(self)
        } else {
            Err(self.status_error())
        }
    }

    /// The status as an error (for a response known not to be `ok`).
    pub(super) fn status_error(&self) -> ClientError {
        match self.status() {
            Some(status) => ClientError::Status {
                status,
                message: self.message(),
            },
            // An unknown code is a failure (protocol/README.md); `internal` is the
            // status whose meaning ("may not have been executed") fits it, and the
            // message keeps the code.
            None => ClientError::Status {
                status: Status::Internal,
                message: format!(
                    "unknown status code {}: {}",
                    self.status_code,
                    self.message()
                ),
            },
        }
    }

    /// A required `str` field of an `ok` response; its absence is the daemon's fault.
    pub(super) fn need_str(&self, tag: Tag) -> Result<String, ClientError> {
        self.str(tag).ok_or_else(|| missing(tag))
    }

    /// A required `bytes` field of an `ok` response.
    pub(super) fn need_bytes(&self, tag: Tag) -> Result<Vec<u8>, ClientError> {
        self.bytes(tag).ok_or_else(|| missing(tag))
    }

    /// A required `u32` field of an `ok` response.
    pub(super) fn need_u32(&self, tag: Tag) -> Result<u32, ClientError> {
        self.u32(tag).ok_or_else(|| missing(tag))
    }
}

fn missing(tag: Tag) -> ClientError {
    ClientError::Protocol(format!("the response has no {} field", tag.name()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::protocol::{FieldsWriter, LENGTH_PREFIX, Opcode, encode_response};

    fn response(status: Status, body: impl FnOnce(&mut FieldsWriter<'_>)) -> Response {
        let mut buf = Vec::new();
        encode_response(&mut buf, Opcode::PanGenerate.code(), 5, status, body).unwrap();
        let (h, r) = Response::decode(buf.split_off(LENGTH_PREFIX)).unwrap();
        assert_eq!((h.request_id, h.opcode), (5, Opcode::PanGenerate.code()));
        r
    }

    #[test]
    fn typed_getters() {
        let r = response(Status::Ok, |w| {
            w.str(Tag::MaskedPan, "411111******1111")
                .bytes(Tag::Encrypted, &[0xAB, 0xCD])
                .u32(Tag::TokenVersion, 3)
                .u64(Tag::Uptime, u64::MAX)
                .u8(Tag::Format, 4)
                .bool(Tag::Locked, true)
                .str(Tag::Listing, "a v1\nb v2");
        });
        assert!(r.is_ok());
        assert_eq!(r.str(Tag::MaskedPan).as_deref(), Some("411111******1111"));
        assert_eq!(r.bytes(Tag::Encrypted), Some(vec![0xAB, 0xCD]));
        assert_eq!(r.u32(Tag::TokenVersion), Some(3));
        assert_eq!(r.u64(Tag::Uptime), Some(u64::MAX));
        assert_eq!(r.u8(Tag::Format), Some(4));
        assert_eq!(r.bool(Tag::Locked), Some(true));
        assert_eq!(r.str(Tag::Listing).as_deref(), Some("a v1\nb v2"));
        // Absent, and read as the wrong type: None, never a panic.
        assert_eq!(r.str(Tag::Token), None);
        assert_eq!(r.u32(Tag::Uptime), None);
        assert_eq!(r.message(), "");
        assert!(r.clone().ok().is_ok());
    }

    #[test]
    fn non_ok_statuses_become_errors_with_the_message() {
        let r = response(Status::MalformedField, |w| {
            w.str(Tag::Message, "bad bin")
                .u8(Tag::Field, Tag::Bin.code())
                .str(Tag::Reason, "too_short");
        });
        assert_eq!(r.field_at_fault(), Some(Tag::Bin));
        assert_eq!(r.reason().as_deref(), Some("too_short"));
        let e = r.ok().unwrap_err();
        assert!(matches!(
            e,
            ClientError::Status { status: Status::MalformedField, ref message } if message == "bad bin"
        ));
        assert_eq!(e.to_string(), "malformed_field: bad bin");
    }

    #[test]
    fn an_unknown_status_code_is_a_failure() {
        let mut buf = Vec::new();
        encode_response(&mut buf, 1, 1, Status::Ok, |_| {}).unwrap();
        // Status bytes sit after the 4-byte prefix and 8 bytes of header.
        buf[12..14].copy_from_slice(&777u16.to_be_bytes());
        let (_, r) = Response::decode(buf.split_off(LENGTH_PREFIX)).unwrap();
        assert_eq!(r.status(), None);
        assert_eq!(r.status_name(), "status_777");
        let e = r.ok().unwrap_err();
        assert!(e.to_string().contains("777"), "{e}");
    }

    #[test]
    fn debug_names_fields_but_never_shows_values() {
        let r = response(Status::Ok, |w| {
            w.str(Tag::Pan, "4111111111111111")
                .bytes(Tag::PinBlock, &[0x12; 8]);
        });
        let shown = format!("{r:?}");
        assert!(
            shown.contains("pan") && shown.contains("pin_block"),
            "{shown}"
        );
        assert!(!shown.contains("4111") && !shown.contains("18"), "{shown}");
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        assert!(matches!(
            Response::decode(vec![1, 2, 0]),
            Err(ClientError::Protocol(_))
        ));
        // A field overrunning the frame.
        let mut buf = Vec::new();
        encode_response(&mut buf, 1, 1, Status::Ok, |_| {}).unwrap();
        let mut payload = buf.split_off(LENGTH_PREFIX);
        payload.extend_from_slice(&[Tag::Pan.code(), 0, 9, b'4']);
        assert!(matches!(
            Response::decode(payload),
            Err(ClientError::Protocol(_))
        ));
    }
}
