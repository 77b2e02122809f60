//! [`Registration`]: a set of families registered all or nothing, so a refused set leaves no
//! half behind to collide with the next attempt.

use std::cell::RefCell;

use prometheus::core::Collector;
use prometheus::Registry;

use crate::error::Error;

/// Families registered so far in one set; dropped before [`Registration::finish`], it
/// unregisters them.
pub(crate) struct Registration<'a> {
    registry: &'a Registry,
    registered: RefCell<Vec<Box<dyn Collector>>>,
}

impl<'a> Registration<'a> {
    pub(crate) fn new(registry: &'a Registry) -> Self {
        Registration {
            registry,
            registered: RefCell::new(Vec::new()),
        }
    }

    /// Registers the family `name` as `made`; an error names the family.
    pub(crate) fn add<C: Collector + Clone + 'static>(
        &self,
        name: &str,
        made: prometheus::Result<C>,
    ) -> Result<C, Error> {
        let err = |e| Error::invalid("prometheus registry", name, e);
        let collector = made.map_err(err)?;
        self.registry
            .register(Box::new(collector.clone()))
            .map_err(err)?;
        self.registered
            .borrow_mut()
            .push(Box::new(collector.clone()));
        Ok(collector)
    }

    /// The whole set is in: keep it registered.
    pub(crate) fn finish(self) {
        self.registered.borrow_mut().clear();
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        for collector in self.registered.get_mut().drain(..) {
            let _ = self.registry.unregister(collector);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::IntCounter;

    fn counter(name: &str) -> prometheus::Result<IntCounter> {
        IntCounter::new(name, "help")
    }

    #[test]
    fn a_refused_set_leaves_nothing_registered() {
        let registry = Registry::new();
        registry.register(Box::new(counter("b").unwrap())).unwrap();
        let set = Registration::new(&registry);
        set.add("a", counter("a")).unwrap();
        let err = set.add("b", counter("b")).unwrap_err();
        assert!(err.to_string().contains("=\"b\""), "{err}");
        drop(set);
        let names: Vec<_> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn a_finished_set_stays() {
        let registry = Registry::new();
        let set = Registration::new(&registry);
        set.add("a", counter("a")).unwrap();
        set.add("b", counter("b")).unwrap();
        set.finish();
        assert_eq!(registry.gather().len(), 2);
    }
}
