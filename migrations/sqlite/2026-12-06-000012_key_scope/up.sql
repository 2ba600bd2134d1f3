-- A key limited to named deployments (issue 25): their ids, comma-separated and ascending
-- ("3,4"); null for a key that reaches every deployment. No foreign key: a deleted deployment
-- must not turn a limited key into one that reaches everything.
ALTER TABLE api_keys ADD COLUMN deployments TEXT;
