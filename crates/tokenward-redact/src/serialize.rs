//! The redacting serde adapter, [`Redacted`]: redaction while serializing, through any format.
//!
//! How it works, for maintainers (the rules users see are on [`Redacted`]):
//!
//! - [`Ser`] wraps the format's serializer and forwards every call. Strings, chars and
//!   `collect_str` text go through [`Ctx::scrub`]; bytes through the byte rules; every nested
//!   value is wrapped again ([`Value`]), so the rules hold at any depth without a tree or a
//!   buffer.
//! - [`Compound`] wraps sequences, tuples and structs; struct fields ask [`Ctx::field`]: a kept
//!   field is written through the wrapper ([`Value`]), a redacted one, out of line, as
//!   [`Masked`].
//! - [`MaskSer`] writes a redacted field: the placeholder, whatever the value's type, except a
//!   string that already is a placeholder (idempotence). Compound values are dropped unvisited
//!   through [`Done`].
//! - [`MapSer`] wraps maps. [`KeyName`] reads a key's name without writing anything; the key is
//!   then written through the wrapper (so its text is scrubbed) and the decision is kept for
//!   `serialize_value` ([`Field`]: kept or masked).
//!
//! The wrapper keeps no state of its own. The two per-value costs live in the policy: a struct
//! field's decision is remembered by the address of its `&'static str` name for the policy's
//! life (`Policy::static_field`), and a string's value rules are settled for most short
//! strings by one pass of a byte screen before any search (see the `text` module).
//!
//! Measured on a 100-transaction `/transactions/get` response (about 128 KB of JSON, 2,600
//! strings): see the crate README for the figures. In instructions (callgrind), the wrapper
//! with its field decisions adds about 6.5% to plain `serde_json`, and the value rules on the
//! 1,400 strings of 9 bytes or more about 9% more: strings of 9 to 14 bytes are settled in
//! line by two of their bytes, the rest in one call each (a sixteen-bytes-a-step word test for
//! ids and codes, the anchor screen for other text).

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::marker::PhantomData;

use serde::ser::{
    self, Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct,
    SerializeStructVariant, SerializeTuple, SerializeTupleStruct, SerializeTupleVariant,
    Serializer,
};

use crate::{FieldAction, Policy, is_placeholder};

