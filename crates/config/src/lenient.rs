//! Environment values arrive as text that figment may have parsed into numbers or booleans
//! (`ADMIN_TOKEN=12345`, `MEMORY_PLUGIN_SKIP_MIGRATE=1`). These deserializers accept the
//! forms an operator would reasonably write.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::UInt(u) => u.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Scalar::deserialize(d).map(Scalar::into_string)
}

/// Empty or whitespace-only counts as unset.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Scalar>::deserialize(d)?;
    Ok(v.map(Scalar::into_string).filter(|s| !s.trim().is_empty()))
}

/// `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = Scalar::deserialize(d)?.into_string();
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected 1/0/true/false, got {other:?}"
        ))),
    }
}
