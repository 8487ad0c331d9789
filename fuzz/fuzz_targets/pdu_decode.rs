//! Any bytes, as the hex of a PDU line a modem printed (`+CMT`, `+CDS`, `+CMGR`, `+CMGL`): the
//! decoder must answer `Ok` or `Err`, never panic or read out of bounds. The input is tried both
//! as text (catching odd hex, bad digits, lone nibbles) and hex-encoded (so that the fuzzer
//! explores the octet structure of TS 23.040 itself).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pregonero::modem::pdu::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode(text);
    }
    let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
    let _ = decode(&hex);
});
