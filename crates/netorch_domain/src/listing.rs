//! Which deployments a listing holds and in what order: what `GET /deployments` takes besides
//! its page, so that a fleet of thousands of deployments is searched where it is stored.

use crate::DeploymentStatus;

/// The order of a deployment listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeploymentSort {
    /// Newest first (descending id): the order of Part 1, the default.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// By name ignoring the case of ASCII letters (in the database's collation), the newest
    /// first among equal names.
    Name,
    /// Most failed nodes first, the newest first among equal counts.
    MostFailed,
}

impl DeploymentSort {
    /// Every order.
    pub const ALL: [DeploymentSort; 4] = [
        DeploymentSort::Newest,
        DeploymentSort::Oldest,
        DeploymentSort::Name,
        DeploymentSort::MostFailed,
    ];

    /// The name the API takes (`sort=`).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentSort::Newest => "newest",
            DeploymentSort::Oldest => "oldest",
            DeploymentSort::Name => "name",
            DeploymentSort::MostFailed => "most_failed",
        }
    }
}

/// The deployments a listing holds, and their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentListing {
    /// Only those whose name contains this text, ignoring case as the database's `lower`
    /// folds it (ASCII letters on SQLite, every letter on PostgreSQL); every character stands
    /// for itself.
    pub name_contains: Option<String>,
    /// Only those with this status.
    pub status: Option<DeploymentStatus>,
    /// Their order.
    pub sort: DeploymentSort,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_are_distinct() {
        let names: std::collections::HashSet<_> =
            DeploymentSort::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), DeploymentSort::ALL.len());
    }
}
