//! `verify`: is this inbound request from the vendor, for this channel row? One function per
//! vendor, each given the row's secret, the request's headers as strings and the raw body.
//!
//! Owns: Slack's signing secret v0 (HMAC-SHA256 over `v0:<timestamp>:<body>`, five minutes
//! either side of now), Discord's Ed25519 over `<timestamp><body>` with the row's public key,
//! GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body), Telegram's webhook
//! `X-Telegram-Bot-Api-Secret-Token`, and Lark's verification token and, when the row has an
//! encrypt key, `X-Lark-Signature`. Every comparison is
//! constant-time (`ring`'s HMAC and signature checks; `subtle` for tokens).
//!
//! A rejection says which part failed (missing, malformed, stale, mismatch) and never a
//! secret or the expected value, so it is safe to log and to answer as the 401's reason.
//!
//! Must not know: where the secret is stored, HTTP, what happens to a verified request.

use ring::{hmac, signature};
use subtle::ConstantTimeEq;

/// How far a Slack request's timestamp may be from now, either way (Slack's own advice).
pub const SLACK_REPLAY_WINDOW_SECONDS: i64 = 5 * 60;

/// Why an inbound request was refused. Names the header, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the replay window.
    #[error("stale request timestamp")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Slack: `X-Slack-Signature` (`v0=<hex>`) must be the HMAC-SHA256, keyed by the row's
/// signing secret, of `v0:<X-Slack-Request-Timestamp>:<body>`, and the timestamp within
/// [`SLACK_REPLAY_WINDOW_SECONDS`] of `now_unix`.
pub fn slack(
    signing_secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), Rejected> {
    let timestamp = timestamp.ok_or(Rejected::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(Rejected::Missing("X-Slack-Signature"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejected::Malformed("X-Slack-Request-Timestamp"))?;
    if (now_unix - at).abs() > SLACK_REPLAY_WINDOW_SECONDS {
        return Err(Rejected::Stale);
    }
    let tag = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Rejected::Malformed("X-Slack-Signature"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_secret);
    let mut signed = Vec::with_capacity(timestamp.len() + body.len() + 4);
    signed.extend_from_slice(b"v0:");
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b':');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &tag).map_err(|_| Rejected::Mismatch)
}

/// A vendor's request timestamp (unix seconds, header `name`) must be within
/// [`SLACK_REPLAY_WINDOW_SECONDS`] of `now_unix`, either way: a captured request cannot be
/// replayed later (Discord's and Lark's signatures cover their timestamps).
pub fn fresh(name: &'static str, timestamp: Option<&str>, now_unix: i64) -> Result<(), Rejected> {
    let at: i64 = timestamp
        .ok_or(Rejected::Missing(name))?
        .trim()
        .parse()
        .map_err(|_| Rejected::Malformed(name))?;
    if (now_unix - at).abs() > SLACK_REPLAY_WINDOW_SECONDS {
        return Err(Rejected::Stale);
    }
    Ok(())
}

/// Discord: `X-Signature-Ed25519` (hex) must be an Ed25519 signature of
/// `<X-Signature-Timestamp><body>` by the row's public key (hex, from the application's page).
pub fn discord(
    public_key_hex: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Rejected> {
    let timestamp = timestamp.ok_or(Rejected::Missing("X-Signature-Timestamp"))?;
    let signature = signature.ok_or(Rejected::Missing("X-Signature-Ed25519"))?;
    let sig = hex::decode(signature.trim()).map_err(|_| Rejected::Malformed("X-Signature-Ed25519"))?;
    // A row's key that is not 32 bytes of hex can match nothing: refused as a mismatch, so
    // the answer does not tell a caller anything about the row.
    let key = hex::decode(public_key_hex.trim()).map_err(|_| Rejected::Mismatch)?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    signature::UnparsedPublicKey::new(&signature::ED25519, key)
        .verify(&signed, &sig)
        .map_err(|_| Rejected::Mismatch)
}

/// GitHub: `X-Hub-Signature-256` (`sha256=<hex>`) must be the HMAC-SHA256 of the body, keyed
/// by the webhook's secret.
pub fn github(secret: &[u8], signature: Option<&str>, body: &[u8]) -> Result<(), Rejected> {
    let signature = signature.ok_or(Rejected::Missing("X-Hub-Signature-256"))?;
    let tag = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Rejected::Malformed("X-Hub-Signature-256"))?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), body, &tag).map_err(|_| Rejected::Mismatch)
}

