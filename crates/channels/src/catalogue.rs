//! `catalogue`: which adapter serves which vendor.
//!
//! Must not know: what the adapters do.

use molecule_domain::ChannelType;

use crate::adapter::Adapter;

/// The adapter of a vendor.
pub fn adapter(kind: ChannelType) -> &'static dyn Adapter {
    match kind {
        ChannelType::Telegram => &crate::telegram::Telegram,
        ChannelType::Slack => &crate::slack::Slack,
        ChannelType::Lark => &crate::lark::Lark,
        ChannelType::Discord => &crate::discord::Discord,
    }
}

/// Every adapter, by display name (the original's catalogue order).
pub fn all() -> Vec<&'static dyn Adapter> {
    let mut all: Vec<&'static dyn Adapter> = [
        ChannelType::Telegram,
        ChannelType::Slack,
        ChannelType::Lark,
        ChannelType::Discord,
    ]
    .into_iter()
    .map(adapter)
    .collect();
    all.sort_by_key(|a| a.display_name());
    all
}
