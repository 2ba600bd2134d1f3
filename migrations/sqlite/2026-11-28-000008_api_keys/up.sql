-- API keys (issue 11): the token is never stored, only its SHA-256 as lowercase hex. `name` is
-- what events record as their actor. Times are microseconds since the epoch.
CREATE TABLE api_keys (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'collector', 'operator', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