/// Telegram's webhook mode: `X-Telegram-Bot-Api-Secret-Token` must be the row's `secret_token`
/// (set with `setWebhook`).
pub fn telegram(secret_token: &str, header: Option<&str>) -> Result<(), Rejected> {
    let got = header.ok_or(Rejected::Missing("X-Telegram-Bot-Api-Secret-Token"))?;
    same_token(secret_token, got)
}

/// Lark/Feishu: the event's verification token (`token`, or `header.token` in the 2.0 schema)
/// must be the row's.
pub fn lark_token(verification_token: &str, token: Option<&str>) -> Result<(), Rejected> {
    let got = token.ok_or(Rejected::Missing("token"))?;
    same_token(verification_token, got)
}

/// Lark/Feishu with an encrypt key set: `X-Lark-Signature` (hex) must be the SHA-256 of
/// `<X-Lark-Request-Timestamp><X-Lark-Request-Nonce><encrypt key><body>`.
pub fn lark_signature(
    encrypt_key: &str,
    timestamp: Option<&str>,
    nonce: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Rejected> {
    let timestamp = timestamp.ok_or(Rejected::Missing("X-Lark-Request-Timestamp"))?;
    let nonce = nonce.ok_or(Rejected::Missing("X-Lark-Request-Nonce"))?;
    let signature = signature.ok_or(Rejected::Missing("X-Lark-Signature"))?;
    let got = hex::decode(signature.trim()).map_err(|_| Rejected::Malformed("X-Lark-Signature"))?;
    if encrypt_key.is_empty() {
        return Err(Rejected::Mismatch);
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(timestamp.as_bytes());
    ctx.update(nonce.as_bytes());
    ctx.update(encrypt_key.as_bytes());
    ctx.update(body);
    if bool::from(ctx.finish().as_ref().ct_eq(&got)) {
        Ok(())
    } else {
        Err(Rejected::Mismatch)
    }
}

/// Constant-time equality of two tokens; an empty expected token matches nothing (a row
/// without a secret must not accept every request).
fn same_token(expected: &str, got: &str) -> Result<(), Rejected> {
    if expected.is_empty() {
        return Err(Rejected::Mismatch);
    }
    if bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
        Ok(())
    } else {
        Err(Rejected::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    use ring::signature::KeyPair;

    use super::*;

    const SLACK_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
    /// Python's `hmac` over `v0:1531420618:<SLACK_BODY>` with [`SLACK_SECRET`] (an independent
    /// implementation).
    const SLACK_SIG: &str = "v0=bca5eef5dd737ed259b428b18cd24f679baa18c3fc5f1cb2a6ac9f03e717969a";

    #[test]
    fn timestamps_are_fresh_within_five_minutes_either_way() {
        assert_eq!(fresh("T", Some("1000"), 1000 + 300), Ok(()));
        assert_eq!(fresh("T", Some("1000"), 1000 - 300), Ok(()));
        assert_eq!(fresh("T", Some("1000"), 1000 + 301), Err(Rejected::Stale));
        assert_eq!(fresh("T", Some("x"), 1000), Err(Rejected::Malformed("T")));
        assert_eq!(fresh("T", None, 1000), Err(Rejected::Missing("T")));
    }

    #[test]
    fn slack_checks_the_signature_and_the_replay_window() {
        let at = 1_531_420_618;
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420618"), Some(SLACK_SIG), SLACK_BODY, at + 10),
            Ok(())
        );
        // A changed body, another secret, a forged hex: no.
        let mut other = SLACK_BODY.to_vec();
        other.push(b'x');
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420618"), Some(SLACK_SIG), &other, at),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            slack(
                b"another row's secret",
                Some("1531420618"),
                Some(SLACK_SIG),
                SLACK_BODY,
                at
            ),
            Err(Rejected::Mismatch)
        );
        // The signature is bound to its timestamp: a replay with a fresh timestamp fails.
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420619"), Some(SLACK_SIG), SLACK_BODY, at),
            Err(Rejected::Mismatch)
        );
        // Five minutes either side, and no more.
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420618"), Some(SLACK_SIG), SLACK_BODY, at + 301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420618"), Some(SLACK_SIG), SLACK_BODY, at - 301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            slack(SLACK_SECRET, None, Some(SLACK_SIG), SLACK_BODY, at),
            Err(Rejected::Missing("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            slack(SLACK_SECRET, Some("1531420618"), Some("v1=00"), SLACK_BODY, at),
            Err(Rejected::Malformed("X-Slack-Signature"))
        );
    }

    #[test]
    fn github_matches_its_documented_example() {
        // GitHub's "Validating webhook deliveries" example.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            github(b"It's a Secret to Everybody", Some(sig), b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            github(b"It's a Secret to Everybody", Some(sig), b"Hello, World?"),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            github(b"It's a Secret to Everybody", Some("sha1=abcd"), b"Hello, World!"),
            Err(Rejected::Malformed("X-Hub-Signature-256"))
        );
        assert_eq!(github(b"x", None, b""), Err(Rejected::Missing("X-Hub-Signature-256")));
    }

    #[test]
    fn discord_checks_ed25519_over_timestamp_and_body() {
        // RFC 8032 §7.1, TEST 1: the empty message (here: empty timestamp and body).
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        assert_eq!(discord(public, Some(""), Some(sig), b""), Ok(()));
        // A key of our own, signing as Discord does.
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = hex::encode(pair.public_key().as_ref());
        let body = br#"{"type":1}"#;
        let signed = hex::encode(pair.sign(&[b"1700000000".as_slice(), body].concat()).as_ref());
        assert_eq!(discord(&key, Some("1700000000"), Some(&signed), body), Ok(()));
        assert_eq!(
            discord(&key, Some("1700000001"), Some(&signed), body),
            Err(Rejected::Mismatch),
            "bound to its timestamp"
        );
        assert_eq!(
            discord(public, Some("1700000000"), Some(&signed), body),
            Err(Rejected::Mismatch),
            "another row's key"
        );
        assert_eq!(
            discord("not hex", Some("1"), Some(&signed), body),
            Err(Rejected::Mismatch)
        );
        assert_eq!(
            discord(&key, Some("1"), Some("zz"), body),
            Err(Rejected::Malformed("X-Signature-Ed25519"))
        );
    }

    #[test]
    fn tokens_match_exactly_and_an_empty_one_matches_nothing() {
        assert_eq!(telegram("s3cret", Some("s3cret")), Ok(()));
        assert_eq!(telegram("s3cret", Some("s3cre")), Err(Rejected::Mismatch));
        assert_eq!(
            telegram("s3cret", None),
            Err(Rejected::Missing("X-Telegram-Bot-Api-Secret-Token"))
        );
        assert_eq!(telegram("", Some("")), Err(Rejected::Mismatch));
        assert_eq!(lark_token("v-token", Some("v-token")), Ok(()));
        assert_eq!(lark_token("v-token", Some("other")), Err(Rejected::Mismatch));
        assert_eq!(lark_token("", Some("")), Err(Rejected::Mismatch));
    }

    #[test]
    fn lark_signs_timestamp_nonce_key_and_body() {
        // Python's hashlib over `1700000000` + `n0nce` + `enc-key` + the body.
        let sig = "098e675e768028efdfacb0eb391f5402cf382caa37166b7020ab9c4441c9bb0b";
        let body = br#"{"schema":"2.0"}"#;
        let check =
            |key: &str, nonce: &str, body: &[u8]| lark_signature(key, Some("1700000000"), Some(nonce), Some(sig), body);
        assert_eq!(check("enc-key", "n0nce", body), Ok(()));
        assert_eq!(check("another key", "n0nce", body), Err(Rejected::Mismatch));
        assert_eq!(check("enc-key", "other", body), Err(Rejected::Mismatch));
        assert_eq!(check("enc-key", "n0nce", b"{}"), Err(Rejected::Mismatch));
        assert_eq!(check("", "n0nce", body), Err(Rejected::Mismatch));
        assert_eq!(
            lark_signature("enc-key", Some("1"), None, Some(sig), body),
            Err(Rejected::Missing("X-Lark-Request-Nonce"))
        );
    }

    #[test]
    fn a_rejection_names_no_secret() {
        let e = slack(SLACK_SECRET, Some("1531420618"), Some(SLACK_SIG), b"x", 1_531_420_618).unwrap_err();
        let said = e.to_string();
        assert!(!said.contains("8f742231") && !said.contains("bca5eef5"), "{said}");
    }
}