/// Wraps a value so that serializing it, through any serde format, redacts it.
///
/// Redaction happens *while* the value serializes: the wrapper hands the value a serializer
/// that forwards every call to the format's own, so there is no intermediate tree (no
/// `serde_json::Value`) and nothing is buffered. The rules, applied at every depth:
///
/// | what is serialized | what is written |
/// |---|---|
/// | a struct or struct-variant field | decided by [`Policy::field`] on its name: kept, or the placeholder instead of the value, whatever its type (a number, an `Option`, a whole struct) |
/// | a map entry | a string key (or a `char`, a unit variant, a newtype around one) decides its value like a field name; the key text itself goes through [`Policy::scrub_text`]; other keys decide nothing |
/// | a string, `char` or `Display` value (`collect_str`) | through [`Policy::scrub_text`] |
/// | bytes (`serialize_bytes`) | through the byte rules ([`Policy::scrub_bytes_in_place`]) on a copy: same length, matches overwritten |
/// | sequences, tuples, options, newtypes, enum variants | through the wrapper; elements inherit the decision of the field that holds them |
/// | numbers, booleans, units | unchanged (unless their field is redacted) |
///
/// `is_human_readable` is the format's own. Names that come from the code (struct, field and
/// variant names) are written as they are.
///
/// **Idempotent.** A redacted field whose value is already a placeholder string (also inside
/// an `Option` or a newtype) keeps it, and [`Policy::scrub_text`] leaves placeholders alone, so
/// redacting redacted output changes nothing. A redacted `None` is written as the placeholder
/// too, so the output does not tell whether the field was set; use
/// `skip_serializing_if` to leave it out.
///
/// **Allow-list mode** ([`PolicyBuilder::allow_only`](crate::PolicyBuilder::allow_only)) fails
/// closed: every field and string-keyed entry whose name is not listed is written as
/// `[REDACTED:not_allowed]`. A listed field holding a struct or map is still checked field by
/// field, and the elements of a listed sequence inherit. Values with no name (the top level,
/// entries of maps with numeric keys) keep the value rules, and their nested fields are
/// checked by name.
///
/// **Cost.** Clean strings are written as they are, without a copy. A struct field name's
/// decision is computed once per policy and remembered by the name's address; with only the
/// built-in value rules, strings too short or too plain to match one (ids, codes, under 9
/// bytes) skip them, and short strings without any rule's anchor skip the search. The only
/// allocations are the scrubbed copy of a string that held a secret, a `Display` value over
/// 128 bytes, bytes over 256, and a map key over 64 bytes. On a Plaid `/transactions/get`
/// response this is about 1.16 times plain `serde_json` in instructions (see the crate README).
///
/// # Limits
///
/// - A `Vec<u8>` or `[u8; N]` serializes as a sequence of numbers, which the value rules
///   cannot read; use `serde_bytes` or a string.
/// - A newtype variant's payload is not decided by the variant's name (its strings are still
///   scrubbed).
/// - The wrapper trusts the `Serialize` implementations inside: one that writes a secret as
///   numbers, or under an innocent name, is not caught. Credential types should not be
///   plainly `Serialize` in the first place.
///
/// ```
/// use std::collections::BTreeMap;
///
/// use serde::Serialize;
/// use tokenward_redact::{Policy, Redacted};
///
/// #[derive(Serialize)]
/// struct Item {
///     item_id: String,
///     notes: String,
/// }
///
/// #[derive(Serialize)]
/// struct Exchange {
///     access_token: String,
///     amount: f64,
///     item: Item,
///     headers: BTreeMap<String, String>,
/// }
///
/// let exchange = Exchange {
///     access_token: "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6".to_owned(),
///     amount: 12.5,
///     item: Item {
///         item_id: "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6".to_owned(),
///         notes: "relinked with public-sandbox-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b".to_owned(),
///     },
///     headers: BTreeMap::from([
///         ("Content-Type".to_owned(), "application/json".to_owned()),
///         ("PLAID-SECRET".to_owned(), "0123456789abcdef0123456789abcd".to_owned()),
///     ]),
/// };
///
/// let policy = Policy::plaid();
/// let json = serde_json::to_string(&Redacted::new(&exchange, &policy))?;
/// assert_eq!(
///     json,
///     concat!(
///         r#"{"access_token":"[REDACTED:plaid.access_token]","amount":12.5,"#,
///         r#""item":{"item_id":"eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6","#,
///         r#""notes":"relinked with [REDACTED:plaid.public_token]"},"#,
///         r#""headers":{"Content-Type":"application/json","#,
///         r#""PLAID-SECRET":"[REDACTED:plaid.client_secret]"}}"#,
///     )
/// );
///
/// // The same in one call.
/// assert_eq!(tokenward_redact::to_json_vec(&exchange, &policy)?, json.as_bytes());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub struct Redacted<'a, T: ?Sized> {
    value: &'a T,
    policy: &'a Policy,
}

impl<'a, T: ?Sized> Redacted<'a, T> {
    /// Wraps `value`, to be serialized under `policy`.
    #[must_use]
    pub fn new(value: &'a T, policy: &'a Policy) -> Self {
        Redacted { value, policy }
    }
}

impl<T: ?Sized> Clone for Redacted<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Redacted<'_, T> {}

impl<T: ?Sized> fmt::Debug for Redacted<'_, T> {
    /// Shows the policy, never the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redacted")
            .field("policy", self.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + ?Sized> Serialize for Redacted<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Ser {
            inner: serializer,
            ctx: Ctx {
                policy: self.policy,
            },
        })
    }
}

/// Serializes `value` to JSON through [`Redacted`] under `policy`.
///
/// # Errors
///
/// Whatever [`serde_json::to_vec`] returns for the value (a map with non-string keys, a
/// failing `Serialize` implementation).
pub fn to_json_vec<T: Serialize + ?Sized>(
    value: &T,
    policy: &Policy,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Redacted::new(value, policy))
}

// ---------------------------------------------------------------------------------------------
// What every wrapper carries.

/// What every wrapper carries.
#[derive(Clone, Copy)]
struct Ctx<'c> {
    policy: &'c Policy,
}

