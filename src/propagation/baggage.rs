//! `baggage` as the W3C Baggage specification defines it: several header fields read as one
//! list, each member checked against the grammar (an invalid one is dropped, the valid ones
//! kept), and the limits of 64 members and 8192 bytes enforced by dropping whole members from
//! the end.

use std::borrow::Cow;

use super::{MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};

/// `token` (RFC 9110): the characters of a key.
fn is_token_char(c: &u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c)
}

/// `baggage-octet`: printable ASCII but space, `"`, `,`, `;` and `\`.
fn is_value_char(c: &u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn valid_key(key: &[u8]) -> bool {
    let key = trim_ows(key);
    !key.is_empty() && key.iter().all(is_token_char)
}

fn valid_value(value: &[u8]) -> bool {
    trim_ows(value).iter().all(is_value_char)
}

/// `key OWS "=" OWS value` (`=` required) or, for a property, also a lone `key OWS`.
fn valid_pair(pair: &[u8], value_required: bool) -> bool {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => valid_key(&pair[..eq]) && valid_value(&pair[eq + 1..]),
        None => !value_required && valid_key(pair),
    }
}

/// Whether one list member (OWS around it already removed) follows the grammar:
/// `key OWS "=" OWS value *( OWS ";" OWS property )`.
pub(super) fn valid_member(member: &[u8]) -> bool {
    let mut parts = member.split(|&b| b == b';');
    let first = parts.next().unwrap_or_default();
    valid_pair(first, true) && parts.all(|p| valid_pair(p, false))
}

/// The members of the list `fields` form, OWS removed, in order: valid ones only, and no more
/// than the limits allow.
pub(super) fn members<'a, I>(fields: I) -> impl Iterator<Item = &'a [u8]>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let (mut count, mut bytes) = (0usize, 0usize);
    fields
        .into_iter()
        .flat_map(|f| f.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|m| !m.is_empty() && valid_member(m))
        .take_while(move |m| {
            count += 1;
            bytes += m.len() + usize::from(count > 1);
            count <= MAX_BAGGAGE_MEMBERS && bytes <= MAX_BAGGAGE_BYTES
        })
}

/// One field that is already a clean list: every member valid, within the limits, and no `=`
/// in a value; it can go to the SDK as it is.
fn clean(field: &[u8]) -> bool {
    let (mut count, mut fine) = (0usize, field.len() <= MAX_BAGGAGE_BYTES);
    for m in field.split(|&b| b == b',').map(trim_ows) {
        count += 1;
        fine &= !m.is_empty() && valid_member(m) && !value_has_eq(m);
        if !fine {
            break;
        }
    }
    fine && count <= MAX_BAGGAGE_MEMBERS
}

fn value_has_eq(member: &[u8]) -> bool {
    let pair = member.split(|&b| b == b';').next().unwrap_or_default();
    pair.iter().filter(|&&b| b == b'=').count() > 1
}

/// The list the `baggage` fields form, ready for the SDK's `BaggagePropagator`: borrowed
/// when there is one clean field, else rebuilt from the members kept; `None` when none is.
pub(super) fn combine<'a, I>(fields: impl Fn() -> I) -> Option<Cow<'a, str>>
where
    I: Iterator<Item = &'a [u8]>,
{
    let mut probe = fields();
    // No field, the common case: nothing to build.
    let first = probe.next()?;
    if probe.next().is_none() && clean(first) {
        return std::str::from_utf8(first).ok().map(Cow::Borrowed);
    }
    let mut out = String::new();
    for m in members(fields()) {
        if !out.is_empty() {
            out.push(',');
        }
        push_member(&mut out, m);
    }
    (!out.is_empty()).then_some(Cow::Owned(out))
}

