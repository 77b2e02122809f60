//! Unit tests of the redaction policy, its scans and its decoder.

use super::card::*;
use super::decode::*;
use super::*;
use proptest::prelude::*;

fn r() -> Redactor {
    Redactor::default()
}

#[test]
fn sensitive_names() {
    let yes = [
        "card",
        "CARD_NUMBER",
        "cardNo",
        "cardno",
        "card-number",
        "pan",
        "cvv",
        "CVV2",
        "cvc",
        "cid",
        "pin",
        "track2",
        "track",
        "expiry",
        "sign",
        "signature",
        "paySign",
        "paysign",
        "sign_type",
        "token",
        "access_token",
        "accessToken",
        "refresh-token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "api_key",
        "apiKey",
        "x-api-key",
        "apikey",
        "authorization",
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "session_id",
        "credentials",
        "otp",
        "iban",
    ];
    for name in yes {
        assert!(r().is_sensitive_name(name), "{name} must be sensitive");
    }
    let no = [
        "order_id",
        "amount",
        "currency",
        "design",
        "assign",
        "designer",
        "keyboard",
        "monkey",
        "panel",
        "company",
        "pinned_at",
        "user_agent",
        "status",
        "",
        "_",
        "route",
        "http.route",
    ];
    for name in no {
        assert!(!r().is_sensitive_name(name), "{name} must not be sensitive");
    }
}

/// Found by fuzzing (fuzz target `redact`): an escape before a card number (`%41` is `A`) hid
/// the number from the decoded reading, and the text as written was not read.
#[test]
fn an_escape_glued_to_a_card_number_does_not_hide_it() {
    for text in [
        "%4111111111111111",
        "x\\u00414111111111111111 y",
        "%%B411111111112544+y {\"c111111111111`11cvv11111",
    ] {
        for out in [r().mask_pan(text), r().redact_text(text)] {
            assert!(
                !out.contains("4111111111111111") && !out.contains("411111111112544"),
                "{text:?} -> {out:?}"
            );
        }
    }
}

#[test]
fn pans_are_masked_in_one_format() {
    let cases = [
        ("4111111111111111", "411111******1111"),
        ("4111 1111 1111 1111", "411111******1111"),
        ("4111-1111-1111-1111", "411111******1111"),
        ("pay 5500005555555559 now", "pay 550000******5559 now"),
        ("amex 378282246310005.", "amex 378282*****0005."),
        (
            "19 digits 4000000000000000006",
            "19 digits 400000*********0006",
        ),
        (
            "a=4111111111111111&b=5500005555555559",
            "a=411111******1111&b=550000******5559",
        ),
        (
            "订单 4111111111111111 已支付",
            "订单 411111******1111 已支付",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r().mask_pan(input), want, "{input}");
    }
}

/// Found by fuzzing (fuzz target `redact`): a masked card lost the separator before the next
/// group, so the 4 digits it kept joined that group into a new run, here a valid card number
/// the text had elsewhere.
#[test]
fn separators_beside_a_masked_card_stay() {
    let cases = [
        ("4111 1111 1111 1111 2025", "411111******1111 2025"),
        ("7 4111 1111 1111 1111", "7 411111******1111"),
        (
            "4111 1111 1111 1111 5169 2369 6920 4326",
            "411111******1111 516923******4326",
        ),
        (
            "111111111111145500 00000000000004",
            "111111********5500 00000000000004",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r().mask_pan(input), want, "{input}");
    }
}

/// Found by fuzzing (fuzz target `redact`): track data without its end sentinel ended inside a
/// digit run, and the run's rest, a card number, was never scanned.
#[test]
fn track_data_never_ends_inside_a_digit_run() {
    let pad = "0".repeat(70);
    let text = format!(";4111111111111111=2512{pad}4111111111111111 after");
    let out = r().mask_pan(&text);
    assert_eq!(out, "[REDACTED-TRACK] after");
    // The bounded end falls right before the `x`: what follows is scanned as usual.
    let text = format!(";4111111111111111=2512{}x4111111111111111", "0".repeat(75));
    assert_eq!(r().mask_pan(&text), "[REDACTED-TRACK]x411111******1111");
}

#[test]
fn other_digit_runs_are_untouched() {
    for input in [
        "order 1234567890123",       // 13 digits, not Luhn-valid
        "ts 1700000000000000000000", // 22 digits: too long
        "411111111111",              // 12 digits
        "41111111111111111111",      // 20 digits, even if a prefix is valid
        "2026-11-22 12:00:00",
        "phone +1 555 0100",
        "",
    ] {
        assert!(matches!(r().mask_pan(input), Cow::Borrowed(_)), "{input}");
    }
}

