//! The server's HTTP API, as the command line calls it: JSON in and out, the key as a bearer
//! token, and an error that is one line (the server's `detail` and the request's id, and for a
//! 401 or 403 the role the command needs).

use netorch_domain::{Action, Role};
use serde_json::Value;
use std::fmt;
use std::io::BufRead;
use std::time::Duration;

/// How long a call may take, whole.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed call, as the command line reports it.
#[derive(Debug)]
pub struct CallError {
    /// The HTTP status, or `None` when the server was not reached.
    pub status: Option<u16>,
    /// One line: what went wrong.
    pub message: String,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

/// A server and the key to call it with.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    streams: ureq::Agent,
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8000`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        // An event stream lasts as long as it is followed; the server's keep-alive comes every
        // 15 s, so a minute without a byte is a dead connection.
        let streams = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(None)
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
            streams,
        }
    }

    /// `GET path`: the JSON answer.
    pub fn get(&self, path: &str, action: Action) -> Result<Value, CallError> {
        self.call("GET", path, None, action)
    }

    /// `method path` with `body` (JSON) or none: the JSON answer (`Null` for none).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        action: Action,
    ) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/json");
        let request = match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        };
        let sent = match body {
            Some(body) => {
                let request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .map_err(|e| unreachable_server(&url, &e))?;
                self.agent.run(request)
            }
            None => {
                let request = request.body(()).map_err(|e| unreachable_server(&url, &e))?;
                self.agent.run(request)
            }
        };
        let mut response = sent.map_err(|e| unreachable_server(&url, &e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| unreachable_server(&url, &e))?;
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| CallError {
                status: Some(status),
                message: format!("{method} {path}: the answer is not JSON ({e})"),
            });
        }
        Err(refusal(method, path, status, &text, action))
    }

    /// Opens the event stream of `path` after event `after`: its lines as they come.
    pub fn stream(
        &self,
        path: &str,
        after: Option<i64>,
    ) -> Result<Box<dyn BufRead + Send>, CallError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.streams.get(&url).header("Accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(after) = after {
            request = request.header("Last-Event-ID", after.to_string());
        }
        let response = request.call().map_err(|e| unreachable_server(&url, &e))?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut response = response;
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(refusal("GET", path, status, &text, Action::Read));
        }
        Ok(Box::new(std::io::BufReader::new(
            response.into_body().into_reader(),
        )))
    }
}

/// The server could not be reached or the exchange broke.
fn unreachable_server(url: &str, error: &dyn fmt::Display) -> CallError {
    CallError {
        status: None,
        message: format!("{url}: {error} (is the server running? --url or NETORCH_URL)"),
    }
}

/// An answer that is not 2xx, as one line.
fn refusal(method: &str, path: &str, status: u16, text: &str, action: Action) -> CallError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let detail = match &body["detail"] {
        Value::String(detail) => detail.clone(),
        Value::Null => text.chars().take(200).collect(),
        // A 422's field errors: the first one's message.
        other => other[0]["msg"]
            .as_str()
            .map_or_else(|| other.to_string(), str::to_owned),
    };
    let mut message = format!("{method} {path}: {status} {detail}");
    match status {
        401 => message.push_str("; a key is needed: --token, --token-file or NETORCH_TOKEN"),
        403 => message.push_str(&format!(
            "; this needs a key of the {} role",
            needed_role(action)
        )),
        _ => {}
    }
    if let Some(id) = body["request_id"].as_str() {
        message.push_str(&format!(" (request {id})"));
    }
    CallError {
        status: Some(status),
        message,
    }
}

/// The least role that may do `action`.
pub fn needed_role(action: Action) -> String {
    let roles: Vec<&str> = Role::ALL
        .into_iter()
        .filter(|role| role.may(action))
        .map(Role::as_str)
        .collect();
    match roles.as_slice() {
        [only] => (*only).to_owned(),
        [first, ..] => format!("{first} (or above)"),
        [] => "admin".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_line_with_the_detail_the_request_and_the_role() {
        let error = refusal(
            "DELETE",
            "/deployments/4",
            403,
            r#"{"detail": "a viewer key may not delete deployments", "request_id": "abc"}"#,
            Action::Delete,
        );
        assert_eq!(
            error.message,
            "DELETE /deployments/4: 403 a viewer key may not delete deployments; this needs a \
             key of the admin role (request abc)"
        );
        assert_eq!(needed_role(Action::Change), "operator (or above)");
        assert_eq!(needed_role(Action::Read), "viewer (or above)");
        let invalid = refusal(
            "POST",
            "/deployments",
            422,
            r#"{"detail": [{"msg": "name is too long"}], "request_id": "x"}"#,
            Action::Change,
        );
        assert_eq!(
            invalid.message,
            "POST /deployments: 422 name is too long (request x)"
        );
        assert!(!invalid.message.contains('\n'));
    }
}
