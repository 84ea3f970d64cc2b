//! `cofre calc dukpt`: DUKPT keys and PIN blocks for a KSN, as a terminal and a host
//! derive them. The KSN's length picks the variant: 20 hex characters for TDES DUKPT
//! (ANSI X9.24-1:2009), 24 for AES DUKPT (ANSI X9.24-3-2017). Every command takes the BDK,
//! or the device's initial key instead (what a terminal vendor usually has), and checks
//! the KSN's counter as a host would (zero, exhausted or too many one-bits: refused).

use clap::{Args, Subcommand, ValueEnum};

use crate::crypto::dukpt::aes::KeyUsage;
use crate::crypto::dukpt::tdes::Variant;
use crate::crypto::dukpt::{self, Bdk, InitialKey, KeyType, Ksn, TransactionKey};
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{Format, PinBlock};
use crate::crypto::{ClearKey, Error, Pin};

/// `cofre calc dukpt ...`
#[derive(Debug, Subcommand)]
pub enum DukptCommand {
    /// The device's initial key (TDES: the IPEK) from the BDK; the KSN's counter is ignored.
    #[command(name = "initial-key")]
    InitialKey {
        /// BDK, hex (TDES: 32 hex characters; AES: 32, 48 or 64).
        #[arg(long)]
        bdk: String,
        /// Any KSN of the device: 20 hex characters (TDES) or 24 (AES).
        #[arg(long)]
        ksn: String,
    },
    /// The transaction key for a KSN (TDES: the current key; AES: the intermediate
    /// derivation key).
    #[command(name = "transaction-key")]
    TransactionKey {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// A working key for a KSN.
    #[command(name = "working-key")]
    WorkingKey {
        #[command(flatten)]
        key: KeyArgs,
        /// What the key is for. TDES: pin, mac-request, mac-response, data-request,
        /// data-response. AES: pin, mac-generate, mac-verify, mac-both, data-encrypt,
        /// data-decrypt, data-both, key-encryption.
        #[arg(long, value_enum)]
        usage: UsageChoice,
        /// AES DUKPT working key type (default aes128); TDES DUKPT keys are always tdes2.
        #[arg(long, value_enum)]
        key_type: Option<KeyTypeChoice>,
    },
    /// ISO 9564 PIN blocks under the DUKPT PIN key of a KSN.
    #[command(subcommand)]
    Pinblock(PinblockCommand),
}

/// `cofre calc dukpt pinblock ...`
#[derive(Debug, Subcommand)]
pub enum PinblockCommand {
    /// Enciphers a PIN as the terminal with this KSN would (random fill).
    Encode {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        block: BlockArgs,
        /// Clear PIN.
        #[arg(long)]
        pin: String,
    },
    /// Deciphers a terminal's PIN block and prints the PIN.
    Decode {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        block: BlockArgs,
        /// The enciphered block, hex.
        #[arg(long = "block")]
        enciphered: String,
    },
}

/// The key a derivation starts from, and the KSN.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// BDK, hex (TDES: 32 hex characters; AES: 32, 48 or 64).
    #[arg(
        long,
        required_unless_present = "initial_key",
        conflicts_with = "initial_key"
    )]
    bdk: Option<String>,
    /// The device's initial key instead of the BDK, hex.
    #[arg(long)]
    initial_key: Option<String>,
    /// Key serial number: 20 hex characters (TDES DUKPT) or 24 (AES DUKPT).
    #[arg(long)]
    ksn: String,
}

/// PIN block format, PAN and PIN key type.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// ISO 9564 format: 0, 1 or 3 (TDES PIN key), 4 (AES PIN key).
    #[arg(long)]
    format: u8,
    /// Card number (formats 0, 3, 4).
    #[arg(long)]
    pan: Option<String>,
    /// PIN key type. Default: tdes2, or aes128 for format 4.
    #[arg(long, value_enum)]
    key_type: Option<KeyTypeChoice>,
}

/// Working key usages on the command line (both variants' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsageChoice {
    /// PIN encryption (both variants).
    Pin,
    /// TDES: request MAC.
    MacRequest,
    /// TDES: response MAC.
    MacResponse,
    /// TDES: request data encryption.
    DataRequest,
    /// TDES: response data encryption.
    DataResponse,
    /// AES: MAC generation.
    MacGenerate,
    /// AES: MAC verification.
    MacVerify,
    /// AES: MAC both ways.
    MacBoth,
    /// AES: data encryption, encrypt.
    DataEncrypt,
    /// AES: data encryption, decrypt.
    DataDecrypt,
    /// AES: data encryption, both ways.
    DataBoth,
    /// AES: key encryption.
    KeyEncryption,
}

/// Working key types on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeChoice {
    /// Double-length TDES.
    Tdes2,
    /// Triple-length TDES.
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl From<KeyTypeChoice> for KeyType {
    fn from(c: KeyTypeChoice) -> Self {
        match c {
            KeyTypeChoice::Tdes2 => KeyType::Tdes2,
            KeyTypeChoice::Tdes3 => KeyType::Tdes3,
            KeyTypeChoice::Aes128 => KeyType::Aes128,
            KeyTypeChoice::Aes192 => KeyType::Aes192,
            KeyTypeChoice::Aes256 => KeyType::Aes256,
        }
    }
}

