use super::*;
use chrono::TimeDelta;
use chrono::TimeZone;
use netorch_domain::{NodeState, Timestamp};

fn at(unix_seconds: i64) -> Timestamp {
    Utc.timestamp_opt(unix_seconds, 0)
        .single()
        .expect("valid time")
}

fn node(id: i64, deployment: i64, attempt: u32, state_changed_at: Timestamp) -> Node {
    Node {
        id: NodeId(id),
        deployment_id: DeploymentId(deployment),
        name: "node-001".into(),
        state: NodeState::Provisioning,
        hostname: None,
        ip_address: None,
        attempt,
        failure_reason: None,
        version: 0,
        created_at: state_changed_at,
        updated_at: state_changed_at,
        state_changed_at,
        retry_at: None,
        remediations: 0,
        remediated_at: None,
    }
}

#[test]
fn telemetry_equals_the_python_reference_for_2000_readings() {
    let golden = include_str!("../testdata/golden_metrics.csv");
    let mut rows = 0;
    for line in golden.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let id: i64 = fields[0].parse().expect("id");
        let unix: i64 = fields[1].parse().expect("time");
        let want = Metrics {
            latency_ms: fields[2].parse().expect("latency"),
            throughput_gbps: fields[3].parse().expect("throughput"),
            error_rate: fields[4].parse().expect("error rate"),
        };
        assert_eq!(
            metrics_at(NodeId(id), at(unix)),
            want,
            "node {id} at {unix}"
        );
        rows += 1;
    }
    assert_eq!(rows, 2000);
}

#[test]
fn telemetry_at_fractional_slot_starts_equals_the_python_reference() {
    // Half, quarter and tenth seconds: slot starts at time scales 10, 20 and 50.
    let golden = include_str!("../testdata/golden_fractional.csv");
    let mut rows = 0;
    for line in golden.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let id: i64 = fields[0].parse().expect("id");
        let micros: i64 = fields[1].parse().expect("time");
        let want = Metrics {
            latency_ms: fields[2].parse().expect("latency"),
            throughput_gbps: fields[3].parse().expect("throughput"),
            error_rate: fields[4].parse().expect("error rate"),
        };
        let at = DateTime::from_timestamp_micros(micros).expect("valid time");
        assert_eq!(metrics_at(NodeId(id), at), want, "node {id} at {micros} us");
        rows += 1;
    }
    assert_eq!(rows, 1200);
    // The case the issue reported: node 29 at a half second reads 85.78, not the whole
    // second's 85.79.
    let half = DateTime::from_timestamp_micros(1_800_000_032_500_000).expect("valid time");
    assert_eq!(metrics_at(NodeId(29), half).latency_ms, 85.78);
}

#[test]
fn golden_readings() {
    // A few values written out, so that a wrong CSV cannot pass unnoticed.
    let cases = [
        (1, 1_800_000_000, 12.54, 9.61, 0.14),
        (8, 1_800_000_010, 74.18, 6.69, 0.83),
        (9, 1_800_000_000, 92.95, 5.08, 1.12),
        (10, 1_764_282_884, 10.04, 9.52, 0.1),
        (4242, 1_900_000_000, 14.28, 9.39, 0.15),
    ];
    for (id, unix, latency_ms, throughput_gbps, error_rate) in cases {
        assert_eq!(
            metrics_at(NodeId(id), at(unix)),
            Metrics {
                latency_ms,
                throughput_gbps,
                error_rate
            },
            "node {id}"
        );
    }
}

#[test]
fn rounding_matches_python() {
    let golden = include_str!("../testdata/golden_round2.csv");
    for line in golden.lines() {
        let (x, want) = line.split_once(',').expect("two fields");
        let x: f64 = x.parse().expect("x");
        let want: f64 = want.parse().expect("want");
        assert_eq!(round2(x), want, "round({x}, 2)");
    }
    // Exact binary halves go to the even neighbour, as in Python.
    assert_eq!(round2(0.125), 0.12);
    assert_eq!(round2(0.375), 0.38);
    // 2.675 is stored as 2.67499999..., so Python gives 2.67.
    assert_eq!(round2(2.675), 2.67);
}

