//! The log filter in force, swappable while the service runs: every `tracing` layer stack that
//! [`Telemetry::layers`](crate::telemetry::Telemetry::layers) builds reads the same slot.
//!
//! Events the filter disables never reach it: `tracing` caches each callsite's interest, and a
//! change rebuilds that cache, so a disabled event costs what it costs under a plain
//! `EnvFilter`.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use arc_swap::ArcSwap;

use tracing_core::span;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Context, Layer};

/// The filter in force. Read on every event the callsite cache lets through, so read without
/// a lock, and most disabled events are refused by its level alone (one atomic load).
#[derive(Debug)]
pub(crate) struct FilterSlot {
    filter: ArcSwap<EnvFilter>,
    /// `OTEL_LOG_LEVEL`, applied under every filter put in force.
    diagnostics: Option<&'static str>,
    /// The filter's most verbose level ([`level_code`]); events above it are disabled.
    max_level: AtomicU8,
    /// The directives name spans or fields (`target[span{field}]=level`): only then does the
    /// filter track spans, and only then are span callbacks passed on to it.
    tracks_spans: AtomicBool,
}

/// `filter`'s directives each trimmed, empty ones dropped, and of two field-value directives
/// for the same target, span and values only the last kept. `EnvFilter` parses a directive
/// with surrounding whitespace at the wrong offsets (a panic when a character is wider than a
/// byte), and two such field directives break an invariant it asserts in debug builds; and
/// `info, app=debug` means what it says.
pub(crate) fn tidy(filter: &str) -> String {
    let directives: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<&str> = directives
        .iter()
        .rev()
        .filter(|d| field_selector(d).is_none_or(|s| seen.insert(s)))
        .copied()
        .collect();
    kept.reverse();
    kept.join(",")
}

/// What a field directive selects (`target[span{field=value}]`, as `EnvFilter` reads it alone),
/// which the level after it does not change; `None` for a directive without fields.
fn field_selector(directive: &str) -> Option<String> {
    if !directive.contains('{') {
        return None;
    }
    let read = EnvFilter::builder()
        .with_regex(false)
        .parse(directive)
        .ok()?;
    let read = read.to_string();
    let end = read.rfind(']')?;
    read[..end].contains('{').then(|| read[..=end].to_owned())
}

/// A level filter as a number: 0 off … 5 trace; 6 when the filter gives no hint.
fn level_code(hint: Option<LevelFilter>) -> u8 {
    match hint {
        Some(LevelFilter::OFF) => 0,
        Some(LevelFilter::ERROR) => 1,
        Some(LevelFilter::WARN) => 2,
        Some(LevelFilter::INFO) => 3,
        Some(LevelFilter::DEBUG) => 4,
        Some(LevelFilter::TRACE) => 5,
        None => 6,
    }
}

fn event_code(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

impl FilterSlot {
    /// A slot holding `directives` (already validated; falls back to `info`) with the
    /// diagnostics level of [`with_diagnostics`].
    pub(crate) fn new(directives: &str, diagnostics: Option<&'static str>) -> Self {
        let directives = &tidy(directives);
        let filter = EnvFilter::try_new(with_diagnostics(directives, diagnostics))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        FilterSlot {
            diagnostics,
            max_level: AtomicU8::new(level_code(filter.max_level_hint())),
            tracks_spans: AtomicBool::new(directives.contains('[')),
            filter: ArcSwap::from_pointee(filter),
        }
    }

    /// Put `directives` in force for every event from now on.
    /// Field values in `directives` match literally, not as regular expressions: a value's
    /// regex is compiled to a DFA, and a few hundred bytes of one (found by fuzzing the control
    /// endpoint) took minutes and gigabytes.
    pub(crate) fn set(&self, directives: &str) -> Result<(), String> {
        let directives = &tidy(directives);
        let parse = |d: &str| EnvFilter::builder().with_regex(false).parse(d);
        parse(directives).map_err(|e| e.to_string())?;
        let filter =
            parse(&with_diagnostics(directives, self.diagnostics)).map_err(|e| e.to_string())?;
        self.max_level
            .store(level_code(filter.max_level_hint()), Ordering::Relaxed);
        // Stored before the filter: a span callback may reach the new filter, never skip it.
        self.tracks_spans
            .store(directives.contains('['), Ordering::Relaxed);
        self.filter.store(Arc::new(filter));
        // Callsites cached as never (or always) interesting are asked again.
        tracing_core::callsite::rebuild_interest_cache();
        Ok(())
    }

    fn tracks_spans(&self) -> bool {
        self.tracks_spans.load(Ordering::Relaxed)
    }

    fn current(&self) -> arc_swap::Guard<Arc<EnvFilter>> {
        self.filter.load()
    }
}

/// The service's filter with the level of the SDK's and paytrace's own diagnostics: the
/// OpenTelemetry crates' records are held to `warn` unless `OTEL_LOG_LEVEL` says otherwise
/// (their INFO records, `TracerProvider.GlobalSet` and the like, are not the service's logs);
/// with `OTEL_LOG_LEVEL`, paytrace's own records follow it too. A target the service's filter
/// names itself is left to it.
pub(crate) fn with_diagnostics(filter: &str, level: Option<&'static str>) -> String {
    let mut out = filter.to_owned();
    let mut add = |target: &str, level: &str| {
        if !filter.contains(target) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(target);
            out.push('=');
            out.push_str(level);
        }
    };
    add("opentelemetry", level.unwrap_or("warn"));
    if let Some(level) = level {
        add("paytrace", level);
    }
    out
}

