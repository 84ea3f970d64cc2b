//! `cofre calc`: the offline calculator for payment engineers.
//!
//! Each command prints its result alone on one line of stdout (hex in upper case, digits
//! as digits); a bad input is one line on stderr and exit status 1. It works on clear
//! values by design (it is what people use to check an HSM's answers by hand), so it
//! never touches a key store and never logs.

use clap::{Args, Subcommand, ValueEnum};

use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::mac::{self, MacAlgorithm};
use crate::crypto::pan::{self, Pan};
use crate::crypto::pinblock::{self, Format, PinBlock};
use crate::crypto::pvv::{self, Ibm3624Params, Offset, Pvk};
use crate::crypto::token::{self, Alphabet, TokenKey};
use crate::crypto::{ClearKey, Error, Pin, cvv, dcvv2, kcv, tr31};

#[path = "calc_dukpt.rs"]
pub mod dukpt;

fn run_tr31(cmd: Tr31Command) -> Result<String, Error> {
    match cmd {
        Tr31Command::Wrap {
            kbpk,
            header,
            key: k,
        } => {
            let header = tr31::Header::parse(&header)?;
            tr31::wrap(&key(&kbpk)?, &header, &key(&k)?, &mut rand::rng())
        }
        Tr31Command::Unwrap { kbpk, block } => {
            let (header, k) = tr31::unwrap(&key(&kbpk)?, &block)?;
            let algorithm = match header.algorithm() {
                tr31::KeyAlgorithm::Aes => Some(Algorithm::Aes),
                tr31::KeyAlgorithm::Tdes => Some(Algorithm::Tdes),
                _ => None,
            };
            let check = match algorithm {
                Some(a) => kcv::kcv(a, &k)?.to_string(),
                None => "-".to_owned(),
            };
            // The header as it stands in the block (its length field is the block's).
            let header_len = header.to_string().len();
            let shown = block.trim().get(..header_len).unwrap_or_default();
            Ok(format!(
                "{shown} {} {check}",
                hex::encode_upper(k.expose_secret())
            ))
        }
    }
}