#[test]
fn digit_runs_are_read_as_the_card_scan_reads_them() {
    // 13 digits with single separators between them: a run the card scan reads.
    assert!(may_hold_card(b"x 4111 1111 1111 1 y"));
    assert!(may_hold_card(b"5500-0000-0000-0"));
    assert!(may_hold_card(b"ab;cd") && may_hold_card(b"50%"));
    // Two separators in a row or a letter end the run.
    assert!(!may_hold_card(b"4111  1111 1111 1111"));
    assert!(!may_hold_card(b"411111a1111111"));
    // A generated request id: hex digits and letters, with no stretch of 13 digits and
    // separators for the exact scan to read.
    let request_id = b"4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
    assert!(!may_hold_card(request_id) && !has_long_stretch(request_id));
    assert!(has_long_stretch(b"x 4111 1111 1111 1 y"));
    assert!(!may_hold_card(b"2026-11-22 12:00:00"));
}

#[test]
fn card_numbers_behind_encodings_are_masked_in_the_original() {
    let cases = [
        ("/pay/4111%201111%201111%201111", "/pay/411111******1111"),
        ("/pay/5169%202369%206920%204326", "/pay/516923******4326"),
        (
            "card%204111111111111111%20now",
            "card%20411111******1111%20now",
        ),
        ("%224111111111111111%22", "%22411111******1111%22"),
        ("4111%2D1111%2d1111%2D1111", "411111******1111"),
        ("x%254111111111111111", "x%25411111******1111"),
        ("4111%25201111%25201111%25201111", "411111******1111"),
        ("%E84111111111111111", "%E8411111******1111"),
        ("%34111111111111111", "411111******1111"),
        (
            r"n \u00224111\u00201111\u00201111\u00201111",
            r"n \u0022411111******1111",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(r().mask_pan(input), want, "{input}");
        assert_eq!(r().redact_text(input), want, "{input}");
    }
}

#[test]
fn queries_are_read_decoded() {
    let cases = [
        (
            "q=card%204111111111111111%20now",
            "q=card%20411111******1111%20now",
        ),
        ("q=card+4111111111111111+now", "q=card+411111******1111+now"),
        (
            "data=%7B%22card%22%3A%224111111111111111%22%7D",
            "data=%7B%22card%22%3A%22REDACTED%22%7D",
        ),
        (
            "data=%7B%22password%22%3A%22hunter2%22%7D",
            "data=%7B%22password%22%3A%22REDACTED%22%7D",
        ),
        (
            "pan=4111111111111111&note=card%204111111111111111",
            "pan=REDACTED&note=card%20411111******1111",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(r().redact_query(q), want, "{q}");
    }
}

#[test]
fn escaped_json_pairs_are_read_decoded() {
    assert_eq!(
        r().redact_text(r#"body {\"password\":\"hunter2\"}"#),
        r#"body {\"password\":\"REDACTED\"}"#
    );
    // A lone backslash or percent sign is text, not an escape.
    for text in [r"C:\users\bob", "100% sure", "50%2", r"\u12"] {
        assert!(matches!(r().redact_text(text), Cow::Borrowed(_)), "{text}");
    }
}

#[test]
fn own_ids_are_spared_and_nothing_else() {
    // A span id whose digits hold a Luhn-valid run of 16.
    let span = [0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11];
    let trace = [0xab; 16];
    let ids = OwnIds::new(trace, span);
    let span_hex = "4111111111111111";
    let request_id = format!("{}-{span_hex}", "ab".repeat(16));
    for own in [span_hex, request_id.as_str()] {
        assert_ne!(r().redact_text(own), own, "the plain scan masks {own}");
        assert_eq!(r().redact_text_sparing(own, Some(&ids)), own);
    }
    // Another value, or the same id inside free text, is still masked.
    let other = OwnIds::new(trace, [0; 8]);
    assert_ne!(r().redact_text_sparing(span_hex, Some(&other)), span_hex);
    let text = format!("card {span_hex}");
    assert_ne!(r().redact_text_sparing(&text, Some(&ids)), text);
    assert_ne!(r().redact_text_sparing(span_hex, None), span_hex);
}

#[test]
fn a_million_generated_ids_are_never_masked() {
    // xorshift64*: ids as random as the SDK's, without a dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let (mut masked, mut luhn_runs) = (0, 0);
    for _ in 0..1_000_000 {
        let trace = (u128::from(next()) << 64 | u128::from(next())).to_be_bytes();
        let span = next().to_be_bytes();
        let ids = OwnIds::new(trace, span);
        let mut text = [b'-'; 49];
        crate::util::hex_into(&trace, &mut text[..32]);
        crate::util::hex_into(&span, &mut text[33..]);
        let request_id = std::str::from_utf8(&text).unwrap();
        for id in [&request_id[..32], &request_id[33..], request_id] {
            if matches!(r().redact_text(id), Cow::Owned(_)) {
                luhn_runs += 1;
            }
            if r().redact_text_sparing(id, Some(&ids)) != id {
                masked += 1;
            }
        }
    }
    assert_eq!(masked, 0);
    // Without the exemption some would be: the test reads ids that matter.
    assert!(luhn_runs > 100, "{luhn_runs}");
}

#[test]
fn track_data_is_removed_whole() {
    assert_eq!(
        r().mask_pan("x %B4111111111111111^DOE/JOHN^25121010000?y"),
        "x [REDACTED-TRACK]y"
    );
    assert_eq!(
        r().mask_pan(";4111111111111111=25121010000? tail"),
        "[REDACTED-TRACK] tail"
    );
}

#[test]
fn masking_can_be_turned_off() {
    let r = Redactor::default().with_pan_masking(false);
    assert_eq!(r.mask_pan("4111111111111111"), "4111111111111111");
}

#[test]
fn queries() {
    let cases = [
        ("a=1&b=2", "a=1&b=2"),
        ("card_number=4111111111111111", "card_number=REDACTED"),
        ("note=4111111111111111&x=1", "note=411111******1111&x=1"),
        (
            "sign=abc&token=t&password=&ok",
            "sign=REDACTED&token=REDACTED&password=&ok",
        ),
        ("&&cvv=1&", "&&cvv=REDACTED&"),
        ("card+number=1", "card+number=REDACTED"),
    ];
    for (q, want) in cases {
        assert_eq!(r().redact_query(q), want, "{q}");
    }
}

#[test]
fn headers() {
    for h in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-signature",
    ] {
        assert!(r().is_sensitive_header(&HeaderName::from_static(h)), "{h}");
    }
    assert!(!r().is_sensitive_header(&HeaderName::from_static("x-request-id")));
}

#[test]
fn field_names_are_cached_per_policy() {
    let default = Redactor::default();
    let custom = Redactor::default().with_sensitive_words(["order"]);
    for _ in 0..2 {
        assert!(default.is_sensitive_field("cvv"));
        assert!(!default.is_sensitive_field("order_id"));
        // Same static name, other policy: its own answer, not the cached one.
        assert!(custom.is_sensitive_field("order_id"));
        assert!(!custom.is_sensitive_field("cvv"));
    }
}

fn with_check_digit(body: &[u8]) -> Vec<u8> {
    (b'0'..=b'9')
        .map(|c| {
            let mut v = body.to_vec();
            v.push(c);
            v
        })
        .find(|v| luhn(v))
        .unwrap()
}

/// `text`, or `inner` between two copies of it.
fn around(text: String, inner: Option<&str>) -> String {
    match inner {
        Some(inner) => format!("{text}{inner}{text}"),
        None => text,
    }
}

proptest! {
    #[test]
    fn the_fast_path_only_skips_text_the_full_scan_leaves_alone(
        text in "[0-9 +\\-a-f%;B^=?]{0,60}",
        card in proptest::option::of(prop_oneof![
            Just("4222222222222"),
            Just("4111111111111111"),
            Just("4111 1111 1111 1111"),
            Just("5500-0000-0000-0004"),
            Just(";4111111111111111=2512?"),
        ]),
    ) {
        let text = around(text, card);
        prop_assert!(
            may_hold_card(text.as_bytes()) || matches!(mask_cards(&text), Cow::Borrowed(_)),
            "the fast path would leave {text:?} unmasked"
        );
    }

    #[test]
    fn the_census_shortcuts_agree_with_the_full_scans(
        text in "[0-9 +\\-a-zA-Z%;=:\"_]{0,60}",
        card in proptest::option::of(prop_oneof![
            Just("4111111111111111"),
            Just("4111 1111 1111 1111"),
            Just("password=hunter2"),
            Just("token: abc"),
        ]),
    ) {
        let text = around(text, card);
        let r = Redactor::default();
        // Both full scans, no census in front of either.
        let full = r.redact_pairs(&mask_cards(&text)).into_owned();
        prop_assert_eq!(&r.redact_text(&text), &full);
        prop_assert!(
            {
                let c = Census::of(text.as_bytes());
                c.pair_separator || !c.cannot_hold_card() || full == text
            },
            "the shortcut would leave {text:?} as is, the scans give {full:?}"
        );
    }

    #[test]
    fn free_text_redaction_never_panics_and_hides_the_value(
        prefix in ".{0,20}",
        name in prop_oneof![Just("password"), Just("api_key"), Just("cvv"), Just("token")],
        separator in prop_oneof![Just("="), Just(": "), Just("\":\"")],
        secret in "[a-zA-Z0-9]{6,20}",
        suffix in ".{0,20}",
    ) {
        let r = Redactor::default();
        let text = format!("{prefix} {name}{separator}{secret} {suffix}");
        let redacted = r.redact_text(&text);
        prop_assert!(!redacted.contains(&format!("{name}{separator}{secret}")), "{redacted}");
    }

    #[test]
    fn encoded_pans_never_survive(
        prefix in "[a-z ]{0,12}",
        body in proptest::collection::vec(b'0'..=b'9', 12..=18),
        form in 0usize..6,
        suffix in "[a-z ]{0,12}",
    ) {
        let pan = String::from_utf8(with_check_digit(&body)).unwrap();
        let grouped = |sep: &str| {
            pan.as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(sep)
        };
        let written = match form {
            0 => format!("%20{}%20", grouped("%20")),
            1 => format!("+{}+", grouped("+")),
            2 => format!("%22{}%22", grouped("-")),
            3 => format!("\\u0022{}\\u0022", grouped("\\u0020")),
            4 => pan.bytes().map(|b| format!("%{b:02X}")).collect(),
            _ => format!("%2520{}", grouped("%2520")),
        };
        let text = format!("{prefix}{written}{suffix}");
        for out in [r().redact_text(&text), r().mask_pan(&text), r().redact_query(&format!("q={text}"))] {
            let decoded = Decoded::of(&out, DECODE_DEPTH);
            let digits: String = decoded.text(&out).chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!digits.contains(&pan), "{text} -> {out}");
        }
    }

    #[test]
    fn masking_is_idempotent(text in "[0-9 +\\-a-z%;=:\"\\\\uB^?]{0,60}") {
        let once = r().redact_text(&text).into_owned();
        prop_assert_eq!(r().redact_text(&once), once.clone());
    }

    #[test]
    fn ids_and_timestamps_the_layer_writes_are_untouched(
        trace in any::<[u8; 16]>(),
        span in any::<[u8; 8]>(),
        nanos in 0u64..4_102_444_800_000_000_000,
    ) {
        let ids = OwnIds::new(trace, span);
        let mut t = [0u8; 32];
        let mut s = [0u8; 16];
        crate::util::hex_into(&trace, &mut t);
        crate::util::hex_into(&span, &mut s);
        let (t, s) = (std::str::from_utf8(&t).unwrap(), std::str::from_utf8(&s).unwrap());
        let request_id = format!("{t}-{s}");
        for id in [t, s, request_id.as_str()] {
            prop_assert_eq!(r().redact_text_sparing(id, Some(&ids)), id);
        }
        let secs = nanos / 1_000_000_000;
        let stamp = format!("2026-12-06T21:38:{:02}.{:09}Z", secs % 60, nanos % 1_000_000_000);
        prop_assert_eq!(r().redact_text(&stamp), stamp.as_str());
    }

    #[test]
    fn never_panics(text in ".*") {
        let _ = Redactor::default().redact_text(&text);
        let _ = r().mask_pan(&text);
        let _ = r().redact_query(&text);
        let _ = r().is_sensitive_name(&text);
    }

    #[test]
    fn embedded_pans_never_survive(
        prefix in "[a-z ]{0,20}( [0-9]{1,3} )?",
        body in proptest::collection::vec(b'0'..=b'9', 12..=18),
        suffix in "[a-z ]{0,20}",
    ) {
        let pan = String::from_utf8(with_check_digit(&body)).unwrap();
        let text = format!("{prefix}{pan}{suffix}");
        let masked = r().mask_pan(&text);
        prop_assert!(!masked.contains(&pan), "{masked}");
        // Overlapping candidates (a stray number before the card) may hide more, never less.
        if !prefix.bytes().any(|b| b.is_ascii_digit()) {
            prop_assert!(masked.contains(&pan[..6]) && masked.contains(&pan[pan.len() - 4..]));
        }
    }
}