/// `member` appended, the `=` in its value percent-encoded.
fn push_member(out: &mut String, member: &[u8]) {
    // Valid members are ASCII.
    let Ok(member) = std::str::from_utf8(member) else {
        return;
    };
    let (pair, props) = member.split_at(member.find(';').unwrap_or(member.len()));
    let (key, value) = pair.split_at(pair.find('=').unwrap_or(pair.len()));
    out.push_str(key);
    out.push('=');
    // The SDK's BaggagePropagator keeps a value only up to its second `=`; encoded, the
    // value decodes back whole.
    out.push_str(&value.get(1..).unwrap_or_default().replace('=', "%3D"));
    out.push_str(props);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combined(fields: &[&str]) -> Option<String> {
        combine(|| fields.iter().map(|f| f.as_bytes())).map(Cow::into_owned)
    }

    #[test]
    fn one_clean_field_is_borrowed() {
        let field = "tenant=acme, region = eu;prop=1;flag";
        assert!(matches!(
            combine(|| std::iter::once(field.as_bytes())),
            Some(Cow::Borrowed(f)) if f == field
        ));
    }

    #[test]
    fn several_fields_are_combined_in_order() {
        assert_eq!(
            combined(&["userId=alice", "serverNode=DF%2028,isProduction=false"]).as_deref(),
            Some("userId=alice,serverNode=DF%2028,isProduction=false")
        );
        assert_eq!(
            combined(&[
                "userId =   alice",
                "serverNode = DF%2028, isProduction = false"
            ])
            .as_deref(),
            Some("userId =   alice,serverNode = DF%2028,isProduction = false")
        );
        assert_eq!(combined(&["", "a=1", ""]).as_deref(), Some("a=1"));
    }

    #[test]
    fn invalid_members_go_alone() {
        assert_eq!(
            combined(&["a=1,novalue,=v,b c=2,c=\"q\",d=x\\y,e=2;;,f=3"]).as_deref(),
            Some("a=1,f=3")
        );
        assert_eq!(combined(&["novalue", "=v"]), None);
        assert_eq!(combined(&["k=v\u{e9}", "ok=1"]).as_deref(), Some("ok=1"));
        // An empty value is valid.
        assert_eq!(combined(&["a=,b=2"]).as_deref(), Some("a=,b=2"));
    }

    #[test]
    fn equals_signs_in_values_survive_the_sdk() {
        assert_eq!(
            combined(&["token=abc==;p=q=r"]).as_deref(),
            Some("token=abc%3D%3D;p=q=r")
        );
    }

    #[test]
    fn limits_drop_whole_members_from_the_end() {
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let kept =
            combined(&[many[..40].join(",").as_str(), many[40..].join(",").as_str()]).unwrap();
        assert_eq!(kept, many[..64].join(","));

        let big = |c: char| format!("{c}={}", "v".repeat(3000));
        let kept = combined(&[&big('a'), &big('b'), &big('c'), "d=1"]).unwrap();
        assert_eq!(kept, format!("{},{}", big('a'), big('b')));
        assert!(kept.len() <= MAX_BAGGAGE_BYTES);

        // Exactly 8192 bytes and 64 members pass whole.
        let mut members: Vec<String> = (0..63).map(|i| format!("k{i:02}=v")).collect();
        let used = members.iter().map(String::len).sum::<usize>() + 63;
        members.push(format!("z={}", "v".repeat(MAX_BAGGAGE_BYTES - used - 2)));
        let list = members.join(",");
        assert_eq!(list.len(), MAX_BAGGAGE_BYTES);
        assert_eq!(combined(&[&list]).as_deref(), Some(list.as_str()));
    }

    /// An independent model of the W3C Baggage grammar, character sets spelled out: the list
    /// the fields form joined with commas, OWS trimmed, members that do not follow
    /// `key OWS "=" OWS value *( OWS ";" OWS property )` dropped, at most 64 members.
    mod model {
        const TOKEN: &str =
            "!#$%&'*+-.^_`|~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

        fn ows(s: &str) -> &str {
            s.trim_matches(|c| c == ' ' || c == '\t')
        }

        fn key(k: &str) -> bool {
            let k = ows(k);
            !k.is_empty() && k.chars().all(|c| TOKEN.contains(c))
        }

        fn value(v: &str) -> bool {
            let octet = |c: char| ('!'..='~').contains(&c) && !"\",;\\".contains(c);
            ows(v).chars().all(octet)
        }

        fn member(m: &str) -> bool {
            let mut parts = m.split(';');
            let first = parts.next().unwrap_or_default();
            let pair = |p: &str| p.split_once('=').is_some_and(|(k, v)| key(k) && value(v));
            pair(first) && parts.all(|p| pair(p) || (!p.contains('=') && key(p)))
        }

        pub(super) fn members(fields: &[String]) -> Vec<String> {
            let joined = fields.join(",");
            joined
                .split(',')
                .map(ows)
                .filter(|m| !m.is_empty() && member(m))
                .take(64)
                .map(str::to_owned)
                .collect()
        }
    }

    use proptest::prelude::*;

    fn member() -> impl Strategy<Value = String> {
        let valid = (
            "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,5}",
            "[ \\t]?",
            "[\\x21\\x23-\\x2b\\x2d-\\x3a\\x3c-\\x5b\\x5d-\\x7e]{0,6}",
            proptest::collection::vec("[a-z]{1,3}(=[a-z%=]{0,3})?", 0..3),
        )
            .prop_map(|(k, s, v, props)| {
                let props: String = props.iter().map(|p| format!(";{p}")).collect();
                format!("{k}{s}={s}{v}{props}")
            });
        let any = "[a-zA-Z0-9=;\" \\\\]{0,8}";
        let member = prop_oneof![4 => valid, 1 => any];
        ("[ \\t]{0,2}", member, "[ \\t]{0,2}").prop_map(|(a, m, b)| format!("{a}{m}{b}"))
    }

    fn fields() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(proptest::collection::vec(member(), 0..30), 0..4)
            .prop_map(|fs| fs.into_iter().map(|f| f.join(",")).collect())
    }

    proptest! {
        #[test]
        fn members_agree_with_the_model(fields in fields()) {
            let ours: Vec<String> = members(fields.iter().map(|f| f.as_bytes()))
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect();
            prop_assert_eq!(ours, model::members(&fields), "{:?}", fields);
        }

        #[test]
        fn the_combined_list_holds_the_model_members(fields in fields()) {
            let expected = model::members(&fields);
            let got = combined(&fields.iter().map(String::as_str).collect::<Vec<_>>());
            let got: Vec<String> = got
                .map(|g| g.split(',').map(|m| model_ows(m).to_owned()).collect())
                .unwrap_or_default();
            let expected: Vec<String> = expected.iter().map(|m| encode_value_eq(m)).collect();
            prop_assert_eq!(got, expected, "{:?}", fields);
        }
    }

    fn model_ows(s: &str) -> &str {
        s.trim_matches(|c| c == ' ' || c == '\t')
    }

    /// `=` in a member's value as `%3D`, as the list handed to the SDK carries it.
    fn encode_value_eq(member: &str) -> String {
        let (pair, props) = member.split_at(member.find(';').unwrap_or(member.len()));
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        format!("{key}={}{props}", value.replace('=', "%3D"))
    }
}
