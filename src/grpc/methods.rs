//! The methods a layer knows: what becomes `rpc.method`, the span name and a metric label.
//!
//! A method is known when it is registered ([`ServerLayer::with_methods`](super::ServerLayer::with_methods)),
//! or, with nothing registered, once a call of it ended in anything but `UNIMPLEMENTED` (the
//! server has a handler for it). Either way a hard cap bounds the distinct methods; the rest
//! are `_OTHER`, with the path in `rpc.method_original`.

use std::sync::{Arc, OnceLock, RwLock};

use prometheus::IntCounter;
use rustc_hash::{FxHashMap, FxHashSet};

use super::metrics::{DurationSeries, GrpcMetrics};
use super::side::Side;
use super::status::CODES;
use tonic::Code;

/// `rpc.method` of a method that is not known.
pub(crate) const OTHER: &str = "_OTHER";
/// The span name of an `_OTHER` call (semantic conventions).
pub(crate) const OTHER_SPAN_NAME: &str = "grpc";
/// The default cap on distinct methods per layer.
pub(crate) const DEFAULT_MAX_METHODS: usize = 256;
/// Longest path read as a method; longer ones are `_OTHER`.
const MAX_PATH: usize = 256;

/// One known method (or `_OTHER`) and its metric series, bound on first use.
#[derive(Debug)]
pub(crate) struct Method {
    pub(crate) name: Arc<str>,
    /// The span name: interned once, so a call's span costs no string.
    span_name: std::borrow::Cow<'static, str>,
    series: [OnceLock<Option<DurationSeries>>; CODES],
    slow: OnceLock<Option<IntCounter>>,
}

impl Method {
    fn new(name: &str) -> Arc<Method> {
        Arc::new(Method {
            name: Arc::from(name),
            span_name: match crate::exchange::intern(name) {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(name.to_owned()),
            },
            series: Default::default(),
            slow: OnceLock::new(),
        })
    }

    pub(crate) fn is_other(&self) -> bool {
        &*self.name == OTHER
    }

    /// Record a finished call's duration (with its exemplar when its trace is `kept`) and
    /// slowness.
    pub(crate) fn record(
        &self,
        metrics: &GrpcMetrics,
        side: Side,
        code: Code,
        secs: f64,
        slow: bool,
        kept: Option<([u8; 16], [u8; 8])>,
    ) {
        if let Some(slot) = self.series.get(code as usize) {
            if let Some(s) = slot.get_or_init(|| metrics.duration(side, &self.name, code)) {
                s.histogram.observe(secs);
                if let (Some((trace, span)), Some(exemplars)) = (kept, &s.exemplars) {
                    exemplars.record(secs, trace, span);
                }
            }
        }
        if slow {
            if let Some(c) = self.slow.get_or_init(|| metrics.slow(side, &self.name)) {
                c.inc();
            }
        }
    }
}

/// What a call's path resolved to when it started.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    Known(Arc<Method>),
    /// A well-formed path not known yet: settled at the end by the call's status.
    Candidate {
        method: Arc<str>,
        registered: bool,
    },
    /// Malformed, too long, or not registered.
    Other {
        original: Arc<str>,
    },
}

impl Lookup {
    /// The method path as the call named it (`pkg.Service/Method`, or the raw path).
    pub(crate) fn path(&self) -> &str {
        match self {
            Lookup::Known(m) => &m.name,
            Lookup::Candidate { method, .. } => method,
            Lookup::Other { original } => original,
        }
    }

    pub(crate) fn span_name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Lookup::Known(m) if !m.is_other() => m.span_name.clone(),
            // A method's first call: named after its path until it is known.
            Lookup::Candidate { method, .. } => std::borrow::Cow::Owned(method.to_string()),
            _ => std::borrow::Cow::Borrowed(OTHER_SPAN_NAME),
        }
    }
}

/// A layer's method table.
#[derive(Debug)]
pub(crate) struct Methods {
    /// Registered methods (`pkg.Service/Method`) and services (`pkg.Service`); `None` learns.
    registered: Option<FxHashSet<Box<str>>>,
    known: RwLock<FxHashMap<Arc<str>, Arc<Method>>>,
    other: Arc<Method>,
    max: usize,
}

impl Methods {
    pub(crate) fn new(registered: Option<FxHashSet<Box<str>>>, max: usize) -> Methods {
        Methods {
            registered,
            known: RwLock::new(FxHashMap::default()),
            other: Method::new(OTHER),
            max,
        }
    }

