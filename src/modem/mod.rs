//! Everything that speaks to GSM modems. So far the PDU codec (3GPP TS 23.040): SMS-SUBMIT
//! encoding for sending, SMS-DELIVER and SMS-STATUS-REPORT decoding for what the modem receives.

pub mod pdu;
