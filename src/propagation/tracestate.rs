//! `tracestate` as W3C Trace Context Level 2 defines it: several header fields read as one
//! list (joined with commas, in order), the current key grammar, at most 32 members, duplicate
//! keys reduced to their first (leftmost) member, and a list too long to propagate truncated by
//! whole entries. An invalid list is discarded whole (the W3C test suite expects it); a
//! request never fails because of it.

use opentelemetry::trace::{SpanContext, TraceId, TraceState};

use super::{MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS};

/// Longest key and longest value (W3C).
const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 256;
/// Entries longer than this are removed first when a list is truncated (W3C).
const LONG_ENTRY: usize = 128;
/// All fields together longer than this are not read: 32 valid members with generous
/// whitespace stay far below it.
const MAX_INPUT: usize = 32 * 1024;

/// A list member: key and value.
pub(super) type Member<'a> = (&'a str, &'a str);

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, keychar `a-z 0-9 _ - * / @`.
pub(super) fn valid_key(key: &[u8]) -> bool {
    let lower_or_digit = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    key.len() <= MAX_KEY
        && key.first().is_some_and(lower_or_digit)
        && key
            .iter()
            .all(|c| lower_or_digit(c) || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@'))
}

/// 1 to 256 printable ASCII characters but `,` and `=`, not ending in a space.
fn valid_value(v: &[u8]) -> bool {
    (1..=MAX_VALUE).contains(&v.len())
        && v.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && v.last() != Some(&b' ')
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One comma-separated piece: `Ok(None)` when empty (allowed), `Err` when invalid.
fn member(piece: &[u8]) -> Result<Option<Member<'_>>, ()> {
    let piece = trim_ows(piece);
    if piece.is_empty() {
        return Ok(None);
    }
    let eq = piece.iter().position(|&b| b == b'=').ok_or(())?;
    let (key, value) = (&piece[..eq], &piece[eq + 1..]);
    if !valid_key(key) || !valid_value(value) {
        return Err(());
    }
    // Both are ASCII now, so neither conversion fails.
    match (std::str::from_utf8(key), std::str::from_utf8(value)) {
        (Ok(k), Ok(v)) => Ok(Some((k, v))),
        _ => Err(()),
    }
}

/// Calls `f` with each member of the list `fields` form together, in order. `false` (after
/// stopping) when the list is invalid: an invalid member, over 32 members, or oversized input.
pub(super) fn for_each<'a, I>(fields: I, mut f: impl FnMut(Member<'a>)) -> bool
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let (mut bytes, mut members) = (0usize, 0usize);
    for field in fields {
        bytes = bytes.saturating_add(field.len() + 1);
        if bytes > MAX_INPUT {
            return false;
        }
        for piece in field.split(|&b| b == b',') {
            match member(piece) {
                Err(()) => return false,
                Ok(None) => {}
                Ok(Some(m)) => {
                    members += 1;
                    if members > MAX_TRACESTATE_MEMBERS {
                        return false;
                    }
                    f(m);
                }
            }
        }
    }
    true
}

/// The members of the list `fields` form, duplicates reduced to the first and truncated to
/// [`MAX_TRACESTATE_BYTES`]; `None` when the list is invalid.
pub(super) fn parse<'a, I>(fields: I) -> Option<Vec<Member<'a>>>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out: Vec<Member<'a>> = Vec::new();
    let valid = for_each(fields, |m| {
        // The specification lets a vendor drop duplicate keys it did not write.
        if !out.iter().any(|(k, _)| *k == m.0) {
            out.push(m);
        }
    });
    valid.then(|| {
        truncate(&mut out);
        out
    })
}

fn entry_len((k, v): &Member<'_>) -> usize {
    k.len() + 1 + v.len()
}

