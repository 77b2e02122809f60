//! Recently recorded attribute values that repeat from request to request (the host, the
//! user agent, the client address), kept per thread as shared strings.
//!
//! A value recorded as a fresh `String` costs an allocation on the request path and a free on
//! the export thread, where glibc's cross-thread free is the dearer half. A shared `Arc<str>`
//! costs two atomic counts instead, and a hit also skips masking the value again. The cache is
//! a handful of slots per kind, replaced round-robin: clients that send a new value every time
//! only cost a comparison per slot. Values are kept per redaction policy (layers may differ):
//! a value masked under one policy is never handed to another.

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
struct Slots<K> {
    slots: Vec<(u64, K, StringValue)>,
    next: usize,
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots {
            slots: Vec::with_capacity(SLOTS),
            next: 0,
        }
    }
}

impl<K> Slots<K> {
    fn find<Q>(&self, policy: u64, raw: &Q) -> Option<StringValue>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.slots
            .iter()
            .find(|(p, k, _)| *p == policy && k.borrow() == raw)
            .map(|(_, _, value)| value.clone())
    }

    fn keep(&mut self, policy: u64, key: K, value: StringValue) {
        if self.slots.len() < SLOTS {
            self.slots.push((policy, key, value));
        } else {
            self.slots[self.next] = (policy, key, value);
            self.next = (self.next + 1) % SLOTS;
        }
    }
}

#[derive(Debug, Default)]
struct Recent {
    hosts: Slots<Box<str>>,
    agents: Slots<Box<str>>,
    clients: Slots<IpAddr>,
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::default();
}

/// `server.address` for the raw `host`, as `make` records it under `policy`.
pub(crate) fn host(policy: u64, host: &str, make: impl FnOnce(&str) -> String) -> StringValue {
    text(policy, host, |r| &mut r.hosts, make)
}

/// `user_agent.original` for the raw `agent`, as `make` records it under `policy`.
pub(crate) fn agent(policy: u64, agent: &str, make: impl FnOnce(&str) -> String) -> StringValue {
    text(policy, agent, |r| &mut r.agents, make)
}

fn text(
    policy: u64,
    raw: &str,
    kind: fn(&mut Recent) -> &mut Slots<Box<str>>,
    make: impl FnOnce(&str) -> String,
) -> StringValue {
    if raw.len() > MAX_KEY {
        return make(raw).into();
    }
    recent(policy, raw, kind, || raw.into(), || make(raw))
}

/// `client.address` for `ip`, as `make` writes it.
pub(crate) fn client(ip: IpAddr, make: impl FnOnce(IpAddr) -> String) -> StringValue {
    recent(0, &ip, |r| &mut r.clients, || ip, || make(ip))
}

fn recent<K, Q>(
    policy: u64,
    raw: &Q,
    kind: impl Fn(&mut Recent) -> &mut Slots<K>,
    key: impl FnOnce() -> K,
    make: impl FnOnce() -> String,
) -> StringValue
where
    K: std::borrow::Borrow<Q> + 'static,
    Q: PartialEq + ?Sized,
{
    // `try_with`: a thread being torn down has no cache, and gets the value all the same.
    if let Ok(Some(value)) = RECENT.try_with(|r| kind(&mut r.borrow_mut()).find(policy, raw)) {
        return value;
    }
    // Made outside the borrow: `make` may record (and so reach this cache) itself.
    let value = StringValue::from(Arc::<str>::from(make()));
    let _ = RECENT.try_with(|r| kind(&mut r.borrow_mut()).keep(policy, key(), value.clone()));
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
            s.to_uppercase()
        };
        let a = host(1, "shop.example", upper);
        let b = host(1, "shop.example", upper);
        assert_eq!((a.as_str(), b.as_str()), ("SHOP.EXAMPLE", "SHOP.EXAMPLE"));
        assert_eq!(made.get(), 1);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one shared string");
        // Kinds do not mix: the same text as a user agent is made again.
        assert_eq!(agent(1, "shop.example", upper).as_str(), "SHOP.EXAMPLE");
        assert_eq!(made.get(), 2);
        // Nor do policies: what one policy recorded is not handed to another.
        assert_eq!(
            host(2, "shop.example", str::to_owned).as_str(),
            "shop.example"
        );
        assert_eq!(
            host(1, "shop.example", str::to_owned).as_str(),
            "SHOP.EXAMPLE"
        );
    }

    #[test]
    fn slots_are_bounded_and_replaced_in_turn() {
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        for i in 0..20 {
            assert_eq!(
                client(ip(i), |ip| ip.to_string()).as_str(),
                format!("10.0.0.{i}")
            );
        }
        RECENT.with(|r| assert_eq!(r.borrow().clients.slots.len(), SLOTS));
        // The newest are kept, the oldest replaced.
        let mut made = false;
        client(ip(19), |ip| {
            made = true;
            ip.to_string()
        });
        assert!(!made);
        client(ip(0), |ip| {
            made = true;
            ip.to_string()
        });
        assert!(made);
    }

    #[test]
    fn long_values_are_not_kept() {
        let long = "a".repeat(MAX_KEY + 1);
        assert_eq!(agent(1, &long, str::to_owned).as_str(), long);
        RECENT.with(|r| assert!(r.borrow().agents.slots.iter().all(|(_, k, _)| **k != *long)));
    }
}
