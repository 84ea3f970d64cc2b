//! Response status codes: one table for every operation (protocol/README.md, "Status").

use std::fmt;

macro_rules! statuses {
    ($($variant:ident = $code:literal, $name:literal, $doc:literal;)*) => {
        /// The outcome of a request.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Status {
            $(#[doc = $doc] $variant,)*
        }

        impl Status {
            /// Every status, in code order.
            pub const ALL: &[Status] = &[$(Status::$variant,)*];

            /// The wire code.
            pub fn code(self) -> u16 {
                match self { $(Status::$variant => $code,)* }
            }

            /// Parses a wire code; unknown codes are `None` (a client should treat them
            /// as failures it does not understand).
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(Status::$variant),)* _ => None }
            }

            /// The stable name used in logs, metrics and the CLI.
            pub fn name(self) -> &'static str {
                match self { $(Status::$variant => $name,)* }
            }
        }
    };
}

statuses! {
    Ok = 0, "ok", "The operation succeeded.";
    VerificationFailed = 1, "verification_failed", "A PIN, CVV, dCVV2 or MAC did not verify.";
    PinLocked = 2, "pin_locked", "The card's PIN (or dCVV2) tries are exhausted; the PIN was not looked at.";
    UnknownKey = 3, "unknown_key", "No key with that id, or no version usable for this.";
    WrongKeyUsage = 4, "wrong_key_usage", "The key's kind does not allow this operation.";
    NotAuthorised = 5, "not_authorised", "The caller's role may not do this, or not with this key.";
    MalformedField = 6, "malformed_field", "A field is missing, repeated, unknown, or has a bad value.";
    UnsupportedVersion = 7, "unsupported_version", "The frame's protocol version is not 1.";
    Overloaded = 8, "overloaded", "Too many requests in flight; retry later. The request was not executed.";
    Internal = 9, "internal", "The daemon failed; the request may not have been executed.";
    UnknownOperation = 10, "unknown_operation", "The opcode is not defined.";
    InvalidPinBlock = 11, "invalid_pin_block", "The deciphered PIN block breaks an ISO 9564 rule (wrong key or PAN, or corrupted).";
    TranslationNotAllowed = 12, "translation_not_allowed", "The PIN block translation breaks a PCI PIN rule (e.g. into format 1, or format 2).";
    PanMismatch = 13, "pan_mismatch", "A PAN-bound translation would change the PAN.";
    NotExportable = 14, "not_exportable", "The key may not be exported.";
    InvalidToken = 15, "invalid_token", "The value is not a PAN token under the token key.";
    InvalidBlob = 16, "invalid_blob", "The LMK-encrypted PIN does not verify for this card.";
    KeyBlockRefused = 17, "key_block_refused", "A TR-31 key block failed its MAC or a header rule.";
    Replayed = 18, "replayed", "The dCVV2 code was already used.";
    Expired = 19, "expired", "The dCVV2 code belongs to a time step outside the window.";
    StoreUnavailable = 20, "store_unavailable", "The counter store cannot record attempts, so PIN and dCVV2 verification are refused.";
    BruteForceGuard = 21, "brute_force_guard", "PIN verification is suspended by the global brute-force guard.";
    WeakPin = 22, "weak_pin", "The new PIN is refused by the weak-PIN policy; reason names the rule.";
    KsnRefused = 23, "ksn_refused", "The DUKPT KSN's transaction counter is one no terminal may send (zero, exhausted, too many one-bits); reason names which.";
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