impl<'c> Ctx<'c> {
    /// The placeholder for a field with this static name, if it is redacted.
    #[inline]
    fn field(self, name: &'static str) -> Option<&'c str> {
        self.policy.static_field(name)
    }

    /// The placeholder for a map entry with this key, if its value is redacted.
    fn key(self, name: &str) -> Option<&'c str> {
        match self.policy.field(name) {
            FieldAction::Keep => None,
            FieldAction::Redact(placeholder) => Some(placeholder),
        }
    }

    /// The value rules on one string; borrowed when clean.
    #[inline]
    fn scrub(self, text: &str) -> Cow<'_, str> {
        self.policy.scrub_text(text)
    }
}

// ---------------------------------------------------------------------------------------------
// The wrapping serializer: forwards, scrubbing strings and wrapping nested values.

/// The wrapping serializer.
struct Ser<'c, S> {
    inner: S,
    ctx: Ctx<'c>,
}

/// A nested value, to be serialized through the wrapper again.
struct Value<'c, 'v, T: ?Sized> {
    value: &'v T,
    ctx: Ctx<'c>,
}

impl<T: Serialize + ?Sized> Serialize for Value<'_, '_, T> {
    #[allow(
        clippy::inline_always,
        reason = "one call per value otherwise: measured, a tenth of the wrapper's cost"
    )]
    #[inline(always)]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Ser {
            inner: serializer,
            ctx: self.ctx,
        })
    }
}

/// A field or map value: kept (through the wrapper) or masked by a placeholder.
enum Field<'c, 'v, T: ?Sized> {
    Keep(Value<'c, 'v, T>),
    Mask(Masked<'c, 'v, T>),
}

impl<'c, 'v, T: ?Sized> Field<'c, 'v, T> {
    fn new(value: &'v T, ctx: Ctx<'c>, placeholder: Option<&'c str>) -> Self {
        match placeholder {
            None => Field::Keep(Value { value, ctx }),
            Some(placeholder) => Field::Mask(Masked { value, placeholder }),
        }
    }
}

impl<T: Serialize + ?Sized> Serialize for Field<'_, '_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Keep(value) => value.serialize(serializer),
            Field::Mask(masked) => masked.serialize(serializer),
        }
    }
}

