//! `vendor`: the one HTTP client the adapters call vendors with, and where each vendor is.
//!
//! Owns: the vendors' origins and their overrides (`TELEGRAM_API_BASE`, `SLACK_API_BASE`,
//! `DISCORD_API_BASE`, `LARK_API_BASE`: a local fake in the tests, a forward proxy for an
//! operator), and the rewrite of a stored webhook URL onto the override: the row keeps the
//! vendor's own URL (`https://hooks.slack.com/services/…`), and the send goes to
//! `<SLACK_API_BASE>/services/…`.
//!
//! Must not know: what is sent, the database.

use std::time::Duration;

/// Each vendor call's deadline (the original's).
pub const VENDOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the vendors are (`None`: their public hosts).
#[derive(Debug, Clone, Default)]
pub struct Bases {
    pub telegram: Option<String>,
    pub slack: Option<String>,
    pub discord: Option<String>,
    pub lark: Option<String>,
}

/// The vendors' public origins, by vendor; a stored URL on one of them is rewritten onto the
/// vendor's override.
const TELEGRAM_ORIGINS: &[&str] = &["https://api.telegram.org"];
const SLACK_ORIGINS: &[&str] = &["https://slack.com", "https://hooks.slack.com"];
const DISCORD_ORIGINS: &[&str] = &["https://discord.com"];
const LARK_ORIGINS: &[&str] = &["https://open.feishu.cn", "https://open.larksuite.com"];

/// The HTTP client and the vendors' origins.
#[derive(Debug, Clone)]
pub struct Vendors {
    pub(crate) http: reqwest::Client,
    bases: Bases,
}

impl Vendors {
    /// Fails only if the TLS backend cannot initialise.
    pub fn new(bases: Bases) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(VENDOR_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // A webhook URL is stored by a user: never follow it somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, bases })
    }

    /// Telegram's Bot API method URL for a token.
    pub(crate) fn telegram(&self, token: &str, method: &str) -> String {
        let base = self.bases.telegram.as_deref().unwrap_or(TELEGRAM_ORIGINS[0]);
        format!("{}/bot{token}/{method}", base.trim_end_matches('/'))
    }

    /// Slack's Web API method URL.
    pub(crate) fn slack_api(&self, method: &str) -> String {
        let base = self.bases.slack.as_deref().unwrap_or(SLACK_ORIGINS[0]);
        format!("{}/api/{method}", base.trim_end_matches('/'))
    }

    /// Discord's API path (`/api/v10/…`).
    pub(crate) fn discord_api(&self, path: &str) -> String {
        let base = self.bases.discord.as_deref().unwrap_or(DISCORD_ORIGINS[0]);
        format!("{}/api/v10/{path}", base.trim_end_matches('/'))
    }

    /// A stored Slack webhook URL, where it is sent.
    pub(crate) fn slack_webhook(&self, url: &str) -> String {
        rewrite(url, SLACK_ORIGINS, self.bases.slack.as_deref())
    }

    pub(crate) fn discord_webhook(&self, url: &str) -> String {
        rewrite(url, DISCORD_ORIGINS, self.bases.discord.as_deref())
    }

    pub(crate) fn lark_webhook(&self, url: &str) -> String {
        rewrite(url, LARK_ORIGINS, self.bases.lark.as_deref())
    }
}

/// The longest a vendor's `Retry-After` is waited for before the one retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Sends `req`; a 429 waits for the vendor's `Retry-After` (seconds; at most 30) and sends
/// once more, and that answer stands (Slack's and Discord's documented rate limiting).
pub(crate) async fn send_respecting_429(req: reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
    let again = req.try_clone();
    let resp = req.send().await?;
    let Some(again) = again.filter(|_| resp.status().as_u16() == 429) else {
        return Ok(resp);
    };
    let wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
        .min(MAX_RETRY_AFTER);
    tracing::info!(wait = ?wait, "vendor rate limit: waiting once before a retry");
    tokio::time::sleep(wait).await;
    again.send().await
}

fn rewrite(url: &str, origins: &[&str], base: Option<&str>) -> String {
    let Some(base) = base else {
        return url.to_owned();
    };
    for origin in origins {
        if let Some(rest) = url.strip_prefix(origin)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{rest}", base.trim_end_matches('/'));
        }
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_urls_move_onto_the_override_and_only_their_vendors() {
        let v = Vendors::new(Bases {
            slack: Some("http://127.0.0.1:9/".into()),
            ..Bases::default()
        })
        .unwrap();
        assert_eq!(
            v.slack_webhook("https://hooks.slack.com/services/T/B/x"),
            "http://127.0.0.1:9/services/T/B/x"
        );
        assert_eq!(
            v.slack_api("chat.postMessage"),
            "http://127.0.0.1:9/api/chat.postMessage"
        );
        assert_eq!(
            v.discord_webhook("https://discord.com/api/webhooks/1/a"),
            "https://discord.com/api/webhooks/1/a"
        );
        assert_eq!(
            v.slack_webhook("https://hooks.slack.com.evil/services/x"),
            "https://hooks.slack.com.evil/services/x"
        );
        assert_eq!(v.telegram("1:a", "getMe"), "https://api.telegram.org/bot1:a/getMe");
    }
}
