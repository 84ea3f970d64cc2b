//! The `[payshield]` section of `hsm.toml`: the payShield-compatible listener, off
//! unless the section is present (`protocol/payshield.md`, "Configuration").
//!
//! * `listen`: the address (required).
//! * `header_length`: the message header's length in characters, 0-32 (default 4), as
//!   the switch's HSM configuration sets it; echoed in every answer.
//! * `plain = true`: plain TCP without TLS, for legacy simulators. Accepted only when
//!   `listen` is a loopback address; the caller then has no certificate, so
//!   `plain_identity` names the policy identity whose role applies (required then).
//!
//! The limits are the native listener's (`[limits]`): connections, handshakes, read and
//! idle timeouts, requests in flight, and the frame size (at most 65,535 bytes, what a
//! 2-byte length prefix can say).

use std::net::SocketAddr;

use serde::Deserialize;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayshieldFile {
    listen: Option<String>,
    header_length: Option<i64>,
    plain: Option<bool>,
    plain_identity: Option<String>,
}

/// How a payShield client is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Mutual TLS with the native listener's certificates and roles.
    Tls,
    /// Plain TCP on loopback; every connection acts as this policy identity.
    Plain {
        /// The identity whose role applies.
        identity: String,
    },
}

/// The validated section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayshieldConfig {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// Message header length in characters, echoed in answers.
    pub header_length: usize,
    /// TLS or loopback plain TCP.
    pub transport: Transport,
}

/// The largest header length accepted.
pub const MAX_HEADER_LENGTH: i64 = 32;

impl PayshieldFile {
    /// Checks the section; each error names the setting and its bound.
    pub fn validate(self) -> Result<PayshieldConfig, String> {
        let listen = self
            .listen
            .ok_or("payshield.listen is required in a [payshield] section")?;
        let listen: SocketAddr = listen.parse().map_err(|_| {
            format!("payshield.listen: {listen:?} is not an address like 127.0.0.1:1500")
        })?;
        let header = self.header_length.unwrap_or(4);
        if !(0..=MAX_HEADER_LENGTH).contains(&header) {
            return Err(format!(
                "payshield.header_length = {header} is out of bounds (0 to {MAX_HEADER_LENGTH})"
            ));
        }
        let transport = if self.plain.unwrap_or(false) {
            if !listen.ip().is_loopback() {
                return Err(format!(
                    "payshield.plain = true is allowed only on a loopback address \
                     (127.0.0.0/8 or ::1), not {listen}"
                ));
            }
            let identity = self
                .plain_identity
                .filter(|i| !i.is_empty())
                .ok_or("payshield.plain = true needs payshield.plain_identity")?;
            Transport::Plain { identity }
        } else {
            if self.plain_identity.is_some() {
                return Err("payshield.plain_identity is only for plain = true".into());
            }
            Transport::Tls
        };
        Ok(PayshieldConfig {
            listen,
            header_length: usize::try_from(header).map_err(|e| e.to_string())?,
            transport,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<PayshieldConfig, String> {
        toml::from_str::<PayshieldFile>(text)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_to_tls_and_a_four_character_header() {
        let c = parse("listen = \"0.0.0.0:1500\"").unwrap();
        assert_eq!(c.header_length, 4);
        assert_eq!(c.transport, Transport::Tls);
    }

    #[test]
    fn plain_only_on_loopback_with_an_identity() {
        let e =
            parse("listen = \"0.0.0.0:1500\"\nplain = true\nplain_identity = \"a\"").unwrap_err();
        assert!(e.contains("only on a loopback address"), "{e}");
        let e = parse("listen = \"127.0.0.1:1500\"\nplain = true").unwrap_err();
        assert!(e.contains("plain_identity"), "{e}");
        let c =
            parse("listen = \"127.0.0.1:1500\"\nplain = true\nplain_identity = \"atm\"").unwrap();
        assert_eq!(
            c.transport,
            Transport::Plain {
                identity: "atm".into()
            }
        );
        assert!(parse("listen = \"[::1]:1500\"\nplain = true\nplain_identity = \"a\"").is_ok());
    }

    #[test]
    fn header_length_is_bounded() {
        let e = parse("listen = \"127.0.0.1:1\"\nheader_length = 33").unwrap_err();
        assert!(
            e.contains("payshield.header_length = 33 is out of bounds (0 to 32)"),
            "{e}"
        );
        assert!(parse("listen = \"127.0.0.1:1\"\nheader_length = -1").is_err());
        assert_eq!(
            parse("listen = \"127.0.0.1:1\"\nheader_length = 0")
                .unwrap()
                .header_length,
            0
        );
    }
}
