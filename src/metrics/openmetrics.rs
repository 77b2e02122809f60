//! OpenMetrics 1.0 text over the registry's gathered families, with exemplars on histogram
//! `_bucket` lines (never on `_count`, `_sum` or gauges: Prometheus refuses a whole scrape over
//! one misplaced exemplar).

use std::fmt::Write as _;

use prometheus::proto::{Metric, MetricFamily, MetricType};

use crate::exemplars::{Exemplar, ExemplarStore};
use crate::util::hex_into;

/// The content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every family as OpenMetrics text, ending in `# EOF`.
pub(crate) fn encode(families: &[MetricFamily], exemplars: Option<&ExemplarStore>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for family in families.iter().filter(|f| !f.get_metric().is_empty()) {
        let Some((kind, base)) = kind_and_base(family) else {
            continue;
        };
        header(&mut out, family, kind, base);
        for metric in family.get_metric() {
            samples(&mut out, family, metric, exemplars);
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A family's OpenMetrics kind and the name its `# TYPE` and `# HELP` lines give; `None` for
/// summaries and untyped families, which paytrace does not register: left out, not guessed.
fn kind_and_base(family: &MetricFamily) -> Option<(&'static str, &str)> {
    let name = family.name();
    Some(match family.get_field_type() {
        MetricType::COUNTER => match name.strip_suffix("_total") {
            Some(base) => ("counter", base),
            // A counter sample must end in `_total`: without it, say nothing of its kind.
            None => ("unknown", name),
        },
        MetricType::GAUGE => ("gauge", name),
        MetricType::HISTOGRAM => ("histogram", name),
        MetricType::SUMMARY | MetricType::UNTYPED => return None,
    })
}

fn header(out: &mut String, family: &MetricFamily, kind: &str, base: &str) {
    let _ = writeln!(out, "# TYPE {base} {kind}");
    out.push_str("# HELP ");
    out.push_str(base);
    out.push(' ');
    escape(family.help(), false, out);
    out.push('\n');
}

/// The sample lines of one series; a counter's sample keeps the family's name (`_total`
/// included when it has it).
fn samples(
    out: &mut String,
    family: &MetricFamily,
    metric: &Metric,
    exemplars: Option<&ExemplarStore>,
) {
    let name = family.name();
    let labels: Vec<(&str, &str)> = metric
        .get_label()
        .iter()
        .map(|l| (l.name(), l.value()))
        .collect();
    match family.get_field_type() {
        MetricType::COUNTER => {
            let value = metric.get_counter().get_value();
            line(out, name, &labels, None, value, None);
        }
        MetricType::GAUGE => {
            let value = metric.get_gauge().get_value();
            line(out, name, &labels, None, value, None);
        }
        MetricType::HISTOGRAM => histogram(out, name, metric, &labels, exemplars),
        MetricType::SUMMARY | MetricType::UNTYPED => {}
    }
}

/// A histogram's `_bucket` lines (with their exemplars, `+Inf` added when the buckets lack
/// it), then `_sum` and `_count`.
fn histogram(
    out: &mut String,
    name: &str,
    metric: &Metric,
    labels: &[(&str, &str)],
    exemplars: Option<&ExemplarStore>,
) {
    let h = metric.get_histogram();
    let stored = exemplars.and_then(|s| s.lookup(name, metric));
    let bucket = format!("{name}_bucket");
    let mut inf_seen = false;
    for (i, b) in h.get_bucket().iter().enumerate() {
        let le = number(b.upper_bound());
        inf_seen |= b.upper_bound().is_infinite();
        let exemplar = stored.as_ref().and_then(|s| s.get(i).copied().flatten());
        let count = b.cumulative_count() as f64;
        line(out, &bucket, labels, Some(&le), count, exemplar);
    }
    let count = h.get_sample_count() as f64;
    if !inf_seen {
        let exemplar = stored.as_ref().and_then(|s| s.last().copied().flatten());
        line(out, &bucket, labels, Some("+Inf"), count, exemplar);
    }
    let sum = h.get_sample_sum();
    line(out, &format!("{name}_sum"), labels, None, sum, None);
    line(out, &format!("{name}_count"), labels, None, count, None);
}

/// One sample line, with its exemplar when it has one.
fn line(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    value: f64,
    exemplar: Option<Exemplar>,
) {
    out.push_str(name);
    let mut all = labels
        .iter()
        .copied()
        .chain(le.map(|le| ("le", le)))
        .peekable();
    if all.peek().is_some() {
        out.push('{');
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape(v, true, out);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    if let Some(e) = exemplar {
        let mut trace = [0u8; 32];
        let mut span = [0u8; 16];
        hex_into(&e.trace_id, &mut trace);
        hex_into(&e.span_id, &mut span);
        // Hex digits only: always UTF-8.
        let _ = write!(
            out,
            " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {}.{:09}",
            std::str::from_utf8(&trace).unwrap_or_default(),
            std::str::from_utf8(&span).unwrap_or_default(),
            number(e.value),
            e.time_nanos / 1_000_000_000,
            e.time_nanos % 1_000_000_000
        );
    }
    out.push('\n');
}

/// A number as OpenMetrics writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// HELP text and label values: backslash, newline, and (in label values) double quote escaped.
fn escape(s: &str, quotes: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntGauge, Registry};

    #[test]
    fn families_as_openmetrics_with_exemplars_on_buckets_only() {
        let registry = Registry::new();
        let counter = IntCounter::new("orders_total", "Orders \"placed\"").unwrap();
        let gauge = IntGauge::new("queue_length", "Queue\nlength").unwrap();
        let hist = HistogramVec::new(
            HistogramOpts::new("duration_seconds", "Duration").buckets(vec![0.1, 1.0]),
            &["route"],
        )
        .unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        registry.register(Box::new(gauge.clone())).unwrap();
        registry.register(Box::new(hist.clone())).unwrap();
        counter.inc_by(3);
        gauge.set(2);
        hist.with_label_values(&["/a"]).observe(0.5);
        let store = ExemplarStore::default();
        store
            .series("duration_seconds", &[("route", "/a")], &[0.1, 1.0])
            .record(0.5, [0xab; 16], [0xcd; 8]);

        let text = encode(&registry.gather(), Some(&store));
        let ab = "ab".repeat(16);
        let cd = "cd".repeat(8);
        let expected_bucket = format!(
            "duration_seconds_bucket{{route=\"/a\",le=\"1\"}} 1 # {{trace_id=\"{ab}\",span_id=\"{cd}\"}} 0.5 "
        );
        assert!(text.contains(&expected_bucket), "{text}");
        for line in text.lines() {
            if line.contains(" # {") {
                assert!(
                    line.starts_with("duration_seconds_bucket"),
                    "exemplar on {line}"
                );
            }
        }
        assert!(
            text.contains(
                "# TYPE orders counter\n# HELP orders Orders \"placed\"\norders_total 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP queue_length Queue\\nlength\nqueue_length 2\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_count{route=\"/a\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        // Exemplar label sets stay far below OpenMetrics' 128 code points.
        assert!(format!("trace_id{ab}span_id{cd}").chars().count() <= 128);
    }
}
