//! The network's side of the codec: SMS-DELIVER and SMS-STATUS-REPORT encoding. A gateway never
//! sends these; the simulated modem does, so that what reaches the decoder in tests has been
//! through the same bytes a real modem would print.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::address::encode_recipient;
use super::{PduError, septets, to_hex};
use crate::domain::gsm7;

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