/// A layer that filters as the slot's current [`EnvFilter`] does.
#[derive(Debug, Clone)]
pub(crate) struct DynamicFilter(pub(crate) Arc<FilterSlot>);

impl<S: Subscriber> Layer<S> for DynamicFilter {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        Layer::<S>::register_callsite(&**self.0.current(), metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Layer::<S>::max_level_hint(&**self.0.current())
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        // More verbose than anything the filter enables: no need to ask it.
        if event_code(metadata.level()) > self.0.max_level.load(Ordering::Relaxed) {
            return false;
        }
        Layer::<S>::enabled(&**self.0.current(), metadata, ctx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.0.tracks_spans() {
            Layer::<S>::on_new_span(&**self.0.current(), attrs, id, ctx)
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.0.tracks_spans() {
            Layer::<S>::on_record(&**self.0.current(), id, values, ctx)
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.0.tracks_spans() {
            Layer::<S>::on_enter(&**self.0.current(), id, ctx)
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.0.tracks_spans() {
            Layer::<S>::on_exit(&**self.0.current(), id, ctx)
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.0.tracks_spans() {
            Layer::<S>::on_close(&**self.0.current(), id, ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz target `control_json`): `EnvFilter` panicked on a directive with
    /// leading whitespace before a character wider than a byte.
    #[test]
    fn directives_with_surrounding_whitespace_parse_without_a_panic() {
        let slot = FilterSlot::new("info", None);
        for hostile in [
            " u\u{0AAA}[BBz[0zzzzzA",
            "yanse=trace,\u{85}Z[AAJfilAAA ",
            " \u{e9}=info",
        ] {
            let _ = slot.set(hostile);
            let _ = FilterSlot::new(hostile, None);
        }
        assert_eq!(tidy(" info, app=debug ,,"), "info,app=debug");
        // Found by fuzzing (fuzz target `control_json`): in debug builds, `EnvFilter` asserted
        // on two directives matching the same field value; the later one is kept.
        assert_eq!(
            tidy("[{x=a}]=info,b=warn,[{x=a}]=debug"),
            "b=warn,[{x=a}]=debug"
        );
        for twice in [
            r#"[{x="a"}],[{x="a"}]"#,
            "a[{x=a}]=info,a[{x=a}]=debug",
            "[{=-}],[{=-}]",
        ] {
            slot.set(twice).unwrap();
        }
        slot.set("warn, checkout=debug").unwrap();
        let now = slot.current().to_string();
        assert!(
            now.contains("checkout=debug") && now.contains(",warn"),
            "{now}"
        );
    }

    /// Found by fuzzing (fuzz target `control_json`): a field value regex of a few hundred
    /// bytes took over a minute and 2 GB to compile. Literal values parse at once.
    #[test]
    fn a_field_value_is_not_compiled_as_a_regex() {
        let slot = FilterSlot::new("info", None);
        let dots = ".".repeat(200);
        let started = std::time::Instant::now();
        slot.set(&format!("a[s{{f=5z{dots}AAAA}}]=trace")).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn diagnostics_join_the_service_filter() {
        assert_eq!(with_diagnostics("info", None), "info,opentelemetry=warn");
        assert_eq!(
            with_diagnostics("info", Some("debug")),
            "info,opentelemetry=debug,paytrace=debug"
        );
        assert_eq!(
            with_diagnostics("info,opentelemetry_sdk=trace", None),
            "info,opentelemetry_sdk=trace",
            "a target the service names is its own"
        );
    }

    #[test]
    fn sdk_records_are_held_to_warn_by_default() {
        let slot = FilterSlot::new("info", None);
        let filter = slot.current();
        assert!(
            format!("{filter}").contains("opentelemetry=warn"),
            "{filter}"
        );
        slot.set("debug").unwrap();
        assert!(
            format!("{}", slot.current()).contains("opentelemetry=warn"),
            "kept across changes"
        );
        let quiet = FilterSlot::new("info", Some("off"));
        assert!(format!("{}", quiet.current()).contains("paytrace=off"));
    }

    /// Counts the events that reach the layer below the filter.
    #[derive(Clone, Default)]
    struct Count(Arc<std::sync::atomic::AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn debug_events_inside_charge(slot: &Arc<FilterSlot>) -> usize {
        use tracing_subscriber::layer::SubscriberExt as _;
        let count = Count::default();
        let subscriber = tracing_subscriber::registry()
            .with(DynamicFilter(slot.clone()).and_then(count.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("charge").in_scope(|| tracing::debug!("inside"));
            tracing::debug!("outside");
        });
        count.0.load(Ordering::Relaxed)
    }

    #[test]
    fn span_directives_still_see_spans() {
        let slot = Arc::new(FilterSlot::new("info,[charge]=debug", None));
        assert!(slot.tracks_spans());
        assert_eq!(
            debug_events_inside_charge(&slot),
            1,
            "only the one in the span"
        );
        slot.set("info").unwrap();
        assert!(!slot.tracks_spans());
        assert_eq!(debug_events_inside_charge(&slot), 0);
        slot.set("info,[charge]=debug").unwrap();
        assert_eq!(
            debug_events_inside_charge(&slot),
            1,
            "tracked again after a change"
        );
    }
}
