use super::*;
use netorch_domain::{DeploymentId, SampleId};
use netorch_simulator::{degraded, metrics_at};
use std::collections::BTreeSet;

const START: i64 = 1_800_000_000;
const SLOTS: i64 = 120; // ten minutes at 5 s

fn at(unix_seconds: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(unix_seconds, 0).expect("valid time")
}

/// A 10-minute window of the simulator's telemetry for `ids`, slot by slot as the worker
/// writes it.
fn simulate(ids: &[i64]) -> Vec<TelemetrySample> {
    let mut samples = Vec::with_capacity(ids.len() * SLOTS as usize);
    for slot in 0..SLOTS {
        for &id in ids {
            let timestamp = at(START + 5 * slot);
            samples.push(TelemetrySample {
                id: SampleId(samples.len() as i64 + 1),
                node_id: NodeId(id),
                deployment_id: DeploymentId(1),
                timestamp,
                metrics: metrics_at(NodeId(id), timestamp),
            });
        }
    }
    samples
}

fn stream(samples: &[TelemetrySample], config: &AnalysisConfig) -> BottleneckReport {
    let mut analysis = StreamingAnalysis::new(*config);
    for s in samples {
        analysis.push(s.node_id, s.timestamp, s.metrics);
    }
    analysis.finish()
}

fn flagged(report: &BottleneckReport) -> BTreeSet<i64> {
    report.bottlenecks.iter().map(|b| b.node_id.get()).collect()
}

fn config(method: Method) -> AnalysisConfig {
    AnalysisConfig::new(method, None).expect("default threshold")
}

/// Precision and recall of `report` against the simulator's ground truth for `ids`; both 1.0
/// when there is nothing to find and nothing is flagged.
fn quality(ids: &[i64], report: &BottleneckReport) -> (f64, f64) {
    let truth: BTreeSet<i64> = ids
        .iter()
        .copied()
        .filter(|id| degraded(NodeId(*id)))
        .collect();
    let found = flagged(report);
    let hits = found.intersection(&truth).count() as f64;
    let precision = if found.is_empty() {
        1.0
    } else {
        hits / found.len() as f64
    };
    let recall = if truth.is_empty() {
        1.0
    } else {
        hits / truth.len() as f64
    };
    (precision, recall)
}

/// `n` node ids of which `share` are degraded, picked from the generator's two profiles:
/// degraded ids end in 8 or 9 (alternately), healthy ids end in 0 to 7.
fn scenario(n: usize, share: f64) -> Vec<i64> {
    let bad = (n as f64 * share).round() as usize;
    let degraded_ids = (0..).map(|k: i64| 10 * (k / 2) + 8 + k % 2).take(bad);
    let healthy_ids = (1..).filter(|id| !degraded(NodeId(*id))).take(n - bad);
    let mut ids: Vec<i64> = degraded_ids.chain(healthy_ids).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "scenario ids overlap");
    ids
}

#[test]
fn zscore_reproduces_the_original_to_1e9() {
    let golden = include_str!("../testdata/golden_zscore.csv");
    let scenarios = [
        ("ids_1_to_10", (1..=10).collect::<Vec<i64>>()),
        ("ids_1_to_40", (1..=40).collect()),
        ("ids_5_to_9", (5..=9).collect()),
    ];
    let mut checked = 0;
    for (name, ids) in scenarios {
        let samples = simulate(&ids);
        for report in [
            analyze(&samples, &config(Method::ZScore)),
            stream(&samples, &config(Method::ZScore)),
        ] {
            let mut want_flagged = BTreeSet::new();
            for line in golden
                .lines()
                .filter(|l| l.starts_with(&format!("{name},")))
            {
                let f: Vec<&str> = line.split(',').collect();
                let id: i64 = f[1].parse().expect("id");
                let number = |i: usize| f[i].parse::<f64>().expect("number");
                if f[6] == "1" {
                    want_flagged.insert(id);
                    let b = report
                        .bottlenecks
                        .iter()
                        .find(|b| b.node_id.get() == id)
                        .unwrap_or_else(|| panic!("{name}: node {id} not flagged"));
                    let got = [
                        b.scores.latency_ms,
                        b.scores.throughput_gbps,
                        b.scores.error_rate,
                        b.deviation_score,
                    ];
                    for (g, w) in got.iter().zip([number(2), number(3), number(4), number(5)]) {
                        assert!((g - w).abs() < 1e-9, "{name} node {id}: {g} vs {w}");
                    }
                }
                checked += 1;
            }
            assert_eq!(flagged(&report), want_flagged, "{name}");
        }
    }
    assert_eq!(checked, 2 * 55);
}

