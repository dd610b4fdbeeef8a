//! Open string enums: a known set of wire strings plus a case that keeps any other string.
//!
//! Plaid adds enum values without a version bump (new products, account subtypes, error codes),
//! and a closed enum turns each addition into a decode failure of the whole response. Every
//! enum of this crate is therefore open: unknown strings deserialize into the `Unknown` case
//! and serialize back unchanged.

use std::fmt;
use std::marker::PhantomData;

use serde::de;

/// Defines an open string enum: the variants with their wire strings, an `Unknown(String)`
/// case, `as_str`, `From<&str>`/`From<String>`, `FromStr` (infallible), `Display`, `Serialize`
/// and `Deserialize`.
///
/// `From` maps a known string to its variant, so `Unknown` only ever holds strings outside the
/// known set when built through it.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $wire:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[doc = concat!("Wire value `", $wire, "`.")]
                $variant,
            )*
            /// A value this version of the crate does not know, kept as Plaid sent it.
            Unknown(String),
        }

        impl $name {
            /// Every known value, in the order of the spec.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The wire string.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Unknown(other) => other.as_str(),
                }
            }

            /// Whether this is a value the crate does not know.
            #[must_use]
            pub fn is_unknown(&self) -> bool {
                matches!(self, $name::Unknown(_))
            }

            /// The known variant for `value`, if any.
            fn known(value: &str) -> Option<Self> {
                match value {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::known(value).unwrap_or_else(|| $name::Unknown(value.to_owned()))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::known(&value).unwrap_or($name::Unknown(value))
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::models::open_enum::OpenEnumVisitor::<$name>::new(
                    stringify!($name),
                ))
            }
        }
    };
}

pub(crate) use open_enum;

/// Deserializes a string into an open enum without allocating for known values.
pub(crate) struct OpenEnumVisitor<T> {
    name: &'static str,
    marker: PhantomData<T>,
}

impl<T> OpenEnumVisitor<T> {
    pub(crate) fn new(name: &'static str) -> Self {
        OpenEnumVisitor {
            name,
            marker: PhantomData,
        }
    }
}

impl<T> de::Visitor<'_> for OpenEnumVisitor<T>
where
    T: for<'a> From<&'a str> + From<String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string ({})", self.name)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        Ok(T::from(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<T, E> {
        Ok(T::from(value))
    }
}
