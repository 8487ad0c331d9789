//! SMS-SUBMIT encoding (3GPP TS 23.040 §9.2.2.2): one PDU per segment, ready for `AT+CMGS`.

use super::address::encode_recipient;
use super::{PduError, septets, to_hex};
use crate::domain::{Encoding, gsm7};

/// Septets in a lone GSM-7 SMS, and in each part of a concatenated one (after the 7 septets
/// that the 6-octet header and its fill bit take).
const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
/// UTF-16 units in a lone UCS-2 SMS, and in each part (140 octets less the 6 of the header).
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// First-octet bits: message type SMS-SUBMIT, relative validity period present, status report
/// requested, user data header present.
const MTI_SUBMIT: u8 = 0x01;
const VPF_RELATIVE: u8 = 0x10;
const SRR: u8 = 0x20;
const UDHI: u8 = 0x40;

/// How a message is to be submitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Ask the network for a status report when the message reaches the phone.
    pub status_report: bool,
    /// How long the network keeps trying, in minutes; `None` leaves it to the network.
    pub validity_minutes: Option<u32>,
    /// The concatenation reference shared by the parts of one long message.
    pub reference: u8,
}

/// One segment, encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    /// The PDU in hex, starting with `00` (use the SIM's service centre).
    pub hex: String,
    /// The length `AT+CMGS=` wants: the octets after the service centre part.
    pub tpdu_length: usize,
    /// This part's number, from 1.
    pub part: u8,
    /// How many parts the message has.
    pub total: u8,
}

/// Encodes `text` to `to` (`+` and digits, or digits) as one SMS-SUBMIT per segment.
///
/// # Errors
///
/// Fails when the recipient is not a number or the text would need more than 255 parts.
pub fn encode_submit(
    to: &str,
    text: &str,
    options: &SubmitOptions,
) -> Result<Vec<Submit>, PduError> {
    let mut recipient = Vec::with_capacity(12);
    encode_recipient(to, &mut recipient)?;

    let (encoding, parts) = split(text);
    let total = u8::try_from(parts.len()).map_err(|_| PduError::TooManyParts)?;
    let concatenated = total > 1;

    parts
        .iter()
        .enumerate()
        .map(|(i, units)| {
            let part = (i + 1) as u8;
            let mut tpdu = Vec::with_capacity(160);
            let mut first = MTI_SUBMIT;
            if options.validity_minutes.is_some() {
                first |= VPF_RELATIVE;
            }
            if options.status_report {
                first |= SRR;
            }
            if concatenated {
                first |= UDHI;
            }
            tpdu.push(first);
            tpdu.push(0x00); // TP-MR: the modem puts its own reference here.
            tpdu.extend(&recipient);
            tpdu.push(0x00); // TP-PID: plain short message.
            tpdu.push(match encoding {
                Encoding::Gsm7 => 0x00,
                Encoding::Ucs2 => 0x08,
            });
            if let Some(minutes) = options.validity_minutes {
                tpdu.push(relative_validity(minutes));
            }

            let header = concatenated.then_some([0x05, 0x00, 0x03, options.reference, total, part]);
            match encoding {
                Encoding::Gsm7 => {
                    // The 6-octet header is 48 bits; one fill bit brings the text to the next
                    // septet boundary, so the header counts as 7 septets in TP-UDL.
                    let (header_septets, fill) = if header.is_some() { (7, 1) } else { (0, 0) };
                    tpdu.push((header_septets + units.len()) as u8);
                    tpdu.extend(header.iter().flatten());
                    tpdu.extend(septets::pack(units, fill));
                }
                Encoding::Ucs2 => {
                    let header_octets = if header.is_some() { 6 } else { 0 };
                    tpdu.push((header_octets + units.len()) as u8);
                    tpdu.extend(header.iter().flatten());
                    tpdu.extend(units);
                }
            }

            Ok(Submit {
                hex: format!("00{}", to_hex(&tpdu)),
                tpdu_length: tpdu.len(),
                part,
                total,
            })
        })
        .collect()
}

/// Splits a text into the user data of its segments: septet codes for GSM-7, UTF-16BE octets
/// for UCS-2. A part never ends between an escape and its character, nor inside a surrogate
/// pair.
pub(super) fn split(text: &str) -> (Encoding, Vec<Vec<u8>>) {
    let mut gsm = Vec::with_capacity(text.len());
    let mut boundaries = Vec::with_capacity(text.len());
    let fits_gsm7 = text.chars().all(|c| {
        boundaries.push(gsm.len());
        gsm7::push_septets(c, &mut gsm)
    });

    if fits_gsm7 {
        boundaries.push(gsm.len());
        let parts = cut(&gsm, &boundaries, GSM7_SINGLE, GSM7_PART);
        return (Encoding::Gsm7, parts);
    }

    let mut octets = Vec::with_capacity(text.len() * 2);
    let mut boundaries = Vec::with_capacity(text.len() + 1);
    let mut units = [0u16; 2];
    for c in text.chars() {
        boundaries.push(octets.len());
        for unit in c.encode_utf16(&mut units) {
            octets.extend(unit.to_be_bytes());
        }
    }
    boundaries.push(octets.len());
    let parts = cut(&octets, &boundaries, UCS2_SINGLE * 2, UCS2_PART * 2);
    (Encoding::Ucs2, parts)
}

