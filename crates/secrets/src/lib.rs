//! `molecule-secrets`: sealing and opening secret values at rest.
//!
//! Owns: the [`Keyring`] (the key that seals, `SECRETS_ENCRYPTION_KEY`, plus older keys that
//! only open, `SECRETS_PREVIOUS_KEYS`), key ids (the first 7 bytes of the key's SHA-256, in
//! hex, stored beside each ciphertext), the sealed formats ([`Version`]), and the associated
//! data that binds a ciphertext to its row ([`Slot`]: the workspace, or global, and the key
//! name), so a value copied into another row fails to open. Values travel as
//! [`SecretString`]: their `Debug` prints nothing. Also `redact`, the one redactor that turns
//! secret-shaped text (a PEM block, a provider's key, a `*_TOKEN=` assignment) into
//! `[REDACTED:<LABEL>]` before memories, exports and reasons leave the platform's hands.
//!
//! Must not know: the database, HTTP, or where a value is delivered. Callers store
//! [`Sealed`] as they like and hand it back to [`Keyring::open`].
//!
//! Modules: this file (the keyring and formats) and `redact`.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use base64::Engine as _;
pub mod redact;

pub use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const NONCE_LEN: usize = 12;

/// How a stored value is sealed. The numbers are what the `encryption_version` columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// No key was configured: the bytes are the UTF-8 value.
    Plaintext = 0,
    /// The original system's format: `nonce(12) ‖ ciphertext`, no associated data, no key
    /// id. Opened with each known key in turn; re-sealed as [`Version::Bound`] by
    /// `secrets rotate-key`.
    Legacy = 1,
    /// `nonce(12) ‖ ciphertext` with the row's [`Slot`] as associated data and the key id
    /// stored beside it.
    Bound = 2,
}

impl Version {
    pub fn from_column(v: i16) -> Option<Self> {
        match v {
            0 => Some(Self::Plaintext),
            1 => Some(Self::Legacy),
            2 => Some(Self::Bound),
            _ => None,
        }
    }

    pub fn column(self) -> i16 {
        self as i16
    }
}

/// Where a value lives: what its ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    Workspace { workspace_id: Uuid, key: &'a str },
    Global { key: &'a str },
}

impl Slot<'_> {
    fn associated_data(&self) -> Vec<u8> {
        match self {
            Slot::Workspace { workspace_id, key } => format!("molecule-secret/2\0workspace:{workspace_id}\0{key}"),
            Slot::Global { key } => format!("molecule-secret/2\0global\0{key}"),
        }
        .into_bytes()
    }
}

/// A value as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub version: Version,
    /// The id of the key that sealed it ([`Version::Bound`] only).
    pub key_id: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Plaintext rows hold the value itself: never print the bytes.
        f.debug_struct("Sealed")
            .field("version", &self.version)
            .field("key_id", &self.key_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Why a key could not be used. Names the variable to fix; never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{var}: a key must be 32 bytes, given as base64 (44 characters) or as 32 raw characters; got {len} characters that are neither"
    )]
    Malformed { var: &'static str, len: usize },
}

