//! A protobuf writer for the few shapes OTLP needs, on prost's varint and key helpers.
//!
//! The export path writes SDK data straight into request bytes with it instead of building the
//! generated `opentelemetry-proto` structs first: those cost a `String` or `Vec` per attribute,
//! which made allocation the larger part of exporting a span.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// Field writers over one growing buffer. Scalar writers skip proto3 default values, as prost
/// does; the `*_always` variants are for `oneof` members, which are written whatever their value.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Empty the buffer for reuse, releasing it if an outsized request grew it past `limit`.
    pub(crate) fn recycle(&mut self, limit: usize) {
        if self.buf.capacity() > limit.saturating_mul(2) {
            self.buf = Vec::new();
        }
        self.buf.clear();
    }

    pub(crate) fn uint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.uint_always(tag, value);
        }
    }

    #[inline]
    pub(crate) fn uint_always(&mut self, tag: u32, value: u64) {
        self.key(tag, WireType::Varint);
        self.varint(value);
    }

    pub(crate) fn fixed64(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.fixed64_always(tag, value);
        }
    }

    pub(crate) fn fixed64_always(&mut self, tag: u32, value: u64) {
        self.key(tag, WireType::SixtyFourBit);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn fixed32(&mut self, tag: u32, value: u32) {
        if value != 0 {
            self.key(tag, WireType::ThirtyTwoBit);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    #[inline]
    pub(crate) fn bytes(&mut self, tag: u32, value: &[u8]) {
        if !value.is_empty() {
            self.bytes_always(tag, value);
        }
    }

    #[inline]
    pub(crate) fn bytes_always(&mut self, tag: u32, value: &[u8]) {
        self.header(tag, value.len());
        self.buf.extend_from_slice(value);
    }

    /// The key and length of a length-delimited field whose `len` bytes the caller writes next.
    #[inline]
    pub(crate) fn header(&mut self, tag: u32, len: usize) {
        self.key(tag, WireType::LengthDelimited);
        self.varint(len as u64);
    }

    // Most keys and lengths fit one byte: written inline, prost's loop for the rest.
    #[inline]
    fn key(&mut self, tag: u32, wire_type: WireType) {
        if tag < 16 {
            self.buf.push(((tag << 3) | wire_type as u32) as u8);
        } else {
            encode_key(tag, wire_type, &mut self.buf);
        }
    }

    #[inline]
    fn varint(&mut self, value: u64) {
        if value < 0x80 {
            self.buf.push(value as u8);
        } else {
            encode_varint(value, &mut self.buf);
        }
    }

    /// A nested message, always written (an empty one included, like prost's `Some(default)`).
    ///
    /// Its length is only known once written: one byte is reserved, which fits the common case
    /// (attributes, values, status), and the body moves over when the length needs more.
    pub(crate) fn message(&mut self, tag: u32, body: impl FnOnce(&mut Self)) {
        self.key(tag, WireType::LengthDelimited);
        let at = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - at - 1;
        if len < 0x80 {
            self.buf[at] = len as u8;
            return;
        }
        let width = encoded_len_varint(len as u64);
        self.buf.resize(self.buf.len() + width - 1, 0);
        self.buf.copy_within(at + 1..at + 1 + len, at + width);
        let mut slot = &mut self.buf[at..at + width];
        encode_varint(len as u64, &mut slot);
    }
}

/// Bytes taken by a length-delimited field of `len` bytes with a one-byte key (tags 1 to 15).
pub(crate) fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp::fields::{self, array_value, key_value};
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
    use prost::Message;

    #[test]
    fn nested_messages_of_every_length_class_decode() {
        for len in [0usize, 1, 120, 127, 128, 300, 16_383, 16_384, 70_000] {
            let text = "x".repeat(len);
            let mut w = Writer::default();
            w.bytes(key_value::KEY, b"k");
            w.message(key_value::VALUE, |w| {
                w.message(fields::any_value::ARRAY_VALUE, |w| {
                    w.message(array_value::VALUES, |w| {
                        w.bytes_always(fields::any_value::STRING_VALUE, text.as_bytes())
                    });
                })
            });
            let expected = KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(any_value::Value::StringValue(text.clone())),
                        }],
                    })),
                }),
                key_strindex: 0,
            };
            assert_eq!(w.buf, expected.encode_to_vec(), "length {len}");
        }
    }

    #[test]
    fn defaults_are_skipped_except_when_always() {
        let mut w = Writer::default();
        w.uint(1, 0);
        w.fixed64(2, 0);
        w.fixed32(3, 0);
        w.bytes(4, b"");
        assert!(w.buf.is_empty());
        w.uint_always(2, 0);
        assert_eq!(w.buf, [0x10, 0]);
        // Field 16 (a two-byte key) and a multi-byte varint, as prost writes them.
        let mut w = Writer::default();
        w.fixed32(16, 7);
        w.uint(2, 300);
        let mut expected = Vec::new();
        prost::encoding::fixed32::encode(16, &7, &mut expected);
        prost::encoding::uint64::encode(2, &300, &mut expected);
        assert_eq!(w.buf, expected);
        assert_eq!(field_len(3), 5);
        assert_eq!(field_len(200), 203);
    }
}