    /// Resolve a request path (`/pkg.Service/Method`).
    pub(crate) fn lookup(&self, path: &str) -> Lookup {
        let Some(method) = well_formed(path) else {
            return Lookup::Other {
                original: Arc::from(crate::util::truncate(path, MAX_PATH)),
            };
        };
        if let Ok(known) = self.known.read() {
            if let Some(m) = known.get(method) {
                return Lookup::Known(m.clone());
            }
        }
        match &self.registered {
            None => Lookup::Candidate {
                method: Arc::from(method),
                registered: false,
            },
            Some(set) => {
                let service = method.split_once('/').map_or(method, |(s, _)| s);
                if set.contains(method) || set.contains(service) {
                    Lookup::Candidate {
                        method: Arc::from(method),
                        registered: true,
                    }
                } else {
                    Lookup::Other {
                        original: Arc::from(method),
                    }
                }
            }
        }
    }

    /// The method a call counts under, now that its status is known; `_OTHER` for an
    /// unregistered method the server does not implement, and past the cap.
    pub(crate) fn settle(&self, lookup: &Lookup, code: Code) -> Arc<Method> {
        match lookup {
            Lookup::Known(m) => m.clone(),
            Lookup::Other { .. } => self.other.clone(),
            Lookup::Candidate {
                registered: false, ..
            } if code == Code::Unimplemented => self.other.clone(),
            Lookup::Candidate { method, .. } => {
                let Ok(mut known) = self.known.write() else {
                    return self.other.clone();
                };
                if let Some(m) = known.get(method) {
                    return m.clone();
                }
                if known.len() >= self.max {
                    return self.other.clone();
                }
                let m = Method::new(method);
                known.insert(method.clone(), m.clone());
                m
            }
        }
    }
}

/// `pkg.Service/Method` from `/pkg.Service/Method`, when the path has that shape: identifier
/// characters only, so nothing a client sends beyond a name reaches a label.
fn well_formed(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    if rest.len() > MAX_PATH {
        return None;
    }
    let (service, method) = rest.split_once('/')?;
    let ident = |s: &str, dots: bool| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (dots && b == b'.'))
    };
    (ident(service, true) && ident(method, false)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            well_formed("/ledger.v1.Ledger/Post"),
            Some("ledger.v1.Ledger/Post")
        );
        assert_eq!(well_formed("/Echo/Echo"), Some("Echo/Echo"));
        assert_eq!(well_formed("ledger.v1.Ledger/Post"), None);
        assert_eq!(well_formed("/a/b/c"), None);
        assert_eq!(well_formed("/a b/c"), None);
        assert_eq!(well_formed("/a/"), None);
        assert_eq!(well_formed(&format!("/a/{}", "x".repeat(300))), None);
    }

    #[test]
    fn learning_settles_by_status() {
        let m = Methods::new(None, 2);
        let l = m.lookup("/s.S/Nope");
        assert!(matches!(l, Lookup::Candidate { .. }));
        assert!(m.settle(&l, Code::Unimplemented).is_other());
        let l = m.lookup("/s.S/A");
        assert_eq!(&*m.settle(&l, Code::Ok).name, "s.S/A");
        assert!(matches!(m.lookup("/s.S/A"), Lookup::Known(_)));
        // An error other than UNIMPLEMENTED still means a handler answered.
        assert_eq!(
            &*m.settle(&m.lookup("/s.S/B"), Code::Internal).name,
            "s.S/B"
        );
        // The cap: the third distinct method is _OTHER.
        assert!(m.settle(&m.lookup("/s.S/C"), Code::Ok).is_other());
    }

    #[test]
    fn registration_decides() {
        let set: FxHashSet<Box<str>> = ["s.S/A".into(), "t.T".into()].into_iter().collect();
        let m = Methods::new(Some(set), 10);
        assert!(matches!(m.lookup("/s.S/B"), Lookup::Other { .. }));
        // Registered methods keep their name even when unimplemented.
        assert_eq!(
            &*m.settle(&m.lookup("/s.S/A"), Code::Unimplemented).name,
            "s.S/A"
        );
        assert_eq!(&*m.settle(&m.lookup("/t.T/Any"), Code::Ok).name, "t.T/Any");
        assert_eq!(m.lookup("/x/y").span_name(), "grpc");
    }
}
