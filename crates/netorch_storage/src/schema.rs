//! The one portable schema, for both backends. Keep in step with `migrations/sqlite` and
//! `migrations/postgres`; the `schema_matches_migrations` test checks that they agree.

diesel::table! {
    /// Deployments.
    deployments (id) {
        /// Id.
        id -> BigInt,
        /// Name.
        name -> Text,
        /// Description.
        description -> Nullable<Text>,
        /// Node count at creation.
        target_node_count -> Integer,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        updated_at -> BigInt,
        /// Nodes in `PENDING`.
        pending_nodes -> BigInt,
        /// Nodes in `PROVISIONING`.
        provisioning_nodes -> BigInt,
        /// Nodes in `CONFIGURING`.
        configuring_nodes -> BigInt,
        /// Nodes in `RUNNING`.
        running_nodes -> BigInt,
        /// Nodes in `FAILED`.
        failed_nodes -> BigInt,
        /// Bumped by every transaction that changes any of the deployment's nodes.
        nodes_version -> BigInt,
        /// Most nodes in a phase at once; NULL for no limit.
        max_in_flight -> Nullable<Integer>,
        /// Failed share of finished nodes (percent) past which the rollout pauses.
        max_failure_percent -> Nullable<Double>,
        /// Automatic retries per node.
        max_retries -> Integer,
        /// Longest a phase may take, in seconds.
        phase_timeout_seconds -> Nullable<Integer>,
        /// Microseconds since the epoch; NULL unless paused.
        paused_at -> Nullable<BigInt>,
        /// Failed nodes with an automatic retry scheduled.
        retrying_nodes -> BigInt,
        /// Nodes in `DECOMMISSIONING`.
        decommissioning_nodes -> BigInt,
        /// `simulated` or `pushed` (`TelemetryOrigin`).
        telemetry_origin -> Text,
        /// The alert rules as JSON (`AlertRules`); `{}` is the defaults.
        alert_rules -> Text,
        /// The provisioner profile driving its nodes (`simulator`: the workers' built-in one).
        provisioner -> Text,
        /// The profile's parameters, a JSON object.
        provisioner_parameters -> Text,
        /// The self-healing policy (JSON), NULL: off.
        remediation -> Nullable<Text>,
        /// Why self-healing is stopped (JSON), NULL while it is not.
        remediation_stopped -> Nullable<Text>,
    }
}