/// The calculator's commands.
#[derive(Debug, Subcommand)]
pub enum CalcCommand {
    /// Visa CVV / CVV2 (service code 000) / iCVV (service code 999).
    Cvv {
        /// CVK-A || CVK-B, 32 hex characters.
        #[arg(long)]
        cvk: String,
        /// Card number.
        #[arg(long)]
        pan: String,
        /// Expiry, YYMM.
        #[arg(long)]
        expiry: String,
        /// Service code: the card's own, 000 for CVV2, 999 for iCVV.
        #[arg(long)]
        service_code: String,
    },
    /// Visa PIN verification value.
    Pvv {
        /// PVK, 32 or 48 hex characters.
        #[arg(long)]
        pvk: String,
        /// PIN verification key index, 0-6.
        #[arg(long)]
        pvki: u8,
        /// Clear PIN.
        #[arg(long)]
        pin: String,
        /// Card number.
        #[arg(long)]
        pan: String,
    },
    /// IBM 3624 offset for a chosen PIN.
    #[command(name = "ibm3624-offset")]
    Ibm3624Offset {
        #[command(flatten)]
        params: Ibm3624Args,
        /// Clear PIN.
        #[arg(long)]
        pin: String,
    },
    /// IBM 3624 PIN selected by an offset (offset 0000... gives the natural PIN).
    #[command(name = "ibm3624-pin")]
    Ibm3624Pin {
        #[command(flatten)]
        params: Ibm3624Args,
        /// Offset, as many digits as the PIN.
        #[arg(long)]
        offset: String,
    },
    /// ISO 9564 PIN blocks.
    #[command(subcommand)]
    Pinblock(PinblockCommand),
    /// Key check value (TDES: encrypt zeros; AES: CMAC of a zero block).
    Kcv {
        /// Clear key, hex.
        #[arg(long)]
        key: String,
        /// Key algorithm.
        #[arg(long, value_enum)]
        algorithm: KeyAlgorithm,
    },
    /// MAC over hex data.
    Mac {
        /// MAC algorithm.
        #[arg(long, value_enum)]
        algorithm: MacChoice,
        /// Clear key, hex.
        #[arg(long)]
        key: String,
        /// Data, hex.
        #[arg(long)]
        data: String,
    },
    /// FF1 PAN token (BIN and last 4 kept).
    Token {
        /// AES token key, hex.
        #[arg(long)]
        key: String,
        /// Card number.
        #[arg(long)]
        pan: String,
        /// Token alphabet.
        #[arg(long, value_enum, default_value_t = AlphabetChoice::Numeric)]
        alphabet: AlphabetChoice,
    },
    /// Recover a PAN from an FF1 token.
    Detoken {
        /// AES token key, hex.
        #[arg(long)]
        key: String,
        /// The token.
        #[arg(long)]
        token: String,
        /// Token alphabet.
        #[arg(long, value_enum, default_value_t = AlphabetChoice::Numeric)]
        alphabet: AlphabetChoice,
    },
    /// Irreversible lookup token (HMAC-SHA256).
    #[command(name = "lookup-token")]
    LookupToken {
        /// HMAC key, hex.
        #[arg(long)]
        key: String,
        /// Card number.
        #[arg(long)]
        pan: String,
    },
    /// TR-31 / X9.143 key blocks: wrap (versions B, D) and unwrap (A, B, C, D).
    #[command(subcommand)]
    Tr31(Tr31Command),
    /// Dynamic CVV2 (protocol/dcvv2.md) for a counter, or for the time step holding
    /// `--unix-time` (T0 0, 300-second steps unless given).
    Dcvv2 {
        /// dCVV2 key (HMAC-SHA256), 16 or 32 bytes hex.
        #[arg(long)]
        key: String,
        /// Card number.
        #[arg(long)]
        pan: String,
        /// Expiry, YYMM.
        #[arg(long)]
        expiry: String,
        /// Counter moving factor.
        #[arg(
            long,
            conflicts_with = "unix_time",
            required_unless_present = "unix_time"
        )]
        counter: Option<u64>,
        /// Unix time in seconds; the moving factor is its time step.
        #[arg(long)]
        unix_time: Option<u64>,
        /// Start of time step 0, Unix seconds.
        #[arg(long, default_value_t = dcvv2::DEFAULT_T0)]
        t0: u64,
        /// Time step length in seconds.
        #[arg(long, default_value_t = dcvv2::DEFAULT_STEP_SECONDS)]
        step: u64,
    },
    /// DUKPT (TDES X9.24-1:2009, AES X9.24-3-2017): initial, transaction and working
    /// keys, and PIN blocks, for a KSN.
    #[command(subcommand)]
    Dukpt(dukpt::DukptCommand),
    /// Random Luhn-valid PAN for a BIN.
    Pan {
        /// Issuer BIN (leading digits).
        #[arg(long)]
        bin: String,
        /// PAN length, 13-19.
        #[arg(long, default_value_t = 16)]
        length: usize,
    },
}

/// `cofre calc tr31 ...`.
#[derive(Debug, Subcommand)]
pub enum Tr31Command {
    /// Wraps a key: prints the key block. The header's length field is recomputed.
    Wrap {
        /// Key block protection key, hex (B: TDES 16/24 bytes; D: AES 16/24/32 bytes).
        #[arg(long)]
        kbpk: String,
        /// Header: at least the 16-character fixed header, optional blocks after it.
        #[arg(long)]
        header: String,
        /// The key to wrap, hex.
        #[arg(long)]
        key: String,
    },
    /// Unwraps a key block: prints `<header> <key hex> <KCV>` after the MAC verifies.
    Unwrap {
        /// Key block protection key, hex.
        #[arg(long)]
        kbpk: String,
        /// The key block.
        #[arg(long)]
        block: String,
    },
}

/// IBM 3624 parameters shared by the offset and PIN commands.
#[derive(Debug, Args)]
pub struct Ibm3624Args {
    /// PVK, 32 or 48 hex characters.
    #[arg(long)]
    pvk: String,
    /// Card number.
    #[arg(long)]
    pan: String,
    /// 16 decimal digits mapping hex 0-F to decimal.
    #[arg(long, alias = "decimalisation-table")]
    decimalization_table: String,
    /// 0-based index of the first PAN digit in the validation data.
    #[arg(long)]
    validation_start: usize,
    /// Number of PAN digits in the validation data.
    #[arg(long)]
    validation_length: usize,
    /// Hex character that pads the validation data to 16.
    #[arg(long)]
    pad: String,
}

