//! The head decision, consistent across services: OpenTelemetry's consistent probability
//! sampling. A trace's randomness `R` is the low 56 bits of its trace id (or the `rv` of the
//! `ot` entry of its `tracestate`); a probability `p` becomes a rejection threshold `T`, and the
//! trace is kept when `R ≥ T`. Kept spans carry `ot=th:<T>` in their `tracestate`, so every
//! service and collector that follows the specification keeps the same traces.
//!
//! Traces the ratio does not keep are recorded but not sampled when tail keep is on: their
//! spans wait for the outcome ([`super::keep`]) instead of being dropped at the start.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

/// 2^56: the randomness and the threshold are 56-bit numbers.
const MAX: u64 = 1 << 56;
/// Hex digits of an encoded threshold: 1 % is `fd70a4`.
const PRECISION: u32 = 6;

/// A rejection threshold: traces whose randomness is below it are not kept by the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Threshold(u64);

impl Threshold {
    /// The threshold for keeping a share `p` of traces, rounded to [`PRECISION`] hex digits (so
    /// that the decision and the `th` written in the `tracestate` agree). `None` when `p` keeps
    /// nothing.
    pub(crate) fn of(p: f64) -> Option<Threshold> {
        // NaN keeps nothing too.
        if p.is_nan() || p <= 0.0 {
            return None;
        }
        if p >= 1.0 {
            return Some(Threshold(0));
        }
        let exact = ((1.0 - p) * MAX as f64)
            .round()
            .clamp(0.0, (MAX - 1) as f64) as u64;
        // Keep PRECISION hex digits, rounding to nearest (1 % is `fd70a4`, as in the
        // specification's examples); tiny probabilities keep two digits past their leading fs.
        let leading_f = (0..14)
            .take_while(|i| (exact >> (52 - 4 * i)) & 0xf == 0xf)
            .count() as u32;
        let kept_digits = PRECISION.max(leading_f + 2).min(14);
        let drop_bits = 4 * (14 - kept_digits);
        if drop_bits == 0 {
            return Some(Threshold(exact));
        }
        let half = 1u64 << (drop_bits - 1);
        let rounded = ((exact + half) >> drop_bits) << drop_bits;
        Some(Threshold(rounded.min(MAX - 1)))
    }

    /// Whether a trace of randomness `r` is kept.
    pub(crate) fn keeps(self, r: u64) -> bool {
        r >= self.0
    }

    /// The `th` value: hex digits, trailing zeros removed (`0` keeps everything).
    pub(crate) fn encode(self) -> String {
        if self.0 == 0 {
            return "0".to_owned();
        }
        let text = format!("{:014x}", self.0);
        text.trim_end_matches('0').to_owned()
    }

    /// A `th` value read back, as the specification writes it.
    #[cfg(test)]
    pub(crate) fn decode(th: &str) -> Option<Threshold> {
        if th.is_empty() || th.len() > 14 || !th.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = u64::from_str_radix(th, 16).ok()?;
        Some(Threshold(value << (4 * (14 - th.len()))))
    }
}

/// A trace's randomness: `rv` from the `ot` entry when present, else the low 56 bits of its id.
pub(crate) fn randomness(trace_id: TraceId, state: &TraceState) -> u64 {
    ot_value(state, "rv")
        .filter(|rv| rv.len() == 14)
        .and_then(|rv| u64::from_str_radix(rv, 16).ok())
        .unwrap_or_else(|| {
            u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default()) & (MAX - 1)
        })
}

/// The value of `key` in the `ot` entry of `state` (`ot=th:fd70a4;rv:…`).
fn ot_value<'a>(state: &'a TraceState, key: &str) -> Option<&'a str> {
    state.get("ot")?.split(';').find_map(|member| {
        let (k, v) = member.split_once(':')?;
        (k == key).then_some(v)
    })
}

