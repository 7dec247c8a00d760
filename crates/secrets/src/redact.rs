//! The one secret redactor: every memory write (tool, HTTP, import, seeding) passes through it
//! before anything reaches the memory plugin, and export re-applies it on the way out.
//!
//! Owns the patterns and their labels; a match becomes `[REDACTED:<LABEL>]`. Must not know
//! where the text goes or who wrote it. Patterns run in order, so the specific ones (a PEM
//! block, a provider's key) claim their text before the generic ones (a `*_TOKEN=` assignment,
//! a long base64 run) see it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// `(label, pattern)`, in the order they run.
const PATTERNS: &[(&str, &str)] = &[
    (
        "OPENSSH_PRIVATE_KEY",
        r"-----BEGIN OPENSSH PRIVATE KEY-----[\s\S]*?-----END OPENSSH PRIVATE KEY-----",
    ),
    (
        "PRIVATE_KEY",
        r"-----BEGIN[ A-Z]*PRIVATE KEY-----[\s\S]*?-----END[ A-Z]*PRIVATE KEY-----",
    ),
    (
        "DB_URL_WITH_CREDENTIALS",
        r"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver)://[^\s/@:]*:[^\s/@]+@[^\s/]+",
    ),
    // Any other URL with a password in it.
    ("URL_PASSWORD", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s/@:]+:[^\s/@]+@[^\s/]+"),
    // key=value DSNs (libpq, ODBC): only the password part.
    ("DSN_PASSWORD", r"(?i)\b(?:password|pwd)\s*=\s*[^\s;]+"),
    (
        "JWT",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    ),
    ("BEARER_TOKEN", r"(?i)\bBearer\s+[A-Za-z0-9._~+/\-]+=*"),
    ("AWS_ACCESS_KEY_ID", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    (
        "AWS_SECRET_ACCESS_KEY",
        r#"(?i)\baws_secret_access_key["']?\s*[:=]\s*["']?[A-Za-z0-9/+=]{40}"#,
    ),
    ("ANTHROPIC_API_KEY", r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),
    ("OPENROUTER_API_KEY", r"\bsk-or-[A-Za-z0-9_\-]{16,}"),
    ("SK_TOKEN", r"\bsk-[A-Za-z0-9_\-]{16,}"),
    ("STRIPE_KEY", r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("GOOGLE_API_KEY", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("GITHUB_PAT", r"\bghp_[A-Za-z0-9]{16,}"),
    ("GITHUB_OAUTH", r"\bgho_[A-Za-z0-9]{16,}"),
    ("GITHUB_APP_SERVER_TOKEN", r"\bghs_[A-Za-z0-9]{16,}"),
    ("GITHUB_USER_TOKEN", r"\bghu_[A-Za-z0-9]{16,}"),
    ("GITHUB_REFRESH_TOKEN", r"\bghr_[A-Za-z0-9]{16,}"),
    ("GITHUB_FINEGRAINED_PAT", r"\bgithub_pat_[A-Za-z0-9_]{16,}"),
    ("HUGGINGFACE_TOKEN", r"\bhf_[A-Za-z0-9]{30,}"),
    ("VERCEL_TOKEN", r"\bvc_[A-Za-z0-9]{16,}"),
    ("PERPLEXITY_API_KEY", r"\bpplx-[A-Za-z0-9]{20,}"),
    ("CTX7_TOKEN", r"\bctx7_[A-Za-z0-9]+"),
    ("API_KEY", r"(?i)\b[A-Z][A-Z0-9_]*_API_KEY\s*[=:]\s*\S+"),
    ("TOKEN", r"(?i)\b[A-Z][A-Z0-9_]*_TOKEN\s*[=:]\s*\S+"),
    ("SECRET", r"(?i)\b[A-Z][A-Z0-9_]*_SECRET\s*[=:]\s*\S+"),
    ("PASSWORD", r"(?i)\b[A-Z][A-Z0-9_]*_PASSWORD\s*[=:]\s*\S+"),
    // Long base64 runs: keys and tokens without a known prefix. A run of hex digits alone (a
    // git SHA, a digest) is left alone by `is_secret_blob`.
    ("BASE64_BLOB", r"[A-Za-z0-9+/]{33,}={0,2}"),
];

static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|(label, pattern)| {
            // The patterns are constants; `every_pattern_compiles` compiles each one in CI.
            #[allow(clippy::expect_used)]
            let re = Regex::new(pattern).expect("redaction patterns are valid");
            (*label, re)
        })
        .collect()
});

/// Every pattern at once: one pass over the text says whether any pattern matches at all, so
/// the common case (no secret) costs one search instead of one per pattern.
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    // The patterns are constants; `every_pattern_compiles` compiles the set in CI.
    #[allow(clippy::expect_used)]
    RegexSet::new(PATTERNS.iter().map(|(_, pattern)| pattern)).expect("redaction patterns are valid")
});

/// Redacted text and how many matches of each label it had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub counts: BTreeMap<&'static str, usize>,
}

