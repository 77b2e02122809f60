//! Small text helpers shared across the crate, one of each: lower-hex ids, UTF-8-safe
//! truncation, percent escapes.

/// Lower-hex encode `bytes` into `out` (which must be twice as long), as W3C trace context
/// writes ids.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    // A digit pair per byte from a table: no per-digit bounds checks or arithmetic.
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
    }
}

/// The two lower-hex digits of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    table
};

/// `s` cut to at most `max` bytes, on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The value of lower-case hex digits, at most 32 (`None` for any other byte): what the SDK's
/// `from_hex` does through `from_str_radix`, at a fraction of its cost on the request path.
pub(crate) fn parse_hex(digits: &[u8]) -> Option<u128> {
    if digits.len() > 32 {
        return None;
    }
    digits.iter().try_fold(0u128, |acc, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(digit))
    })
}

/// The byte a percent escape `%XX` at `i` of `bytes` stands for.
pub(crate) fn percent_escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    match bytes.get(i..i + 3)? {
        [b'%', hi, lo] => {
            let hi = char::from(*hi).to_digit(16)?;
            let lo = char::from(*lo).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parses_as_the_standard_library_does() {
        for digits in [
            "0",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            "ff",
            "",
        ] {
            let expected = u128::from_str_radix(digits, 16).ok();
            assert_eq!(
                parse_hex(digits.as_bytes()),
                expected.or(Some(0).filter(|_| digits.is_empty()))
            );
        }
        for bad in ["4G", "AB", "-1", " 1", "ffffffffffffffffffffffffffffffff0"] {
            assert_eq!(parse_hex(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn hex_is_lower_case_and_bounded() {
        let mut buf = [0u8; 4];
        hex_into(&[0x4b, 0xf9], &mut buf);
        assert_eq!(&buf, b"4bf9");
        for b in 0..=255u8 {
            let mut pair = [0u8; 2];
            hex_into(&[b], &mut pair);
            assert_eq!(std::str::from_utf8(&pair).unwrap(), format!("{b:02x}"));
        }
    }

    #[test]
    fn truncation_keeps_whole_chars() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn percent_escapes() {
        assert_eq!(percent_escape_at(b"a%20", 1), Some(b' '));
        assert_eq!(percent_escape_at(b"%e8", 0), Some(0xe8));
        assert_eq!(percent_escape_at(b"%2", 0), None);
        assert_eq!(percent_escape_at(b"%zz", 0), None);
        assert_eq!(percent_escape_at(b"x20", 0), None);
    }
}
