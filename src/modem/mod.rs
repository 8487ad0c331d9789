//! Everything that speaks to GSM modems: the pure codecs, with no I/O (AT line framing in `at`,
//! PDUs of 3GPP TS 23.040 in `pdu`, the meaning of `+CMS ERROR` codes in `cms`); the actor that
//! owns a modem's port (`actor`) and the conversation it holds (`session`); the serial port
//! (`transport`); and the simulated Huawei E303 (`simulator`) with its ports (`simulated`).

pub mod actor;
pub mod at;
pub mod cms;
pub mod pdu;
pub mod session;
pub mod simulated;
pub mod simulator;
pub mod transport;
pub mod ussd;