#[test]
fn the_original_misses_half_the_degraded_nodes_at_20_percent() {
    let ids: Vec<i64> = (1..=100).collect();
    let report = analyze(&simulate(&ids), &config(Method::ZScore));
    let nines: BTreeSet<i64> = ids.iter().copied().filter(|id| id % 10 == 9).collect();
    assert_eq!(flagged(&report), nines);
    assert_eq!(quality(&ids, &report), (1.0, 0.5));
}

#[test]
fn robust_finds_every_degraded_node_of_every_fleet_size() {
    for n in [5, 10, 40, 100, 200, 1000] {
        let ids: Vec<i64> = (1..=n).collect();
        let samples = simulate(&ids);
        let report = analyze(&samples, &config(Method::Robust));
        assert_eq!(
            quality(&ids, &report),
            (1.0, 1.0),
            "{n} nodes: {:?}",
            flagged(&report)
        );
        assert_eq!(report.nodes_analyzed, n as usize);
        assert_eq!(report.samples_analyzed, n as u64 * SLOTS as u64);
    }
}

#[test]
fn robust_finds_every_degraded_node_at_5_20_and_40_percent() {
    for n in [20, 100, 1000] {
        for share in [0.05, 0.20, 0.40] {
            let ids = scenario(n, share);
            let report = analyze(&simulate(&ids), &config(Method::Robust));
            assert_eq!(
                quality(&ids, &report),
                (1.0, 1.0),
                "{n} nodes, {share}: {:?}",
                flagged(&report)
            );
        }
    }
}

#[test]
fn the_five_node_case_with_two_degraded_is_found() {
    // Node ids 5 to 9: three healthy, two degraded. The original flags nothing.
    let ids: Vec<i64> = (5..=9).collect();
    let samples = simulate(&ids);
    assert!(
        analyze(&samples, &config(Method::ZScore))
            .bottlenecks
            .is_empty()
    );
    let report = analyze(&samples, &config(Method::Robust));
    assert_eq!(flagged(&report), BTreeSet::from([8, 9]));
    // Node 9 is the worse of the two.
    assert_eq!(report.bottlenecks[0].node_id, NodeId(9));
    assert_eq!(report.bottlenecks[0].sample_count, SLOTS as u64);
    assert_eq!(
        report.bottlenecks[0].newest_sample,
        at(START + 5 * (SLOTS - 1))
    );
    let reasons = &report.bottlenecks[0].reasons;
    assert!(
        reasons.contains(&MetricKind::LatencyMs) && reasons.contains(&MetricKind::ThroughputGbps)
    );
}