/// Generates the forwarding of numbers and booleans, which pass unchanged.
macro_rules! forward_scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            #[inline]
            fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'c, S: Serializer> Serializer for Ser<'c, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'c, S::SerializeSeq>;
    type SerializeTuple = Compound<'c, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'c, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'c, S::SerializeTupleVariant>;
    type SerializeMap = MapSer<'c, S::SerializeMap>;
    type SerializeStruct = Compound<'c, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'c, S::SerializeStructVariant>;

    forward_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
    );

    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 4];
        match self.ctx.scrub(v.encode_utf8(&mut buf)) {
            Cow::Borrowed(_) => self.inner.serialize_char(v),
            Cow::Owned(scrubbed) => self.inner.serialize_str(&scrubbed),
        }
    }

    #[allow(
        clippy::inline_always,
        reason = "one call per value otherwise: measured, a tenth of the wrapper's cost"
    )]
    #[inline(always)]
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        // Clean text, the common case, goes straight through; the rest out of line.
        if self.ctx.policy.certainly_unchanged(v) {
            self.inner.serialize_str(v)
        } else {
            scrub_str(self.inner, self.ctx, v)
        }
    }

    /// Bytes go through the byte rules, which overwrite matches in place and keep the length,
    /// so they work on a copy: on the stack up to [`STACK_BYTES`], else on the heap.
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let mut stack = [0u8; STACK_BYTES];
        if let Some(copy) = stack.get_mut(..v.len()) {
            copy.copy_from_slice(v);
            self.ctx.policy.scrub_bytes_in_place(copy);
            self.inner.serialize_bytes(copy)
        } else {
            let mut copy = v.to_vec();
            self.ctx.policy.scrub_bytes_in_place(&mut copy);
            self.inner.serialize_bytes(&copy)
        }
    }

    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&Value {
            value,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    #[inline]
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_unit_variant(name, variant_index, variant)
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_struct(
            name,
            &Value {
                value,
                ctx: self.ctx,
            },
        )
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_variant(
            name,
            variant_index,
            variant,
            &Value {
                value,
                ctx: self.ctx,
            },
        )
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let inner = self.inner.serialize_seq(len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let inner = self.inner.serialize_tuple(len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let inner = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let inner = self
            .inner
            .serialize_tuple_variant(name, variant_index, variant, len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let inner = self.inner.serialize_map(len)?;
        Ok(MapSer {
            inner,
            ctx: self.ctx,
            pending: None,
        })
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.inner.serialize_struct(name, len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let inner = self
            .inner
            .serialize_struct_variant(name, variant_index, variant, len)?;
        Ok(Compound {
            inner,
            ctx: self.ctx,
        })
    }

    /// Formats into a stack buffer (the heap only past [`STACK_TEXT`] bytes), then scrubs like
    /// a string.
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let mut text = StackStr::new();
        write!(text, "{value}").map_err(|_| display_failed::<S::Error>())?;
        self.serialize_str(text.as_str())
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Writes a string that the shortcuts could not pass: scrubbed (borrowed when clean after all).
#[inline(never)]
fn scrub_str<S: Serializer>(inner: S, ctx: Ctx<'_>, v: &str) -> Result<S::Ok, S::Error> {
    inner.serialize_str(&ctx.scrub(v))
}

/// Bytes copied on the stack by `serialize_bytes` before falling back to the heap.
const STACK_BYTES: usize = 256;

fn display_failed<E: ser::Error>() -> E {
    E::custom("a Display implementation returned an error")
}

/// A sequence, tuple or struct being serialized: forwards each element through the wrapper,
/// each struct field by its name's decision.
struct Compound<'c, C> {
    inner: C,
    ctx: Ctx<'c>,
}

impl<C: SerializeSeq> SerializeSeq for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[allow(
        clippy::inline_always,
        reason = "one call per value otherwise: measured, a tenth of the wrapper's cost"
    )]
    #[inline(always)]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.inner.serialize_element(&Value {
            value,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTuple> SerializeTuple for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.inner.serialize_element(&Value {
            value,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleStruct> SerializeTupleStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.inner.serialize_field(&Value {
            value,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleVariant> SerializeTupleVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.inner.serialize_field(&Value {
            value,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStruct> SerializeStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[allow(
        clippy::inline_always,
        reason = "one call per value otherwise: measured, a tenth of the wrapper's cost"
    )]
    #[inline(always)]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        match self.ctx.field(key) {
            None => self.inner.serialize_field(
                key,
                &Value {
                    value,
                    ctx: self.ctx,
                },
            ),
            Some(placeholder) => mask_struct_field(&mut self.inner, key, value, placeholder),
        }
    }

    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStructVariant> SerializeStructVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        match self.ctx.field(key) {
            None => self.inner.serialize_field(
                key,
                &Value {
                    value,
                    ctx: self.ctx,
                },
            ),
            Some(placeholder) => mask_variant_field(&mut self.inner, key, value, placeholder),
        }
    }

    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }

    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// Writes a redacted struct field: out of line, so the common path (kept) stays small.
#[cold]
#[inline(never)]
fn mask_struct_field<C: SerializeStruct, T: Serialize + ?Sized>(
    inner: &mut C,
    key: &'static str,
    value: &T,
    placeholder: &str,
) -> Result<(), C::Error> {
    inner.serialize_field(key, &Masked { value, placeholder })
}

/// As [`mask_struct_field`], for a struct variant.
#[cold]
#[inline(never)]
fn mask_variant_field<C: SerializeStructVariant, T: Serialize + ?Sized>(
    inner: &mut C,
    key: &'static str,
    value: &T,
    placeholder: &str,
) -> Result<(), C::Error> {
    inner.serialize_field(key, &Masked { value, placeholder })
}

/// A map being serialized. A key's decision is remembered between `serialize_key` and
/// `serialize_value`.
struct MapSer<'c, M> {
    inner: M,
    ctx: Ctx<'c>,
    /// The placeholder for the value of the key just written, if it is redacted.
    pending: Option<&'c str>,
}

impl<M: SerializeMap> SerializeMap for MapSer<'_, M> {
    type Ok = M::Ok;
    type Error = M::Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), M::Error> {
        self.pending = key_decision(key, self.ctx);
        self.inner.serialize_key(&Value {
            value: key,
            ctx: self.ctx,
        })
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), M::Error> {
        let placeholder = self.pending.take();
        self.inner
            .serialize_value(&Field::new(value, self.ctx, placeholder))
    }

    #[inline]
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), M::Error> {
        self.pending = None;
        let placeholder = key_decision(key, self.ctx);
        self.inner.serialize_entry(
            &Value {
                value: key,
                ctx: self.ctx,
            },
            &Field::new(value, self.ctx, placeholder),
        )
    }

    #[inline]
    fn end(self) -> Result<M::Ok, M::Error> {
        self.inner.end()
    }
}

/// The decision a map key makes for its value: by name for string-like keys, none otherwise.
/// A key's `Serialize` runs twice (here, then to be written); for a string that is a call.
fn key_decision<'c, K: Serialize + ?Sized>(key: &K, ctx: Ctx<'c>) -> Option<&'c str> {
    key.serialize(KeyName { ctx }).unwrap_or(None)
}

