//! Serde for session values, directly to and from [`Value`].
//!
//! Going through `serde_json::Value` lost what Python keeps and JSON cannot
//! say: `NaN` and the infinities (stored as `null`), and integers beyond 64
//! bits (refused on the way in, read back as rounded floats). Here every
//! number keeps its exact value both ways. Errors are `serde_json::Error`s,
//! as before, so [`SessionError`](crate::SessionError) is unchanged.
//!
//! The shapes are serde_json's: structs and maps are dicts (integer and bool
//! keys written as text), sequences and tuples lists, unit variants strings,
//! other variants one-key dicts, `None` and `()` `None`. Reading, bytes are a
//! sequence of integers (and bytes to `serde_bytes`), UUIDs hyphenated
//! strings, datetimes RFC 3339 strings and `Markup` a string.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::ser::{self, Serialize, Serializer};
use serde_json::Error;

use crate::map::Map;
use crate::value::{Number, Value};

/// `value` as a session value.
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(ValueSerializer)
}

/// A `T` read from a session value.
pub(crate) fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, Error> {
    T::deserialize(ValueDeserializer(value))
}

// ---- writing

struct ValueSerializer;

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<Value, Error> {
        Ok(v.into())
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        Ok(Value::Number(Number::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(Value::Number(Number::from_f64(v)))
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(Value::Dict(Map::from([(
            variant.to_owned(),
            value.serialize(self)?,
        )])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, Error> {
        Ok(VariantSeqBuilder(variant, self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, Error> {
        Ok(MapBuilder(Map::new(), None))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, Error> {
        Ok(VariantMapBuilder(variant, self.serialize_map(Some(len))?))
    }
}

struct SeqBuilder(Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::List(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

struct VariantSeqBuilder(&'static str, SeqBuilder);

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(&mut self.1, value)
    }
    fn end(self) -> Result<Value, Error> {
        let items = ser::SerializeSeq::end(self.1)?;
        Ok(Value::Dict(Map::from([(self.0.to_owned(), items)])))
    }
}

/// A dict being built, and the key whose value comes next.
struct MapBuilder(Map, Option<String>);

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.1 = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .1
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value without its key"))?;
        self.0.insert(key, to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Dict(self.0))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.0.insert_borrowed(key, to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Dict(self.0))
    }
}

struct VariantMapBuilder(&'static str, MapBuilder);

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.1, key, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Dict(Map::from([(
            self.0.to_owned(),
            Value::Dict(self.1 .0),
        )])))
    }
}

/// Dict keys are text: strings as they are, integers, chars and bools as
/// serde_json writes them.
struct KeySerializer;

fn key_must_be_text() -> Error {
    <Error as ser::Error>::custom("a session dict key must be a string, an integer or a bool")
}

impl Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    fn serialize_bool(self, v: bool) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_must_be_text())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_text())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_text())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_text())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_text())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_text())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_text())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_text())
    }
}

// ---- reading

struct ValueDeserializer<'a>(&'a Value);

/// Visits a number as a 64-bit integer when it is one, else as a float
/// (`NaN` and the infinities included; an integer beyond 64 bits as the
/// nearest float, which is what self-describing targets such as
/// `serde_json::Value` can hold). `u128` and `i128` ask for theirs exactly.
fn visit_number<'de, V: Visitor<'de>>(number: &Number, visitor: V) -> Result<V::Value, Error> {
    let text = number.as_str();
    if number.is_integer() {
        if text.starts_with('-') {
            if let Ok(n) = text.parse::<i64>() {
                return visitor.visit_i64(n);
            }
        } else if let Ok(n) = text.parse::<u64>() {
            return visitor.visit_u64(n);
        }
    }
    visitor.visit_f64(as_float(number))
}

