//! Magnetic-stripe track data, removed whole wherever it appears.

/// Track 1 (`%B<pan>^...?`) or track 2 (`;<pan>=...?`) data starting at `i`: its end.
pub(super) fn track_at(bytes: &[u8], i: usize) -> Option<usize> {
    let (pan_start, separator) = match bytes.get(i..i + 2)? {
        [b'%', b'B'] => (i + 2, b'^'),
        [b';', d] if d.is_ascii_digit() => (i + 1, b'='),
        _ => return None,
    };
    let digits = bytes[pan_start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(13..=19).contains(&digits) || bytes.get(pan_start + digits) != Some(&separator) {
        return None;
    }
    let rest = pan_start + digits;
    // Up to and including the end sentinel, or a bounded length when it is missing, and then
    // to the end of a digit run it would cut: the card scan reads a run from its start only.
    let end = bytes[rest..]
        .iter()
        .position(|&b| b == b'?')
        .map_or((rest + 80).min(bytes.len()), |p| rest + p + 1);
    let digits_after = bytes[end..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let end = end
        + if bytes[end - 1].is_ascii_digit() {
            digits_after
        } else {
            0
        };
    let end = (end..=bytes.len()).find(|&e| e == bytes.len() || (bytes[e] & 0xC0) != 0x80)?;
    Some(end)
}
