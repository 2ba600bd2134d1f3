//! Access control: the roles an API key can have and what each may do. Pure: the API decides
//! which [`Action`] a request is, this module decides whether a [`Role`] may take it.

use crate::DomainError;
use crate::{DeploymentId, Timestamp};
use std::fmt;
use std::str::FromStr;

/// What an API key may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads: every `GET`.
    Viewer,
    /// Pushes telemetry (`POST /deployments/{id}/telemetry`) and nothing else: what a real
    /// collector needs.
    Collector,
    /// A viewer that also creates, changes, retries, pauses and resumes, and pushes telemetry.
    Operator,
    /// Everything, deletes included.
    Admin,
}

impl Role {
    /// Every role, least to most.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Collector, Role::Operator, Role::Admin];

    /// The role's name, as the CLI and the database spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Collector => "collector",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether the role may take `action`.
    pub const fn may(self, action: Action) -> bool {
        match (self, action) {
            (Role::Admin, _) => true,
            (Role::Operator, action) => !matches!(action, Action::Delete | Action::ManageReceivers),
            (Role::Viewer, action) => matches!(action, Action::Read),
            (Role::Collector, action) => matches!(action, Action::PushTelemetry),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment apply (the CLI's table).
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| DomainError::UnknownRole(s.to_owned()))
    }
}

/// What a request does, as far as access control cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Reads anything.
    Read,
    /// Stores pushed telemetry samples.
    PushTelemetry,
    /// Creates or changes a deployment or a node: create, patch, retry, pause, resume.
    Change,
    /// Deletes a deployment.
    Delete,
    /// Acknowledges alerts and silences them (operators and admins).
    Respond,
    /// Reads and changes where alerts are told: receivers, notifications' retries (admins).
    ManageReceivers,
}

impl Action {
    /// The action's name in a 403's message.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::PushTelemetry => "push telemetry",
            Action::Change => "change deployments or nodes",
            Action::Delete => "delete deployments",
            Action::Respond => "acknowledge or silence alerts",
            Action::ManageReceivers => "manage alert receivers",
        }
    }
}

/// An API key as stored: its name and role and when it was made, expires, was last used and was
/// revoked. The token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's unique name: what events record as their actor.
    pub name: String,
    /// What the key may do.
    pub role: Role,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When a request last used it (to the minute: recorded at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// The deployments it is limited to (`keys create --deployment`); `None`: every one.
    pub deployments: Option<Vec<DeploymentId>>,
}

impl ApiKey {
    /// Whether the key lets requests in at `now`: not revoked and not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether the key may act on `deployment`: any deployment unless it is limited to some;
    /// a limited key reaches only requests about one of its deployments (`None`, a request
    /// about no deployment in particular such as a listing of all of them, is out of its reach).
    pub fn reaches(&self, deployment: Option<DeploymentId>) -> bool {
        match (&self.deployments, deployment) {
            (None, _) => true,
            (Some(scope), Some(deployment)) => scope.contains(&deployment),
            (Some(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_take_exactly_its_row_of_actions() {
        use Action::*;
        let table = [
            (Role::Viewer, [true, false, false, false, false, false]),
            (Role::Collector, [false, true, false, false, false, false]),
            (Role::Operator, [true, true, true, false, true, false]),
            (Role::Admin, [true, true, true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (action, want) in [
                Read,
                PushTelemetry,
                Change,
                Delete,
                Respond,
                ManageReceivers,
            ]
            .into_iter()
            .zip(allowed)
            {
                assert_eq!(role.may(action), want, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn a_key_is_active_until_it_expires_or_is_revoked() {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let mut key = ApiKey {
            name: "ci".into(),
            role: Role::Viewer,
            created_at: t,
            expires_at: Some(t + chrono::Duration::hours(1)),
            last_used_at: None,
            revoked_at: None,
            deployments: None,
        };
        assert!(key.is_active(t));
        assert!(!key.is_active(t + chrono::Duration::hours(1)));
        key.expires_at = None;
        assert!(key.is_active(t + chrono::Duration::days(999)));
        key.revoked_at = Some(t);
        assert!(!key.is_active(t));
    }

    #[test]
    fn a_limited_key_reaches_its_deployments_only() {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
        let mut key = ApiKey {
            name: "rack4".into(),
            role: Role::Collector,
            created_at: t,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            deployments: None,
        };
        assert!(key.reaches(Some(DeploymentId(9))) && key.reaches(None));
        key.deployments = Some(vec![DeploymentId(3), DeploymentId(4)]);
        assert!(key.reaches(Some(DeploymentId(3))) && key.reaches(Some(DeploymentId(4))));
        assert!(!key.reaches(Some(DeploymentId(9))));
        assert!(
            !key.reaches(None),
            "a listing of every deployment is out of its reach"
        );
    }
}
