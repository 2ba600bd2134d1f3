//! Database work off the async workers: every handler's queries run on actix's blocking
//! pool through these.

use crate::ApiState;
use crate::http::error::ApiError;
use actix_web::web;
use netorch_storage::DbConnection;

/// Starts database work on actix's blocking pool at once (never on the async workers); the
/// returned future yields its result. Several can run at the same time.
pub(crate) fn spawn_db<T, F>(
    state: &ApiState,
    work: F,
) -> impl Future<Output = Result<T, ApiError>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let db = state.db.clone();
    let running = web::block(move || {
        let mut conn = db.get()?;
        work(&mut conn)
    });
    async move {
        running
            .await
            .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
    }
}

/// Runs database work on actix's blocking pool and waits for it.
pub(crate) async fn with_db<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    spawn_db(state, work).await
}

/// [`with_db`] for work that writes: its outcome tells whether writes are failing for lack
/// of space (`/ready`, `/health`).
pub(crate) async fn with_write<T, F>(state: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let outcome = spawn_db(state, work).await;
    state.note_write(&outcome);
    outcome
}
