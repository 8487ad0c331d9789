//! Decoding what a modem hands over (3GPP TS 23.040 §9.2.2): SMS-DELIVER (a received text),
//! SMS-STATUS-REPORT (the fate of one we sent), and SMS-SUBMIT (what we sent, which the
//! simulator reads back).

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::address::{Address, read_address, read_smsc};
use super::reader::Reader;
use super::{PduError, from_hex, septets};
use crate::domain::gsm7;

/// The message-type bits of the first octet, as seen by the phone.
const MTI_DELIVER: u8 = 0b00;
const MTI_SUBMIT: u8 = 0b01;
const MTI_STATUS_REPORT: u8 = 0b10;
/// First-octet bit: user data starts with a header.
const UDHI: u8 = 0x40;

/// A decoded PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A text from a phone.
    Deliver(Deliver),
    /// The network's word on a message we sent.
    StatusReport(StatusReport),
    /// A message to be sent, as `AT+CMGS` carries it.
    Submit(Deliver),
}

/// The parts of a long message this PDU belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// The reference shared by all the parts (8- or 16-bit in the header).
    pub reference: u16,
    /// How many parts there are.
    pub total: u8,
    /// Which part this is, from 1.
    pub part: u8,
}

/// A text message: received (SMS-DELIVER) or to be sent (SMS-SUBMIT, where `address` is the
/// recipient and `timestamp` is absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deliver {
    /// The service centre the PDU names, if any.
    pub smsc: Option<Address>,
    /// The sender of a DELIVER, the recipient of a SUBMIT.
    pub address: Address,
    /// When the service centre received it, with its zone.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// The text (8-bit data is read as Latin-1).
    pub text: String,
    /// Set when the text is one part of a longer message.
    pub concat: Option<Concat>,
    /// Whether a status report was asked for (SUBMIT) or is indicated (DELIVER).
    pub status_report: bool,
}

/// What a status report says happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// It reached the phone (or was forwarded, or replaced).
    Delivered,
    /// The service centre is still trying.
    Pending,
    /// The service centre gave up.
    Failed,
}

/// An SMS-STATUS-REPORT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// The service centre the PDU names, if any.
    pub smsc: Option<Address>,
    /// The TP-MR that `+CMGS` answered when the message was sent.
    pub message_reference: u8,
    /// The recipient of the message.
    pub recipient: Address,
    /// When the service centre received the message; `None` when the network wrote a time
    /// that does not exist (some do), which must not cost the report.
    pub submitted: Option<DateTime<FixedOffset>>,
    /// When it reached the phone, or when the status last changed; `None` as above.
    pub discharged: Option<DateTime<FixedOffset>>,
    /// TP-ST (TS 23.040 §9.2.3.15).
    pub status: u8,
}

impl StatusReport {
    /// Delivered, still pending, or failed, by the ranges of TP-ST.
    pub fn outcome(&self) -> ReportOutcome {
        match self.status {
            0x00..=0x1F => ReportOutcome::Delivered,
            0x20..=0x3F => ReportOutcome::Pending,
            _ => ReportOutcome::Failed,
        }
    }
}

/// Decodes a PDU in hex as modems print it: service centre first, then the TPDU.
///
/// # Errors
///
/// Fails when the text is not hex, the PDU is cut short, a field is out of range, or the
/// message type is not one of the three read here.
pub fn decode(hex: &str) -> Result<Received, PduError> {
    let bytes = from_hex(hex)?;
    let mut reader = Reader::new(&bytes);
    let smsc = read_smsc(&mut reader)?;
    let first = reader.byte("first octet")?;

    match first & 0b11 {
        MTI_DELIVER => {
            let address = read_address(&mut reader)?;
            let _pid = reader.byte("protocol identifier")?;
            let dcs = reader.byte("data coding scheme")?;
            let timestamp = read_timestamp(&mut reader, "service centre time stamp")?;
            let (text, concat) = read_user_data(&mut reader, first & UDHI != 0, dcs)?;
            Ok(Received::Deliver(Deliver {
                smsc,
                address,
                timestamp: Some(timestamp),
                text,
                concat,
                status_report: first & 0x20 != 0,
            }))
        }
        MTI_SUBMIT => {
            let _mr = reader.byte("message reference")?;
            let address = read_address(&mut reader)?;
            let _pid = reader.byte("protocol identifier")?;
            let dcs = reader.byte("data coding scheme")?;
            match (first >> 3) & 0b11 {
                0b00 => {}
                0b10 => {
                    reader.byte("validity period")?;
                }
                _ => {
                    reader.take(7, "validity period")?;
                }
            }
            let (text, concat) = read_user_data(&mut reader, first & UDHI != 0, dcs)?;
            Ok(Received::Submit(Deliver {
                smsc,
                address,
                timestamp: None,
                text,
                concat,
                status_report: first & 0x20 != 0,
            }))
        }
        MTI_STATUS_REPORT => Ok(Received::StatusReport(StatusReport {
            smsc,
            message_reference: reader.byte("message reference")?,
            recipient: read_address(&mut reader)?,
            submitted: read_lenient_timestamp(&mut reader, "service centre time stamp")?,
            discharged: read_lenient_timestamp(&mut reader, "discharge time")?,
            status: reader.byte("status")?,
        })),
        other => Err(PduError::Unsupported(other)),
    }
}

