//! The states a message moves through and the ways it can enter the system.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a message is on its way to the phone. The order of the variants is the order of the
/// happy path; `failed` and `cancelled` are ends reached from the side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Stored, waiting for its time and the sending window.
    Pending,
    /// Claimed by a modem.
    Queued,
    /// Handed to the modem, waiting for `+CMGS`.
    Sending,
    /// The network accepted it.
    Sent,
    /// A status report confirmed it reached the phone.
    Delivered,
    /// It will not go out; the reason is in `error`.
    Failed,
    /// Cancelled before it went out.
    Cancelled,
}

impl MessageStatus {
    /// Every state, in order.
    pub const ALL: [MessageStatus; 7] = [
        MessageStatus::Pending,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Cancelled,
    ];

    /// The state's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    /// Reads a state name.
    pub fn parse(name: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the message may still be cancelled: nothing has been handed to a modem yet.
    pub fn is_cancellable(self) -> bool {
        matches!(self, MessageStatus::Pending | MessageStatus::Queued)
    }
}

/// How a message entered the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `POST /v1/messages`.
    Api,
    /// `POST /v1/messages/batch`.
    Batch,
    /// A load (Excel file or ERP query).
    Load,
}

impl Channel {
    /// The channel's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Api => "api",
            Channel::Batch => "batch",
            Channel::Load => "load",
        }
    }

    /// Reads a channel name.
    pub fn parse(name: &str) -> Option<Channel> {
        [Channel::Api, Channel::Batch, Channel::Load]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MessageStatus::parse("lost"), None);
    }

    #[test]
    fn only_messages_not_yet_handed_to_a_modem_can_be_cancelled() {
        let cancellable: Vec<_> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_cancellable())
            .collect();
        assert_eq!(cancellable, [MessageStatus::Pending, MessageStatus::Queued]);
    }
}
