//! Operation codes. The name (`pin.verify`) is what the role policy and metrics use.

use std::fmt;

macro_rules! opcodes {
    ($($variant:ident = $code:literal, $name:literal, $doc:literal;)*) => {
        /// What a request asks for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Opcode {
            $(#[doc = $doc] $variant,)*
        }

        impl Opcode {
            /// Every operation, in code order.
            pub const ALL: &[Opcode] = &[$(Opcode::$variant,)*];

            /// The position in [`Opcode::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// The wire code.
            pub fn code(self) -> u16 {
                match self { $(Opcode::$variant => $code,)* }
            }

            /// Parses a wire code.
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(Opcode::$variant),)* _ => None }
            }

            /// The stable name (policy files, metrics, `cofre client`).
            pub fn name(self) -> &'static str {
                match self { $(Opcode::$variant => $name,)* }
            }

            /// Parses a name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Opcode::$variant),)* _ => None }
            }
        }
    };
}

opcodes! {
    Health = 0x0001, "health", "Diagnostics: version, LMK KCV, uptime.";
    PanGenerate = 0x0010, "pan.generate", "New random PAN for a BIN: token, masked PAN, PAN under a transport key.";
    Tokenise = 0x0011, "pan.tokenise", "PAN to FF1 token (and lookup token).";
    Detokenise = 0x0012, "pan.detokenise", "Token to clear PAN (privileged).";
    PinVerify = 0x0020, "pin.verify", "Verify a PIN block against a PVV or IBM 3624 offset.";
    PinTranslate = 0x0021, "pin.translate", "Re-encipher a PIN block under another key and/or format.";
    PinGenerate = 0x0022, "pin.generate", "Random PIN: PVV or offset, LMK-encrypted PIN, optional delivery.";
    PinChange = 0x0023, "pin.change", "Old and new PIN blocks: new PVV or offset and new LMK-encrypted PIN.";
    PinDeliver = 0x0024, "pin.deliver", "An LMK-encrypted PIN re-enciphered under a delivery key.";
    PinAttempts = 0x0025, "pin.attempts", "A card's PIN try counter: attempts, limit, locked, last failure.";
    PinAttemptsReset = 0x0026, "pin.attempts.reset", "Clear a card's PIN try counter.";
    GuardReset = 0x0027, "pin.guard.reset", "Lift the global brute-force guard.";
    PinRebind = 0x0028, "pin.rebind", "A card's PIN carried over to a new card: its PVV or offset and LMK-encrypted PIN.";
    PinRandom = 0x0029, "pin.random", "A random PIN, answered only under the LMK (pin_blob); no counter touched.";
    PinReference = 0x002A, "pin.reference", "The PVV or IBM 3624 offset of the PIN in a pin_blob; no counter touched.";
    CvvGenerate = 0x0030, "cvv.generate", "CVV, CVV2 and iCVV for a card.";
    CvvVerify = 0x0031, "cvv.verify", "Verify a presented CVV, CVV2 or iCVV.";
    SecurityCodesExport = 0x0032, "card.codes.export", "CVV, CVV2, iCVV and PIN encrypted under a transport key.";
    Dcvv2Generate = 0x0040, "dcvv2.generate", "A dynamic CVV2 for the current time step or a counter.";
    Dcvv2Verify = 0x0041, "dcvv2.verify", "Verify a dynamic CVV2.";
    Dcvv2Enable = 0x0042, "dcvv2.enable", "Turn dynamic CVV2 on for a card (static CVV2 then fails).";
    Dcvv2Disable = 0x0043, "dcvv2.disable", "Turn dynamic CVV2 off for a card.";
    Dcvv2State = 0x0044, "dcvv2.state", "A card's dCVV2 state: enabled, tries, locked.";
    MacGenerate = 0x0050, "mac.generate", "MAC over data.";
    MacVerify = 0x0051, "mac.verify", "Verify a MAC.";
    KeyList = 0x0060, "key.list", "Key ids, versions, status and KCVs.";
    KeyGenerate = 0x0061, "key.generate", "Generate a random key.";
    KeyImport = 0x0062, "key.import", "Import a TR-31 block under a KEK.";
    KeyExport = 0x0063, "key.export", "Export a key as TR-31 under a KEK.";
    KeyRotate = 0x0064, "key.rotate", "New active version; the old one becomes verify-only.";
    KeyRetire = 0x0065, "key.retire", "Retire a key version.";
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
