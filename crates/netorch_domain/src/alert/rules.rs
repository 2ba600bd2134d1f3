//! A deployment's alert rules: what makes one of its nodes, or its whole fleet, alert.

use crate::{DomainError, Method, MetricKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How urgent an alert is: Alertmanager's and PagerDuty's usual three.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone must act now.
    Critical,
    /// Someone should look soon (the default).
    #[default]
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// The three, most urgent first.
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    /// The lower-case name used in the API, the database and the labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownSeverity(s.to_owned()))
    }
}

/// How a threshold rule compares a mean with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// The mean is greater than the value.
    #[serde(rename = ">")]
    Above,
    /// Greater or equal.
    #[serde(rename = ">=")]
    AtLeast,
    /// Less than the value.
    #[serde(rename = "<")]
    Below,
    /// Less or equal.
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    /// The four.
    pub const ALL: [Comparison; 4] = [
        Comparison::Above,
        Comparison::AtLeast,
        Comparison::Below,
        Comparison::AtMost,
    ];

    /// The operator as written in the API (`>`, `>=`, `<`, `<=`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
        }
    }

    /// A word for it, for rule names made from the rule (`latency_ms_gt_50`).
    pub const fn word(self) -> &'static str {
        match self {
            Comparison::Above => "gt",
            Comparison::AtLeast => "ge",
            Comparison::Below => "lt",
            Comparison::AtMost => "le",
        }
    }

    /// Whether `mean` compared with `value` holds.
    pub fn holds(self, mean: f64, value: f64) -> bool {
        match self {
            Comparison::Above => mean > value,
            Comparison::AtLeast => mean >= value,
            Comparison::Below => mean < value,
            Comparison::AtMost => mean <= value,
        }
    }
}

impl FromStr for Comparison {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Comparison::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownComparison(s.to_owned()))
    }
}

/// What a threshold rule's mean is of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdScope {
    /// Each node's own mean: one alert per node past the value (the default).
    #[default]
    Node,
    /// The mean of every sample of the deployment: one alert for the fleet, which catches the
    /// whole fleet slowing down together (no node then stands out from its peers).
    Fleet,
}

impl ThresholdScope {
    /// Both.
    pub const ALL: [ThresholdScope; 2] = [ThresholdScope::Node, ThresholdScope::Fleet];

    /// The lower-case name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            ThresholdScope::Node => "node",
            ThresholdScope::Fleet => "fleet",
        }
    }
}

impl FromStr for ThresholdScope {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ThresholdScope::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownScope(s.to_owned()))
    }
}

/// How long a condition must hold before its alert fires, and must have stopped holding
/// before a firing alert resolves (so that a node on the edge does not flap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timing {
    /// Seconds the condition must hold, from the first evaluation that saw it, before the
    /// alert fires; until then it is `pending` (0: fires at once).
    pub for_seconds: u32,
    /// Seconds a firing alert's condition must have stopped holding before it resolves
    /// (0: at the first evaluation that finds it clear).
    pub resolve_after_seconds: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            for_seconds: 120,
            resolve_after_seconds: 120,
        }
    }
}

/// A node flagged by the bottleneck report over the rule's window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BottleneckRule {
    /// Whether the rule is evaluated at all.
    pub enabled: bool,
    /// How nodes are scored.
    pub method: Method,
    /// The score at which a node counts (the method's default unless set).
    pub threshold: f64,
    /// Seconds of telemetry before each evaluation that the report reads.
    pub window_seconds: u32,
    /// When it fires and resolves.
    #[serde(flatten)]
    pub timing: Timing,
    /// How urgent its alerts are.
    pub severity: Severity,
}

impl Default for BottleneckRule {
    fn default() -> Self {
        BottleneckRule {
            enabled: true,
            method: Method::Robust,
            threshold: Method::Robust.default_threshold(),
            window_seconds: 600,
            timing: Timing::default(),
            severity: Severity::Warning,
        }
    }
}

