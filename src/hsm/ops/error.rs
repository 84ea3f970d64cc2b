//! The operations' one error type: a wire status, a short message (never secret), the
//! field at fault for `malformed_field`, and sometimes a machine-readable reason.

use crate::keys::KeysError;
use crate::protocol::{FieldError, FieldsWriter, Status, Tag};

/// A refusal: status, short message, and the field at fault if one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Wire status.
    pub status: Status,
    /// Short reason (never secret).
    pub message: String,
    /// Tag of the field at fault.
    pub field: Option<u8>,
    /// Machine-readable detail (e.g. `dcvv2_active`).
    pub reason: Option<&'static str>,
}

/// Result of an operation.
pub type OpResult = Result<(), OpError>;

impl OpError {
    /// A refusal with a status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            reason: None,
        }
    }

    /// Adds a machine-readable reason.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// A malformed field.
    pub fn field(tag: Tag, message: impl Into<String>) -> Self {
        Self {
            status: Status::MalformedField,
            message: message.into(),
            field: Some(tag.code()),
            reason: None,
        }
    }

    /// The same refusal, naming `tag` when it is a `malformed_field` without a field.
    pub fn at(mut self, tag: Tag) -> Self {
        if self.status == Status::MalformedField && self.field.is_none() {
            self.field = Some(tag.code());
        }
        self
    }

    /// Writes the error body.
    pub fn write(&self, out: &mut FieldsWriter<'_>) {
        out.str(Tag::Message, &sanitize(&self.message));
        if let Some(f) = self.field {
            out.u8(Tag::Field, f);
        }
        if let Some(r) = self.reason {
            out.str(Tag::Reason, r);
        }
    }
}

/// Messages are `str` fields: printable ASCII, at most 255 bytes.
fn sanitize(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(255)
        .collect()
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        Self {
            status: Status::MalformedField,
            message: e.to_string(),
            field: Some(e.tag),
            reason: None,
        }
    }
}

/// A key change the shared key ledger cannot record (unreachable, or holding a
/// document that fails its checks) is refused as the store being unavailable.
impl From<crate::hsm::ledger::LedgerError> for OpError {
    fn from(e: crate::hsm::ledger::LedgerError) -> Self {
        OpError::new(Status::StoreUnavailable, e.to_string())
    }
}

impl From<KeysError> for OpError {
    fn from(e: KeysError) -> Self {
        let status = match &e {
            KeysError::UnknownKey(_) | KeysError::NoUsableVersion(_) => Status::UnknownKey,
            KeysError::WrongUsage { .. } => Status::WrongKeyUsage,
            KeysError::NotExportable(_) => Status::NotExportable,
            KeysError::Exists(_) => {
                return OpError::field(Tag::Key, e.to_string()).with_reason("key_exists");
            }
            KeysError::Invalid(_) => Status::MalformedField,
            KeysError::BlockRefused(_) | KeysError::Crypto(crate::crypto::Error::Tr31(_)) => {
                Status::KeyBlockRefused
            }
            _ => Status::Internal,
        };
        Self::new(status, e.to_string())
    }
}

/// A crypto-layer refusal of a value from `tag`.
pub fn bad(tag: Tag) -> impl Fn(crate::crypto::Error) -> OpError {
    move |e| OpError::field(tag, format!("{}: {e}", tag.name()))
}