impl KeyArgs {
    fn ksn(&self) -> Result<Ksn, Error> {
        Ksn::from_hex(&self.ksn)
    }

    fn transaction_key(&self, ksn: &Ksn) -> Result<TransactionKey, Error> {
        match (&self.bdk, &self.initial_key) {
            (Some(bdk), _) => Bdk::for_ksn(ksn, &ClearKey::from_hex(bdk)?)?.transaction_key(ksn),
            (None, Some(ik)) => {
                InitialKey::from_clear(ksn, &ClearKey::from_hex(ik)?)?.transaction_key(ksn)
            }
            (None, None) => Err(Error::Parameter("give --bdk or --initial-key")),
        }
    }
}

fn hex_key(key: &ClearKey) -> String {
    hex::encode_upper(key.expose_secret())
}

fn working_key(
    tk: &TransactionKey,
    usage: UsageChoice,
    key_type: Option<KeyTypeChoice>,
) -> Result<ClearKey, Error> {
    use UsageChoice as U;
    match tk {
        TransactionKey::Tdes(k) => {
            if key_type.is_some_and(|t| t != KeyTypeChoice::Tdes2) {
                return Err(Error::Parameter("TDES DUKPT working keys are tdes2"));
            }
            let variant = match usage {
                U::Pin => Variant::Pin,
                U::MacRequest => Variant::MacRequest,
                U::MacResponse => Variant::MacResponse,
                U::DataRequest => Variant::DataRequest,
                U::DataResponse => Variant::DataResponse,
                _ => {
                    return Err(Error::Parameter(
                        "TDES DUKPT usages: pin, mac-request, mac-response, data-request, data-response",
                    ));
                }
            };
            Ok(k.working_key(variant))
        }
        TransactionKey::Aes(k) => {
            let usage = match usage {
                U::Pin => KeyUsage::PinEncryption,
                U::MacGenerate => KeyUsage::MacGeneration,
                U::MacVerify => KeyUsage::MacVerification,
                U::MacBoth => KeyUsage::MacBothWays,
                U::DataEncrypt => KeyUsage::DataEncrypt,
                U::DataDecrypt => KeyUsage::DataDecrypt,
                U::DataBoth => KeyUsage::DataBothWays,
                U::KeyEncryption => KeyUsage::KeyEncryption,
                _ => {
                    return Err(Error::Parameter(
                        "AES DUKPT usages: pin, mac-generate, mac-verify, mac-both, data-encrypt, data-decrypt, data-both, key-encryption",
                    ));
                }
            };
            k.working_key(usage, key_type.map_or(KeyType::Aes128, KeyType::from))
        }
    }
}

/// The format, PAN and PIN key type of a pinblock command.
fn block_params(ksn: &Ksn, b: &BlockArgs) -> Result<(Format, Option<Pan>, KeyType), Error> {
    let format = Format::from_number(b.format)?;
    let pan = b.pan.as_deref().map(Pan::new).transpose()?;
    let key_type = b
        .key_type
        .map_or_else(|| dukpt::default_pin_key_type(ksn, format), KeyType::from);
    Ok((format, pan, key_type))
}

/// Runs one `calc dukpt` command and returns the line to print.
pub fn run(cmd: DukptCommand) -> Result<String, Error> {
    match cmd {
        DukptCommand::InitialKey { bdk, ksn } => {
            let ksn = Ksn::from_hex(&ksn)?;
            let ik = Bdk::for_ksn(&ksn, &ClearKey::from_hex(&bdk)?)?.initial_key(&ksn)?;
            Ok(hex_key(ik.key()))
        }
        DukptCommand::TransactionKey { key } => {
            let ksn = key.ksn()?;
            Ok(hex_key(key.transaction_key(&ksn)?.key()))
        }
        DukptCommand::WorkingKey {
            key,
            usage,
            key_type,
        } => {
            let ksn = key.ksn()?;
            let tk = key.transaction_key(&ksn)?;
            Ok(hex_key(&working_key(&tk, usage, key_type)?))
        }
        DukptCommand::Pinblock(PinblockCommand::Encode { key, block, pin }) => {
            let ksn = key.ksn()?;
            let (format, pan, key_type) = block_params(&ksn, &block)?;
            let pin = Pin::new(&pin)?;
            let mut fill = zeroize::Zeroizing::new([0u8; 8]);
            rand::Rng::fill_bytes(&mut rand::rng(), &mut fill[..]);
            let tk = key.transaction_key(&ksn)?;
            Ok(tk
                .encipher_pin_with_fill(key_type, format, &pin, pan.as_ref(), &fill)?
                .to_hex())
        }
        DukptCommand::Pinblock(PinblockCommand::Decode {
            key,
            block,
            enciphered,
        }) => {
            let ksn = key.ksn()?;
            let (format, pan, key_type) = block_params(&ksn, &block)?;
            let enciphered = PinBlock::from_hex(&enciphered)?;
            let tk = key.transaction_key(&ksn)?;
            let pin = tk.decipher_pin(key_type, format, &enciphered, pan.as_ref())?;
            Ok(pin.expose_secret().to_owned())
        }
    }
}
