//! `netorch events`: a deployment's audit log, page by page, or followed live through its event
//! stream (Server-Sent Events), reconnecting after a dropped connection or a server's restart
//! with `Last-Event-ID`, as a browser's `EventSource` does, so that every event is printed once
//! and in order.

use crate::client::{CallError, Client};
use crate::exit;
use crate::output::{Format, cell};
use netorch_domain::Action;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Events {
    /// The deployment's id.
    pub id: i64,
    /// Keep printing new events as they are recorded (until the deployment is deleted).
    #[arg(short, long)]
    pub follow: bool,
    /// Start from the last N events recorded so far (default: from the first).
    #[arg(long)]
    pub tail: Option<u32>,
}

/// Prints one event: a line of the table, or the API's JSON on one line.
fn print_event(format: Format, event: &Value) {
    match format {
        Format::Json => crate::outln!("{event}"),
        Format::Table => crate::outln!(
            "{}  {:<20}  {}",
            cell(&event["created_at"]),
            cell(&event["event_type"]),
            cell(&event["message"])
        ),
    }
}

pub fn events(client: &Client, format: Format, args: &Events) -> Result<u8, CallError> {
    if args.follow {
        return follow(client, format, args);
    }
    let mut events: Vec<Value> = Vec::new();
    let mut after = None;
    loop {
        let mut path = format!("/deployments/{}/events?limit=1000", args.id);
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        let page = client.get(&path, Action::Read)?;
        events.extend(page["events"].as_array().into_iter().flatten().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let skip = args
        .tail
        .map_or(0, |tail| events.len().saturating_sub(tail as usize));
    for event in &events[skip..] {
        print_event(format, event);
    }
    Ok(exit::OK)
}

/// One message of an event stream, as `EventSource` assembles it.
#[derive(Debug, Default)]
struct Message {
    id: Option<i64>,
    event: String,
    data: String,
}

fn follow(client: &Client, format: Format, args: &Events) -> Result<u8, CallError> {
    let mut last: Option<i64> = None;
    let mut retry = Duration::from_secs(2);
    loop {
        let mut path = format!("/deployments/{}/events/stream", args.id);
        if let (None, Some(tail)) = (last, args.tail) {
            path.push_str(&format!("?tail={tail}"));
        }
        let reader = match client.stream(&path, last) {
            Ok(reader) => reader,
            // Gone after we followed it: its stream had ended (deleted meanwhile).
            Err(error) if error.status == Some(404) && last.is_some() => return Ok(exit::OK),
            Err(error) if error.status.is_none_or(|s| s >= 500) => {
                eprintln!(
                    "netorch: {error}; reconnecting in {} s",
                    retry.as_secs_f64()
                );
                std::thread::sleep(retry);
                continue;
            }
            Err(error) => return Err(error),
        };
        let mut message = Message::default();
        for line in std::io::BufRead::lines(reader) {
            let Ok(line) = line else { break };
            if line.is_empty() {
                let done = std::mem::take(&mut message);
                if done.event == "end" {
                    let data: Value = serde_json::from_str(&done.data).unwrap_or(Value::Null);
                    match data["reason"].as_str() {
                        Some("deployment_deleted") => return Ok(exit::OK),
                        Some("key_invalid") => {
                            return Err(CallError {
                                status: Some(401),
                                message: format!(
                                    "the event stream ended: {} (the key was revoked or expired)",
                                    cell(&data["detail"])
                                ),
                            });
                        }
                        // The server is stopping, or its database is away: come back.
                        _ => break,
                    }
                }
                if done.data.is_empty() {
                    continue;
                }
                if let Ok(event) = serde_json::from_str::<Value>(&done.data) {
                    // A reconnection starts after the last one printed, so none repeats.
                    if done
                        .id
                        .is_some_and(|id| last.is_some_and(|seen| id <= seen))
                    {
                        continue;
                    }
                    print_event(format, &event);
                    if done.id.is_some() {
                        last = done.id;
                    }
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => message.id = value.parse().ok(),
                "event" => message.event = value.to_owned(),
                "data" => {
                    if !message.data.is_empty() {
                        message.data.push('\n');
                    }
                    message.data.push_str(value);
                }
                "retry" => {
                    if let Ok(ms) = value.parse::<u64>() {
                        retry = Duration::from_millis(ms.clamp(100, 60_000));
                    }
                }
                _ => {}
            }
        }
        std::thread::sleep(retry);
    }
}
