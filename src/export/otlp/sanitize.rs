//! What every exported value goes through: attribute limits and redaction, with a cache of
//! sensitive attribute keys (keys repeat from span to span).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

use opentelemetry::trace::TraceState;
use opentelemetry::Key;
use rustc_hash::FxHashMap;

use crate::redact::{OwnIds, Redactor};
use crate::util::truncate;

/// What every exported value goes through.
#[derive(Debug, Clone)]
pub(crate) struct Sanitizer {
    value_limit: usize,
    pub(super) count_limit: usize,
    pub(super) redactor: Redactor,
    /// Sensitive-name decisions per attribute key: keys repeat from span to span
    /// (semantic-convention names), so the word splitting runs once per key, not per attribute.
    keys: RefCell<KeyCache>,
    /// The ids of the span or log record being written: values equal to them are not masked.
    pub(super) ids: Cell<Option<OwnIds>>,
    /// The last `tracestate` written and its header text: the spans of a trace, and every
    /// trace sampled at one ratio (`ot=th:…`), carry the same one, whose text the SDK builds
    /// anew (a string per entry, then joined) on each call.
    pub(super) trace_state: RefCell<(TraceState, String)>,
}

/// Slots of [`KeyCache::by_address`] (a power of two).
const KEY_SLOTS: usize = 64;
/// Slots a key may take from its home slot on.
const KEY_PROBES: usize = 4;

/// Every key seen, and in front of it a small table indexed by the key's address: most keys
/// are the same `&'static str` (or shared `Arc<str>`) on every span, so comparing an address
/// answers instead of hashing the name.
///
/// A slot holds a clone of the key it answers for, which keeps that memory alive and
/// unchanged: an address match then proves the same name. Only keys whose clone shares their
/// memory (static and shared ones) get a slot; an owned key's clone is a new allocation that
/// no later key can share, and would be an allocation per lookup for nothing.
#[derive(Debug, Clone)]
struct KeyCache {
    /// Sensitive, and whether the name has been seen as an owned key (not worth a slot).
    by_name: FxHashMap<Arc<str>, (bool, bool)>,
    by_address: Vec<Option<Slot>>,
}

#[derive(Debug, Clone)]
struct Slot {
    address: usize,
    len: usize,
    /// Keeps `address` alive for as long as the slot answers for it.
    _held: Key,
    sensitive: bool,
}

/// Fibonacci hashing: the top bits of the product spread aligned addresses.
fn home_slot(address: usize) -> usize {
    ((address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - KEY_SLOTS.trailing_zeros()))
        as usize
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            by_name: FxHashMap::default(),
            by_address: vec![None; KEY_SLOTS],
        }
    }
}

impl Sanitizer {
    pub(crate) fn new(value_limit: usize, count_limit: usize, redactor: Redactor) -> Self {
        Sanitizer {
            value_limit,
            count_limit,
            redactor,
            keys: RefCell::default(),
            ids: Cell::new(None),
            trace_state: RefCell::new((TraceState::NONE, String::new())),
        }
    }

    #[inline]
    pub(super) fn is_sensitive(&self, key: &Key) -> bool {
        let name = key.as_str();
        let address = name.as_ptr() as usize;
        let home = home_slot(address);
        let cache = self.keys.borrow();
        // A few slots from `home` on (a dozen keys in 64 slots often share one), up to a free
        // slot: keys that collide would otherwise evict each other on every span.
        for probe in 0..KEY_PROBES {
            match &cache.by_address[(home + probe) % KEY_SLOTS] {
                Some(slot) if slot.address == address && slot.len == name.len() => {
                    return slot.sensitive
                }
                Some(_) => {}
                None => break,
            }
        }
        drop(cache);
        self.learn(key, home)
    }