/// The float a number stands for, as Python's `float()` reads it.
fn as_float(number: &Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

/// Integer targets of 64 bits or fewer: an integer beyond 64 bits (which
/// Python writes) is refused as the integer it is, where `deserialize_any`
/// would offer it as the nearest float and the message would say "floating
/// point"; anything else as `deserialize_any` reads it.
macro_rules! at_most_64_bits {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Number(n) if n.is_integer() && !fits_64_bits(n) => {
                    Err(<Error as de::Error>::invalid_value(
                        de::Unexpected::Other("an integer beyond 64 bits"),
                        &visitor,
                    ))
                }
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}
fn beyond_128_bits(expected: &dyn de::Expected) -> Error {
    <Error as de::Error>::invalid_value(
        de::Unexpected::Other("an integer beyond 128 bits"),
        expected,
    )
}

fn fits_64_bits(number: &Number) -> bool {
    let text = number.as_str();
    text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) | Value::Markup(s) => visitor.visit_borrowed_str(s),
            Value::List(items) | Value::Tuple(items) => visitor.visit_seq(Items(items.iter())),
            Value::Dict(map) => visitor.visit_map(Entries {
                entries: map.iter(),
                value: None,
            }),
            Value::Bytes(bytes) => visitor.visit_seq(de::value::SeqDeserializer::<_, Error>::new(
                bytes.iter().copied(),
            )),
            Value::Uuid(uuid) => visitor.visit_string(uuid.hyphenated().to_string()),
            Value::DateTime(when) => visitor.visit_string(
                when.format(&time::format_description::well_known::Rfc3339)
                    .map_err(<Error as de::Error>::custom)?,
            ),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) if n.is_integer() => match n.as_str().parse::<u128>() {
                Ok(value) => visitor.visit_u128(value),
                // A negative one that fits 64 bits gets serde's own message.
                Err(_) if fits_64_bits(n) => visit_number(n, visitor),
                Err(_) => Err(beyond_128_bits(&visitor)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) if n.is_integer() => match n.as_str().parse::<i128>() {
                Ok(value) => visitor.visit_i128(value),
                Err(_) => Err(beyond_128_bits(&visitor)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => visitor.visit_f64(as_float(n)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(variant.as_str().into_deserializer()),
            Value::Dict(map) if map.len() == 1 => {
                let (variant, value) = map.iter().next().expect("one entry");
                visitor.visit_enum(Variant { variant, value })
            }
            other => Err(<Error as de::Error>::invalid_type(
                unexpected(other),
                &"a string or a dict with one key",
            )),
        }
    }

    at_most_64_bits! {
        deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64,
        deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64
    }

    serde::forward_to_deserialize_any! {
        bool char str string
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// What serde's messages call the value's kind.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => de::Unexpected::Float(as_float(n)),
        Value::String(s) | Value::Markup(s) => de::Unexpected::Str(s),
        Value::List(_) | Value::Tuple(_) => de::Unexpected::Seq,
        Value::Dict(_) => de::Unexpected::Map,
        Value::Bytes(bytes) => de::Unexpected::Bytes(bytes),
        Value::Uuid(_) | Value::DateTime(_) => de::Unexpected::Other("a tagged value"),
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(ValueDeserializer(item)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a, I: Iterator<Item = (&'a str, &'a Value)>> {
    entries: I,
    value: Option<&'a Value>,
}

impl<'de, I: Iterator<Item = (&'de str, &'de Value)>> MapAccess<'de> for Entries<'de, I> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(KeyDeserializer(key)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a map value without its key"))?;
        seed.deserialize(ValueDeserializer(value))
    }
}

/// A dict key: text, read as a number or a bool when that is what is asked
/// for (as serde_json reads `{"1": …}` into a `HashMap<u32, _>`).
struct KeyDeserializer<'a>(&'a str);

macro_rules! parse_key {
    ($($method:ident => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.parse() {
                Ok(value) => visitor.$visit(value),
                Err(_) => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    parse_key! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32, deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8, deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32, deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// A key is never `None` (writing one is refused), so an optional key
    /// is the key itself, as serde_json reads it.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// A variant written as a one-key dict: `{"Variant": value}`.
struct Variant<'a> {
    variant: &'a str,
    value: &'a Value,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = ValueDeserializer<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((variant, ValueDeserializer(self.value)))
    }
}

impl<'de> VariantAccess<'de> for ValueDeserializer<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            Value::Null => Ok(()),
            other => Err(<Error as de::Error>::invalid_type(
                unexpected(other),
                &"a unit variant",
            )),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
}

// ---- `Value` and `Map` themselves

/// Plain data, as [`Value::to_json`] gives it, except that numbers keep their
/// exact value (an integer beyond 64 bits as a 128-bit one where it fits) and
/// bytes are bytes (a sequence of integers in JSON).
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => {
                let text = n.as_str();
                if n.is_integer() {
                    if let Ok(i) = text.parse::<i64>() {
                        return serializer.serialize_i64(i);
                    }
                    if let Ok(u) = text.parse::<u64>() {
                        return serializer.serialize_u64(u);
                    }
                    if let Ok(i) = text.parse::<i128>() {
                        return serializer.serialize_i128(i);
                    }
                    if let Ok(u) = text.parse::<u128>() {
                        return serializer.serialize_u128(u);
                    }
                }
                serializer.serialize_f64(as_float(n))
            }
            Value::String(s) | Value::Markup(s) => serializer.serialize_str(s),
            Value::List(items) | Value::Tuple(items) => serializer.collect_seq(items),
            Value::Dict(map) => map.serialize(serializer),
            Value::Bytes(bytes) => serializer.serialize_bytes(bytes),
            Value::Uuid(uuid) => serializer.collect_str(&uuid.hyphenated()),
            Value::DateTime(when) => serializer.serialize_str(
                &when
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(ser::Error::custom)?,
            ),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Any self-describing data: numbers exactly, bytes as bytes, maps with
/// string keys as dicts.
impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> de::Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Dict(map) => Ok(map),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a map")),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a session value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::from_f64(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            map.insert(key, value);
        }
        Ok(Value::Dict(map))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cart {
        user: Option<String>,
        items: Vec<(String, u32)>,
        totals: BTreeMap<u32, f64>,
        shapes: Vec<Shape>,
        #[serde(with = "serde_bytes_like")]
        raw: Vec<u8>,
        unit: (),
    }

    /// `serde_bytes` without the dependency: bytes through serialize_bytes.
    mod serde_bytes_like {
        pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<u8>, D::Error> {
            struct Bytes;
            impl serde::de::Visitor<'_> for Bytes {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(Bytes)
        }
    }

    fn round_trip<T>(value: T)
    where
        T: Serialize + de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let stored = to_value(&value).expect("serializes");
        // Through the cookie's text and back, too.
        let reread = crate::tagged::from_str(&crate::tagged::to_string(&stored)).expect("reads");
        assert_eq!(reread, stored);
        let back: T = from_value(&reread).expect("deserializes");
        assert_eq!(back, value);
    }

    /// What `insert` writes, `get` of the same type reads back: optional
    /// keys are written as the key itself, and read so, as with serde_json.
    #[test]
    fn optional_map_keys_read_back() {
        round_trip(BTreeMap::from([(Some(1i32), 1), (Some(-7), 2)]));
        round_trip(BTreeMap::from([(Some("k".to_owned()), 1)]));
        round_trip(HashMap::from([(Some(true), 1)]));
        assert!(to_value(&BTreeMap::from([(None::<i32>, 1)])).is_err());
    }

    #[test]
    fn numbers_keep_their_exact_value() {
        round_trip(u128::MAX);
        round_trip(i128::MIN);
        round_trip(u64::MAX);
        round_trip(i64::MIN);
        round_trip(0.1f64);
        round_trip(-0.0f64);
        round_trip(f64::INFINITY);
        round_trip(f64::NEG_INFINITY);
        round_trip(f64::MAX);
        round_trip(5e-324f64);
        round_trip(1.5e-300f64);
        let nan: f64 = from_value(&to_value(&f64::NAN).expect("NaN")).expect("NaN back");
        assert!(nan.is_nan());
        assert_eq!(to_value(&f64::NAN).expect("NaN").to_tagged_json(), "NaN");
        // A Python int beyond 128 bits reads as the nearest float.
        let huge = crate::tagged::from_str(&"9".repeat(50)).expect("an int");
        assert_eq!(from_value::<f64>(&huge).expect("a float"), 1e50);
        let big = crate::tagged::from_str("1180591620717411303424").expect("2**70");
        assert_eq!(from_value::<u128>(&big).expect("a u128"), 1 << 70);
        assert_eq!(from_value::<f64>(&big).expect("a float"), 2f64.powi(70));
        // Refused as the integer it is, not as "floating point".
        for error in [
            from_value::<u64>(&big).expect_err("too big").to_string(),
            from_value::<i64>(&big).expect_err("too big").to_string(),
            from_value::<u8>(&big).expect_err("too big").to_string(),
        ] {
            assert!(error.contains("an integer beyond 64 bits"), "{error}");
        }
        let huge = crate::tagged::from_str(&"9".repeat(40)).expect("beyond 128 bits");
        for error in [
            from_value::<u128>(&huge).expect_err("too big").to_string(),
            from_value::<i128>(&huge).expect_err("too big").to_string(),
        ] {
            assert!(error.contains("an integer beyond 128 bits"), "{error}");
        }
        let negative = crate::tagged::from_str("-5").expect("an int");
        let error = from_value::<u128>(&negative)
            .expect_err("negative")
            .to_string();
        assert!(error.contains("integer `-5`"), "{error}");
        let max = crate::tagged::from_str("18446744073709551615").expect("2**64-1");
        assert_eq!(from_value::<u64>(&max).expect("fits"), u64::MAX);
        // serde_json's own Value takes what it can hold.
        let json: serde_json::Value = from_value(&big).expect("a JSON value");
        assert_eq!(json.as_f64(), Some(2f64.powi(70)));
    }

    #[test]
    fn shapes_are_serde_json_s() {
        let cart = Cart {
            user: Some("alice".to_owned()),
            items: vec![("apple".to_owned(), 2)],
            totals: BTreeMap::from([(1, 9.5)]),
            shapes: vec![
                Shape::Dot,
                Shape::Circle(1.0),
                Shape::Rect { w: 2, h: 3 },
                Shape::Pair(-1, 1),
            ],
            raw: vec![0, 255],
            unit: (),
        };
        assert_eq!(
            to_value(&cart).expect("serializes").to_tagged_json(),
            concat!(
                r#"{"items":[["apple",2]],"raw":{" b":"AP8="},"shapes":["Dot",{"Circle":1.0},"#,
                r#"{"Rect":{"h":3,"w":2}},{"Pair":[-1,1]}],"totals":{"1":9.5},"unit":null,"#,
                r#""user":"alice"}"#
            )
        );
        round_trip(cart);
        round_trip(HashMap::from([(true, 1u8)]));
        round_trip(None::<u8>);
        assert!(to_value(&HashMap::from([(vec![1], 1)])).is_err());
    }

    #[test]
    fn values_and_maps_are_serde_data_themselves() {
        let value = crate::tagged::from_str(
            r#"{"big":1180591620717411303424,"f":0.5,"l":[1,"a",null],"t":{" t":[1]},"u":{" u":"12345678123456781234567812345678"}}"#,
        )
        .expect("reads");
        assert_eq!(
            serde_json::to_string(&value).expect("JSON"),
            r#"{"big":1180591620717411303424,"f":0.5,"l":[1,"a",null],"t":[1],"u":"12345678-1234-5678-1234-567812345678"}"#
        );
        let Value::Dict(map) = value else {
            panic!("a dict")
        };
        let json = serde_json::to_string(&map).expect("JSON");
        let back: Map = serde_json::from_str(&json).expect("a map");
        // (serde_json itself reads integers beyond 64 bits as floats.)
        assert_eq!(back.get("f"), map.get("f"));
        assert_eq!(back.get("l"), map.get("l"));
        let float: Value = serde_json::from_str("0.1").expect("a number");
        assert_eq!(float.to_tagged_json(), "0.1");
    }
}