// ---------------------------------------------------------------------------------------------
// A redacted value: the placeholder, unless the value already is one.

/// A value whose field is redacted.
struct Masked<'c, 'v, T: ?Sized> {
    value: &'v T,
    placeholder: &'c str,
}

impl<T: Serialize + ?Sized> Serialize for Masked<'_, '_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(MaskSer {
            inner: serializer,
            placeholder: self.placeholder,
        })
    }
}

/// Writes the placeholder whatever it is given, except a string that is already a placeholder
/// (through options and newtype structs). Compound values are dropped unvisited.
struct MaskSer<'c, S> {
    inner: S,
    placeholder: &'c str,
}

impl<S: Serializer> MaskSer<'_, S> {
    fn write(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(self.placeholder)
    }

    fn done(self) -> Result<Done<S::Ok, S::Error>, S::Error> {
        Ok(Done {
            ok: self.write()?,
            error: PhantomData,
        })
    }
}

/// Generates the methods of [`MaskSer`] that write the placeholder for a scalar.
macro_rules! mask_scalars {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, _: $ty) -> Result<S::Ok, S::Error> {
                self.write()
            }
        )*
    };
}

impl<S: Serializer> Serializer for MaskSer<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Done<S::Ok, S::Error>;
    type SerializeTuple = Done<S::Ok, S::Error>;
    type SerializeTupleStruct = Done<S::Ok, S::Error>;
    type SerializeTupleVariant = Done<S::Ok, S::Error>;
    type SerializeMap = Done<S::Ok, S::Error>;
    type SerializeStruct = Done<S::Ok, S::Error>;
    type SerializeStructVariant = Done<S::Ok, S::Error>;

    mask_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        if is_placeholder(v) {
            self.inner.serialize_str(v)
        } else {
            self.write()
        }
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.write()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.write()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.write()
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        self.write()
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.done()
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.done()
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.done()
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.done()
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.done()
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.done()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.done()
    }

    /// The value is not formatted: the placeholder replaces it unseen.
    fn collect_str<T: Display + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        self.write()
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A compound value replaced by a placeholder that is already written: ignores its elements.
struct Done<Ok, E> {
    ok: Ok,
    error: PhantomData<E>,
}

/// Implements the compound traits for [`Done`]: every element method does nothing.
macro_rules! done_compound {
    ($($trait:ident { $($method:ident($($arg:ty),*);)* })*) => {
        $(
            impl<Ok, E: ser::Error> $trait for Done<Ok, E> {
                type Ok = Ok;
                type Error = E;

                $(
                    fn $method<T: Serialize + ?Sized>(
                        &mut self,
                        $(_: $arg,)*
                        _: &T,
                    ) -> Result<(), E> {
                        Ok(())
                    }
                )*

                fn end(self) -> Result<Ok, E> {
                    Ok(self.ok)
                }
            }
        )*
    };
}

done_compound! {
    SerializeSeq { serialize_element(); }
    SerializeTuple { serialize_element(); }
    SerializeTupleStruct { serialize_field(); }
    SerializeTupleVariant { serialize_field(); }
    SerializeStruct { serialize_field(&'static str); }
    SerializeStructVariant { serialize_field(&'static str); }
}

impl<Ok, E: ser::Error> SerializeMap for Done<Ok, E> {
    type Ok = Ok;
    type Error = E;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), E> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), E> {
        Ok(())
    }

    fn end(self) -> Result<Ok, E> {
        Ok(self.ok)
    }
}

// ---------------------------------------------------------------------------------------------
// Map keys: the name a key gives its entry.

/// Reads the name of a map key without writing anything: a string, a `char`, a unit variant's
/// name or any of these inside a newtype struct. Other keys have no name (`None`); compound
/// keys end the probe with [`NoName`].
struct KeyName<'c> {
    ctx: Ctx<'c>,
}

/// A map key that is not a name.
#[derive(Debug)]
struct NoName;

impl Display for NoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("map key is not a name")
    }
}