#[test]
fn streaming_and_in_memory_forms_agree() {
    for method in Method::ALL {
        for ids in [scenario(100, 0.2), scenario(37, 0.4), (1..=10).collect()] {
            let mut samples = simulate(&ids);
            let batch = analyze(&samples, &config(method));
            // The cursor may deliver samples in any order.
            samples.reverse();
            let streamed = stream(&samples, &config(method));
            assert_eq!(flagged(&batch), flagged(&streamed), "{method}");
            assert_eq!(
                (batch.nodes_analyzed, batch.samples_analyzed),
                (streamed.nodes_analyzed, streamed.samples_analyzed)
            );
            for (a, b) in batch.bottlenecks.iter().zip(&streamed.bottlenecks) {
                assert_eq!(
                    (a.node_id, a.sample_count, a.newest_sample, &a.reasons),
                    (b.node_id, b.sample_count, b.newest_sample, &b.reasons)
                );
                let pairs = [
                    (a.deviation_score, b.deviation_score),
                    (a.scores.latency_ms, b.scores.latency_ms),
                    (a.scores.throughput_gbps, b.scores.throughput_gbps),
                    (a.scores.error_rate, b.scores.error_rate),
                    (a.means.latency_ms, b.means.latency_ms),
                    (a.means.throughput_gbps, b.means.throughput_gbps),
                    (a.means.error_rate, b.means.error_rate),
                ];
                for (x, y) in pairs {
                    assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                        "{method}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_window_read_in_parts_and_merged_gives_the_same_report() {
    for method in Method::ALL {
        let samples = simulate(&scenario(60, 0.2));
        let whole = stream(&samples, &config(method));
        // Split by time, as the API splits a window between two database connections.
        let (first, second) = samples.split_at(samples.len() / 3);
        let mut merged = StreamingAnalysis::new(config(method));
        for s in second {
            merged.push(s.node_id, s.timestamp, s.metrics);
        }
        let mut part = StreamingAnalysis::new(config(method));
        for s in first {
            part.push(s.node_id, s.timestamp, s.metrics);
        }
        merged.merge(part);
        let merged = merged.finish();
        assert_eq!(flagged(&whole), flagged(&merged), "{method}");
        assert_eq!(whole.samples_analyzed, merged.samples_analyzed);
        for (a, b) in whole.bottlenecks.iter().zip(&merged.bottlenecks) {
            assert_eq!(
                (a.sample_count, a.newest_sample),
                (b.sample_count, b.newest_sample)
            );
            assert!(
                (a.deviation_score - b.deviation_score).abs()
                    <= 1e-9 * a.deviation_score.abs().max(1.0)
            );
            assert!(
                (a.means.latency_ms - b.means.latency_ms).abs() <= 1e-9 * a.means.latency_ms.abs()
            );
        }
    }
}

#[test]
fn fewer_than_three_nodes_get_no_robust_verdict() {
    let samples = simulate(&[1, 9]);
    assert!(
        analyze(&samples, &config(Method::Robust))
            .bottlenecks
            .is_empty()
    );
    assert!(
        stream(&samples, &config(Method::Robust))
            .bottlenecks
            .is_empty()
    );
}

#[test]
fn a_zero_mad_falls_back_to_the_mean_absolute_deviation() {
    // Seven identical nodes and one slow one: the MAD of latency is 0.
    let mut samples = Vec::new();
    for id in 1..=8 {
        let latency_ms = if id == 8 { 30.0 } else { 10.0 };
        samples.push(TelemetrySample {
            id: SampleId(id),
            node_id: NodeId(id),
            deployment_id: DeploymentId(1),
            timestamp: at(START),
            metrics: Metrics {
                latency_ms,
                throughput_gbps: 9.0,
                error_rate: 0.1,
            },
        });
    }
    let report = analyze(&samples, &config(Method::Robust));
    assert_eq!(flagged(&report), BTreeSet::from([8]));
    let b = &report.bottlenecks[0];
    // Mean absolute deviation around the median 10 is 20 / 8 = 2.5: 0.7979 * 20 / 2.5.
    assert!((b.scores.latency_ms - 0.7979 * 20.0 / 2.5).abs() < 1e-12);
    // Throughput and error rate are identical everywhere: no score at all.
    assert_eq!((b.scores.throughput_gbps, b.scores.error_rate), (0.0, 0.0));
    assert_eq!(b.reasons, vec![MetricKind::LatencyMs]);
    assert!((b.deviation_score - 0.4 * b.scores.latency_ms).abs() < 1e-12);
}

#[test]
fn a_single_sample_gives_zero_z_scores() {
    let samples = simulate(&[9])[..1].to_vec();
    let report = analyze(&samples, &config(Method::ZScore));
    assert!(report.bottlenecks.is_empty());
    assert!(
        stream(&samples, &config(Method::ZScore))
            .bottlenecks
            .is_empty()
    );
    assert!(analyze(&[], &config(Method::ZScore)).bottlenecks.is_empty());
}

#[test]
fn thresholds_are_configurable_and_validated() {
    let ids: Vec<i64> = (1..=10).collect();
    let samples = simulate(&ids);
    // At 1.0 the original flags the 8s too.
    let loose = AnalysisConfig::new(Method::ZScore, Some(1.0)).expect("valid");
    assert_eq!(flagged(&analyze(&samples, &loose)), BTreeSet::from([8, 9]));
    // An absurd robust threshold flags nothing.
    let strict = AnalysisConfig::new(Method::Robust, Some(1e6)).expect("valid");
    assert!(analyze(&samples, &strict).bottlenecks.is_empty());
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            AnalysisConfig::new(Method::Robust, Some(bad)).is_err(),
            "{bad}"
        );
    }
    assert_eq!(config(Method::Robust).threshold, 3.5);
    assert_eq!(config(Method::ZScore).threshold, 2.0);
    assert_eq!("zscore".parse::<Method>(), Ok(Method::ZScore));
    assert!("mad".parse::<Method>().is_err());
}

#[test]
fn bottlenecks_are_ranked_by_deviation_score() {
    let report = analyze(&simulate(&scenario(200, 0.2)), &config(Method::Robust));
    assert!(
        report
            .bottlenecks
            .windows(2)
            .all(|w| w[0].deviation_score >= w[1].deviation_score)
    );
    // The id-9 profile is worse than the id-8 one, so all 9s come first.
    let last_digit: Vec<i64> = report
        .bottlenecks
        .iter()
        .map(|b| b.node_id.get() % 10)
        .collect();
    let first_eight = last_digit.iter().position(|d| *d == 8).expect("some 8s");
    assert!(last_digit[..first_eight].iter().all(|d| *d == 9));
    assert!(last_digit[first_eight..].iter().all(|d| *d == 8));
}

/// The quality table of docs/ANALYTICS.md. Asserts the robust method's precision and recall
/// of 1.0 on every row; prints the table with `cargo test -p netorch_analytics quality_table --
/// --nocapture`.
#[test]
fn quality_table() {
    let mut rows: Vec<(String, Vec<i64>)> = [5, 10, 40, 100, 200, 1000]
        .into_iter()
        .map(|n| (format!("{n} nodes, ids 1..{n}"), (1..=n).collect()))
        .collect();
    for share in [0.05, 0.20, 0.40] {
        rows.push((
            format!("100 nodes, {:.0} % degraded", share * 100.0),
            scenario(100, share),
        ));
    }
    rows.push(("5 nodes (ids 5..9), 2 degraded".into(), (5..=9).collect()));
    println!(
        "| deployment | degraded | zscore precision | zscore recall | robust precision | robust recall |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, ids) in rows {
        let samples = simulate(&ids);
        let (zp, zr) = quality(&ids, &analyze(&samples, &config(Method::ZScore)));
        let (rp, rr) = quality(&ids, &analyze(&samples, &config(Method::Robust)));
        let bad = ids.iter().filter(|id| degraded(NodeId(**id))).count();
        println!("| {label} | {bad} | {zp:.2} | {zr:.2} | {rp:.2} | {rr:.2} |");
        assert_eq!((rp, rr), (1.0, 1.0), "{label}");
    }
}

/// Per-(node, minute) summaries of `samples`, as the one-minute rollups hold them.
fn minute_rollups(
    samples: &[TelemetrySample],
) -> Vec<(NodeId, i64, netorch_domain::SampleSummary)> {
    let mut rollups: std::collections::BTreeMap<(i64, i64), netorch_domain::SampleSummary> =
        Default::default();
    for s in samples {
        let minute = netorch_domain::Resolution::Minute.bucket_of(s.timestamp.timestamp_micros());
        rollups
            .entry((minute, s.node_id.get()))
            .and_modify(|r| r.push(s.timestamp, &s.metrics))
            .or_insert_with(|| netorch_domain::SampleSummary::of(s.timestamp, &s.metrics));
    }
    rollups
        .into_iter()
        .map(|((minute, node), summary)| (NodeId(node), minute, summary))
        .collect()
}

#[test]
fn a_report_from_minute_rollups_equals_the_report_from_samples() {
    for method in Method::ALL {
        for ids in [scenario(100, 0.2), scenario(37, 0.4), (1..=10).collect()] {
            let samples = simulate(&ids);
            let raw = stream(&samples, &config(method));
            let mut analysis = StreamingAnalysis::new(config(method));
            for (node, minute, summary) in minute_rollups(&samples) {
                analysis.push_minute(node, minute, &summary);
            }
            assert_reports_agree(&raw, &analysis.finish(), method);
        }
    }
}

/// The same bottlenecks, counts and newest samples, and scores and means equal to 1e-9.
fn assert_reports_agree(raw: &BottleneckReport, rolled: &BottleneckReport, method: Method) {
    assert_eq!(flagged(raw), flagged(rolled), "{method}");
    assert_eq!(
        (raw.nodes_analyzed, raw.samples_analyzed),
        (rolled.nodes_analyzed, rolled.samples_analyzed)
    );
    for (a, b) in raw.bottlenecks.iter().zip(&rolled.bottlenecks) {
        assert_eq!(
            (a.node_id, a.sample_count, a.newest_sample, &a.reasons),
            (b.node_id, b.sample_count, b.newest_sample, &b.reasons)
        );
        for (x, y) in [
            (a.deviation_score, b.deviation_score),
            (a.scores.latency_ms, b.scores.latency_ms),
            (a.scores.throughput_gbps, b.scores.throughput_gbps),
            (a.scores.error_rate, b.scores.error_rate),
            (a.means.latency_ms, b.means.latency_ms),
        ] {
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                "{method}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn a_first_minute_read_whole_less_its_samples_before_the_window_equals_the_samples() {
    let ids = scenario(100, 0.2);
    let all = simulate(&ids);
    // A window starting 20 s into its first minute.
    let first = netorch_domain::Resolution::Minute.bucket_of(
        all.iter()
            .map(|s| s.timestamp.timestamp_micros())
            .min()
            .unwrap_or(0),
    ) + 60_000_000;
    let start = first + 20_000_000;
    let inside: Vec<TelemetrySample> = all
        .iter()
        .filter(|s| s.timestamp.timestamp_micros() >= start)
        .cloned()
        .collect();
    for method in Method::ALL {
        let raw = stream(&inside, &config(method));
        let mut analysis = StreamingAnalysis::new(config(method));
        let from_first: Vec<TelemetrySample> = all
            .iter()
            .filter(|s| s.timestamp.timestamp_micros() >= first)
            .cloned()
            .collect();
        for (node, minute, summary) in minute_rollups(&from_first) {
            analysis.push_minute(node, minute, &summary);
        }
        for s in from_first
            .iter()
            .filter(|s| s.timestamp.timestamp_micros() < start)
        {
            let summary = netorch_domain::SampleSummary::of(s.timestamp, &s.metrics);
            analysis.remove_minute(s.node_id, first, &summary);
        }
        assert_reports_agree(&raw, &analysis.finish(), method);
    }
}

#[test]
fn a_zscore_report_from_spans_less_what_lies_outside_equals_the_report_from_samples() {
    use netorch_domain::SampleSummary;
    let ids = scenario(100, 0.2);
    let samples = simulate(&ids);
    let raw = stream(&samples, &config(Method::ZScore));
    let mut analysis = StreamingAnalysis::new(config(Method::ZScore));
    let mut spans: std::collections::BTreeMap<i64, (SampleSummary, SampleSummary)> =
        Default::default();
    for s in &samples {
        // Each node's span also holds samples outside the window: earlier, and far off.
        let mut outside = s.metrics;
        outside.latency_ms += 40.0;
        let before = s.timestamp - chrono::Duration::hours(1);
        let (span, less) = spans.entry(s.node_id.get()).or_insert_with(|| {
            (
                SampleSummary::of(before, &outside),
                SampleSummary::of(before, &outside),
            )
        });
        span.push(s.timestamp, &s.metrics);
        span.push(before, &outside);
        less.push(before, &outside);
    }
    // And a node none of whose samples lies inside.
    let gone = SampleSummary::of(samples[0].timestamp, &samples[0].metrics);
    analysis
        .push_summary(NodeId(10_000), &gone)
        .expect("z-score takes spans");
    analysis.remove_minute(NodeId(10_000), 0, &gone);
    for (node, (span, less)) in &spans {
        analysis
            .push_summary(NodeId(*node), span)
            .expect("z-score takes spans");
        analysis.remove_minute(NodeId(*node), 0, less);
    }
    assert_reports_agree(&raw, &analysis.finish(), Method::ZScore);
}

#[test]
fn a_healthy_node_with_a_few_spikes_is_not_flagged_by_the_robust_method() {
    let ids: Vec<i64> = (1..=100).filter(|id| !degraded(NodeId(*id))).collect();
    let mut samples = simulate(&ids);
    // Three samples of one healthy node, in three different minutes, read 20 times their
    // latency, a tenth of their throughput and 20 % errors: a transient glitch.
    let victim = NodeId(ids[0]);
    let mut spikes = 0;
    for s in samples.iter_mut().filter(|s| s.node_id == victim) {
        let slot = (s.timestamp.timestamp() - START) / 5;
        if [7, 40, 95].contains(&slot) {
            s.metrics.latency_ms *= 20.0;
            s.metrics.throughput_gbps /= 10.0;
            s.metrics.error_rate = 20.0;
            spikes += 1;
        }
    }
    assert_eq!(spikes, 3);
    let robust = analyze(&samples, &config(Method::Robust));
    assert!(flagged(&robust).is_empty(), "{:?}", robust.bottlenecks);
}

#[test]
fn the_robust_method_refuses_a_span_it_would_get_wrong() {
    let config = AnalysisConfig {
        method: Method::Robust,
        ..AnalysisConfig::default()
    };
    let mut analysis = StreamingAnalysis::new(config);
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
    let span = netorch_domain::SampleSummary::of(
        at,
        &Metrics {
            latency_ms: 10.0,
            throughput_gbps: 1.0,
            error_rate: 0.0,
        },
    );
    assert_eq!(
        analysis.push_summary(NodeId(1), &span),
        Err(AnalyticsError::MinuteMeansNeeded(Method::Robust))
    );
    assert!(
        analysis.finish().bottlenecks.is_empty(),
        "nothing was taken in"
    );
}
