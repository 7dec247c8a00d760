//! Model slugs and the provider derived from them (`LLM_PROVIDER`), and where a secret comes
//! from.
//!
//! The prefix table follows the hermes template's `derive-provider.sh` (v0.12), so the
//! provider the platform persists agrees with the one the runtime derives at boot. Two
//! documented divergences: `openai/*` and `nousresearch/*` map to `openrouter` here, because
//! the runtime's key checks that may pick `custom` or `nous` instead cannot run before the
//! workload exists.
//!
//! Must not know: where the model or provider is stored.

use crate::vocab::vocabulary;

vocabulary! {
    /// Where a listed secret comes from.
    pub enum SecretScope ("secret scope") {
        /// Set on this workspace; hides a global of the same key.
        Workspace => "workspace",
        /// Set for every workspace (`/settings/secrets`).
        Global => "global",
    }
}

/// Every provider a `prefix/model` slug can name, with the prefixes (aliases included) that
/// select it. A prefix appears once.
pub const PROVIDER_PREFIXES: &[(&str, &[&str])] = &[
    // Chinese-region variants keep their full prefix.
    ("minimax-cn", &["minimax-cn"]),
    ("kimi-coding-cn", &["kimi-coding-cn"]),
    ("minimax", &["minimax"]),
    ("anthropic", &["anthropic"]),
    ("gemini", &["gemini"]),
    ("deepseek", &["deepseek"]),
    ("zai", &["zai"]),
    ("kimi-coding", &["kimi-coding"]),
    ("alibaba", &["alibaba", "dashscope", "qwen"]),
    ("xiaomi", &["xiaomi", "mimo"]),
    ("arcee", &["arcee", "arcee-ai"]),
    ("nvidia", &["nvidia", "nim"]),
    ("ollama-cloud", &["ollama-cloud"]),
    ("huggingface", &["huggingface", "hf"]),
    ("ai-gateway", &["ai-gateway", "aigateway"]),
    ("kilocode", &["kilocode"]),
    ("opencode-zen", &["opencode-zen"]),
    ("opencode-go", &["opencode-go"]),
    // `openai` and `nousresearch`: the provision-time divergence described above.
    ("openrouter", &["openrouter", "openai", "nousresearch"]),
    ("custom", &["custom"]),
    // The twelve the runtime added in v0.12.
    ("xai", &["xai", "grok"]),
    ("bedrock", &["bedrock", "aws"]),
    ("tencent-tokenhub", &["tencent", "tencent-tokenhub"]),
    ("gmi", &["gmi"]),
    ("qwen-oauth", &["qwen-oauth"]),
    ("lmstudio", &["lmstudio", "lm-studio"]),
    ("minimax-oauth", &["minimax-oauth"]),
    ("alibaba-coding-plan", &["alibaba-coding-plan"]),
    ("google-gemini-cli", &["google-gemini-cli"]),
    ("openai-codex", &["openai-codex"]),
    ("copilot-acp", &["copilot-acp"]),
    ("copilot", &["copilot"]),
];

/// The provider a model slug names, if any:
/// - `provider:model` (the colon form, e.g. `anthropic:claude-opus-4-7`) names its provider
///   explicitly: the part before the colon, verbatim;
/// - `prefix/model` (e.g. `minimax/MiniMax-M2.7`) is looked up in [`PROVIDER_PREFIXES`]
///   (case-sensitive, as the runtime matches it);
/// - anything else (`sonnet`, an unknown prefix) names none: the runtime auto-detects.
///
/// The first separator decides: `openrouter/anthropic/claude:beta` is a slash slug.
pub fn provider_for_model(slug: &str) -> Option<&str> {
    let slug = slug.trim();
    let at = slug.find([':', '/'])?;
    let prefix = &slug[..at];
    if prefix.is_empty() {
        return None;
    }
    if slug[at..].starts_with(':') {
        return Some(prefix);
    }
    PROVIDER_PREFIXES
        .iter()
        .find(|(_, prefixes)| prefixes.contains(&prefix))
        .map(|(provider, _)| *provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_the_seeds_name_derives_its_provider() {
        let cases = [
            // slash slugs, canonical and aliased
            ("minimax/MiniMax-M2.7", Some("minimax")),
            ("minimax-cn/MiniMax-M2", Some("minimax-cn")),
            ("minimax-oauth/MiniMax-M2", Some("minimax-oauth")),
            ("anthropic/claude-sonnet-4-5", Some("anthropic")),
            ("openai/gpt-5", Some("openrouter")),
            ("nousresearch/hermes-4-70b", Some("openrouter")),
            ("openrouter/anthropic/claude:beta", Some("openrouter")),
            ("xai/grok-4", Some("xai")),
            ("grok/grok-4", Some("xai")),
            ("bedrock/anthropic.claude-v2", Some("bedrock")),
            ("aws/anthropic.claude-v2", Some("bedrock")),
            ("tencent/hunyuan", Some("tencent-tokenhub")),
            ("tencent-tokenhub/hunyuan", Some("tencent-tokenhub")),
            ("gmi/deepseek-r1", Some("gmi")),
            ("qwen-oauth/qwen3-coder", Some("qwen-oauth")),
            ("qwen/qwen3", Some("alibaba")),
            ("dashscope/qwen3", Some("alibaba")),
            ("lmstudio/local", Some("lmstudio")),
            ("lm-studio/local", Some("lmstudio")),
            ("alibaba-coding-plan/qwen3", Some("alibaba-coding-plan")),
            ("google-gemini-cli/gemini-2.5-pro", Some("google-gemini-cli")),
            ("gemini/gemini-2.5-pro", Some("gemini")),
            ("openai-codex/gpt-5-codex", Some("openai-codex")),
            ("copilot-acp/gpt-5", Some("copilot-acp")),
            ("copilot/gpt-5", Some("copilot")),
            ("hf/meta-llama", Some("huggingface")),
            ("arcee-ai/trinity", Some("arcee")),
            ("nim/llama", Some("nvidia")),
            ("aigateway/x", Some("ai-gateway")),
            ("custom/my-model", Some("custom")),
            // colon slugs name their provider verbatim
            ("anthropic:claude-opus-4-7", Some("anthropic")),
            ("openai:gpt-4o", Some("openai")),
            ("google_genai:gemini-2.5", Some("google_genai")),
            // nothing to derive
            ("sonnet", None),
            ("mystery/model", None),
            ("MiniMax/MiniMax-M2.7", None),
            ("/model", None),
            (":model", None),
            ("", None),
        ];
        for (slug, want) in cases {
            assert_eq!(provider_for_model(slug), want, "{slug}");
        }
    }

    #[test]
    fn a_prefix_selects_one_provider() {
        let mut seen = std::collections::HashSet::new();
        for (provider, prefixes) in PROVIDER_PREFIXES {
            for p in *prefixes {
                assert!(seen.insert(*p), "{p} listed twice");
                assert_eq!(provider_for_model(&format!("{p}/m")), Some(*provider));
            }
        }
    }
}