#[test]
fn readings_stay_in_range_and_degraded_nodes_are_worse() {
    for id in 1..=500 {
        for slot in 0..50 {
            let m = metrics_at(NodeId(id), at(1_800_000_000 + slot * 5));
            assert!((1.0..=200.0).contains(&m.latency_ms), "{m:?}");
            assert!((1.0..=10.0).contains(&m.throughput_gbps), "{m:?}");
            assert!((0.0..=5.0).contains(&m.error_rate), "{m:?}");
            if degraded(NodeId(id)) {
                assert!(
                    m.latency_ms > 50.0 && m.throughput_gbps < 7.0,
                    "{id}: {m:?}"
                );
            } else {
                assert!(
                    m.latency_ms < 30.0 && m.throughput_gbps > 8.0,
                    "{id}: {m:?}"
                );
            }
        }
    }
    let degraded_ids: Vec<i64> = (1..=20).filter(|id| degraded(NodeId(*id))).collect();
    assert_eq!(degraded_ids, vec![8, 9, 18, 19]);
}

#[test]
fn phase_durations_follow_the_node_id() {
    assert_eq!(
        phase_duration(NodeId(1), Phase::Provisioning),
        TimeDelta::seconds(4)
    );
    assert_eq!(
        phase_duration(NodeId(5), Phase::Provisioning),
        TimeDelta::seconds(3)
    );
    assert_eq!(
        phase_duration(NodeId(9), Phase::Provisioning),
        TimeDelta::seconds(7)
    );
    assert_eq!(
        phase_duration(NodeId(7), Phase::Configuring),
        TimeDelta::seconds(5)
    );
    assert_eq!(
        phase_duration(NodeId(13), Phase::Configuring),
        TimeDelta::seconds(11)
    );
    let fast = SimulatedHardware::new(10.0);
    assert_eq!(
        fast.scaled_phase_duration(NodeId(9), Phase::Provisioning),
        TimeDelta::milliseconds(700)
    );
}

#[test]
fn configuration_fails_for_exactly_the_original_nodes() {
    // Deployment 1: ids 19, 39, 59 fail on the first attempt, and pass on the second.
    let failing: Vec<i64> = (1..=60)
        .filter(|id| configuration_fails(NodeId(*id), DeploymentId(1), 0))
        .collect();
    assert_eq!(failing, vec![19, 39, 59]);
    assert!(!configuration_fails(NodeId(19), DeploymentId(1), 1));
    assert!(configuration_fails(NodeId(18), DeploymentId(1), 1));
}

#[test]
fn phases_complete_after_their_duration_and_configuration_can_fail() {
    let hw = SimulatedHardware::default();
    let start = at(1_800_000_000);
    let healthy = node(1, 1, 0, start);
    assert_eq!(
        hw.phase_status(&healthy, Phase::Provisioning, at(1_800_000_003)),
        PhaseStatus::InProgress
    );
    assert_eq!(
        hw.phase_status(&healthy, Phase::Provisioning, at(1_800_000_004)),
        PhaseStatus::Succeeded
    );
    // Node 1: configuring lasts 5 + 1 % 7 = 6 s.
    assert_eq!(
        hw.phase_status(&healthy, Phase::Configuring, at(1_800_000_005)),
        PhaseStatus::InProgress
    );
    assert_eq!(
        hw.phase_status(&healthy, Phase::Configuring, at(1_800_000_006)),
        PhaseStatus::Succeeded
    );

    let unlucky = node(19, 1, 0, start);
    assert_eq!(
        hw.phase_status(&unlucky, Phase::Configuring, at(1_800_000_010)),
        PhaseStatus::Failed(CONFIGURATION_FAILURE_REASON.into())
    );
    let retried = node(19, 1, 1, start);
    assert_eq!(
        hw.phase_status(&retried, Phase::Configuring, at(1_800_000_010)),
        PhaseStatus::Succeeded
    );
}

