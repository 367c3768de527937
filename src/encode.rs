//! JSON encoding of handler outputs: byte for byte what `serde_json::to_vec` writes,
//! with less work per value.
//!
//! - A value written through `Serializer::collect_str` (chrono's dates and times,
//!   `Display` types under `#[serde(with = ...)]`) is formatted into a buffer on the
//!   stack first and then escaped in one pass: serde_json escapes every piece `Display`
//!   writes on its own, and a timestamp is written in some twenty pieces.
//! - The output is written into a buffer kept per thread (so a result the size of the
//!   last ones does not grow its buffer step by step, copying as it goes) and copied out
//!   once, at its exact size: the bytes the cache keeps have no spare capacity.

use std::cell::RefCell;
use std::fmt::{self, Display, Write as _};

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// Largest buffer kept per thread after an encoding: a rare large output does not pin
/// its memory for the thread's life.
const KEEP: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `serde_json::to_vec(value)`, the same bytes (see the module docs).
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            let written = write(&mut buffer, value);
            let out = written.map(|()| buffer.as_slice().to_vec());
            if buffer.capacity() > KEEP {
                *buffer = Vec::new();
            }
            out
        }
        // An output whose `Serialize` encodes another one (reentrant): a buffer of its own.
        Err(_) => {
            let mut out = Vec::with_capacity(128);
            write(&mut out, value).map(|()| out)
        }
    })
}

fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    value.serialize(Buffered(&mut serde_json::Serializer::new(out)))
}

/// A serializer that formats `collect_str` values before handing them to `S` as one
/// string, and forwards everything else.
struct Buffered<S>(S);

/// A value serialized through [`Buffered`] (what compound serializers hand down).
struct Value<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Value<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Buffered(serializer))
    }
}

/// Text formatted on the stack, spilling to the heap past `N` bytes.
struct Text<const N: usize> {
    stack: [u8; N],
    len: usize,
    heap: Option<String>,
}

impl<const N: usize> Text<N> {
    fn new() -> Self {
        Self {
            stack: [0; N],
            len: 0,
            heap: None,
        }
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(s) => s,
            // Only whole `&str`s are copied in, so the prefix is valid UTF-8.
            None => std::str::from_utf8(&self.stack[..self.len]).unwrap_or_default(),
        }
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    // `Display` impls write much of their text a character at a time (chrono's digits):
    // an ASCII character is one store, not an encode and a copy.
    fn write_char(&mut self, c: char) -> fmt::Result {
        if c.is_ascii()
            && self.heap.is_none()
            && let Some(slot) = self.stack.get_mut(self.len)
        {
            *slot = c as u8;
            self.len += 1;
            return Ok(());
        }
        self.write_str(c.encode_utf8(&mut [0; 4]))
    }

    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(heap) = &mut self.heap {
            heap.push_str(s);
        } else if let Some(room) = self.stack.get_mut(self.len..self.len + s.len()) {
            room.copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut heap = String::with_capacity(2 * (self.len + s.len()));
            heap.push_str(std::str::from_utf8(&self.stack[..self.len]).unwrap_or_default());
            heap.push_str(s);
            self.heap = Some(heap);
        }
        Ok(())
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self $(, $arg: $ty)*) -> Result<Self::Ok, Self::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Buffered<S::SerializeSeq>;
    type SerializeTuple = Buffered<S::SerializeTuple>;
    type SerializeTupleStruct = Buffered<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Buffered<S::SerializeTupleVariant>;
    type SerializeMap = Buffered<S::SerializeMap>;
    type SerializeStruct = Buffered<S::SerializeStruct>;
    type SerializeStructVariant = Buffered<S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Value(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Value(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Value(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Buffered)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Buffered)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Buffered)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Buffered)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Buffered)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Buffered)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Buffered)
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let mut text = Text::<64>::new();
        if write!(text, "{value}").is_err() {
            return Err(ser::Error::custom(
                "a Display implementation returned an error unexpectedly",
            ));
        }
        self.0.serialize_str(text.as_str())
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<S: SerializeSeq> SerializeSeq for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Value(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTuple> SerializeTuple for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&Value(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleStruct> SerializeTupleStruct for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&Value(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleVariant> SerializeTupleVariant for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&Value(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeMap> SerializeMap for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Value(key))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Value(value))
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(&Value(key), &Value(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Value(value))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Buffered<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Value(value))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::to_vec;

    /// A `Display` value serialized with `collect_str`, longer than the stack buffer
    /// when `long`.
    struct Shown {
        long: bool,
    }

    impl std::fmt::Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a \"quoted\" \u{e9}\n")?;
            for i in 0..if self.long { 40 } else { 2 } {
                write!(f, "{i}:\u{1F600}\t")?;
            }
            Ok(())
        }
    }

    impl Serialize for Shown {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Newtype(Shown),
        Tuple(i8, Shown),
        Struct { at: Shown, n: u128 },
    }

    #[derive(Serialize)]
    struct Row {
        id: u64,
        name: String,
        at: Shown,
        late: Option<Shown>,
        none: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<i32>,
        kinds: Vec<Kind>,
        pair: (f64, Shown),
        by_name: BTreeMap<String, Shown>,
        bytes: Vec<u8>,
        ch: char,
        signed: i128,
        unit: (),
    }

    fn row(i: u64) -> Row {
        Row {
            id: i,
            name: format!("row \"{i}\"\u{0}\u{1f}"),
            at: Shown {
                long: i.is_multiple_of(2),
            },
            late: Some(Shown { long: true }),
            none: None,
            skipped: None,
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(Shown { long: false }),
                Kind::Tuple(-3, Shown { long: true }),
                Kind::Struct {
                    at: Shown { long: false },
                    n: u128::MAX,
                },
            ],
            pair: (1.5e300, Shown { long: false }),
            by_name: BTreeMap::from([("k\"ey".to_owned(), Shown { long: true })]),
            bytes: vec![0, 255],
            ch: '\u{7f}',
            signed: i128::MIN,
            unit: (),
        }
    }

    #[test]
    fn the_same_bytes_as_serde_json() {
        let rows: Vec<Row> = (0..5).map(row).collect();
        assert_eq!(to_vec(&rows).unwrap(), serde_json::to_vec(&rows).unwrap());
        let times = [
            chrono::DateTime::parse_from_rfc3339("2026-12-03T23:41:19.123456+01:00").unwrap(),
            chrono::DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap(),
        ];
        let utc = times.map(|t| t.with_timezone(&chrono::Utc));
        assert_eq!(
            to_vec(&(times, utc)).unwrap(),
            serde_json::to_vec(&(times, utc)).unwrap()
        );
        let value = serde_json::json!({"a": [1, "b", null, {"c": 2.5}]});
        assert_eq!(to_vec(&value).unwrap(), serde_json::to_vec(&value).unwrap());
    }

    /// An output larger than the buffer kept per thread, then a small one: both whole,
    /// and the second without the first's leftovers.
    #[test]
    fn large_then_small_outputs() {
        let large = "x".repeat(super::KEEP * 2);
        assert_eq!(to_vec(&large).unwrap(), serde_json::to_vec(&large).unwrap());
        assert_eq!(to_vec(&1).unwrap(), b"1");
    }

    /// A `Serialize` that encodes another value while it is being encoded.
    #[test]
    fn reentrant_encoding() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let inner = to_vec(&[1, 2]).map_err(serde::ser::Error::custom)?;
                s.serialize_bytes(&inner)
            }
        }
        assert_eq!(
            to_vec(&vec![Nested]).unwrap(),
            serde_json::to_vec(&vec![Nested]).unwrap()
        );
    }
}