impl Redacted {
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// A base64-looking run that is not only hex digits (digests and git SHAs are not secrets).
fn is_secret_blob(m: &str) -> bool {
    !m.trim_end_matches('=').bytes().all(|b| b.is_ascii_hexdigit())
}

/// Replaces every secret in `text` with `[REDACTED:<LABEL>]`.
pub fn redact(text: &str) -> Redacted {
    let mut out = Redacted {
        text: text.to_owned(),
        counts: BTreeMap::new(),
    };
    if !ANY.is_match(text) {
        return out;
    }
    for (label, re) in COMPILED.iter() {
        if !re.is_match(&out.text) {
            continue;
        }
        let mut n = 0;
        let replaced = re.replace_all(&out.text, |caps: &regex::Captures<'_>| {
            let m = &caps[0];
            // Already-redacted markers are not redacted again.
            if *label == "BASE64_BLOB" && !is_secret_blob(m) {
                return m.to_owned();
            }
            n += 1;
            format!("[REDACTED:{label}]")
        });
        let replaced = replaced.into_owned();
        if n > 0 {
            out.text = replaced;
            *out.counts.entry(label).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for (label, pattern) in PATTERNS {
            assert!(Regex::new(pattern).is_ok(), "{label}");
        }
        assert_eq!(COMPILED.len(), PATTERNS.len());
        assert_eq!(ANY.len(), PATTERNS.len());
    }

    /// `(input, the label it must be redacted as)`: each secret is gone from the output.
    const POSITIVE: &[(&str, &str)] = &[
        ("OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234", "API_KEY"),
        ("key sk-proj-abcdefghijklmnop1234 here", "SK_TOKEN"),
        ("sk-ant-api03-abcdefghijklmnopqrstuv", "ANTHROPIC_API_KEY"),
        ("sk-or-v1-abcdefghijklmnopqrstuv", "OPENROUTER_API_KEY"),
        ("stripe sk_live_abcdefghijklmnop1234", "STRIPE_KEY"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "GOOGLE_API_KEY"),
        ("slack xoxb-123456789012-abcdefghij", "SLACK_TOKEN"),
        ("ghp_abcdefghijklmnop1234", "GITHUB_PAT"),
        ("gho_abcdefghijklmnop1234", "GITHUB_OAUTH"),
        ("ghs_abcdefghijklmnop1234", "GITHUB_APP_SERVER_TOKEN"),
        ("github_pat_11ABCDEFG0123456789_abcdef", "GITHUB_FINEGRAINED_PAT"),
        ("hf_abcdefghijklmnopqrstuvwxyz123456", "HUGGINGFACE_TOKEN"),
        ("vc_abcdefghijklmnop1234", "VERCEL_TOKEN"),
        ("pplx-abcdefghijklmnopqrstuvwx", "PERPLEXITY_API_KEY"),
        ("ctx7_abcdef123", "CTX7_TOKEN"),
        ("Authorization: Bearer abc.def-ghi_jkl", "BEARER_TOKEN"),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "JWT",
        ),
        ("AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "PRIVATE_KEY",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "OPENSSH_PRIVATE_KEY",
        ),
        (
            "postgres://app:hunter2@db.internal:5432/main",
            "DB_URL_WITH_CREDENTIALS",
        ),
        ("mongodb+srv://u:p4ss@cluster0.example.net", "DB_URL_WITH_CREDENTIALS"),
        ("https://deploy:s3cret@git.example.com/repo.git", "URL_PASSWORD"),
        ("host=db user=app password=hunter2 dbname=x", "DSN_PASSWORD"),
        ("GITLAB_TOKEN=glpat-abcdef", "TOKEN"),
        ("WEBHOOK_SECRET: whsec_abc", "SECRET"),
        ("DB_PASSWORD=correct-horse", "PASSWORD"),
        ("blob QWxhZGRpbjpvcGVuIHNlc2FtZQ1234567890abcdefXYZ==", "BASE64_BLOB"),
    ];

    /// Text that must come back unchanged.
    const NEGATIVE: &[&str] = &[
        "a uuid 6f1c2b0e-8a3d-4c55-9e2f-1b2c3d4e5f60 is an id",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "the API_KEY variable is set in the environment",
        "https://example.com/docs/page?x=1",
        "postgres://db.internal:5432/main",
        "user@example.com wrote the sk- prefix docs",
        "task-1234 and skip-this-word and ask-me",
        "Bearer",
        "a short ghp_abc",
    ];

    #[test]
    fn listed_secrets_are_redacted_with_their_label() {
        for (input, label) in POSITIVE {
            let out = redact(input);
            assert_eq!(
                out.counts.keys().next().copied(),
                Some(*label),
                "{input:?} → {:?}",
                out.text
            );
            assert!(
                out.text.contains(&format!("[REDACTED:{label}]")),
                "{input:?} → {:?}",
                out.text
            );
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for input in NEGATIVE {
            let out = redact(input);
            assert_eq!(out.text, *input, "{:?}", out.counts);
            assert_eq!(out.total(), 0);
        }
    }

    #[test]
    fn non_ascii_text_is_searched_too() {
        // Unicode word boundaries make the set fall back from its DFA on such text.
        let out = redact("clé privée: ghp_abcdefghijklmnop1234 ✓ — 日本");
        assert_eq!(out.text, "clé privée: [REDACTED:GITHUB_PAT] ✓ — 日本");
        assert_eq!(redact("naïve café ✓").total(), 0);
    }

    #[test]
    fn counts_add_up_and_redaction_is_stable() {
        let out = redact("ghp_abcdefghijklmnop1234 and ghp_zyxwvutsrqponmlk9876, OPENAI_API_KEY=x");
        assert_eq!(out.counts.get("GITHUB_PAT"), Some(&2));
        assert_eq!(out.counts.get("API_KEY"), Some(&1));
        assert_eq!(
            redact(&out.text).total(),
            0,
            "a redacted text has nothing left to redact"
        );
    }
}