/// A metric's mean over the rule's window compared with a value, per node or for the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRule {
    /// Unique among the deployment's rules: the alerts' `rule` label.
    pub name: String,
    /// The metric.
    pub metric: MetricKind,
    /// How the mean is compared.
    pub op: Comparison,
    /// With what.
    pub value: f64,
    /// Each node's mean or the fleet's.
    pub scope: ThresholdScope,
    /// Seconds of telemetry before each evaluation that the mean is over.
    pub window_seconds: u32,
    /// When it fires and resolves.
    #[serde(flatten)]
    pub timing: Timing,
    /// How urgent its alerts are.
    pub severity: Severity,
}

impl ThresholdRule {
    /// The name a rule gets when none is given: `latency_ms_gt_50`, `fleet_error_rate_ge_1.5`.
    pub fn default_name(
        metric: MetricKind,
        op: Comparison,
        value: f64,
        scope: ThresholdScope,
    ) -> String {
        let prefix = match scope {
            ThresholdScope::Node => "",
            ThresholdScope::Fleet => "fleet_",
        };
        format!("{prefix}{metric}_{}_{value}", op.word())
    }
}

/// The most threshold rules a deployment has.
pub const MAX_THRESHOLD_RULES: usize = 20;
/// The name of the bottleneck rule (its alerts' `rule` label), which no threshold rule takes.
pub const BOTTLENECK_RULE_NAME: &str = "bottleneck";
/// The shortest window a rule reads: two collection slots of the original's 5 s.
pub const MIN_WINDOW_SECONDS: u32 = 10;
/// The longest: what the bottleneck report reads at most.
pub const MAX_WINDOW_SECONDS: u32 = 3_600;
/// The longest `for_seconds` and `resolve_after_seconds`: a day.
pub const MAX_TIMING_SECONDS: u32 = 86_400;

/// What makes a deployment alert. The default watches for bottlenecks (robust method, 10
/// minutes, firing after 2 minutes flagged and resolving after 2 minutes clear, `warning`)
/// and has no threshold rule (a value is the operator's to choose).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertRules {
    /// A node flagged by the bottleneck report.
    pub bottleneck: BottleneckRule,
    /// Means compared with values.
    pub thresholds: Vec<ThresholdRule>,
}

/// A rule set that breaks one of its invariants: the field (a path of names and indices under
/// `alert_rules`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// Where: `["thresholds", "2", "name"]`.
    pub field: Vec<String>,
    /// Why, as a sentence.
    pub message: String,
}