/// The alphabet a data coding scheme names (TS 23.038 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alphabet {
    Gsm7,
    Eight,
    Ucs2,
}

fn alphabet(dcs: u8) -> Alphabet {
    let by_bits = |bits: u8| match bits & 0b11 {
        0b01 => Alphabet::Eight,
        0b10 => Alphabet::Ucs2,
        _ => Alphabet::Gsm7,
    };
    match dcs >> 4 {
        // General data coding and automatic deletion groups: bits 3–2 name the alphabet.
        0x0..=0x7 => by_bits(dcs >> 2),
        // Message waiting indication groups.
        0xE => Alphabet::Ucs2,
        // Data coding / message class group: bit 2 picks 8-bit over GSM-7.
        0xF if dcs & 0x04 != 0 => Alphabet::Eight,
        _ => Alphabet::Gsm7,
    }
}

/// Reads TP-UDL and TP-UD: the header, if any, and the text.
fn read_user_data(
    reader: &mut Reader<'_>,
    has_header: bool,
    dcs: u8,
) -> Result<(String, Option<Concat>), PduError> {
    let length = usize::from(reader.byte("user data length")?);
    let data = reader.rest();

    let header_octets = if has_header {
        1 + usize::from(*data.first().ok_or(PduError::Truncated {
            field: "user data header",
        })?)
    } else {
        0
    };
    let concat = if has_header {
        let header = data.get(1..header_octets).ok_or(PduError::Truncated {
            field: "user data header",
        })?;
        read_concat(header)
    } else {
        None
    };

    let text = match alphabet(dcs) {
        Alphabet::Gsm7 => {
            // The header is padded with fill bits to a whole number of septets.
            let header_septets = (header_octets * 8).div_ceil(7);
            let codes = septets::unpack(data, length, 0)
                .ok_or(PduError::Truncated { field: "user data" })?;
            let text_codes = codes.get(header_septets..).ok_or(PduError::Invalid {
                field: "user data length",
                reason: "shorter than its header".into(),
            })?;
            gsm7::decode(text_codes)
        }
        alphabet => {
            let body = data
                .get(header_octets..length)
                .ok_or(PduError::Truncated { field: "user data" })?;
            if alphabet == Alphabet::Ucs2 {
                let units: Vec<u16> = body
                    .chunks(2)
                    .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                body.iter().map(|&b| char::from(b)).collect()
            }
        }
    };
    Ok((text, concat))
}

/// Finds a concatenation element in a user data header: IEI 0x00 (8-bit reference) or 0x08
/// (16-bit reference). Other elements are skipped; a malformed header yields none.
fn read_concat(mut header: &[u8]) -> Option<Concat> {
    while let [iei, length, rest @ ..] = header {
        let length = usize::from(*length);
        let value = rest.get(..length)?;
        match (iei, value) {
            (0x00, [reference, total, part]) => {
                return Some(Concat {
                    reference: u16::from(*reference),
                    total: *total,
                    part: *part,
                });
            }
            (0x08, [high, low, total, part]) => {
                return Some(Concat {
                    reference: u16::from_be_bytes([*high, *low]),
                    total: *total,
                    part: *part,
                });
            }
            _ => header = &rest[length..],
        }
    }
    None
}

/// Reads a time stamp that may hold nonsense: seven octets are taken either way, and a time
/// that does not exist becomes `None`.
fn read_lenient_timestamp(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<DateTime<FixedOffset>>, PduError> {
    match read_timestamp(reader, field) {
        Ok(at) => Ok(Some(at)),
        Err(PduError::Invalid { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Reads a 7-octet time stamp (TS 23.040 §9.2.3.11): swapped BCD year to second, then the zone
/// in quarter hours with its sign in bit 3.
fn read_timestamp(
    reader: &mut Reader<'_>,
    field: &'static str,
) -> Result<DateTime<FixedOffset>, PduError> {
    let bytes = reader.take(7, field)?;
    let bcd = |b: u8| u32::from(b & 0x0F) * 10 + u32::from(b >> 4);
    let invalid = || PduError::Invalid {
        field,
        reason: format!("{bytes:02X?} is not a time"),
    };

    let quarters = i32::from(bytes[6] & 0x07) * 10 + i32::from(bytes[6] >> 4);
    let sign = if bytes[6] & 0x08 != 0 { -1 } else { 1 };
    let zone = FixedOffset::east_opt(sign * quarters * 15 * 60).ok_or_else(invalid)?;
    // The year has two digits; 70–99 are read as the 1900s, the rest as the 2000s.
    let yy = bcd(bytes[0]) as i32;
    let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
    let local = NaiveDate::from_ymd_opt(year, bcd(bytes[1]), bcd(bytes[2]))
        .and_then(|d| d.and_hms_opt(bcd(bytes[3]), bcd(bytes[4]), bcd(bytes[5])))
        .ok_or_else(invalid)?;
    local.and_local_timezone(zone).single().ok_or_else(invalid)
}
