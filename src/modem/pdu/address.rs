//! Addresses in a PDU (3GPP TS 23.040 §9.1.2.5): a length, a type of address, and the number in
//! swapped BCD semi-octets, or, for alphanumeric senders such as a bank's name, GSM-7 packed.

use super::PduError;
use super::reader::Reader;
use super::septets;
use crate::domain::gsm7;

/// Type of address: international number, ISDN numbering plan.
const TOA_INTERNATIONAL: u8 = 0x91;
/// Type of address: unknown type, ISDN numbering plan (the modem's network decides).
const TOA_UNKNOWN: u8 = 0x81;
/// The type-of-number bits (6–4) that mark an alphanumeric address.
const TON_ALPHANUMERIC: u8 = 0b101;
/// The type-of-number bits that mark an international number.
const TON_INTERNATIONAL: u8 = 0b001;
/// The type-of-number bits that mark a national number.
const TON_NATIONAL: u8 = 0b010;

/// What kind of address a PDU carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// A number with its country code; the value starts with `+`.
    International,
    /// A number in the network's national format.
    National,
    /// A name, such as a bank's or an operator's.
    Alphanumeric,
    /// Any other type of number, kept as its digits.
    Other,
}

/// A sender, recipient or service centre address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// What kind it is.
    pub kind: AddressKind,
    /// The number (`+59171234567`, `71234567`) or the name.
    pub value: String,
}

/// Writes a recipient as TP-DA: `+` and digits as an international number, digits alone as a
/// number of unknown type.
pub(super) fn encode_recipient(number: &str, out: &mut Vec<u8>) -> Result<(), PduError> {
    let (toa, digits) = match number.strip_prefix('+') {
        Some(digits) => (TOA_INTERNATIONAL, digits),
        None => (TOA_UNKNOWN, number),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PduError::BadRecipient(number.to_owned()));
    }
    out.push(digits.len() as u8);
    out.push(toa);
    out.extend(swapped_bcd(digits));
    Ok(())
}

/// Digits as swapped semi-octets, padded with `F` to a whole octet.
fn swapped_bcd(digits: &str) -> Vec<u8> {
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let low = pair[0] - b'0';
            let high = pair.get(1).map_or(0x0F, |d| d - b'0');
            high << 4 | low
        })
        .collect()
}

/// Reads a TP-OA or TP-RA, whose length counts semi-octets.
pub(super) fn read_address(reader: &mut Reader<'_>) -> Result<Address, PduError> {
    let semi_octets = usize::from(reader.byte("address length")?);
    let toa = reader.byte("type of address")?;
    let bytes = reader.take(semi_octets.div_ceil(2), "address")?;
    let ton = (toa >> 4) & 0b111;

    if ton == TON_ALPHANUMERIC {
        let count = semi_octets * 4 / 7;
        let codes = septets::unpack(bytes, count, 0).ok_or(PduError::Truncated {
            field: "alphanumeric address",
        })?;
        return Ok(Address {
            kind: AddressKind::Alphanumeric,
            value: gsm7::decode(&codes),
        });
    }

    let digits = bcd_digits(bytes, semi_octets);
    Ok(match ton {
        TON_INTERNATIONAL => Address {
            kind: AddressKind::International,
            value: format!("+{digits}"),
        },
        TON_NATIONAL => Address {
            kind: AddressKind::National,
            value: digits,
        },
        _ => Address {
            kind: AddressKind::Other,
            value: digits,
        },
    })
}

/// Reads the service centre address that precedes a received TPDU; its length counts octets,
/// type of address included. `None` when the modem left it out (length 0).
pub(super) fn read_smsc(reader: &mut Reader<'_>) -> Result<Option<Address>, PduError> {
    let octets = usize::from(reader.byte("SMSC length")?);
    if octets == 0 {
        return Ok(None);
    }
    let toa = reader.byte("SMSC type of address")?;
    let bytes = reader.take(octets - 1, "SMSC address")?;
    let digits = bcd_digits(bytes, bytes.len() * 2);
    let international = (toa >> 4) & 0b111 == TON_INTERNATIONAL;
    Ok(Some(Address {
        kind: if international {
            AddressKind::International
        } else {
            AddressKind::Other
        },
        value: if international {
            format!("+{digits}")
        } else {
            digits
        },
    }))
}

/// Up to `count` digits from swapped semi-octets, stopping at the `F` filler.
fn bcd_digits(bytes: &[u8], count: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b & 0x0F, b >> 4])
        .take(count)
        .take_while(|&d| d != 0x0F)
        .map(|d| match d {
            0..=9 => char::from(b'0' + d),
            0x0A => '*',
            0x0B => '#',
            _ => char::from(b'a' + d - 0x0C),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_are_swapped_and_padded() {
        let mut out = Vec::new();
        encode_recipient("+46708251358", &mut out).unwrap();
        assert_eq!(out, [0x0B, 0x91, 0x64, 0x07, 0x28, 0x15, 0x53, 0xF8]);

        let mut reader = Reader::new(&out);
        let address = read_address(&mut reader).unwrap();
        assert_eq!(address.kind, AddressKind::International);
        assert_eq!(address.value, "+46708251358");
    }

    #[test]
    fn numbers_without_a_plus_go_as_unknown_type() {
        let mut out = Vec::new();
        encode_recipient("71234567", &mut out).unwrap();
        assert_eq!(out, [0x08, 0x81, 0x17, 0x32, 0x54, 0x76]);
    }

    #[test]
    fn anything_but_digits_is_refused() {
        for bad in ["", "+", "+59 171", "abc", "+123456789012345678901"] {
            assert!(encode_recipient(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn alphanumeric_senders_are_decoded() {
        // "Tigo" packed in GSM-7: 4 septets, 28 bits, 7 semi-octets.
        let packed = septets::pack(b"Tigo", 0);
        let mut pdu = vec![0x07, 0xD0];
        pdu.extend(&packed);
        let address = read_address(&mut Reader::new(&pdu)).unwrap();
        assert_eq!(address.kind, AddressKind::Alphanumeric);
        assert_eq!(address.value, "Tigo");
    }

    #[test]
    fn a_short_address_is_an_error_not_a_panic() {
        assert!(read_address(&mut Reader::new(&[0x0B, 0x91, 0x64])).is_err());
        assert!(read_address(&mut Reader::new(&[0x0B])).is_err());
        assert!(read_smsc(&mut Reader::new(&[0x07, 0x91])).is_err());
    }
}
