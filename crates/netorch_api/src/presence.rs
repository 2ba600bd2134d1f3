//! A server among the servers of its database: every second it reports a `server` heartbeat
//! and counts the live ones, and its rate limit takes its share (`limits::RateLimit`), so that
//! a key limited to 20 requests a second gets 20 through a load balancer in front of three
//! servers, not 60 (docs/PERFORMANCE.md, "A rate limit across servers", has the options
//! measured). The count needs no request to wait on anything: a server that cannot read the
//! heartbeats keeps serving with the share it last knew and says so in `/health` and the log.

use crate::ApiState;
use crate::http::blocking::with_db;
use actix_web::web;
use chrono::Utc;
use netorch_service::workers;
use std::time::Duration;

/// How often a server reports and counts the others.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(1);

/// Reports `name`'s presence every [`PRESENCE_INTERVAL`] until `stop`, sharing the rate limit
/// among the live servers; then says it stopped, so that the others take its share at once.
pub async fn keep_presence(
    state: web::Data<ApiState>,
    name: String,
    stop: impl Future<Output = ()>,
) {
    let started = Utc::now();
    let mut reachable = true;
    let mut ticker = tokio::time::interval(PRESENCE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let reporter = name.clone();
        let counted = with_db(&state, move |conn| {
            Ok(workers::report_server(
                conn,
                &reporter,
                PRESENCE_INTERVAL,
                started,
                Utc::now(),
            )?)
        })
        .await;
        let limit = state.rate_limit.as_deref();
        match counted {
            Ok(servers) => {
                if !reachable {
                    log::info!("the servers' heartbeats can be read again: {servers} alive");
                }
                reachable = true;
                if let Some(limit) = limit {
                    if limit.share().servers != servers {
                        log::info!(
                            "{servers} servers alive: each allows a caller 1/{servers} of the \
                             rate limit"
                        );
                    }
                    limit.share_among(servers, true);
                }
            }
            Err(error) => {
                if reachable {
                    let kept = limit.map_or(1, |l| l.share().servers);
                    log::warn!(
                        "cannot report this server or count the others ({error}): the rate \
                         limit stays at this server's share of {kept} until they can be read"
                    );
                }
                reachable = false;
                if let Some(limit) = limit {
                    limit.share_among(limit.share().servers, false);
                }
            }
        }
    }
    let _ = with_db(&state, move |conn| {
        Ok(workers::report_server_stopped(conn, &name, Utc::now())?)
    })
    .await;
}
