//! The export queue: two lanes under one byte budget. Priority items (error and slow spans,
//! WARN and ERROR records) are taken first and are never dropped while an ordinary item is
//! queued: a priority item that does not fit makes room by dropping the oldest ordinary items.
//!
//! The budget counts each item's estimated encoded size ([`Weigh::weigh`]), so the queue holds
//! as many small items as large ones would fit, and a burst of ordinary requests is absorbed by
//! memory rather than by an item count chosen for another workload. A count bound applies as
//! well when one is configured.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// What the queue needs to know of an item, in one pass over it.
pub(crate) trait Weigh {
    fn weigh(&self) -> Weight;
}

/// An item's estimated encoded size and class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Weight {
    /// Estimated size once encoded, in bytes.
    pub(crate) bytes: usize,
    /// Kept while any ordinary item can be dropped instead.
    pub(crate) priority: bool,
}

/// How much a queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Estimated encoded bytes.
    pub(crate) bytes: usize,
    /// Items, when a count bound is configured.
    pub(crate) items: Option<usize>,
}

/// What became of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pushed {
    /// The item is queued.
    pub(crate) queued: bool,
    /// Items queued after the push.
    pub(crate) len: usize,
    /// Estimated bytes queued after the push.
    pub(crate) bytes: usize,
    /// Ordinary items dropped: the pushed one, or older ones evicted for a priority item.
    pub(crate) dropped_ordinary: u64,
    /// Priority items dropped (only the pushed one, and only with no ordinary item queued).
    pub(crate) dropped_priority: u64,
}

/// Items taken out of the queue, priority first.
#[derive(Debug)]
pub(crate) struct Taken<T> {
    pub(crate) items: Vec<T>,
    /// Estimated bytes queued after the take.
    pub(crate) bytes: usize,
}

#[derive(Debug)]
struct Lanes<T> {
    priority: VecDeque<(T, usize)>,
    ordinary: VecDeque<(T, usize)>,
    bytes: usize,
    closed: bool,
}

impl<T> Lanes<T> {
    fn len(&self) -> usize {
        self.priority.len() + self.ordinary.len()
    }

    fn fits(&self, budget: Budget, weight: usize) -> bool {
        self.bytes + weight <= budget.bytes && budget.items.is_none_or(|max| self.len() < max)
    }
}

/// A bounded two-lane queue; every operation holds its lock for a few moves.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    lanes: Mutex<Lanes<T>>,
    budget: Budget,
}

