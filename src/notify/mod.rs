//! Telling people and systems what happened. Every event is stored with the change it tells of
//! (see [`crate::store::EventRecord`]); from there it goes out three ways: signed POSTs to
//! webhooks ([`webhooks`]), the live stream of Server-Sent Events ([`feed`]), and mail.

pub mod feed;
pub mod webhooks;

use crate::store::EventRecord;

/// The event types there are, which webhooks, mail rules and streams may ask for by name.
pub const EVENT_TYPES: [&str; 11] = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "sms.received",
    "call.received",
    "load.finished",
    "loads.summary",
    "balance.checked",
    "balance.low",
    "modem.connected",
    "modem.lost",
];

/// An event as webhooks and the live stream carry it: `{"id", "type", "at", "data"}`, the time
/// in UTC with milliseconds.
pub fn event_json(event: &EventRecord) -> String {
    let data: serde_json::Value =
        serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": event.id,
        "type": event.kind,
        "at": chrono::DateTime::from_timestamp_millis(event.at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "data": data,
    })
    .to_string()
}
