//! A per-thread cache of request values that repeat: server address, user agent, client address.
//!
//! A value recorded as a fresh string costs an allocation on the request path and a free on
//! the export thread (a free from another thread is the dearer half). A shared `Arc<str>`
//! costs two atomic counts instead (a miss makes the `Arc<str>` directly, one allocation), and
//! a hit also skips parsing and masking the value again. The cache is a handful of slots per
//! kind, replaced round-robin: clients that send a new value every time only cost a
//! comparison per slot. Values are kept per redaction policy (layers may differ): a value
//! masked under one policy is never handed to another.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use opentelemetry::StringValue;

/// Slots per kind of value.
const SLOTS: usize = 4;
/// Raw values longer than this are recorded without caching: the slots stay small.
const MAX_KEY: usize = 256;

/// The last few raw values of one kind, with the policy and what was recorded for them.
#[derive(Debug)]
struct Slots<K, V> {
    slots: Vec<(u64, K, V)>,
    next: usize,
}

impl<K, V> Default for Slots<K, V> {
    fn default() -> Self {
        Slots {
            slots: Vec::with_capacity(SLOTS),
            next: 0,
        }
    }
}

impl<K, V: Clone> Slots<K, V> {
    fn find<Q>(&self, policy: u64, raw: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.slots
            .iter()
            .find(|(p, k, _)| *p == policy && k.borrow() == raw)
            .map(|(_, _, value)| value.clone())
    }

    fn keep(&mut self, policy: u64, key: K, value: V) {
        if self.slots.len() < SLOTS {
            self.slots.push((policy, key, value));
        } else {
            self.slots[self.next] = (policy, key, value);
            self.next = (self.next + 1) % SLOTS;
        }
    }
}

/// `server.address` and `server.port` as recorded for one authority; `None` when it is not a
/// valid one.
pub(crate) type Server = Option<(StringValue, Option<u16>)>;

#[derive(Debug, Default)]
struct ValueCache {
    servers: Slots<Box<str>, Server>,
    agents: Slots<Box<str>, StringValue>,
    clients: Slots<IpAddr, StringValue>,
}

thread_local! {
    static CACHE: RefCell<ValueCache> = RefCell::default();
}

/// `server.address` and `server.port` for the raw `authority`, as `make` records them under
/// `policy`.
pub(crate) fn server(
    policy: u64,
    authority: &str,
    make: impl FnOnce(&str) -> Option<(Arc<str>, Option<u16>)>,
) -> Server {
    let make = || make(authority).map(|(host, port)| (host.into(), port));
    if authority.len() > MAX_KEY {
        return make();
    }
    cached(
        policy,
        authority,
        |r| &mut r.servers,
        || authority.into(),
        make,
    )
}

/// `user_agent.original` for the raw `agent`, as `make` records it under `policy`.
pub(crate) fn agent(policy: u64, agent: &str, make: impl FnOnce(&str) -> Arc<str>) -> StringValue {
    let make = || make(agent).into();
    if agent.len() > MAX_KEY {
        return make();
    }
    cached(policy, agent, |r| &mut r.agents, || agent.into(), make)
}

/// `client.address` for `ip`, as `make` writes it.
pub(crate) fn client(ip: IpAddr, make: impl FnOnce(IpAddr) -> Arc<str>) -> StringValue {
    cached(0, &ip, |r| &mut r.clients, || ip, || make(ip).into())
}

fn cached<K, Q, V: Clone>(
    policy: u64,
    raw: &Q,
    kind: impl Fn(&mut ValueCache) -> &mut Slots<K, V>,
    key: impl FnOnce() -> K,
    make: impl FnOnce() -> V,
) -> V
where
    K: std::borrow::Borrow<Q>,
    Q: PartialEq + ?Sized,
{
    // `try_with`: a thread being torn down has no cache, and gets the value all the same.
    if let Ok(Some(value)) = CACHE.try_with(|r| kind(&mut r.borrow_mut()).find(policy, raw)) {
        return value;
    }
    // Made outside the borrow: `make` may record (and so reach this cache) itself.
    let value = make();
    let _ = CACHE.try_with(|r| kind(&mut r.borrow_mut()).keep(policy, key(), value.clone()));
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_value_is_shared_and_made_once() {
        let made = std::cell::Cell::new(0);
        let upper = |s: &str| {
            made.set(made.get() + 1);
            Arc::from(s.to_uppercase())
        };
        let a = agent(1, "curl/8", upper);
        let b = agent(1, "curl/8", upper);
        assert_eq!((a.as_str(), b.as_str()), ("CURL/8", "CURL/8"));
        assert_eq!(made.get(), 1);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one shared string");
        // Policies do not mix: what one recorded is not handed to another.
        assert_eq!(agent(2, "curl/8", |s| Arc::from(s)).as_str(), "curl/8");
        assert_eq!(agent(1, "curl/8", |s| Arc::from(s)).as_str(), "CURL/8");
        assert_eq!(made.get(), 1);

        // Nor do kinds: the same text as an authority is parsed on its own; invalid ones are
        // remembered too.
        let parse = |a: &str| {
            made.set(made.get() + 1);
            let (host, port) = a.split_once(':')?;
            Some((Arc::from(host), port.parse().ok()))
        };
        let server = |a| super::server(1, a, parse).map(|(h, p)| (h.as_str().to_owned(), p));
        assert_eq!(server("shop:8080"), Some(("shop".to_owned(), Some(8080))));
        assert_eq!(server("shop:8080"), Some(("shop".to_owned(), Some(8080))));
        assert_eq!(server("curl/8"), None);
        assert_eq!(server("curl/8"), None);
        assert_eq!(made.get(), 3);
    }

    #[test]
    fn slots_are_bounded_and_replaced_in_turn() {
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        for i in 0..20 {
            assert_eq!(
                client(ip(i), |ip| Arc::from(ip.to_string())).as_str(),
                format!("10.0.0.{i}")
            );
        }
        CACHE.with(|r| assert_eq!(r.borrow().clients.slots.len(), SLOTS));
        // The newest are kept, the oldest replaced.
        let mut made = false;
        client(ip(19), |ip| {
            made = true;
            Arc::from(ip.to_string())
        });
        assert!(!made);
        client(ip(0), |ip| {
            made = true;
            Arc::from(ip.to_string())
        });
        assert!(made);
    }

    #[test]
    fn long_values_are_not_kept() {
        let long = "a".repeat(MAX_KEY + 1);
        assert_eq!(agent(1, &long, |s| Arc::from(s)).as_str(), long);
        CACHE.with(|r| assert!(r.borrow().agents.slots.iter().all(|(_, k, _)| **k != *long)));
    }
}
