//! The wire protocol: frame codec and message vocabulary, bytes in and typed values out.
//!
//! Owns: the frame layout, opcodes, status codes, field tags and their types, and the
//! total parsers for all of them. Must not touch: sockets, clocks, keys. The daemon and
//! the client both build on this module; `protocol/README.md` is its specification and
//! `protocol/vectors/` holds golden frames.
//!
//! ```text
//! frame    = length:u32be payload            (length = bytes of payload)
//! request  = version:u8 type:u8=1 opcode:u16be request_id:u32be field*
//! response = version:u8 type:u8=2 opcode:u16be request_id:u32be status:u16be field*
//! field    = tag:u8 length:u16be value
//! ```

mod fields;
mod frame;
mod opcode;
mod status;

pub use fields::{FieldError, FieldType, Fields, FieldsWriter, Tag};
pub use frame::{
    FrameError, MessageType, RequestHeader, ResponseHeader, decode_request, decode_response,
    encode_request, encode_response, encode_response_with, frame_length,
};
pub use opcode::Opcode;
pub use status::Status;

/// The protocol version this code speaks.
pub const VERSION: u8 = 1;
/// Bytes in the length prefix.
pub const LENGTH_PREFIX: usize = 4;
/// Bytes in a request header (after the length prefix).
pub const REQUEST_HEADER_LEN: usize = 8;
/// Bytes in a response header (after the length prefix).
pub const RESPONSE_HEADER_LEN: usize = 10;
/// Default largest request payload the daemon accepts.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024;
/// Largest payload either side ever sends or accepts, whatever the configuration.
pub const ABSOLUTE_MAX_FRAME: usize = 1024 * 1024;

#[cfg(test)]
mod tests;