/// Cuts `data` into one piece when it fits `single`, otherwise into pieces of at most `part`,
/// only at the `boundaries` (the start of each character, and the end).
fn cut(data: &[u8], boundaries: &[usize], single: usize, part: usize) -> Vec<Vec<u8>> {
    if data.len() <= single {
        return vec![data.to_vec()];
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_fit = 0;
    for &boundary in boundaries.iter().skip(1) {
        if boundary - start > part {
            pieces.push(data[start..last_fit].to_vec());
            start = last_fit;
        }
        last_fit = boundary;
    }
    if start < data.len() {
        pieces.push(data[start..].to_vec());
    }
    pieces
}

/// A relative validity period (TS 23.040 §9.2.3.12.1), rounded up to the next value the field
/// can hold: 5-minute steps to 12 hours, 30-minute steps to 24 hours, days to 30 days, then
/// weeks up to 63.
fn relative_validity(minutes: u32) -> u8 {
    let value = match minutes {
        0..=720 => minutes.div_ceil(5).max(1) - 1,
        721..=1440 => 143 + (minutes - 720).div_ceil(30),
        1441..=43_200 => 166 + minutes.div_ceil(1440),
        _ => 192 + minutes.div_ceil(10_080),
    };
    value.min(255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textbook_submit_is_reproduced() {
        // "hellohello" to +46708251358, valid 4 days, the example most PDU guides give.
        let options = SubmitOptions {
            validity_minutes: Some(4 * 24 * 60),
            ..SubmitOptions::default()
        };
        let pdus = encode_submit("+46708251358", "hellohello", &options).unwrap();
        assert_eq!(pdus.len(), 1);
        assert_eq!(
            pdus[0].hex,
            "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
        );
        assert_eq!(pdus[0].tpdu_length, 23);
    }

    #[test]
    fn validity_periods_round_up_to_the_field_steps() {
        assert_eq!(relative_validity(5), 0);
        assert_eq!(relative_validity(6), 1);
        assert_eq!(relative_validity(720), 143);
        assert_eq!(relative_validity(24 * 60), 167);
        assert_eq!(relative_validity(4 * 24 * 60), 170);
        assert_eq!(relative_validity(30 * 24 * 60), 196);
        assert_eq!(relative_validity(63 * 7 * 24 * 60), 255);
        assert_eq!(relative_validity(u32::MAX), 255);
    }

    #[test]
    fn long_texts_get_a_header_and_153_septet_parts() {
        let text = "a".repeat(161);
        let pdus = encode_submit(
            "+59171234567",
            &text,
            &SubmitOptions {
                reference: 0x42,
                status_report: true,
                ..SubmitOptions::default()
            },
        )
        .unwrap();
        assert_eq!(pdus.len(), 2);
        // First octet SUBMIT | SRR | UDHI; then MR, DA (8 octets), PID, DCS, UDL, header.
        assert!(
            pdus[0]
                .hex
                .starts_with("0061000B919571214365F70000A0050003420201")
        );
        assert!(
            pdus[1]
                .hex
                .starts_with("0061000B919571214365F700000F050003420202")
        );
    }

    #[test]
    fn an_escape_pair_is_kept_whole_at_a_part_boundary() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        let (_, parts) = split(&text);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 152);
        assert_eq!(&parts[1][..2], &[gsm7::ESCAPE, 0x65]);
    }

    #[test]
    fn ucs2_parts_keep_surrogate_pairs_whole() {
        let text = format!("{}😀{}", "á".repeat(66), "é".repeat(10));
        let (encoding, parts) = split(&text);
        assert_eq!(encoding, Encoding::Ucs2);
        assert_eq!(parts[0].len(), 132);
        assert_eq!(parts[1].len(), 4 + 20);
    }

    #[test]
    fn splitting_agrees_with_the_segment_counter() {
        for text in [
            "a".repeat(160),
            "a".repeat(161),
            "€".repeat(200),
            "á".repeat(70),
            "á".repeat(135),
            format!("{}😀", "á".repeat(200)),
        ] {
            let (_, parts) = split(&text);
            let (_, counted) = crate::domain::count_segments(&text);
            assert_eq!(parts.len(), counted, "{} chars", text.chars().count());
        }
    }

    #[test]
    fn more_than_255_parts_are_refused() {
        let text = "a".repeat(153 * 256);
        assert_eq!(
            encode_submit("+59171234567", &text, &SubmitOptions::default()),
            Err(PduError::TooManyParts)
        );
    }
}