diesel::table! {
    /// Nodes.
    nodes (id) {
        /// Id.
        id -> BigInt,
        /// Owning deployment.
        deployment_id -> BigInt,
        /// `node-001`, ...
        name -> Text,
        /// Upper-case state name.
        state -> Text,
        /// Hostname.
        hostname -> Nullable<Text>,
        /// IPv4 address, unique.
        ip_address -> Nullable<Text>,
        /// Retry count.
        attempt -> Integer,
        /// Why it failed.
        failure_reason -> Nullable<Text>,
        /// Optimistic-concurrency version.
        version -> BigInt,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch.
        updated_at -> BigInt,
        /// Microseconds since the epoch.
        state_changed_at -> BigInt,
        /// When the lifecycle worker looks at the node next (microseconds), NULL when done.
        check_after -> Nullable<BigInt>,
        /// How many times self-healing re-provisioned it.
        remediations -> Integer,
        /// When self-healing last re-provisioned it (microseconds).
        remediated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Telemetry samples.
    telemetry_samples (id) {
        /// Id.
        id -> BigInt,
        /// Deployment of the node.
        deployment_id -> BigInt,
        /// Node.
        node_id -> BigInt,
        /// Microseconds since the epoch.
        sampled_at -> BigInt,
        /// Milliseconds.
        latency_ms -> Double,
        /// Gb/s.
        throughput_gbps -> Double,
        /// Percent.
        error_rate -> Double,
    }
}

diesel::table! {
    /// The audit log.
    events (id) {
        /// Id, in order of occurrence.
        id -> BigInt,
        /// Deployment concerned.
        deployment_id -> Nullable<BigInt>,
        /// Node concerned.
        node_id -> Nullable<BigInt>,
        /// Upper-case event type.
        event_type -> Text,
        /// Human sentence.
        message -> Text,
        /// JSON object as text.
        metadata -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Who caused it through the API (also in `metadata`); null for the workers' own.
        actor -> Nullable<Text>,
    }
}

diesel::table! {
    /// Worker liveness.
    worker_heartbeats (name, kind) {
        /// Worker name.
        name -> Text,
        /// `lifecycle`, `telemetry`, `alerts` or `server`.
        kind -> Text,
        /// The worker's tick interval.
        interval_ms -> BigInt,
        /// Microseconds since the epoch.
        started_at -> BigInt,
        /// Microseconds since the epoch.
        last_heartbeat -> BigInt,
        /// When the loop stopped cleanly (microseconds since the epoch); null while it runs.
        stopped_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Per-node one-minute rollups.
    telemetry_minutes (deployment_id, bucket, node_id) {
        /// Deployment.
        deployment_id -> BigInt,
        /// Bucket start, microseconds since the epoch.
        bucket -> BigInt,
        /// Node.
        node_id -> BigInt,
        /// Samples in the bucket.
        sample_count -> BigInt,
        /// Newest sample's time, microseconds.
        newest -> BigInt,
        /// Mean of the metric.
        latency_mean -> Double,
        /// Sum of squared deviations of the metric.
        latency_m2 -> Double,
        /// Minimum of the metric.
        latency_min -> Double,
        /// Maximum of the metric.
        latency_max -> Double,
        /// Mean of the metric.
        throughput_mean -> Double,
        /// Sum of squared deviations of the metric.
        throughput_m2 -> Double,
        /// Minimum of the metric.
        throughput_min -> Double,
        /// Maximum of the metric.
        throughput_max -> Double,
        /// Mean of the metric.
        error_mean -> Double,
        /// Sum of squared deviations of the metric.
        error_m2 -> Double,
        /// Minimum of the metric.
        error_min -> Double,
        /// Maximum of the metric.
        error_max -> Double,
    }
}

diesel::table! {
    /// Per-node one-hour rollups.
    telemetry_hours (deployment_id, bucket, node_id) {
        /// Deployment.
        deployment_id -> BigInt,
        /// Bucket start, microseconds since the epoch.
        bucket -> BigInt,
        /// Node.
        node_id -> BigInt,
        /// Samples in the bucket.
        sample_count -> BigInt,
        /// Newest sample's time, microseconds.
        newest -> BigInt,
        /// Mean of the metric.
        latency_mean -> Double,
        /// Sum of squared deviations of the metric.
        latency_m2 -> Double,
        /// Minimum of the metric.
        latency_min -> Double,
        /// Maximum of the metric.
        latency_max -> Double,
        /// Mean of the metric.
        throughput_mean -> Double,
        /// Sum of squared deviations of the metric.
        throughput_m2 -> Double,
        /// Minimum of the metric.
        throughput_min -> Double,
        /// Maximum of the metric.
        throughput_max -> Double,
        /// Mean of the metric.
        error_mean -> Double,
        /// Sum of squared deviations of the metric.
        error_m2 -> Double,
        /// Minimum of the metric.
        error_min -> Double,
        /// Maximum of the metric.
        error_max -> Double,
    }
}

diesel::table! {
    /// Per-deployment one-minute rollups.
    fleet_telemetry_minutes (deployment_id, bucket) {
        /// Deployment.
        deployment_id -> BigInt,
        /// Bucket start, microseconds since the epoch.
        bucket -> BigInt,
        /// Nodes with samples in the bucket.
        nodes -> BigInt,
        /// Samples in the bucket.
        sample_count -> BigInt,
        /// Newest sample's time, microseconds.
        newest -> BigInt,
        /// Mean of the metric.
        latency_mean -> Double,
        /// Sum of squared deviations of the metric.
        latency_m2 -> Double,
        /// Minimum of the metric.
        latency_min -> Double,
        /// Maximum of the metric.
        latency_max -> Double,
        /// Mean of the metric.
        throughput_mean -> Double,
        /// Sum of squared deviations of the metric.
        throughput_m2 -> Double,
        /// Minimum of the metric.
        throughput_min -> Double,
        /// Maximum of the metric.
        throughput_max -> Double,
        /// Mean of the metric.
        error_mean -> Double,
        /// Sum of squared deviations of the metric.
        error_m2 -> Double,
        /// Minimum of the metric.
        error_min -> Double,
        /// Maximum of the metric.
        error_max -> Double,
    }
}

diesel::table! {
    /// Per-deployment one-hour rollups.
    fleet_telemetry_hours (deployment_id, bucket) {
        /// Deployment.
        deployment_id -> BigInt,
        /// Bucket start, microseconds since the epoch.
        bucket -> BigInt,
        /// Nodes with samples in the bucket.
        nodes -> BigInt,
        /// Samples in the bucket.
        sample_count -> BigInt,
        /// Newest sample's time, microseconds.
        newest -> BigInt,
        /// Mean of the metric.
        latency_mean -> Double,
        /// Sum of squared deviations of the metric.
        latency_m2 -> Double,
        /// Minimum of the metric.
        latency_min -> Double,
        /// Maximum of the metric.
        latency_max -> Double,
        /// Mean of the metric.
        throughput_mean -> Double,
        /// Sum of squared deviations of the metric.
        throughput_m2 -> Double,
        /// Minimum of the metric.
        throughput_min -> Double,
        /// Maximum of the metric.
        throughput_max -> Double,
        /// Mean of the metric.
        error_mean -> Double,
        /// Sum of squared deviations of the metric.
        error_m2 -> Double,
        /// Minimum of the metric.
        error_min -> Double,
        /// Maximum of the metric.
        error_max -> Double,
    }
}

diesel::table! {
    /// API keys: a name, a role and the token's SHA-256; never the token.
    api_keys (name) {
        /// The key's unique name (the actor events record).
        name -> Text,
        /// `viewer`, `collector`, `operator` or `admin`.
        role -> Text,
        /// SHA-256 of the token, lowercase hex.
        token_sha256 -> Text,
        /// Microseconds since the epoch.
        created_at -> BigInt,
        /// Microseconds since the epoch; null: never expires.
        expires_at -> Nullable<BigInt>,
        /// Microseconds since the epoch; null: never used.
        last_used_at -> Nullable<BigInt>,
        /// Microseconds since the epoch; null: not revoked.
        revoked_at -> Nullable<BigInt>,
        /// The ids of the deployments it is limited to, comma-separated and ascending; null:
        /// every deployment.
        deployments -> Nullable<Text>,
    }
}

diesel::table! {
    /// Alerts, one row per firing of a condition.
    alerts (id) {
        /// Id.
        id -> BigInt,
        /// From the identity labels.
        fingerprint -> Text,
        /// Deployment (no foreign key: history outlives it).
        deployment_id -> BigInt,
        /// Node, for an alert about one.
        node_id -> Nullable<BigInt>,
        /// Rule name.
        rule -> Text,
        /// `alertname` label.
        alertname -> Text,
        /// `critical`, `warning` or `info`.
        severity -> Text,
        /// `pending`, `firing` or `resolved`.
        state -> Text,
        /// JSON object.
        labels -> Text,
        /// JSON object.
        annotations -> Text,
        /// Microseconds since the epoch.
        active_since -> BigInt,
        /// Microseconds; NULL while pending.
        starts_at -> Nullable<BigInt>,
        /// Microseconds; NULL until resolved.
        ends_at -> Nullable<BigInt>,
        /// Microseconds; NULL while the condition holds.
        clear_since -> Nullable<BigInt>,
        /// Key name.
        acknowledged_by -> Nullable<Text>,
        /// Microseconds.
        acknowledged_at -> Nullable<BigInt>,
        /// Operator's comment.
        ack_comment -> Nullable<Text>,
        /// JSON array of silence ids.
        silenced_by -> Text,
        /// Microseconds.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// Silences.
    silences (id) {
        /// Id.
        id -> BigInt,
        /// JSON array of matchers.
        matchers -> Text,
        /// Microseconds.
        starts_at -> BigInt,
        /// Microseconds.
        ends_at -> BigInt,
        /// Key name.
        created_by -> Text,
        /// Why.
        comment -> Text,
        /// Microseconds.
        created_at -> BigInt,
        /// Key name of an early expiry.
        expired_by -> Nullable<Text>,
        /// Whether SILENCE_EXPIRED is written.
        expiry_recorded -> Bool,
    }
}

diesel::table! {
    /// The alerts loop's progress per deployment.
    alert_evaluations (deployment_id) {
        /// Deployment.
        deployment_id -> BigInt,
        /// Start of the last slot evaluated, microseconds.
        evaluated_slot -> BigInt,
        /// Worker evaluating it now.
        lease_owner -> Nullable<Text>,
        /// Until when, microseconds.
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Where alerts are told.
    alert_receivers (id) {
        /// Id.
        id -> BigInt,
        /// Unique name.
        name -> Text,
        /// `alertmanager`, `webhook` or `pagerduty`.
        kind -> Text,
        /// Where to send.
        url -> Text,
        /// Signing key or routing key; never shown.
        secret -> Nullable<Text>,
        /// Microseconds.
        created_at -> BigInt,
        /// Microseconds.
        updated_at -> BigInt,
        /// Microseconds: Alertmanager's last re-send.
        resent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The outbox.
    notifications (id) {
        /// Id, in order of the changes.
        id -> BigInt,
        /// Receiver.
        receiver_id -> BigInt,
        /// Alert.
        alert_id -> BigInt,
        /// The alert's fingerprint.
        fingerprint -> Text,
        /// `firing`, `resolved` or `acknowledged`.
        action -> Text,
        /// `pending`, `delivered` or `failed`.
        state -> Text,
        /// Attempts so far.
        attempts -> Integer,
        /// Microseconds.
        next_attempt_at -> BigInt,
        /// The last attempt's error.
        last_error -> Nullable<Text>,
        /// Microseconds.
        created_at -> BigInt,
        /// Microseconds.
        delivered_at -> Nullable<BigInt>,
        /// Microseconds: a worker's lease.
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Per-node sealed minutes: an hour's first minutes of one-minute rollups in one row.
    telemetry_sealed_minutes (deployment_id, bucket, node_id) {
        /// Deployment.
        deployment_id -> BigInt,
        /// The hour's start, microseconds since the epoch.
        bucket -> BigInt,
        /// Node.
        node_id -> BigInt,
        /// How many of the hour's minutes, from its start, the row holds.
        sealed_minutes -> Integer,
        /// Samples in those minutes.
        sample_count -> BigInt,
        /// The minutes' rollups, packed (`rollups::sealed`).
        minutes -> Binary,
    }
}

diesel::table! {
    /// Samples a collector has sent part of: their metrics so far, until the rest arrives.
    telemetry_partials (node_id, sampled_at) {
        /// Node.
        node_id -> BigInt,
        /// Microseconds since the epoch.
        sampled_at -> BigInt,
        /// Deployment of the node.
        deployment_id -> BigInt,
        /// Milliseconds, once it arrived.
        latency_ms -> Nullable<Double>,
        /// Gb/s, once it arrived.
        throughput_gbps -> Nullable<Double>,
        /// Percent, once it arrived.
        error_rate -> Nullable<Double>,
        /// The protocol that brought the first of them.
        protocol -> Text,
        /// Microseconds: when the first of them arrived.
        received_at -> BigInt,
    }
}

diesel::table! {
    /// The telemetry export's cursor per target (`export`), with its lease.
    export_cursors (target) {
        /// The target's URL.
        target -> Text,
        /// The last exported position: a sample id on SQLite, a transaction id on PostgreSQL.
        position -> BigInt,
        /// The worker exporting to it.
        holder -> Nullable<Text>,
        /// Microseconds: the holder's lease.
        lease_until -> Nullable<BigInt>,
        /// Microseconds: when an exporter last found nothing left to send.
        caught_up_at -> Nullable<BigInt>,
        /// Samples sent, ever.
        exported -> BigInt,
        /// The last failure, until a send succeeds.
        last_error -> Nullable<Text>,
        /// Microseconds.
        failed_at -> Nullable<BigInt>,
        /// Microseconds.
        created_at -> BigInt,
        /// Microseconds.
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// Runs of external provisioners' programs (`runs`), one per node phase, with the lease of
    /// the worker running it.
    provisioner_runs (id) {
        /// Id.
        id -> BigInt,
        /// The node.
        node_id -> BigInt,
        /// Its deployment.
        deployment_id -> BigInt,
        /// The profile.
        profile -> Text,
        /// `provision`, `configure` or `release`.
        phase -> Text,
        /// Microseconds: when the node entered the phase.
        phase_started_at -> BigInt,
        /// The node's attempt.
        attempt -> Integer,
        /// Times the program was started.
        starts -> Integer,
        /// The worker running it.
        holder -> Text,
        /// Microseconds: the holder's lease.
        lease_until -> BigInt,
        /// The host its process runs on.
        host -> Nullable<Text>,
        /// Its process id.
        pid -> Nullable<BigInt>,
        /// Its process's start time, clock ticks since boot.
        pid_started -> Nullable<BigInt>,
        /// Microseconds.
        started_at -> BigInt,
        /// Microseconds.
        finished_at -> Nullable<BigInt>,
        /// How it ended.
        outcome -> Nullable<Text>,
        /// Its exit status.
        exit_code -> Nullable<Integer>,
        /// What it said.
        message -> Nullable<Text>,
        /// The address it reported.
        address -> Nullable<Text>,
        /// The end of its standard output.
        stdout -> Text,
        /// The end of its standard error.
        stderr -> Text,
    }
}

diesel::joinable!(nodes -> deployments (deployment_id));
diesel::joinable!(provisioner_runs -> nodes (node_id));
diesel::joinable!(notifications -> alert_receivers (receiver_id));
diesel::allow_tables_to_appear_in_same_query!(
    deployments,
    nodes,
    telemetry_samples,
    events,
    alerts,
    alert_evaluations,
    alert_receivers,
    notifications,
    provisioner_runs
);