/// `state` with `th` set in its `ot` entry (other `ot` members kept).
fn with_threshold(state: &TraceState, threshold: Threshold) -> TraceState {
    let mut ot: Vec<String> = state
        .get("ot")
        .map(|v| {
            v.split(';')
                .filter(|m| !m.starts_with("th:") && !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    ot.insert(0, format!("th:{}", threshold.encode()));
    // An `ot` value that is not valid tracestate leaves the state as it was, never fails.
    state
        .insert("ot", ot.join(";"))
        .unwrap_or_else(|_| state.clone())
}

/// The head ratio and the routes kept whole, changeable while the service runs
/// ([`crate::control`]): read with one atomic load per span when nothing is forced.
#[derive(Debug)]
pub(crate) struct HeadControl {
    /// The threshold in force; `u64::MAX` keeps nothing.
    threshold: AtomicU64,
    forced_any: AtomicBool,
    forced: RwLock<Vec<String>>,
    /// The `tracestate` of a kept trace that came without one (most do), built once per ratio.
    kept_state: RwLock<(Threshold, TraceState)>,
}

impl HeadControl {
    pub(crate) fn new(ratio: f64) -> Self {
        let control = HeadControl {
            threshold: AtomicU64::new(u64::MAX),
            forced_any: AtomicBool::new(false),
            forced: RwLock::new(Vec::new()),
            kept_state: RwLock::new((Threshold(u64::MAX), TraceState::NONE)),
        };
        control.set_ratio(ratio);
        control
    }

    /// Keep this share of traces by their randomness from now on.
    pub(crate) fn set_ratio(&self, ratio: f64) {
        let t = Threshold::of(ratio).map_or(u64::MAX, |t| t.0);
        if t != u64::MAX {
            let state = with_threshold(&TraceState::NONE, Threshold(t));
            *self
                .kept_state
                .write()
                .unwrap_or_else(PoisonError::into_inner) = (Threshold(t), state);
        }
        self.threshold.store(t, Ordering::Relaxed);
    }

    /// `state` with the `th` of `t`: the prebuilt one when `state` is empty.
    fn kept_state(&self, state: &TraceState, t: Threshold) -> TraceState {
        if *state == TraceState::NONE {
            let kept = self
                .kept_state
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if kept.0 == t {
                return kept.1.clone();
            }
        }
        with_threshold(state, t)
    }

    fn threshold(&self) -> Option<Threshold> {
        match self.threshold.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(Threshold(t)),
        }
    }

    /// Every trace whose local root has one of these `http.route` values is kept.
    pub(crate) fn set_forced_routes(&self, routes: Vec<String>) {
        let any = !routes.is_empty();
        *self.forced.write().unwrap_or_else(PoisonError::into_inner) = routes;
        self.forced_any.store(any, Ordering::Release);
    }

    fn is_forced(&self, attributes: &[KeyValue]) -> bool {
        if !self.forced_any.load(Ordering::Acquire) {
            return false;
        }
        let Some(route) = attributes
            .iter()
            .find(|kv| kv.key.as_str() == "http.route")
            .map(|kv| kv.value.as_str())
        else {
            return false;
        };
        self.forced
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|r| *r == *route)
    }
}

/// The sampler paytrace installs for a ratio.
#[derive(Debug, Clone)]
pub(crate) struct ConsistentSampler {
    /// The ratio's threshold and the forced routes.
    control: Arc<HeadControl>,
    /// Follow a parent's decision when there is a parent (`parentbased_traceidratio`).
    parent_based: bool,
    /// Record what the ratio does not keep, for the outcome to decide (tail keep).
    record_rest: bool,
}

impl ConsistentSampler {
    pub(crate) fn new(control: Arc<HeadControl>, parent_based: bool, record_rest: bool) -> Self {
        ConsistentSampler {
            control,
            parent_based,
            record_rest,
        }
    }

    fn not_kept(&self, trace_state: TraceState) -> SamplingResult {
        SamplingResult {
            decision: if self.record_rest {
                SamplingDecision::RecordOnly
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state,
        }
    }
}

impl ShouldSample for ConsistentSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        // The parent's decision and its `tracestate`, cloned once (it goes into the result).
        let (parent_sampled, state) = parent_context
            .filter(|cx| cx.has_active_span())
            .and_then(|cx| {
                let span = cx.span();
                let sc = span.span_context();
                sc.is_valid()
                    .then(|| (Some(sc.is_sampled()), sc.trace_state().clone()))
            })
            .unwrap_or_default();
        if self.parent_based {
            if let Some(sampled) = parent_sampled {
                return if sampled {
                    SamplingResult {
                        decision: SamplingDecision::RecordAndSample,
                        attributes: Vec::new(),
                        trace_state: state,
                    }
                } else {
                    self.not_kept(state)
                };
            }
        }
        if self.control.is_forced(attributes) {
            // A forced route: kept from the start, whole, and said so (no `th`: not the ratio).
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: vec![KeyValue::new(super::reason::REASON, "forced")],
                trace_state: state,
            };
        }
        match self.control.threshold() {
            Some(t) if t.keeps(randomness(trace_id, &state)) => SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: self.control.kept_state(&state, t),
            },
            _ => self.not_kept(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags};

    #[test]
    fn thresholds_are_written_as_the_specification_does() {
        for (p, th) in [
            (1.0, "0"),
            (0.5, "8"),
            (0.25, "c"),
            (0.1, "e66666"),
            (0.01, "fd70a4"),
            (0.001, "ffbe77"),
            (0.000_001, "ffffef"),
        ] {
            let t = Threshold::of(p).unwrap();
            assert_eq!(t.encode(), th, "{p}");
            assert_eq!(Threshold::decode(th), Some(t), "{p}");
        }
        assert_eq!(Threshold::of(0.0), None);
    }

    #[test]
    fn randomness_comes_from_rv_or_the_trace_id() {
        let id = TraceId::from(0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128);
        assert_eq!(randomness(id, &TraceState::default()), 0x11_2233_4455_6677);
        let state = TraceState::from_key_value([("ot", "th:8;rv:00000000000001")]).unwrap();
        assert_eq!(randomness(id, &state), 1);
    }

    fn decide(
        sampler: &ConsistentSampler,
        parent: Option<SpanContext>,
        id: u128,
    ) -> SamplingResult {
        let cx = parent.map(|sc| Context::new().with_remote_span_context(sc));
        sampler.should_sample(
            cx.as_ref(),
            TraceId::from(id),
            "x",
            &SpanKind::Server,
            &[],
            &[],
        )
    }

    #[test]
    fn roots_are_decided_by_their_randomness_and_carry_th() {
        let sampler = ConsistentSampler::new(Arc::new(HeadControl::new(0.5)), true, true);
        let kept = decide(&sampler, None, 0x00ff_ffff_ffff_ffff);
        assert_eq!(kept.decision, SamplingDecision::RecordAndSample);
        assert_eq!(kept.trace_state.get("ot"), Some("th:8"));
        let rest = decide(&sampler, None, 0x0000_0000_0000_0001);
        assert_eq!(rest.decision, SamplingDecision::RecordOnly);
        assert_eq!(rest.trace_state.get("ot"), None);
        let dropped = decide(
            &ConsistentSampler::new(Arc::new(HeadControl::new(0.5)), true, false),
            None,
            1,
        );
        assert_eq!(dropped.decision, SamplingDecision::Drop);
    }

    #[test]
    fn children_follow_their_parent() {
        let sampler = ConsistentSampler::new(Arc::new(HeadControl::new(0.01)), true, true);
        let state = TraceState::from_key_value([("ot", "th:c")]).unwrap();
        let parent = |flags| {
            SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                flags,
                true,
                state.clone(),
            )
        };
        let kept = decide(&sampler, Some(parent(TraceFlags::SAMPLED)), 1);
        assert_eq!(kept.decision, SamplingDecision::RecordAndSample);
        assert_eq!(
            kept.trace_state.get("ot"),
            Some("th:c"),
            "the parent's th travels on"
        );
        let rest = decide(&sampler, Some(parent(TraceFlags::default())), u128::MAX);
        assert_eq!(rest.decision, SamplingDecision::RecordOnly);
    }

    #[test]
    fn the_kept_share_is_the_ratio() {
        for ratio in [0.1, 0.01] {
            let t = Threshold::of(ratio).unwrap();
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let n = 200_000;
            let kept = (0..n)
                .filter(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    t.keeps(state & (MAX - 1))
                })
                .count();
            let share = kept as f64 / n as f64;
            assert!((share / ratio - 1.0).abs() < 0.1, "{ratio}: {share}");
        }
    }

    #[test]
    fn forced_routes_and_ratio_changes_take_effect_at_once() {
        let control = Arc::new(HeadControl::new(0.0));
        let sampler = ConsistentSampler::new(control.clone(), true, true);
        let route = [KeyValue::new("http.route", "/orders/{id}")];
        let decide_with = |attrs: &[KeyValue]| {
            sampler.should_sample(None, TraceId::from(7), "x", &SpanKind::Server, attrs, &[])
        };
        assert_eq!(decide_with(&route).decision, SamplingDecision::RecordOnly);
        control.set_forced_routes(vec!["/orders/{id}".into()]);
        let forced = decide_with(&route);
        assert_eq!(forced.decision, SamplingDecision::RecordAndSample);
        assert_eq!(forced.attributes[0].value.as_str(), "forced");
        assert_eq!(decide_with(&[]).decision, SamplingDecision::RecordOnly);
        control.set_forced_routes(Vec::new());
        control.set_ratio(1.0);
        assert_eq!(decide_with(&route).trace_state.get("ot"), Some("th:0"));
        // Trace 7's randomness is 7: only a threshold of 0 keeps it; the prebuilt state follows.
        control.set_ratio(0.5);
        assert_eq!(decide_with(&[]).decision, SamplingDecision::RecordOnly);
        let high = TraceId::from(u128::from(u64::MAX));
        let kept = sampler.should_sample(None, high, "x", &SpanKind::Server, &[], &[]);
        assert_eq!(kept.trace_state.get("ot"), Some("th:8"));
    }
}
