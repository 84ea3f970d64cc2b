//! A card's kind, life-cycle status, PIN status, dCVV2 state and block code: closed sets,
//! stored as their lower-case (block codes: upper-case) names.

use std::fmt;

use super::Invalid;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a stored name.
            pub fn parse(text: &str) -> Result<Self, Invalid> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Invalid(concat!("not a ", stringify!($name)))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Invalid> {
                Self::parse(&s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What a card is.
    CardKind {
        /// A physical credit card.
        PhysicalCredit = "physical-credit",
        /// A debit card.
        Debit = "debit",
        /// A prepaid card.
        Prepaid = "prepaid",
        /// A card held only in a digital wallet.
        DigitalWallet = "digital-wallet",
    }
}

impl CardKind {
    /// The processor's `accountType` of a card of this kind.
    pub fn account_type(self) -> &'static str {
        match self {
            CardKind::Debit | CardKind::Prepaid => "Debit",
            CardKind::PhysicalCredit | CardKind::DigitalWallet => "Credit",
        }
    }
}

named_enum! {
    /// Where a card is in its life: `inactive` until activation, then `active`, and
    /// `blocked` (reversible), `lost`, `stolen`, `replaced` and `cancelled` (final).
    CardStatus {
        /// Issued, not yet activated.
        Inactive = "inactive",
        /// In use.
        Active = "active",
        /// Blocked by the issuer or the cardholder (may be unblocked).
        Blocked = "blocked",
        /// Reported lost.
        Lost = "lost",
        /// Reported stolen.
        Stolen = "stolen",
        /// Replaced by a reissued card that was activated.
        Replaced = "replaced",
        /// Cancelled.
        Cancelled = "cancelled",
    }
}

impl CardStatus {
    /// A status no operation leaves (a new card is issued instead).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CardStatus::Lost | CardStatus::Stolen | CardStatus::Replaced | CardStatus::Cancelled
        )
    }
}

named_enum! {
    /// Whether the issuer blocked the card's PIN (beside the daemon's try counter).
    PinStatus {
        /// The PIN may be used.
        Active = "active",
        /// The issuer blocked PIN use.
        Blocked = "blocked",
    }
}

named_enum! {
    /// Dynamic CVV2: `on` once the cardholder asked for a code (the static CVV2 is then
    /// refused by the daemon), else `off`.
    DcvvState {
        /// Static CVV2.
        Off = "off",
        /// Dynamic CVV2.
        On = "on",
    }
}

/// Why a card is blocked: the processor's one-character block code (a letter or digit,
/// upper case), or one of the cardholder API's block types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockCode {
    /// The processor's code, `A-Z` or `0-9`.
    Processor(u8),
    /// A cardholder API block type (`portador_block_types`).
    Type(BlockType),
}

named_enum! {
    /// The cardholder API's block types (the rows of `portador_block_types`).
    BlockType {
        /// Lost.
        Perda = "PERDA",
        /// Stolen.
        Roubo = "ROUBO",
        /// Confirmed fraud.
        Fraude = "FRAUDE",
        /// Suspected fraud.
        SuspeitaFraude = "SUSPEITA_FRAUDE",
        /// At the cardholder's request.
        APedidoCliente = "A_PEDIDO_CLIENTE",
        /// Delinquency.
        Inadimplencia = "INADIMPLENCIA",
        /// The cardholder died.
        Obito = "OBITO",
        /// Court order.
        BloqueioJudicial = "BLOQUEIO_JUDICIAL",
    }
}

impl BlockType {
    /// The status a card ends in when blocked with this type: lost, stolen, fraud and
    /// death are final (the card is never unblocked; a new card is issued instead), the
    /// others leave it `blocked` (reversible).
    pub fn card_status(self) -> CardStatus {
        match self {
            BlockType::Perda => CardStatus::Lost,
            BlockType::Roubo => CardStatus::Stolen,
            BlockType::Fraude | BlockType::Obito => CardStatus::Cancelled,
            _ => CardStatus::Blocked,
        }
    }

    /// Whether the block is final (see [`BlockType::card_status`]).
    pub fn is_final(self) -> bool {
        self.card_status().is_final()
    }
}

impl BlockCode {
    /// Whether a card with this status and block code may still have its security codes
    /// (CVV, CVV2, iCVV, PIN block) exported: not once it is lost, stolen or cancelled,
    /// nor while it is blocked for theft or (suspected) fraud, when the codes are what a
    /// fraudster would ask for.
    pub fn allows_code_export(status: CardStatus, block: Option<BlockCode>) -> bool {
        let fraud = matches!(
            block,
            Some(BlockCode::Type(
                BlockType::Roubo | BlockType::Fraude | BlockType::SuspeitaFraude
            ))
        );
        !matches!(
            status,
            CardStatus::Lost | CardStatus::Stolen | CardStatus::Cancelled
        ) && !fraud
    }

    /// Parses a stored or requested code (a processor code is case-insensitive).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let b = text.as_bytes();
        if b.len() == 1 && b[0].is_ascii_alphanumeric() {
            return Ok(BlockCode::Processor(b[0].to_ascii_uppercase()));
        }
        BlockType::parse(text)
            .map(BlockCode::Type)
            .map_err(|_| Invalid("a block code is one letter or digit, or a block type"))
    }

    /// The stored text.
    pub fn as_string(self) -> String {
        match self {
            BlockCode::Processor(c) => char::from(c).to_string(),
            BlockCode::Type(t) => t.as_str().to_owned(),
        }
    }
}

impl fmt::Display for BlockCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl serde::Serialize for BlockCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in CardStatus::ALL {
            assert_eq!(CardStatus::parse(s.as_str()), Ok(*s));
        }
        for k in CardKind::ALL {
            assert_eq!(CardKind::parse(k.as_str()), Ok(*k));
        }
        assert!(CardStatus::parse("ACTIVE").is_err());
        assert!(CardStatus::parse("").is_err());
        assert!(CardStatus::Lost.is_final() && !CardStatus::Blocked.is_final());
        assert_eq!(BlockCode::parse("b"), Ok(BlockCode::Processor(b'B')));
        assert_eq!(
            BlockCode::parse("ROUBO"),
            Ok(BlockCode::Type(BlockType::Roubo))
        );
        assert!(BlockCode::parse("roubo").is_err() && BlockCode::parse("").is_err());
        assert!(BlockCode::parse("é").is_err());
        assert_eq!(BlockCode::Processor(b'7').as_string(), "7");
    }
}
