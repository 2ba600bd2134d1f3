//! Identifiers as newtypes, so that a node id can never be passed where a deployment id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw database value.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(raw: i64) -> Self {
                Self(raw)
            }
        }
    };
}

id_type!(
    /// A deployment's database id. Never reused, even after the deployment is deleted.
    DeploymentId
);
id_type!(
    /// A node's numeric database id (the API's `Node.id`, and `Sample.node_id`).
    NodeId
);
id_type!(
    /// A telemetry sample's database id.
    SampleId
);
id_type!(
    /// An audit event's database id; increases in order of occurrence.
    EventId
);
id_type!(
    /// An alert's database id: one per firing.
    AlertId
);
id_type!(
    /// A silence's database id.
    SilenceId
);
id_type!(
    /// A receiver's database id.
    ReceiverId
);
id_type!(
    /// A notification's database id, in the order of the changes it tells.
    NotificationId
);