/// `cofre calc pinblock ...`
#[derive(Debug, Subcommand)]
pub enum PinblockCommand {
    /// Build a PIN block (clear for 0-3, or enciphered when --key is given; 4 needs --key).
    Encode {
        /// ISO 9564 format, 0-4.
        #[arg(long)]
        format: u8,
        /// Clear PIN.
        #[arg(long)]
        pin: String,
        /// Card number (formats 0, 3, 4).
        #[arg(long)]
        pan: Option<String>,
        /// TDES key for 0-3 (optional), AES key for 4, hex.
        #[arg(long)]
        key: Option<String>,
    },
    /// Decode a PIN block (deciphering first when --key is given; 4 needs --key).
    Decode {
        /// ISO 9564 format, 0-4.
        #[arg(long)]
        format: u8,
        /// The block, hex.
        #[arg(long)]
        block: String,
        /// Card number (formats 0, 3, 4).
        #[arg(long)]
        pan: Option<String>,
        /// TDES key for 0-3 (optional), AES key for 4, hex.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Key algorithm names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyAlgorithm {
    /// Triple DES.
    Tdes,
    /// AES.
    Aes,
}

/// MAC algorithm names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MacChoice {
    /// ISO 9797-1 MAC algorithm 3 (retail MAC), double-length key.
    #[value(name = "iso9797-3")]
    Iso9797_3,
    /// AES-CMAC.
    AesCmac,
    /// HMAC-SHA256.
    HmacSha256,
}

/// Token alphabet names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlphabetChoice {
    /// Digits, never Luhn-valid.
    Numeric,
    /// 0-9a-z, always with a letter.
    Alphanumeric,
}

impl From<AlphabetChoice> for Alphabet {
    fn from(a: AlphabetChoice) -> Self {
        match a {
            AlphabetChoice::Numeric => Alphabet::Numeric,
            AlphabetChoice::Alphanumeric => Alphabet::Alphanumeric,
        }
    }
}

fn key(hex_text: &str) -> Result<ClearKey, Error> {
    ClearKey::from_hex(hex_text)
}

fn hex_data(text: &str) -> Result<Vec<u8>, Error> {
    hex::decode(text.trim()).map_err(|_| Error::Hex("data"))
}

fn ibm_params(a: &Ibm3624Args) -> Result<(Pvk, Pan, Ibm3624Params), Error> {
    Ok((
        Pvk::new(&key(&a.pvk)?)?,
        Pan::new(&a.pan)?,
        Ibm3624Params::new(
            &a.decimalization_table,
            a.validation_start,
            a.validation_length,
            &a.pad,
        )?,
    ))
}

fn pinblock_cipher(format: Format, key_hex: Option<&str>) -> Result<Option<BlockCipher>, Error> {
    match key_hex {
        Some(k) => Ok(Some(BlockCipher::new(format.algorithm(), &key(k)?)?)),
        None if format == Format::Iso4 => Err(Error::Parameter("format 4 needs --key (AES)")),
        None => Ok(None),
    }
}

fn run_pinblock(cmd: PinblockCommand) -> Result<String, Error> {
    match cmd {
        PinblockCommand::Encode {
            format,
            pin,
            pan,
            key,
        } => {
            let format = Format::from_number(format)?;
            let pin = Pin::new(&pin)?;
            let pan = pan.as_deref().map(Pan::new).transpose()?;
            let mut rng = rand::rng();
            let block = match pinblock_cipher(format, key.as_deref())? {
                Some(cipher) => pinblock::encipher(format, &cipher, &pin, pan.as_ref(), &mut rng)?,
                None => pinblock::encode_clear(format, &pin, pan.as_ref(), &mut rng)?,
            };
            Ok(block.to_hex())
        }
        PinblockCommand::Decode {
            format,
            block,
            pan,
            key,
        } => {
            let format = Format::from_number(format)?;
            let block = PinBlock::from_hex(&block)?;
            let pan = pan.as_deref().map(Pan::new).transpose()?;
            let pin = match pinblock_cipher(format, key.as_deref())? {
                Some(cipher) => pinblock::decipher(format, &cipher, &block, pan.as_ref())?,
                None => pinblock::decode_clear(format, &block, pan.as_ref())?,
            };
            Ok(pin.expose_secret().to_owned())
        }
    }
}

