//! Everything that speaks to GSM modems. So far the pure codecs, with no I/O: AT line framing
//! (`at`), PDUs (`pdu`, 3GPP TS 23.040) and the meaning of `+CMS ERROR` codes (`cms`).

pub mod actor;
pub mod at;
pub mod cms;
pub mod pdu;
pub mod session;
pub mod simulator;
pub mod transport;