fn list_len(members: &[Member<'_>]) -> usize {
    members.iter().map(entry_len).sum::<usize>() + members.len().saturating_sub(1)
}

/// Whole entries removed until the list fits: those over 128 characters first, then from the
/// end (W3C "tracestate Limits").
fn truncate(members: &mut Vec<Member<'_>>) {
    while list_len(members) > MAX_TRACESTATE_BYTES {
        match members.iter().rposition(|m| entry_len(m) > LONG_ENTRY) {
            Some(i) => {
                members.remove(i);
            }
            None => {
                members.pop();
            }
        }
    }
}

/// The received list, kept beside the span context when the SDK's `TraceState` cannot hold
/// all of it, so that injection sends it on whole.
#[derive(Debug)]
pub(super) struct Received {
    trace_id: TraceId,
    /// Key, value, and whether the SDK's `TraceState` holds the member.
    members: Vec<(String, String, bool)>,
}

/// The SDK's `TraceState` of `members`, and the whole list when that state cannot hold it.
pub(super) fn to_sdk(trace_id: TraceId, members: &[Member<'_>]) -> (TraceState, Option<Received>) {
    if let Ok(state) = TraceState::from_key_value(members.iter().copied()) {
        return (state, None);
    }
    // opentelemetry 0.33's TraceState refuses valid keys (two `@`, 14+ characters after one):
    // it holds the others, the rest travel in `Received`.
    let held = |(k, v): &Member<'_>| TraceState::NONE.insert(*k, *v).is_ok();
    let state =
        TraceState::from_key_value(members.iter().copied().filter(held)).unwrap_or_default();
    let members = members
        .iter()
        .map(|m| (m.0.to_owned(), m.1.to_owned(), held(m)))
        .collect();
    (state, Some(Received { trace_id, members }))
}

/// The outgoing `tracestate` of `sc`: its `TraceState`, merged with the received list when
/// the SDK could not hold all of it (members the span's state changed or added first, then
/// the received ones in their order, those it deleted left out), at most 32 members.
pub(super) fn header(sc: &SpanContext, received: Option<&Received>) -> String {
    let state = sc.trace_state();
    let Some(received) = received.filter(|r| r.trace_id == sc.trace_id()) else {
        return state.header();
    };
    let was_received = |k: &str, v: &str| received.members.iter().any(|m| m.0 == k && m.1 == v);
    let changed = state.into_iter().filter(|(k, v)| !was_received(k, v));
    let kept = received
        .members
        .iter()
        .filter(|(k, v, held)| !held || state.get(k) == Some(v.as_str()))
        .map(|(k, v, _)| (k.as_str(), v.as_str()));
    let mut out = String::new();
    for (i, (k, v)) in changed.chain(kept).take(MAX_TRACESTATE_MEMBERS).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(fields: &[&str]) -> Option<Vec<(String, String)>> {
        parse(fields.iter().map(|f| f.as_bytes())).map(|ms| {
            ms.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
    }

    fn keys(fields: &[&str]) -> Option<String> {
        list(fields).map(|ms| {
            ms.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    #[test]
    fn several_fields_form_one_list_in_order() {
        assert_eq!(
            keys(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]).as_deref(),
            Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
        );
        assert_eq!(keys(&["foo=1", ""]).as_deref(), Some("foo=1"));
        assert_eq!(keys(&["", "foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(keys(&[""]).as_deref(), Some(""));
        assert_eq!(
            keys(&[" foo=1 \t , \t bar=2", "\t baz=3 \t"]).as_deref(),
            Some("foo=1,bar=2,baz=3")
        );
    }

    #[test]
    fn thirty_two_members_over_four_fields_pass_thirty_three_do_not() {
        let fields = |n: usize| -> Vec<String> {
            let all: Vec<String> = (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect();
            all.chunks(10).map(|c| c.join(",")).collect()
        };
        let f32 = fields(32);
        let f32: Vec<&str> = f32.iter().map(String::as_str).collect();
        assert_eq!(f32.len(), 4);
        assert_eq!(list(&f32).map(|l| l.len()), Some(32));
        let f33 = fields(33);
        let f33: Vec<&str> = f33.iter().map(String::as_str).collect();
        assert_eq!(list(&f33), None);
    }

    #[test]
    fn duplicate_keys_keep_the_first() {
        assert_eq!(keys(&["foo=1,foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(keys(&["foo=1,foo=2"]).as_deref(), Some("foo=1"));
        assert_eq!(keys(&["foo=1", "foo=2"]).as_deref(), Some("foo=1"));
        // Duplicates still count towards the 32 members of the list received.
        let dup: Vec<String> = (0..33).map(|_| "foo=1".to_owned()).collect();
        assert_eq!(list(&[dup.join(",").as_str()]), None);
    }

    #[test]
    fn the_current_key_grammar() {
        let ok = [
            "foo@",
            "foo@@bar",
            "a@b@c",
            "0-_*/@",
            &"z".repeat(256),
            &format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            &format!("{}@v", "t".repeat(242)),
            &format!("t@{}", "v".repeat(15)),
        ];
        for key in ok {
            assert!(valid_key(key.as_bytes()), "{key}");
            assert!(list(&["foo=1", &format!("{key}=1")]).is_some(), "{key}");
        }
        let bad = [
            "@foo",
            "",
            "Foo",
            "foo ",
            "foo.bar",
            "_a",
            "*",
            &"z".repeat(257),
        ];
        for key in bad {
            assert!(!valid_key(key.as_bytes()), "{key}");
            assert_eq!(list(&["foo=1", &format!("{key}=1")]), None, "{key}");
        }
        assert_eq!(keys(&["foo@=1,bar=2"]).as_deref(), Some("foo@=1,bar=2"));
        assert_eq!(list(&["@foo=1,bar=2"]), None);
    }

    #[test]
    fn invalid_values_discard_the_list() {
        for bad in [
            "foo=bar=baz",
            "foo=,bar=3",
            "foo",
            "foo=a\x7f",
            "foo=\u{e9}",
        ] {
            assert_eq!(list(&[bad]), None, "{bad:?}");
        }
        // Leading spaces belong to the value; trailing ones are whitespace around the member.
        assert_eq!(
            list(&["foo= a b  "]),
            Some(vec![("foo".into(), " a b".into())])
        );
        let value: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        assert!(list(&[&format!("k={value}")]).is_some());
        assert_eq!(list(&[&format!("k={}", "v".repeat(257))]), None);
    }

    #[test]
    fn oversized_lists_lose_long_entries_first_then_the_last() {
        // One short member and 31 of 357 bytes: 11,105 bytes in all.
        let long = |i: usize| format!("long{i:02}{}={}", "k".repeat(94), "x".repeat(256));
        let mut fields: Vec<String> = (0..31).map(long).collect();
        fields.insert(0, "short=1".to_owned());
        let kept = list(&[fields.join(",").as_str()]).unwrap();
        assert!(list_len(&to_refs(&kept)) <= MAX_TRACESTATE_BYTES);
        assert_eq!(kept[0].0, "short", "short entries stay");
        assert_eq!(kept.len(), 1 + 22, "7 + 22 x 358 bytes fit in 8192");
        assert!(
            kept[1].0.starts_with("long00"),
            "long entries go from the end"
        );
        assert!(kept[22].0.starts_with("long21"));

        // Entries of at most 128 characters always fit: 32 x 129 is below the limit.
        let mid = |i: usize| format!("k{i:02}={}", "m".repeat(124));
        let all: Vec<String> = (0..32).map(mid).collect();
        assert_eq!(list(&[all.join(",").as_str()]).map(|l| l.len()), Some(32));
    }

    fn to_refs(v: &[(String, String)]) -> Vec<Member<'_>> {
        v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn hostile_input_is_bounded() {
        let huge = ",".repeat(MAX_INPUT + 1);
        assert_eq!(list(&[&huge]), None);
        assert_eq!(list(&[&",".repeat(1000)]), Some(vec![]));
    }

    #[test]
    fn keys_the_sdk_refuses_travel_beside_its_state() {
        use opentelemetry::trace::{SpanId, TraceFlags};
        let id = TraceId::from_bytes([1; 16]);
        let vendor14 = format!("t@{}", "v".repeat(14));
        let members = [("foo", "1"), (vendor14.as_str(), "2"), ("bar", "3")];
        let (state, received) = to_sdk(id, &members);
        assert_eq!(state.header(), "foo=1,bar=3");
        let received = received.expect("the SDK refuses a 14-character vendor");
        let sc = |state: TraceState| {
            SpanContext::new(
                id,
                SpanId::from_bytes([2; 8]),
                TraceFlags::SAMPLED,
                false,
                state,
            )
        };
        let whole = format!("foo=1,{vendor14}=2,bar=3");
        assert_eq!(header(&sc(state.clone()), Some(&received)), whole);
        // A sampler's change goes first; a deleted member is gone; the rest keep their order.
        let changed = state.insert("ot", "th:8").unwrap().delete("bar").unwrap();
        assert_eq!(
            header(&sc(changed), Some(&received)),
            format!("ot=th:8,foo=1,{vendor14}=2")
        );
        // Another trace does not pick the list up.
        let other = SpanContext::new(
            TraceId::from_bytes([3; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        assert_eq!(header(&other, Some(&received)), "");
        // Lists the SDK holds whole need nothing beside it.
        assert!(to_sdk(id, &[("foo@", "1"), ("a", "b")]).1.is_none());
    }

    /// An independent model of the Level 2 grammar, written from the specification's ABNF
    /// with character sets spelled out: the list the fields form joined with commas, OWS
    /// trimmed, empty members skipped, at most 32 members, duplicates reduced to the first.
    mod model {
        const START: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
        const KEY_REST: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";

        fn key(k: &str) -> bool {
            let mut chars = k.chars();
            chars.next().is_some_and(|c| START.contains(c))
                && chars.all(|c| KEY_REST.contains(c))
                && k.chars().count() <= 256
        }

        fn value(v: &str) -> bool {
            let chr = |c: char| (' '..='~').contains(&c) && c != ',' && c != '=';
            !v.is_empty() && v.len() <= 256 && v.chars().all(chr) && !v.ends_with(' ')
        }

        pub(super) fn list(fields: &[String]) -> Option<Vec<(String, String)>> {
            let joined = fields.join(",");
            let mut out: Vec<(String, String)> = Vec::new();
            let mut count = 0;
            for piece in joined.split(',') {
                let piece = piece.trim_matches(|c| c == ' ' || c == '\t');
                if piece.is_empty() {
                    continue;
                }
                count += 1;
                let (k, v) = piece.split_once('=')?;
                if count > 32 || !key(k) || !value(v) {
                    return None;
                }
                if !out.iter().any(|(seen, _)| seen == k) {
                    out.push((k.to_owned(), v.to_owned()));
                }
            }
            Some(out)
        }
    }

    use proptest::prelude::*;

    /// Members that follow the grammar and members that may not, OWS around some.
    fn member() -> impl Strategy<Value = String> {
        let valid = (
            "[a-z0-9][a-z0-9_*/@-]{0,6}",
            "[\\x20-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{0,6}[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]",
        )
            .prop_map(|(k, v)| format!("{k}={v}"));
        let any = "[a-zA-Z0-9@=_ .*/-]{0,8}";
        let member = prop_oneof![30 => valid, 1 => any];
        ("[ \\t]{0,2}", member, "[ \\t]{0,2}").prop_map(|(a, m, b)| format!("{a}{m}{b}"))
    }

    fn fields() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(proptest::collection::vec(member(), 0..10), 0..5)
            .prop_map(|fs| fs.into_iter().map(|f| f.join(",")).collect())
    }

    proptest! {
        #[test]
        fn parsing_agrees_with_the_model(fields in fields()) {
            let parsed = list(&fields.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert_eq!(parsed, model::list(&fields), "{:?}", fields);
        }
    }
}