    /// The slow path of [`is_sensitive`](Self::is_sensitive): by name, then a slot if the key
    /// can have one.
    #[cold]
    #[inline(never)]
    fn learn(&self, key: &Key, home: usize) -> bool {
        let name = key.as_str();
        let address = name.as_ptr() as usize;
        let mut cache = self.keys.borrow_mut();
        let (sensitive, owned_seen) = match cache.by_name.get(name) {
            Some(&known) => known,
            None => {
                // Bounded: attribute keys chosen by clients must not grow it without limit.
                if cache.by_name.len() >= 4096 {
                    cache.by_name.clear();
                }
                let sensitive = self.redactor.is_sensitive_name(name);
                cache.by_name.insert(Arc::from(name), (sensitive, false));
                (sensitive, false)
            }
        };
        if owned_seen {
            return sensitive;
        }
        let held = key.clone();
        if held.as_str().as_ptr() as usize != address {
            if let Some(entry) = cache.by_name.get_mut(name) {
                entry.1 = true;
            }
            return sensitive;
        }
        let index = (0..KEY_PROBES)
            .map(|probe| (home + probe) % KEY_SLOTS)
            .find(|&i| cache.by_address[i].is_none())
            .unwrap_or(home);
        cache.by_address[index] = Some(Slot {
            address,
            len: name.len(),
            _held: held,
            sensitive,
        });
        sensitive
    }

    /// A string value as exported: redacted as free text ([`Redactor::redact_text`]), then cut
    /// to the value limit on a char boundary. Borrows unless redaction had to rewrite it.
    pub(super) fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match self
            .redactor
            .redact_text_sparing(s, self.ids.get().as_ref())
        {
            Cow::Borrowed(s) => Cow::Borrowed(truncate(s, self.value_limit)),
            Cow::Owned(mut s) => {
                s.truncate(truncate(&s, self.value_limit).len());
                Cow::Owned(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `key`'s address has a slot in the sanitizer's key cache.
    fn slotted(sanitizer: &Sanitizer, key: &Key) -> bool {
        let address = key.as_str().as_ptr() as usize;
        let cache = sanitizer.keys.borrow();
        cache
            .by_address
            .iter()
            .flatten()
            .any(|slot| slot.address == address)
    }

    #[test]
    fn only_keys_whose_memory_the_cache_holds_are_answered_by_address() {
        let sanitizer = Sanitizer::new(64, 64, Redactor::default());
        let shared = Key::from(Arc::<str>::from("order_no"));
        let owned = Key::from(String::from("merchant"));
        for _ in 0..2 {
            assert!(!sanitizer.is_sensitive(&Key::from_static_str("http.route")));
            assert!(!sanitizer.is_sensitive(&shared));
            assert!(!sanitizer.is_sensitive(&owned));
        }
        assert!(slotted(&sanitizer, &Key::from_static_str("http.route")));
        assert!(slotted(&sanitizer, &shared));
        // An owned key's memory can be freed and come back holding another name.
        assert!(!slotted(&sanitizer, &owned));

        // What a recycled allocation looks like: an owned key, freed, and a new one of the
        // same size, most likely at the same address.
        let order = String::from("order_no");
        let address = order.as_ptr();
        assert!(!sanitizer.is_sensitive(&Key::from(order)));
        let mut password = String::with_capacity(8);
        password.push_str("password");
        let reused = password.as_ptr() == address;
        assert!(
            sanitizer.is_sensitive(&Key::from(password)),
            "reused: {reused}"
        );
        assert!(sanitizer.is_sensitive(&Key::from_static_str("cvv")));
    }

    #[test]
    fn keys_that_share_a_home_slot_both_get_one() {
        let pool: Vec<Key> = (0..=KEY_SLOTS)
            .map(|i| Key::from_static_str(Box::leak(format!("key.{i}").into_boxed_str())))
            .collect();
        let home = |k: &Key| home_slot(k.as_str().as_ptr() as usize);
        let (a, b) = pool
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                pool[i + 1..]
                    .iter()
                    .find(|b| home(a) == home(b))
                    .map(|b| (a, b))
            })
            .expect("more keys than slots: two share one");
        let sanitizer = Sanitizer::new(64, 64, Redactor::default());
        sanitizer.is_sensitive(a);
        sanitizer.is_sensitive(b);
        assert!(slotted(&sanitizer, a) && slotted(&sanitizer, b));
    }
}
