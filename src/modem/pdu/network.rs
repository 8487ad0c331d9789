//! The network's side of the codec: SMS-DELIVER and SMS-STATUS-REPORT encoding. A gateway never
//! sends these; the simulated modem does, so that what reaches the decoder in tests has been
//! through the same bytes a real modem would print.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::address::encode_recipient;
use super::{PduError, septets, to_hex};
use crate::domain::{Encoding, gsm7};

/// An SMS-DELIVER from `sender` (`+` and digits) with `text`, as a modem prints it: SMSC length
/// 0, then the TPDU. Texts outside the default alphabet go as UCS-2; one PDU, no header, so the
/// text must fit one segment.
///
/// # Errors
///
/// Fails when the sender is not a number.
pub fn encode_deliver(
    sender: &str,
    text: &str,
    at: DateTime<FixedOffset>,
) -> Result<String, PduError> {
    let mut tpdu = vec![0x04]; // SMS-DELIVER, no more messages to send.
    encode_recipient(sender, &mut tpdu)?;
    tpdu.push(0x00);
    let mut codes = Vec::with_capacity(text.len());
    if text.chars().all(|c| gsm7::push_septets(c, &mut codes)) {
        tpdu.push(0x00);
        tpdu.extend(timestamp(at));
        tpdu.push(codes.len() as u8);
        tpdu.extend(septets::pack(&codes, 0));
    } else {
        let octets: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        tpdu.push(0x08);
        tpdu.extend(timestamp(at));
        tpdu.push(octets.len() as u8);
        tpdu.extend(octets);
    }
    Ok(format!("00{}", to_hex(&tpdu)))
}

/// A text from `sender` as the SMS-DELIVER PDUs of its parts: one PDU when it fits, otherwise
/// one a part with a concatenation header (8-bit `reference`), as a phone sends a long text.
///
/// # Errors
///
/// Fails when the sender is not a number or the text needs more than 255 parts.
pub fn encode_deliver_parts(
    sender: &str,
    text: &str,
    reference: u8,
    at: DateTime<FixedOffset>,
) -> Result<Vec<String>, PduError> {
    let (encoding, parts) = super::submit::split(text);
    if parts.len() <= 1 {
        return Ok(vec![encode_deliver(sender, text, at)?]);
    }
    let total = u8::try_from(parts.len()).map_err(|_| PduError::TooManyParts)?;
    let mut address = Vec::with_capacity(12);
    encode_recipient(sender, &mut address)?;
    parts
        .iter()
        .enumerate()
        .map(|(i, units)| {
            let header = [0x05, 0x00, 0x03, reference, total, (i + 1) as u8];
            let mut tpdu = vec![0x44]; // SMS-DELIVER with a user data header.
            tpdu.extend(&address);
            tpdu.push(0x00);
            match encoding {
                Encoding::Gsm7 => {
                    tpdu.push(0x00);
                    tpdu.extend(timestamp(at));
                    // 48 header bits and one fill bit make 7 septets.
                    tpdu.push((7 + units.len()) as u8);
                    tpdu.extend(header);
                    tpdu.extend(septets::pack(units, 1));
                }
                Encoding::Ucs2 => {
                    tpdu.push(0x08);
                    tpdu.extend(timestamp(at));
                    tpdu.push((6 + units.len()) as u8);
                    tpdu.extend(header);
                    tpdu.extend(units);
                }
            }
            Ok(format!("00{}", to_hex(&tpdu)))
        })
        .collect()
}

/// An SMS-STATUS-REPORT for message reference `mr` to `recipient`, with TP-ST `status`. Returns
/// the PDU and the TPDU length `+CDS:` announces.
///
/// # Errors
///
/// Fails when the recipient is not a number.
pub fn encode_status_report(
    mr: u8,
    recipient: &str,
    submitted: DateTime<FixedOffset>,
    discharged: DateTime<FixedOffset>,
    status: u8,
) -> Result<(String, usize), PduError> {
    let mut tpdu = vec![0x06, mr];
    encode_recipient(recipient, &mut tpdu)?;
    tpdu.extend(timestamp(submitted));
    tpdu.extend(timestamp(discharged));
    tpdu.push(status);
    Ok((format!("00{}", to_hex(&tpdu)), tpdu.len()))
}

/// A 7-octet time stamp in swapped BCD with the zone in quarter hours (TS 23.040 §9.2.3.11).
fn timestamp(at: DateTime<FixedOffset>) -> [u8; 7] {
    let swap = |v: u32| (((v % 10) << 4) | ((v / 10) % 10)) as u8;
    let quarters = at.offset().local_minus_utc() / (15 * 60);
    let mut zone = swap(quarters.unsigned_abs());
    if quarters < 0 {
        zone |= 0x08;
    }
    [
        swap(at.year().rem_euclid(100) as u32),
        swap(at.month()),
        swap(at.day()),
        swap(at.hour()),
        swap(at.minute()),
        swap(at.second()),
        zone,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::pdu::{Received, decode};

    fn at(rfc3339: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn a_deliver_decodes_to_what_was_encoded() {
        for text in ["Pagaré mañana", "BAJA", "Gracias 🙏"] {
            let hex =
                encode_deliver("+59171234567", text, at("2026-12-03T09:15:30-04:00")).unwrap();
            let Ok(Received::Deliver(d)) = decode(&hex) else {
                panic!("{hex}");
            };
            assert_eq!(d.text, text);
            assert_eq!(d.address.value, "+59171234567");
            assert_eq!(
                d.timestamp.unwrap().to_rfc3339(),
                "2026-12-03T09:15:30-04:00"
            );
        }
    }

    #[test]
    fn a_long_deliver_comes_in_parts_that_join_to_the_text() {
        for text in ["ú".repeat(80) + "fin", "Cuota ".repeat(40)] {
            let parts =
                encode_deliver_parts("+59171234567", &text, 9, at("2026-12-03T09:15:30-04:00"))
                    .unwrap();
            assert!(parts.len() > 1);
            let mut joined = String::new();
            for (i, hex) in parts.iter().enumerate() {
                let Ok(Received::Deliver(d)) = decode(hex) else {
                    panic!("{hex}");
                };
                let concat = d.concat.unwrap();
                assert_eq!((concat.reference, concat.part), (9, i as u8 + 1));
                assert_eq!(usize::from(concat.total), parts.len());
                joined.push_str(&d.text);
            }
            assert_eq!(joined, text);
        }
    }

    #[test]
    fn a_status_report_decodes_to_what_was_encoded() {
        let (hex, length) = encode_status_report(
            0x2A,
            "+59171234567",
            at("2026-12-03T09:15:30-04:00"),
            at("2026-12-03T09:15:34-04:00"),
            0x00,
        )
        .unwrap();
        assert_eq!(hex.len(), 2 + length * 2);
        let Ok(Received::StatusReport(r)) = decode(&hex) else {
            panic!("{hex}");
        };
        assert_eq!(r.message_reference, 0x2A);
        assert_eq!(r.recipient.value, "+59171234567");
        assert_eq!(
            r.discharged.unwrap().to_rfc3339(),
            "2026-12-03T09:15:34-04:00"
        );
    }
}