#[test]
fn hanging_nodes_never_finish_configuring_on_their_first_attempt_only() {
    let start = at(1_800_000_000);
    let much_later = at(1_900_000_000);
    let plain = SimulatedHardware::default();
    let hanging = SimulatedHardware::default().with_hang_every(5);
    assert_eq!(plain.hang_every(), 0);
    for id in 1..=20 {
        let first = node(id, 2, 0, start);
        let status = hanging.phase_status(&first, Phase::Configuring, much_later);
        if id % 5 == 0 {
            assert_eq!(status, PhaseStatus::InProgress, "node {id}");
        } else {
            assert_eq!(
                status,
                plain.phase_status(&first, Phase::Configuring, much_later)
            );
        }
        // Provisioning is never held, and a retry gets through.
        assert_ne!(
            hanging.phase_status(&first, Phase::Provisioning, much_later),
            PhaseStatus::InProgress
        );
        let second = node(id, 2, 1, start);
        assert_ne!(
            hanging.phase_status(&second, Phase::Configuring, much_later),
            PhaseStatus::InProgress
        );
    }
    assert!(!hangs(NodeId(10), 0, 0), "0 hangs nothing");
    // Releasing takes its 2 s, hanging or not, and never fails.
    let leaving = node(15, 2, 0, start);
    assert_eq!(
        hanging.phase_status(&leaving, Phase::Decommissioning, at(1_800_000_001)),
        PhaseStatus::InProgress
    );
    assert_eq!(
        hanging.phase_status(&leaving, Phase::Decommissioning, at(1_800_000_002)),
        PhaseStatus::Succeeded
    );
}

#[test]
fn addresses_are_valid_distinct_and_bounded() {
    assert_eq!(ip_address(NodeId(1)), Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(ip_address(NodeId(256)), Some(Ipv4Addr::new(10, 0, 1, 0)));
    assert_eq!(
        ip_address(NodeId(16_777_214)),
        Some(Ipv4Addr::new(10, 255, 255, 254))
    );
    assert_eq!(ip_address(NodeId(16_777_215)), None);
    assert_eq!(ip_address(NodeId(0)), None);
    let mut seen = std::collections::HashSet::new();
    for id in 1..=100_000 {
        assert!(seen.insert(ip_address(NodeId(id)).expect("in range")));
    }
    let hw = SimulatedHardware::default();
    assert_eq!(
        hw.assign_address(&node(3, 1, 0, at(0))),
        Ok(Some("10.0.0.3".into()))
    );
    assert!(hw.assign_address(&node(20_000_000, 1, 0, at(0))).is_err());
}

#[test]
fn odd_time_scales_fall_back_to_real_time() {
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(SimulatedHardware::new(scale).time_scale(), 1.0);
    }
}

#[test]
fn a_phase_is_never_done_before_its_earliest_completion() {
    let hw = SimulatedHardware::new(2.0);
    let start = at(1_800_000_000);
    for id in 1..=50 {
        for phase in [Phase::Provisioning, Phase::Configuring] {
            let n = node(id, 2, 0, start);
            let earliest = hw.earliest_completion(&n, phase);
            let just_before = start + earliest - chrono::Duration::microseconds(1);
            assert_eq!(
                hw.phase_status(&n, phase, just_before),
                PhaseStatus::InProgress
            );
            assert_ne!(
                hw.phase_status(&n, phase, start + earliest),
                PhaseStatus::InProgress
            );
        }
    }
}

#[test]
fn remediation_clears_a_degraded_nodes_fault_and_changes_nothing_else() {
    for id in 1..=200 {
        let id = NodeId(id);
        for seconds in [0, 37, 1_800_000_000, 1_800_000_123] {
            let t = at(seconds);
            // Never remediated: the original formula, whatever the node.
            assert_eq!(node_metrics_at(id, 0, t), metrics_at(id, t));
            let after = node_metrics_at(id, 1, t);
            assert_eq!(after, node_metrics_at(id, 3, t), "the same after any count");
            if degraded(id) {
                // The healthy profile 0 or 1: latency 10 to 12 ms before a ±6% wave.
                assert!(after.latency_ms < 13.0, "{id}: {after:?}");
                assert!(after.error_rate < 0.5, "{id}: {after:?}");
                assert!(metrics_at(id, t).latency_ms > 45.0);
            } else {
                assert_eq!(after, metrics_at(id, t), "a healthy node stays as it was");
            }
        }
    }
    // The telemetry source reads the node's count.
    let mut remediated = node(18, 1, 1, at(0));
    let hw = SimulatedHardware::default();
    assert_eq!(
        hw.read(&remediated, at(60)),
        Some(metrics_at(NodeId(18), at(60)))
    );
    remediated.remediations = 1;
    assert_eq!(
        hw.read(&remediated, at(60)),
        Some(node_metrics_at(NodeId(18), 1, at(60)))
    );
    assert_ne!(
        hw.read(&remediated, at(60)),
        Some(metrics_at(NodeId(18), at(60)))
    );
}
