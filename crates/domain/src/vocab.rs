//! One trait for every closed string vocabulary, so that SQL lists, allowlists and error
//! messages are rendered from the same place.

/// A closed set of values with one canonical wire spelling each.
pub trait Vocabulary: Sized + Copy + Eq + 'static {
    /// What the vocabulary is called in error messages, e.g. `"workspace status"`.
    const NAME: &'static str;
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    /// The canonical wire and SQL spelling.
    fn as_str(self) -> &'static str;

    /// Parses the canonical spelling; anything else is an [`UnknownValue`] that lists what is allowed.
    fn parse(s: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownValue {
                vocabulary: Self::NAME,
                value: s.to_owned(),
                allowed: Self::ALL.iter().map(|v| v.as_str()).collect(),
            })
    }

    /// Renders `'a','b','c'` for an SQL `IN (...)` list or CHECK constraint.
    fn sql_list(values: &[Self]) -> String {
        values
            .iter()
            .map(|v| format!("'{}'", v.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A string that is not part of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} {value:?}; allowed: {}", allowed.join(", "))]
pub struct UnknownValue {
    pub vocabulary: &'static str,
    pub value: String,
    pub allowed: Vec<&'static str>,
}

/// Implements [`Vocabulary`], `Display`, `FromStr` and serde for a fieldless enum from one
/// table of `Variant => "spelling"` pairs.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $vis:vis enum $name:ident ($label:literal) { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $crate::vocab::Vocabulary for $name {
            const NAME: &'static str = $label;
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::vocab::Vocabulary::as_str(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocab::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::vocab::Vocabulary>::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::vocab::Vocabulary::as_str(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                <Self as $crate::vocab::Vocabulary>::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use vocabulary;