impl std::error::Error for NoName {}

impl ser::Error for NoName {
    fn custom<T: Display>(_: T) -> Self {
        NoName
    }
}

/// Generates the methods of [`KeyName`] for keys that have no name.
macro_rules! no_name {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(
            fn $method(self, $(_: $ty),*) -> Result<Self::Ok, NoName> {
                Ok(None)
            }
        )*
    };
}

/// Generates the methods of [`KeyName`] for compound keys.
macro_rules! compound_key {
    ($($method:ident($($ty:ty),*) -> $ret:ident),* $(,)?) => {
        $(
            fn $method(self, $(_: $ty),*) -> Result<Self::$ret, NoName> {
                Err(NoName)
            }
        )*
    };
}

impl<'c> Serializer for KeyName<'c> {
    type Ok = Option<&'c str>;
    type Error = NoName;
    type SerializeSeq = Impossible<Self::Ok, NoName>;
    type SerializeTuple = Impossible<Self::Ok, NoName>;
    type SerializeTupleStruct = Impossible<Self::Ok, NoName>;
    type SerializeTupleVariant = Impossible<Self::Ok, NoName>;
    type SerializeMap = Impossible<Self::Ok, NoName>;
    type SerializeStruct = Impossible<Self::Ok, NoName>;
    type SerializeStructVariant = Impossible<Self::Ok, NoName>;

    no_name!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    compound_key!(
        serialize_seq(Option<usize>) -> SerializeSeq,
        serialize_tuple(usize) -> SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant,
        serialize_map(Option<usize>) -> SerializeMap,
        serialize_struct(&'static str, usize) -> SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant,
    );

    fn serialize_char(self, v: char) -> Result<Self::Ok, NoName> {
        Ok(self.ctx.key(v.encode_utf8(&mut [0u8; 4])))
    }

    fn serialize_str(self, v: &str) -> Result<Self::Ok, NoName> {
        Ok(self.ctx.key(v))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, NoName> {
        Ok(None)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, NoName> {
        Ok(self.ctx.field(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok, NoName> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, NoName> {
        Ok(None)
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<Self::Ok, NoName> {
        let mut text = StackStr::new();
        write!(text, "{value}").map_err(|_| NoName)?;
        Ok(self.ctx.key(text.as_str()))
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting without a heap allocation for short text.

/// Bytes of formatted text kept on the stack before moving to the heap.
const STACK_TEXT: usize = 128;

/// A `fmt::Write` sink that keeps short text on the stack.
struct StackStr {
    len: usize,
    buf: [u8; STACK_TEXT],
    heap: Option<String>,
}

impl StackStr {
    fn new() -> Self {
        StackStr {
            len: 0,
            buf: [0; STACK_TEXT],
            heap: None,
        }
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(heap) => heap,
            // Only whole `&str`s are copied in, so the bytes are UTF-8.
            None => std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.heap.is_none() {
            let end = self.len + s.len();
            if let Some(dst) = self.buf.get_mut(self.len..end) {
                dst.copy_from_slice(s.as_bytes());
                self.len = end;
                return Ok(());
            }
            let mut heap = String::with_capacity(end.max(2 * STACK_TEXT));
            heap.push_str(self.as_str());
            self.heap = Some(heap);
        }
        if let Some(heap) = &mut self.heap {
            heap.push_str(s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn stack_str_spills_to_the_heap() {
        let mut s = StackStr::new();
        write!(s, "{}", "a".repeat(100)).unwrap();
        assert!(s.heap.is_none());
        write!(s, "{}", "é".repeat(40)).unwrap();
        assert!(s.heap.is_some());
        assert_eq!(s.as_str(), format!("{}{}", "a".repeat(100), "é".repeat(40)));
    }
}