/// Why a value could not be sealed or opened. Never contains the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("sealed under key id {key_id}, which is neither SECRETS_ENCRYPTION_KEY nor one of SECRETS_PREVIOUS_KEYS")]
    UnknownKey { key_id: String },
    #[error("sealed with a key, but SECRETS_ENCRYPTION_KEY is not set")]
    NoKey,
    #[error("the ciphertext does not open under key id {key_id}: it was altered or belongs to another row")]
    Tampered { key_id: String },
    #[error("a legacy (version 1) value opens under none of the configured keys")]
    LegacyUnopenable,
    #[error("the stored value is not UTF-8")]
    NotUtf8,
    #[error("the stored value is too short to hold a nonce")]
    Truncated,
    #[error("the stored encryption_version {0} is not one this build reads (0, 1 or 2)")]
    UnknownVersion(i16),
    #[error("the cipher refused to seal the value")]
    Seal,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn parse(var: &'static str, raw: &str) -> Result<Self, KeyError> {
        let raw = raw.trim();
        let bytes: Vec<u8> = match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(b) if b.len() == 32 => b,
            _ if raw.len() == 32 => raw.as_bytes().to_vec(),
            _ => return Err(KeyError::Malformed { var, len: raw.len() }),
        };
        let digest = Sha256::digest(&bytes);
        let id = digest[..7].iter().map(|b| format!("{b:02x}")).collect();
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::Malformed { var, len: raw.len() })?;
        Ok(Self { id, cipher })
    }

    fn open(&self, nonce_and_ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if nonce_and_ct.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = nonce_and_ct.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

/// The keys this server holds. The first seals; all open.
pub struct Keyring {
    primary: Option<Key>,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field(
                "previous",
                &self.previous.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// No key: values are stored as plaintext ([`Version::Plaintext`]).
    pub fn plaintext() -> Self {
        Self {
            primary: None,
            previous: Vec::new(),
        }
    }

    /// `primary` is `SECRETS_ENCRYPTION_KEY`; `previous` the entries of `SECRETS_PREVIOUS_KEYS`.
    pub fn new(primary: Option<&SecretString>, previous: &[SecretString]) -> Result<Self, KeyError> {
        Ok(Self {
            primary: primary
                .map(|k| Key::parse("SECRETS_ENCRYPTION_KEY", k.expose_secret()))
                .transpose()?,
            previous: previous
                .iter()
                .map(|k| Key::parse("SECRETS_PREVIOUS_KEYS", k.expose_secret()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The id of the sealing key, if there is one.
    pub fn primary_id(&self) -> Option<&str> {
        self.primary.as_ref().map(|k| k.id.as_str())
    }

    /// Whether a stored key id belongs to a key this ring holds.
    pub fn knows(&self, key_id: &str) -> bool {
        self.keys().any(|k| k.id == key_id)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.primary.iter().chain(self.previous.iter())
    }

    /// Whether `sealed` is already in the form [`Keyring::seal`] would produce now (what
    /// `rotate-key` leaves alone).
    pub fn is_current(&self, sealed: &Sealed) -> bool {
        match self.primary_id() {
            None => sealed.version == Version::Plaintext,
            Some(id) => sealed.version == Version::Bound && sealed.key_id.as_deref() == Some(id),
        }
    }

    /// Seals `value` for `slot` under the primary key, or as plaintext without one.
    pub fn seal(&self, slot: Slot<'_>, value: &SecretString) -> Result<Sealed, SecretError> {
        let Some(key) = &self.primary else {
            return Ok(Sealed {
                version: Version::Plaintext,
                key_id: None,
                bytes: value.expose_secret().as_bytes().to_vec(),
            });
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = slot.associated_data();
        let ct = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Seal)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ct);
        Ok(Sealed {
            version: Version::Bound,
            key_id: Some(key.id.clone()),
            bytes,
        })
    }

    /// Opens a stored value of `slot`.
    pub fn open(&self, slot: Slot<'_>, sealed: &Sealed) -> Result<SecretString, SecretError> {
        let plain = match sealed.version {
            Version::Plaintext => sealed.bytes.clone(),
            Version::Legacy => {
                if self.primary.is_none() && self.previous.is_empty() {
                    return Err(SecretError::NoKey);
                }
                if sealed.bytes.len() < NONCE_LEN {
                    return Err(SecretError::Truncated);
                }
                self.keys()
                    .find_map(|k| k.open(&sealed.bytes, &[]))
                    .ok_or(SecretError::LegacyUnopenable)?
            }
            Version::Bound => {
                let key_id = sealed.key_id.clone().unwrap_or_default();
                let Some(key) = self.keys().find(|k| k.id == key_id) else {
                    if self.primary.is_none() && self.previous.is_empty() {
                        return Err(SecretError::NoKey);
                    }
                    return Err(SecretError::UnknownKey { key_id });
                };
                if sealed.bytes.len() < NONCE_LEN {
                    return Err(SecretError::Truncated);
                }
                key.open(&sealed.bytes, &slot.associated_data())
                    .ok_or(SecretError::Tampered { key_id })?
            }
        };
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(key: &str) -> Keyring {
        Keyring::new(Some(&SecretString::from(key)), &[]).unwrap()
    }

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn a_sealed_value_opens_only_in_its_own_slot() {
        let r = ring(A);
        let ws = Uuid::new_v4();
        let slot = Slot::Workspace {
            workspace_id: ws,
            key: "OPENAI_API_KEY",
        };
        let sealed = r.seal(slot, &SecretString::from("sk-canary")).unwrap();
        assert_eq!(sealed.version, Version::Bound);
        assert!(!sealed.bytes.windows(9).any(|w| w == b"sk-canary"));
        assert_eq!(r.open(slot, &sealed).unwrap().expose_secret(), "sk-canary");
        for other in [
            Slot::Workspace {
                workspace_id: Uuid::new_v4(),
                key: "OPENAI_API_KEY",
            },
            Slot::Workspace {
                workspace_id: ws,
                key: "OTHER",
            },
            Slot::Global { key: "OPENAI_API_KEY" },
        ] {
            assert!(
                matches!(r.open(other, &sealed), Err(SecretError::Tampered { .. })),
                "{other:?}"
            );
        }
    }

    #[test]
    fn keys_are_named_by_id_and_an_unknown_one_is_refused() {
        let a = ring(A);
        let b = ring(B);
        let slot = Slot::Global { key: "K" };
        let sealed = a.seal(slot, &SecretString::from("v")).unwrap();
        assert_eq!(sealed.key_id.as_deref(), a.primary_id());
        assert_eq!(a.primary_id().unwrap().len(), 14);
        assert_ne!(a.primary_id(), b.primary_id());
        assert!(matches!(b.open(slot, &sealed), Err(SecretError::UnknownKey { .. })));
        assert!(matches!(
            Keyring::plaintext().open(slot, &sealed),
            Err(SecretError::NoKey)
        ));
        // The old key kept as a previous key still opens it; the new one seals.
        let both = Keyring::new(Some(&SecretString::from(B)), &[SecretString::from(A)]).unwrap();
        assert_eq!(both.open(slot, &sealed).unwrap().expose_secret(), "v");
        assert!(!both.is_current(&sealed));
        assert!(both.is_current(&both.seal(slot, &SecretString::from("v")).unwrap()));
    }

    #[test]
    fn base64_and_raw_keys_parse_and_anything_else_names_the_variable() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(A.as_bytes());
        assert_eq!(ring(&b64).primary_id(), ring(A).primary_id());
        let err = Keyring::new(Some(&SecretString::from("short")), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SECRETS_ENCRYPTION_KEY"), "{err}");
        assert!(!err.contains("short"), "{err}");
    }

    #[test]
    fn legacy_values_of_the_original_open_and_plaintext_passes_through() {
        let key = Key::parse("SECRETS_ENCRYPTION_KEY", A).unwrap();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut bytes = nonce.to_vec();
        bytes.extend(key.cipher.encrypt(&nonce, b"legacy".as_slice()).unwrap());
        let legacy = Sealed {
            version: Version::Legacy,
            key_id: None,
            bytes,
        };
        let slot = Slot::Global { key: "K" };
        assert_eq!(ring(A).open(slot, &legacy).unwrap().expose_secret(), "legacy");
        assert!(matches!(
            ring(B).open(slot, &legacy),
            Err(SecretError::LegacyUnopenable)
        ));
        let plain = Keyring::plaintext().seal(slot, &SecretString::from("p")).unwrap();
        assert_eq!(plain.version, Version::Plaintext);
        assert_eq!(ring(A).open(slot, &plain).unwrap().expose_secret(), "p");
    }

    #[test]
    fn debug_output_shows_no_value() {
        let v = SecretString::from("canary-value");
        assert!(!format!("{v:?}").contains("canary"));
        let plain = Keyring::plaintext().seal(Slot::Global { key: "K" }, &v).unwrap();
        let shown = format!("{plain:?}");
        assert!(!shown.contains("canary") && !shown.contains("99, 97"), "{shown}");
    }
}