impl<T: Weigh> Queue<T> {
    pub(crate) fn new(budget: Budget) -> Self {
        Queue {
            lanes: Mutex::new(Lanes {
                priority: VecDeque::new(),
                ordinary: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            budget,
        }
    }

    /// Queue `item` if it fits (making room for a priority item); never waits.
    pub(crate) fn push(&self, item: T) -> Pushed {
        let Weight {
            bytes: weight,
            priority,
        } = item.weigh();
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Pushed::default();
        if !lanes.closed && priority {
            while !lanes.fits(self.budget, weight) {
                let Some((_, w)) = lanes.ordinary.pop_front() else {
                    break;
                };
                lanes.bytes -= w;
                out.dropped_ordinary += 1;
            }
        }
        if !lanes.closed && lanes.fits(self.budget, weight) {
            lanes.bytes += weight;
            if priority {
                lanes.priority.push_back((item, weight));
            } else {
                lanes.ordinary.push_back((item, weight));
            }
            out.queued = true;
        } else if priority {
            out.dropped_priority += 1;
        } else {
            out.dropped_ordinary += 1;
        }
        out.len = lanes.len();
        out.bytes = lanes.bytes;
        out
    }

    /// Up to `max` items, priority first.
    pub(crate) fn take(&self, max: usize) -> Taken<T> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let lanes = &mut *lanes;
        let mut items = Vec::with_capacity(max.min(lanes.len()));
        let mut taken = 0;
        // Drained in bulk: each item moves once, from its lane into the batch.
        for lane in [&mut lanes.priority, &mut lanes.ordinary] {
            let n = (max - items.len()).min(lane.len());
            items.extend(lane.drain(..n).map(|(item, w)| {
                taken += w;
                item
            }));
        }
        lanes.bytes -= taken;
        Taken {
            items,
            bytes: lanes.bytes,
        }
    }

    /// Refuse further pushes.
    pub(crate) fn close(&self) {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
    }

    /// Drop everything queued: how many (ordinary, priority) items were dropped.
    pub(crate) fn clear(&self) -> (u64, u64) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = (lanes.ordinary.len() as u64, lanes.priority.len() as u64);
        lanes.ordinary.clear();
        lanes.priority.clear();
        lanes.bytes = 0;
        counts
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Item {
        weight: usize,
        priority: bool,
    }

    impl Weigh for Item {
        fn weigh(&self) -> Weight {
            Weight {
                bytes: self.weight,
                priority: self.priority,
            }
        }
    }

    fn queue(bytes: usize, items: Option<usize>) -> Queue<Item> {
        Queue::new(Budget { bytes, items })
    }

    const ORDINARY: Item = Item {
        weight: 10,
        priority: false,
    };
    const PRIORITY: Item = Item {
        weight: 10,
        priority: true,
    };

    #[test]
    fn priority_items_are_taken_first_and_make_room() {
        let q = queue(30, None);
        for _ in 0..3 {
            assert!(q.push(ORDINARY).queued);
        }
        assert_eq!(
            q.push(ORDINARY).dropped_ordinary,
            1,
            "full: an ordinary item waits for room"
        );
        let pushed = q.push(PRIORITY);
        assert!(pushed.queued);
        assert_eq!(
            (pushed.dropped_ordinary, pushed.len, pushed.bytes),
            (1, 3, 30)
        );
        let taken = q.take(2);
        assert_eq!(taken.items, vec![PRIORITY, ORDINARY]);
        assert_eq!(taken.bytes, 10);
    }

    #[test]
    fn a_priority_item_is_dropped_only_when_no_ordinary_one_is_left() {
        let q = queue(20, None);
        assert!(q.push(PRIORITY).queued && q.push(PRIORITY).queued);
        let pushed = q.push(PRIORITY);
        assert_eq!((pushed.queued, pushed.dropped_priority), (false, 1));
    }

    #[test]
    fn a_count_bound_applies_beside_the_byte_budget() {
        let q = queue(1 << 20, Some(2));
        assert!(q.push(ORDINARY).queued && q.push(ORDINARY).queued);
        assert!(!q.push(ORDINARY).queued);
        assert!(q.push(PRIORITY).queued, "evicts an ordinary item for room");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn closed_queues_drop_and_clear_counts_by_class() {
        let q = queue(100, None);
        q.push(ORDINARY);
        q.push(PRIORITY);
        q.close();
        assert_eq!(q.push(PRIORITY).dropped_priority, 1);
        assert_eq!(q.clear(), (1, 1));
        assert_eq!(q.take(10).items, vec![]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(Item),
        Take(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..50, any::<bool>()).prop_map(|(weight, priority)| Op::Push(Item { weight, priority })),
            1 => (0usize..8).prop_map(Op::Take),
        ]
    }

    proptest! {
        #[test]
        fn bytes_stay_within_budget_and_priority_outlives_ordinary(
            budget in 1usize..300,
            items in proptest::option::of(1usize..20),
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let q = queue(budget, items);
            // A model of what is queued, to check the queue's own byte count.
            let mut model: Vec<Item> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(item) => {
                        let ordinary_before = model.iter().filter(|i| !i.priority).count() as u64;
                        let pushed = q.push(item);
                        if pushed.dropped_priority > 0 {
                            prop_assert_eq!(ordinary_before, pushed.dropped_ordinary,
                                "a priority item dropped while an ordinary one stayed queued");
                        }
                        // Evictions take the oldest ordinary items.
                        for _ in 0..pushed.dropped_ordinary.min(ordinary_before)
                            .saturating_sub(u64::from(!item.priority && !pushed.queued))
                        {
                            let at = model.iter().position(|i| !i.priority).unwrap();
                            model.remove(at);
                        }
                        if pushed.queued {
                            model.push(item);
                        }
                        prop_assert!(pushed.bytes <= budget);
                        prop_assert_eq!(pushed.bytes, model.iter().map(|i| i.weight).sum::<usize>());
                        prop_assert_eq!(pushed.len, model.len());
                        if let Some(max) = items {
                            prop_assert!(pushed.len <= max);
                        }
                    }
                    Op::Take(n) => {
                        let taken = q.take(n);
                        let mut expected: Vec<Item> = model.iter().filter(|i| i.priority).copied()
                            .chain(model.iter().filter(|i| !i.priority).copied())
                            .collect();
                        let rest = expected.split_off(n.min(expected.len()));
                        prop_assert_eq!(&taken.items, &expected);
                        model = rest.clone();
                        // What stays keeps its lane order: priority first, then ordinary.
                        prop_assert_eq!(taken.bytes, model.iter().map(|i| i.weight).sum::<usize>());
                    }
                }
            }
        }
    }
}
