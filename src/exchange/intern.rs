//! A process-wide, bounded string interner: `'static` route templates and span names.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// Strings the whole process interns, at most.
const MAX_INTERNED: usize = 4096;
/// Bytes the whole process interns, at most.
const MAX_INTERNED_BYTES: usize = 256 * 1024;

struct Interner {
    set: HashSet<&'static str>,
    bytes: usize,
}

static INTERNER: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        set: HashSet::new(),
        bytes: 0,
    })
});

/// A `'static` copy of `s`, shared process-wide, or `None` once the interner is full.
///
/// Span names must be `Cow<'static, str>`; interning route templates (a finite set written in
/// the application's code) makes every later span name and `http.route` value free. The
/// leak is bounded by [`MAX_INTERNED`] strings and [`MAX_INTERNED_BYTES`]; past it callers
/// fall back to owned strings. Only called when a route is first seen, never per request.
pub(crate) fn intern(s: &str) -> Option<&'static str> {
    let mut i = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&found) = i.set.get(s) {
        return Some(found);
    }
    if i.set.len() >= MAX_INTERNED || i.bytes + s.len() > MAX_INTERNED_BYTES {
        return None;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    i.bytes += s.len();
    i.set.insert(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_shared() {
        let a = intern("/intern/test/{id}").unwrap();
        let b = intern(&String::from("/intern/test/{id}")).unwrap();
        assert!(std::ptr::eq(a, b));
    }
}
