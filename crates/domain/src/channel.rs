//! The chat channels' vocabularies: which vendors exist, and where an inbound chat message
//! stands on its way to the agent and back.
//!
//! Must not know: the vendors' wire formats, storage.

use crate::vocab::vocabulary;

vocabulary! {
    /// A channel's vendor (`workspace_channels.channel_type`): the original's four adapters.
    pub enum ChannelType ("channel type") {
        Telegram => "telegram",
        Slack => "slack",
        Lark => "lark",
        Discord => "discord",
    }
}

vocabulary! {
    /// An inbound chat message (`channel_messages.status`).
    pub enum ChannelMessageStatus ("channel message status") {
        /// Taken in (deduplicated by the vendor's own id), not yet at the agent.
        Received => "received",
        /// The agent was busy: the message waits in its A2A queue; the answer is sent to the
        /// chat when the queue delivers it.
        Queued => "queued",
        /// The agent answered; the reply is being sent to the chat.
        Answered => "answered",
        /// The reply reached the chat (or the answer was empty: nothing to send).
        Replied => "replied",
        /// It could not be delivered to the agent, or the reply could not be sent: `error`
        /// says why.
        Failed => "failed",
        /// Not for the agent: an allowlist refused it.
        Dropped => "dropped",
    }
}

impl ChannelMessageStatus {
    /// Whether nothing more will happen to the message.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Replied | Self::Failed | Self::Dropped)
    }
}
