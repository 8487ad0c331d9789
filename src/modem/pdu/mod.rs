//! SMS in PDU mode (3GPP TS 23.040 §9.2), the form modems take with `AT+CMGF=0`.
//!
//! Encoding builds one SMS-SUBMIT per segment, with a concatenation header when a text needs
//! several. Decoding reads what `+CMGL`, `+CMGR`, `+CMT` and `+CDS` carry: an SMSC address
//! followed by an SMS-DELIVER or an SMS-STATUS-REPORT. Every read is bounds-checked: a short or
//! garbled PDU is an error, never a panic.

mod address;
mod deliver;
mod network;
mod reader;
pub(crate) mod septets;
mod submit;

pub use address::{Address, AddressKind};
pub use deliver::{Concat, Deliver, Received, ReportOutcome, StatusReport, decode};
pub use network::{encode_deliver, encode_deliver_parts, encode_status_report};
pub use submit::{Submit, SubmitOptions, encode_submit};

/// Why a PDU could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// The text is not hexadecimal, or has an odd number of digits.
    #[error("the PDU is not hexadecimal")]
    NotHex,
    /// The PDU ends before a field it announces.
    #[error("the PDU ends early, reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A field holds a value the standard does not allow.
    #[error("the PDU's {field} is not valid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The PDU is of a kind this codec does not read (an SMS-SUBMIT-REPORT, say).
    #[error("unsupported message type {0}")]
    Unsupported(u8),
    /// A recipient cannot be written as an address.
    #[error("`{0}` cannot be written as an SMS address")]
    BadRecipient(String),
    /// A text would need more parts than a concatenated SMS can have.
    #[error("the text needs more than 255 parts")]
    TooManyParts,
}

/// Lowercase hex turned into bytes.
fn from_hex(hex: &str) -> Result<Vec<u8>, PduError> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return Err(PduError::NotHex);
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(PduError::NotHex)
        })
        .collect()
}

/// Bytes as uppercase hex, as modems expect after `AT+CMGS`.
fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}