/// Runs one calculator command and returns the line to print.
pub fn run(cmd: CalcCommand) -> Result<String, Error> {
    match cmd {
        CalcCommand::Cvv {
            cvk,
            pan,
            expiry,
            service_code,
        } => {
            let cvk = cvv::Cvk::new(&key(&cvk)?)?;
            Ok(cvv::generate(&cvk, &Pan::new(&pan)?, &expiry, &service_code)?.expose_secret())
        }
        CalcCommand::Pvv {
            pvk,
            pvki,
            pin,
            pan,
        } => {
            let pvk = Pvk::new(&key(&pvk)?)?;
            Ok(pvv::visa_pvv(&pvk, pvki, &Pin::new(&pin)?, &Pan::new(&pan)?)?.to_string())
        }
        CalcCommand::Ibm3624Offset { params, pin } => {
            let (pvk, pan, p) = ibm_params(&params)?;
            Ok(pvv::ibm3624_offset(&pvk, &Pin::new(&pin)?, &pan, &p)?.to_string())
        }
        CalcCommand::Ibm3624Pin { params, offset } => {
            let (pvk, pan, p) = ibm_params(&params)?;
            let pin = pvv::ibm3624_pin_from_offset(&pvk, &pan, &p, &Offset::new(&offset)?)?;
            Ok(pin.expose_secret().to_owned())
        }
        CalcCommand::Pinblock(cmd) => run_pinblock(cmd),
        CalcCommand::Kcv { key: k, algorithm } => {
            let alg = match algorithm {
                KeyAlgorithm::Tdes => Algorithm::Tdes,
                KeyAlgorithm::Aes => Algorithm::Aes,
            };
            Ok(kcv::kcv(alg, &key(&k)?)?.to_string())
        }
        CalcCommand::Mac {
            algorithm,
            key: k,
            data,
        } => {
            let alg = match algorithm {
                MacChoice::Iso9797_3 => MacAlgorithm::Iso9797Alg3,
                MacChoice::AesCmac => MacAlgorithm::AesCmac,
                MacChoice::HmacSha256 => MacAlgorithm::HmacSha256,
            };
            Ok(hex::encode_upper(mac::generate(
                alg,
                &key(&k)?,
                &hex_data(&data)?,
            )?))
        }
        CalcCommand::Token {
            key: k,
            pan,
            alphabet,
        } => TokenKey::new(&key(&k)?)?.tokenise(&Pan::new(&pan)?, alphabet.into()),
        CalcCommand::Detoken {
            key: k,
            token,
            alphabet,
        } => Ok(TokenKey::new(&key(&k)?)?
            .detokenise(&token, alphabet.into())?
            .digits()
            .to_owned()),
        CalcCommand::LookupToken { key: k, pan } => {
            Ok(token::lookup_token(&key(&k)?, &Pan::new(&pan)?))
        }
        CalcCommand::Tr31(cmd) => run_tr31(cmd),
        CalcCommand::Dcvv2 {
            key: k,
            pan,
            expiry,
            counter,
            unix_time,
            t0,
            step,
        } => {
            let factor = match (counter, unix_time) {
                (Some(c), _) => c,
                (None, Some(t)) => dcvv2::time_step(t, t0, step)?,
                (None, None) => return Err(Error::Parameter("give --counter or --unix-time")),
            };
            Ok(dcvv2::dcvv2(&key(&k)?, &pan, &expiry, factor)?
                .expose_secret()
                .to_owned())
        }
        CalcCommand::Dukpt(cmd) => dukpt::run(cmd),
        CalcCommand::Pan { bin, length } => Ok(pan::generate(&bin, length, &mut rand::rng())?
            .digits()
            .to_owned()),
    }
}
