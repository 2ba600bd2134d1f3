//! Silences: matchers on alert labels that hold matching alerts back from delivery for a
//! time. A silenced alert still shows (marked silenced); only its notifications wait.
//! Matchers are Alertmanager's: a label equal or not to a value, or matching or not a regular
//! expression anchored at both ends.

use crate::{DomainError, SilenceId, Timestamp, alert::Labels};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One condition on one label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// The label's name.
    pub name: String,
    /// The value, or the regular expression.
    pub value: String,
    /// Whether `value` is a regular expression (anchored: it must match the whole value).
    pub is_regex: bool,
    /// Whether the label must match (`true`) or must not.
    pub is_equal: bool,
}

/// The longest regular expression a matcher takes, in bytes.
pub const MAX_MATCHER_REGEX_BYTES: usize = 1_024;

impl Matcher {
    /// The matcher, ready to test labels: fails with the regular expression's error for a
    /// matcher that does not compile.
    pub fn compile(&self) -> Result<CompiledMatcher, DomainError> {
        let regex = if self.is_regex {
            if self.value.len() > MAX_MATCHER_REGEX_BYTES {
                return Err(DomainError::InvalidMatcher(format!(
                    "a regular expression is at most {MAX_MATCHER_REGEX_BYTES} bytes"
                )));
            }
            let anchored = format!("^(?:{})$", self.value);
            Some(
                regex::RegexBuilder::new(&anchored)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| DomainError::InvalidMatcher(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(CompiledMatcher {
            matcher: self.clone(),
            regex,
        })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match (self.is_equal, self.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// A matcher with its regular expression compiled.
#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    matcher: Matcher,
    regex: Option<regex::Regex>,
}

impl CompiledMatcher {
    /// Whether `labels` satisfy it. A missing label is the empty value (Alertmanager's rule).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.matcher.name).map_or("", String::as_str);
        let found = match &self.regex {
            Some(regex) => regex.is_match(value),
            None => value == self.matcher.value,
        };
        found == self.matcher.is_equal
    }
}

/// Where a silence is in its life, from its start and end and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// It starts later.
    Pending,
    /// It holds matching alerts back now.
    Active,
    /// It has ended (or was expired early); it stays listed.
    Expired,
}

impl SilenceState {
    /// The three.
    pub const ALL: [SilenceState; 3] = [
        SilenceState::Pending,
        SilenceState::Active,
        SilenceState::Expired,
    ];

    /// The lower-case name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl std::str::FromStr for SilenceState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SilenceState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownSilenceState(s.to_owned()))
    }
}

/// What it takes to make a silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    /// All must match for an alert to be silenced (at least one).
    pub matchers: Vec<Matcher>,
    /// From when.
    pub starts_at: Timestamp,
    /// Until when (after `starts_at`).
    pub ends_at: Timestamp,
    /// Who made it (the API key's name).
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl NewSilence {
    /// Fails unless there is a matcher, each compiles, and the silence ends after it starts
    /// and after `now`.
    pub fn check(&self, now: Timestamp) -> Result<(), DomainError> {
        if self.matchers.is_empty() {
            return Err(DomainError::InvalidMatcher(
                "a silence needs at least one matcher".into(),
            ));
        }
        for matcher in &self.matchers {
            matcher.compile()?;
        }
        if self.ends_at <= self.starts_at || self.ends_at <= now {
            return Err(DomainError::InvalidSilenceTimes);
        }
        Ok(())
    }
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Database id.
    pub id: SilenceId,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From when.
    pub starts_at: Timestamp,
    /// Until when: moved to the moment it was expired, for one expired early.
    pub ends_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who expired it early, if anyone did.
    pub expired_by: Option<String>,
}

impl Silence {
    /// Its state at `now`. One expired before it started (its end moved to its start) is
    /// expired.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now >= self.ends_at || self.ends_at <= self.starts_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }
}

/// The silences active at one moment, compiled, to test alerts against.
#[derive(Debug, Clone, Default)]
pub struct ActiveSilences {
    silences: Vec<(SilenceId, Vec<CompiledMatcher>)>,
}

impl ActiveSilences {
    /// Those of `silences` active at `now`. A stored matcher that no longer compiles (it was
    /// checked when made) matches nothing, so its silence holds nothing back.
    pub fn new<'a>(silences: impl IntoIterator<Item = &'a Silence>, now: Timestamp) -> Self {
        ActiveSilences {
            silences: silences
                .into_iter()
                .filter(|s| s.state(now) == SilenceState::Active)
                .filter_map(|s| {
                    let compiled: Result<Vec<_>, _> =
                        s.matchers.iter().map(Matcher::compile).collect();
                    compiled.ok().map(|matchers| (s.id, matchers))
                })
                .collect(),
        }
    }

    /// The silences whose every matcher `labels` satisfy, by ascending id.
    pub fn silencing(&self, labels: &Labels) -> Vec<SilenceId> {
        let mut ids: Vec<SilenceId> = self
            .silences
            .iter()
            .filter(|(_, matchers)| matchers.iter().all(|m| m.matches(labels)))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    fn matcher(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_are_alertmanagers() {
        let l = labels(&[("node", "node-007"), ("deployment", "4")]);
        let m = |name, value, re, eq| matcher(name, value, re, eq).compile().expect("compiles");
        assert!(m("node", "node-007", false, true).matches(&l));
        assert!(!m("node", "node-00", false, true).matches(&l));
        assert!(m("node", "node-00", false, false).matches(&l));
        // Anchored at both ends.
        assert!(m("node", "node-00.", true, true).matches(&l));
        assert!(!m("node", "node", true, true).matches(&l));
        assert!(m("node", "node", true, false).matches(&l));
        // A missing label is empty.
        assert!(m("rule", "", false, true).matches(&l));
        assert!(m("rule", ".*", true, true).matches(&l));
        assert!(matcher("node", "(", true, true).compile().is_err());
    }

    #[test]
    fn only_active_silences_hold_alerts_back() {
        let silence = |id, start, end| Silence {
            id: SilenceId(id),
            matchers: vec![matcher("deployment", "4", false, true)],
            starts_at: at(start),
            ends_at: at(end),
            created_by: "ops".into(),
            comment: "maintenance".into(),
            created_at: at(0),
            expired_by: None,
        };
        let all = [silence(1, 0, 100), silence(2, 50, 200), silence(3, 0, 10)];
        assert_eq!(all[1].state(at(20)), SilenceState::Pending);
        assert_eq!(all[2].state(at(20)), SilenceState::Expired);
        // Expired before it started: its end is its start.
        assert_eq!(silence(4, 50, 50).state(at(20)), SilenceState::Expired);
        let l = labels(&[("deployment", "4")]);
        assert_eq!(
            ActiveSilences::new(&all, at(20)).silencing(&l),
            [SilenceId(1)]
        );
        assert_eq!(
            ActiveSilences::new(&all, at(60)).silencing(&l),
            [SilenceId(1), SilenceId(2)]
        );
        assert!(
            ActiveSilences::new(&all, at(60))
                .silencing(&labels(&[("deployment", "5")]))
                .is_empty()
        );
    }

    #[test]
    fn a_silence_needs_matchers_and_an_end_after_its_start() {
        let new = NewSilence {
            matchers: vec![matcher("node", "node-1", false, true)],
            starts_at: at(0),
            ends_at: at(60),
            created_by: "ops".into(),
            comment: "x".into(),
        };
        assert_eq!(new.check(at(0)), Ok(()));
        assert_eq!(new.check(at(60)), Err(DomainError::InvalidSilenceTimes));
        let empty = NewSilence {
            matchers: vec![],
            ..new.clone()
        };
        assert!(empty.check(at(0)).is_err());
    }
}
