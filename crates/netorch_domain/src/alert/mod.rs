//! Alerts: the rules a deployment is watched by, the alerts they raise and how those move
//! (pending, firing, resolved), acknowledgements, silences, and the audit events of each
//! change. Evaluation itself (reading telemetry) is the service layer's; what one evaluation
//! does to one alert is decided here ([`AlertStep`]).

mod delivery;
mod events;
mod rules;
mod silence;
mod state;

pub use delivery::{
    ALERTMANAGER_RESEND, HTTP_URL_PATTERN, NewReceiver, Notification, NotificationAction,
    NotificationState, PAGERDUTY_EVENTS_URL, RECEIVER_NAME_MAX, Receiver, ReceiverKind,
    alertmanager_alert, check_http_url, check_receiver_name, generator_url, pagerduty_event,
    retry_delay, webhook_payload,
};
pub use rules::{
    AlertRules, BOTTLENECK_RULE_NAME, BottleneckRule, Comparison, MAX_THRESHOLD_RULES,
    MAX_TIMING_SECONDS, MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS, RuleProblem, Severity,
    ThresholdRule, ThresholdScope, Timing, check_rule_name,
};
pub use silence::{
    ActiveSilences, CompiledMatcher, MAX_MATCHER_REGEX_BYTES, Matcher, NewSilence, Silence,
    SilenceState,
};
pub use state::{
    Acknowledgement, Alert, AlertName, AlertState, AlertStep, Labels, OpenAlertCounts, fingerprint,
    identity_labels,
};
