//! The payment-cryptography core: pure, synchronous functions of their inputs.
//!
//! Owns: block ciphers (TDES, AES), key check values, ISO 9564 PIN blocks, Visa PVV,
//! IBM 3624, Visa CVV family, dynamic CVV2, FF1 PAN tokens, MACs, PAN generation,
//! TR-31 / ANSI X9.143 key blocks and DUKPT (ANSI X9.24-1:2009 TDES, X9.24-3-2017 AES).
//!
//! Must not touch: files, sockets, clocks, environment, logging. Callers pass time,
//! counters and random number generators in, so every rule is testable without I/O.
//! Secrets travel in [`ClearKey`] and [`Pin`], which zeroize on drop and never print.

pub mod cipher;
pub mod cvv;
pub mod dcvv2;
pub mod dukpt;
mod error;
pub mod kcv;
pub mod mac;
pub mod pan;
pub mod pinblock;
pub mod pvv;
mod secret;
pub mod token;
pub mod tr31;

pub use error::{DukptError, Error, PinBlockError, Tr31Error};
pub use secret::{ClearKey, Pin, ct_eq};