impl AlertRules {
    /// The invariants each field's own limits do not already say: the threshold rules'
    /// number, their names (unique, not `bottleneck`, letters, digits and `_.:-`, 1 to 64),
    /// their windows and timings, and finite positive thresholds. The API reads each field
    /// within its limits first; this is the last word for every writer.
    pub fn check(&self) -> Result<(), Vec<RuleProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &[&str], message: String| {
            problems.push(RuleProblem {
                field: field.iter().map(|f| (*f).to_owned()).collect(),
                message,
            });
        };
        let b = &self.bottleneck;
        if !b.threshold.is_finite() || b.threshold <= 0.0 {
            problem(
                &["bottleneck", "threshold"],
                "must be a positive number".into(),
            );
        }
        check_window(b.window_seconds, &mut |m| {
            problem(&["bottleneck", "window_seconds"], m)
        });
        check_timing(&b.timing, &mut |f, m| problem(&["bottleneck", f], m));
        if self.thresholds.len() > MAX_THRESHOLD_RULES {
            problem(
                &["thresholds"],
                format!("at most {MAX_THRESHOLD_RULES} threshold rules"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (index, rule) in self.thresholds.iter().enumerate() {
            let index = index.to_string();
            let at = |field: &'static str| ["thresholds", index.as_str(), field];
            if let Err(message) = check_rule_name(&rule.name) {
                problem(&at("name"), message);
            } else if !seen.insert(rule.name.as_str()) {
                problem(
                    &at("name"),
                    format!("another threshold rule is named {:?}", rule.name),
                );
            }
            if !rule.value.is_finite() {
                problem(&at("value"), "must be a finite number".into());
            }
            check_window(rule.window_seconds, &mut |m| {
                problem(&at("window_seconds"), m)
            });
            check_timing(&rule.timing, &mut |f, m| {
                problem(&["thresholds", index.as_str(), f], m)
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A threshold rule's name: 1 to 64 of letters, digits and `_.:-`, and not the bottleneck
/// rule's.
pub fn check_rule_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    {
        return Err("may hold only letters, digits and _ . : -".into());
    }
    if name == BOTTLENECK_RULE_NAME {
        return Err(format!(
            "{BOTTLENECK_RULE_NAME:?} is the bottleneck rule's name"
        ));
    }
    if name == crate::remediation::REMEDIATION_RULE_NAME {
        return Err(format!(
            "{:?} names the alert self-healing fires when it stops",
            crate::remediation::REMEDIATION_RULE_NAME
        ));
    }
    Ok(())
}

fn check_window(seconds: u32, problem: &mut dyn FnMut(String)) {
    if !(MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&seconds) {
        problem(format!(
            "must be from {MIN_WINDOW_SECONDS} to {MAX_WINDOW_SECONDS} seconds"
        ));
    }
}

fn check_timing(timing: &Timing, problem: &mut dyn FnMut(&'static str, String)) {
    for (field, value) in [
        ("for_seconds", timing.for_seconds),
        ("resolve_after_seconds", timing.resolve_after_seconds),
    ] {
        if value > MAX_TIMING_SECONDS {
            problem(
                field,
                format!("must be at most {MAX_TIMING_SECONDS} seconds"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(name: &str) -> ThresholdRule {
        ThresholdRule {
            name: name.into(),
            metric: MetricKind::LatencyMs,
            op: Comparison::Above,
            value: 50.0,
            scope: ThresholdScope::Node,
            window_seconds: 300,
            timing: Timing::default(),
            severity: Severity::Critical,
        }
    }

    #[test]
    fn the_defaults_watch_for_bottlenecks_only() {
        let rules = AlertRules::default();
        assert!(rules.bottleneck.enabled);
        assert_eq!(rules.bottleneck.method, Method::Robust);
        assert_eq!(rules.bottleneck.window_seconds, 600);
        assert_eq!(rules.bottleneck.timing.for_seconds, 120);
        assert_eq!(rules.bottleneck.timing.resolve_after_seconds, 120);
        assert!(rules.thresholds.is_empty());
        assert_eq!(rules.check(), Ok(()));
        // A stored `{}` (every deployment before rules existed) reads as the defaults.
        let parsed: AlertRules = serde_json::from_str("{}").expect("parses");
        assert_eq!(parsed, rules);
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules = AlertRules {
            thresholds: vec![threshold("slow")],
            ..AlertRules::default()
        };
        let text = serde_json::to_string(&rules).expect("serializes");
        assert!(text.contains(r#""op":">""#), "{text}");
        assert!(text.contains(r#""for_seconds":120"#), "{text}");
        assert_eq!(
            serde_json::from_str::<AlertRules>(&text).expect("parses"),
            rules
        );
    }

    #[test]
    fn broken_invariants_name_their_field() {
        let mut rules = AlertRules {
            thresholds: vec![
                threshold("slow"),
                threshold("slow"),
                threshold("bottleneck"),
            ],
            ..AlertRules::default()
        };
        rules.thresholds[0].window_seconds = 5;
        rules.bottleneck.timing.for_seconds = MAX_TIMING_SECONDS + 1;
        let problems = rules.check().expect_err("refused");
        let fields: Vec<String> = problems.iter().map(|p| p.field.join(".")).collect();
        assert_eq!(
            fields,
            [
                "bottleneck.for_seconds",
                "thresholds.0.window_seconds",
                "thresholds.1.name",
                "thresholds.2.name"
            ]
        );
    }

    #[test]
    fn comparisons_and_names() {
        assert!(Comparison::Above.holds(51.0, 50.0));
        assert!(!Comparison::Above.holds(50.0, 50.0));
        assert!(Comparison::AtLeast.holds(50.0, 50.0));
        assert!(Comparison::Below.holds(1.0, 2.0));
        assert!(Comparison::AtMost.holds(2.0, 2.0));
        assert_eq!(
            ThresholdRule::default_name(
                MetricKind::ThroughputGbps,
                Comparison::Below,
                2.5,
                ThresholdScope::Fleet
            ),
            "fleet_throughput_gbps_lt_2.5"
        );
        for op in Comparison::ALL {
            assert_eq!(op.as_str().parse::<Comparison>(), Ok(op));
        }
        assert_eq!(
            check_rule_name("a b"),
            Err("may hold only letters, digits and _ . : -".into())
        );
    }
}
