//! The words of the product as types: phone numbers, message texts and their segments, message
//! states, message templates, the sending window and the permission modules. No I/O happens
//! here; every value is checked once, in its `parse`, so the rest of the service only ever sees
//! valid ones.

mod balance;
pub mod gsm7;
mod language;
mod message;
mod module;
mod optout;
mod phone;
mod template;
mod text;
mod window;

pub use balance::{Balance, parse as parse_balance};
pub use language::Language;
pub use message::{Channel, MessageStatus};
pub use module::{Module, ModuleSet};
pub use optout::{Keyword, KeywordError, Keywords};
pub use phone::{PhoneError, PhoneNumber, Region};
pub use template::{MissingValue, Row, Template, TemplateProblem, Token, fold};
pub use text::{Encoding, MAX_SEGMENTS, MessageText, TextError, count_segments, segment_room};
pub use window::{SendingWindow, WindowError};
