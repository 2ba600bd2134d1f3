//! API keys: stored by name with their role and the SHA-256 of their token (never the token),
//! found by that hash on every authenticated request.

use crate::connection::write_transaction;
use crate::schema::api_keys;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Result, StorageError};
use diesel::prelude::*;
use netorch_domain::{ApiKey, DeploymentId, Role, Timestamp};

/// How stale `last_used_at` may get: a request writes it only if it is older than this, so
/// that a busy key costs one write a minute, not one per request.
pub const LAST_USED_PRECISION: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
struct KeyRow {
    name: String,
    role: String,
    token_sha256: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
    deployments: Option<String>,
}

/// A key's deployments as the column holds them: ids, comma-separated and ascending.
fn scope_column(deployments: &[DeploymentId]) -> String {
    let mut ids: Vec<i64> = deployments.iter().map(|d| d.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_scope(column: &str) -> Result<Vec<DeploymentId>> {
    column
        .split(',')
        .map(|id| {
            id.parse::<i64>()
                .map(DeploymentId)
                .map_err(|_| StorageError::CorruptRow {
                    table: "api_keys",
                    detail: format!("deployments {column:?} is not a list of ids"),
                })
        })
        .collect()
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StorageError;

    fn try_from(row: KeyRow) -> Result<Self> {
        let at = |micros: Option<i64>| micros.map(|m| from_micros("api_keys", m)).transpose();
        Ok(ApiKey {
            name: row.name,
            role: row.role.parse::<Role>()?,
            created_at: from_micros("api_keys", row.created_at)?,
            expires_at: at(row.expires_at)?,
            last_used_at: at(row.last_used_at)?,
            revoked_at: at(row.revoked_at)?,
            deployments: row.deployments.as_deref().map(parse_scope).transpose()?,
        })
    }
}

/// What a new key is: its name, role, the token's hash and how long and how far it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey<'a> {
    /// Its unique name.
    pub name: &'a str,
    /// What it may do.
    pub role: Role,
    /// The SHA-256 of its token, lowercase hex.
    pub token_sha256: &'a str,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// The deployments it is limited to; `None`: every deployment.
    pub deployments: Option<&'a [DeploymentId]>,
}

/// Stores a new key, made at `now`. A name already taken (by a key revoked or not) is
/// [`StorageError::KeyExists`]; a key limited to a deployment that does not exist is
/// [`StorageError::DeploymentNotFound`] (a limit to nothing would be a mistake).
pub fn create(conn: &mut DbConnection, key: &NewKey<'_>, now: Timestamp) -> Result<ApiKey> {
    let name = key.name;
    if key.deployments.is_some_and(<[DeploymentId]>::is_empty) {
        // A limit to no deployment is a key that reaches nothing: surely a mistake.
        return Err(StorageError::InvalidInput(
            "a key limited to deployments needs at least one".to_owned(),
        ));
    }
    let row = KeyRow {
        name: name.to_owned(),
        role: key.role.as_str().to_owned(),
        token_sha256: key.token_sha256.to_owned(),
        created_at: to_micros(now),
        expires_at: key.expires_at.map(to_micros),
        last_used_at: None,
        revoked_at: None,
        deployments: key.deployments.map(scope_column),
    };
    write_transaction(conn, |conn| {
        let taken: i64 = on_backend!(conn, |c| api_keys::table
            .filter(api_keys::name.eq(name))
            .count()
            .get_result(c))?;
        if taken > 0 {
            return Err(StorageError::KeyExists(name.to_owned()));
        }
        for deployment in key.deployments.unwrap_or_default() {
            crate::deployment_rows::ensure_exists(conn, *deployment)?;
        }
        on_backend!(conn, |c| diesel::insert_into(api_keys::table)
            .values(&row)
            .execute(c))?;
        Ok(())
    })?;
    ApiKey::try_from(row)
}

/// Every key, revoked and expired ones included, by name.
pub fn list(conn: &mut DbConnection) -> Result<Vec<ApiKey>> {
    let rows: Vec<KeyRow> = on_backend!(conn, |c| api_keys::table
        .order(api_keys::name.asc())
        .select(KeyRow::as_select())
        .load(c))?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes key `name` at `now`: from then on its token is refused. Revoking a revoked key
/// changes nothing; a name no key has is [`StorageError::KeyNotFound`].
pub fn revoke(conn: &mut DbConnection, name: &str, now: Timestamp) -> Result<ApiKey> {
    write_transaction(conn, |conn| {
        on_backend!(conn, |c| diesel::update(
            api_keys::table
                .filter(api_keys::name.eq(name))
                .filter(api_keys::revoked_at.is_null())
        )
        .set(api_keys::revoked_at.eq(to_micros(now)))
        .execute(c))?;
        let row: Option<KeyRow> = on_backend!(conn, |c| api_keys::table
            .filter(api_keys::name.eq(name))
            .select(KeyRow::as_select())
            .first(c)
            .optional())?;
        row.ok_or_else(|| StorageError::KeyNotFound(name.to_owned()))?
            .try_into()
    })
}

/// The key whose token hashes to `token_sha256`, if it is active at `now` (not revoked, not
/// expired); records that it was used at `now` when its last use is older than
/// [`LAST_USED_PRECISION`].
pub fn authenticate(
    conn: &mut DbConnection,
    token_sha256: &str,
    now: Timestamp,
) -> Result<Option<ApiKey>> {
    // Every authenticated request reads this: on the inner connection (see `on_backend!`).
    let row: Option<KeyRow> = on_backend!(conn, |c| api_keys::table
        .filter(api_keys::token_sha256.eq(token_sha256))
        .select(KeyRow::as_select())
        .first(c)
        .optional())?;
    let Some(key) = row.map(ApiKey::try_from).transpose()? else {
        return Ok(None);
    };
    if !key.is_active(now) {
        return Ok(None);
    }
    if key
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_PRECISION)
    {
        write_transaction(conn, |conn| {
            on_backend!(conn, |c| diesel::update(
                api_keys::table.filter(api_keys::name.eq(&key.name))
            )
            .set(api_keys::last_used_at.eq(to_micros(now)))
            .execute(c))
            .map_err(StorageError::from)
        })?;
    }
    Ok(Some(key))
}
