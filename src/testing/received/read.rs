//! Reading protos: resource attributes, scope names, attribute lookup, values rendered as text.

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::testing::{any_value, AnyValue, KeyValue};

pub(crate) fn resource_attributes(resource: &Option<Resource>) -> Vec<KeyValue> {
    resource
        .as_ref()
        .map(|resource| resource.attributes.clone())
        .unwrap_or_default()
}

pub(crate) fn scope_name(scope: &Option<InstrumentationScope>) -> String {
    scope
        .as_ref()
        .map(|scope| scope.name.clone())
        .unwrap_or_default()
}

pub(crate) fn find_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

pub(crate) fn render_attributes(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().and_then(render).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Renders a value as text; `None` for an empty value (and for string-table references, which
/// only the profiling signal uses).
pub(crate) fn render(value: &AnyValue) -> Option<String> {
    use any_value::Value;

    let rendered = match value.value.as_ref()? {
        Value::StringValue(text) => text.clone(),
        Value::BoolValue(flag) => flag.to_string(),
        Value::IntValue(number) => number.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        Value::BytesValue(bytes) => hex(bytes),
        Value::ArrayValue(array) => {
            let items: Vec<String> = array
                .values
                .iter()
                .map(|item| render(item).unwrap_or_default())
                .collect();
            format!("[{}]", items.join(", "))
        }
        Value::KvlistValue(list) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().and_then(render).unwrap_or_default();
                    format!("{}: {value}", kv.key)
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::StringValueStrindex(_) => return None,
    };
    Some(rendered)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut text = vec![0u8; bytes.len() * 2];
    crate::util::hex_into(bytes, &mut text);
    // Hex digits only: always UTF-8.
    String::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;
    use crate::testing::test_helpers::{kv, string};

    #[test]
    fn renders_every_value_kind() {
        let int = |value| AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        };
        let cases = [
            (string("text"), Some("text")),
            (int(-42), Some("-42")),
            (
                AnyValue {
                    value: Some(any_value::Value::BoolValue(true)),
                },
                Some("true"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::DoubleValue(12.5)),
                },
                Some("12.5"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0x0f, 0xa0])),
                },
                Some("0fa0"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![int(1), string("b")],
                    })),
                },
                Some("[1, b]"),
            ),
            (
                AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("k", int(1))],
                    })),
                },
                Some("{k: 1}"),
            ),
            (AnyValue { value: None }, None),
        ];
        for (value, expected) in cases {
            assert_eq!(render(&value).as_deref(), expected, "{value:?}");
        }
    }
}
