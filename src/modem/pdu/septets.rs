//! Packing 7-bit septets into octets and back (3GPP TS 23.038 §6.1.2.1.1): septet `i` starts at
//! bit `7 * i` of the user data, least significant bit first. After a user data header the text
//! starts at the next septet boundary, so `fill` bits are skipped first.

/// Packs `septets` after `fill` zero bits.
pub(crate) fn pack(septets: &[u8], fill: usize) -> Vec<u8> {
    let bits = fill + septets.len() * 7;
    let mut out = vec![0u8; bits.div_ceil(8)];
    for (i, &septet) in septets.iter().enumerate() {
        let bit = fill + i * 7;
        let (byte, shift) = (bit / 8, bit % 8);
        let value = u16::from(septet & 0x7F) << shift;
        out[byte] |= (value & 0xFF) as u8;
        if value > 0xFF {
            out[byte + 1] |= (value >> 8) as u8;
        }
    }
    out
}

/// Reads `count` septets after `fill` bits; `None` when the octets are too few.
pub(crate) fn unpack(octets: &[u8], count: usize, fill: usize) -> Option<Vec<u8>> {
    let needed = (fill + count * 7).div_ceil(8);
    if octets.len() < needed {
        return None;
    }
    let septets = (0..count)
        .map(|i| {
            let bit = fill + i * 7;
            let (byte, shift) = (bit / 8, bit % 8);
            let low = u16::from(octets[byte]);
            let high = octets.get(byte + 1).copied().map_or(0, u16::from);
            (((high << 8 | low) >> shift) & 0x7F) as u8
        })
        .collect();
    Some(septets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_packs_as_in_the_textbook_example() {
        // "Hello" in the default alphabet packs to C8 32 9B FD 06.
        let septets: Vec<u8> = "Hello".bytes().collect();
        assert_eq!(pack(&septets, 0), [0xC8, 0x32, 0x9B, 0xFD, 0x06]);
        assert_eq!(
            unpack(&[0xC8, 0x32, 0x9B, 0xFD, 0x06], 5, 0).unwrap(),
            septets
        );
    }

    #[test]
    fn eight_septets_fill_seven_octets_exactly() {
        let septets = [0x7F; 8];
        let packed = pack(&septets, 0);
        assert_eq!(packed, [0xFF; 7]);
        assert_eq!(unpack(&packed, 8, 0).unwrap(), septets);
    }

    #[test]
    fn fill_bits_shift_the_text_after_a_header() {
        let septets: Vec<u8> = "abc".bytes().collect();
        let packed = pack(&septets, 1);
        assert_eq!(packed[0] & 1, 0);
        assert_eq!(unpack(&packed, 3, 1).unwrap(), septets);
    }

    #[test]
    fn too_few_octets_are_refused() {
        assert!(unpack(&[0xC8, 0x32], 5, 0).is_none());
    }
}
