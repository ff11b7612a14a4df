//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, in the
//! `graphql-transport-ws` protocol (the graphql-ws library's) and the legacy
//! `graphql-ws` one (subscriptions-transport-ws). The access token comes in
//! `connection_init`; a missing or bad one closes the socket with 4401 before
//! anything else happens, and the socket closes with 4401 when the token
//! expires. Subscriptions are capped per connection and per server; a client
//! that does not read its messages is dropped rather than buffered for.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_graphql::{Response as GqlResponse, parser::types::OperationType};
use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{
    SinkExt as _, StreamExt as _,
    stream::{self, BoxStream, SelectAll},
};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::{
    app::AppState,
    error::AppError,
    graphql::{RequestAuth, RequestId, error::classify},
    http::request_id,
    viewer::Viewer,
};

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings (or sends `ka` in the legacy protocol).
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long one message may take to go out before the client counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message a client may send.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The read buffer of one socket; it grows for a larger message.
const READ_BUFFER_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws`.
    Transport,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Transport => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    /// The protocol the client asked for, preferring the current one.
    fn requested(headers: &HeaderMap) -> Option<Self> {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        [Self::Transport, Self::Legacy]
            .into_iter()
            .find(|p| offered.contains(&p.name()))
    }
}

/// The server-wide cap on live subscriptions, shared by every connection.
#[derive(Clone)]
pub struct SubscriptionGate {
    server: Arc<Semaphore>,
    per_connection: usize,
}

impl SubscriptionGate {
    pub fn new(max: usize, per_connection: usize) -> Self {
        Self {
            server: Arc::new(Semaphore::new(max)),
            per_connection,
        }
    }
}

pub async fn handler(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let Some(protocol) = Protocol::requested(&headers) else {
        let err = AppError::bad_input(
            "Sec-WebSocket-Protocol",
            "must offer graphql-transport-ws or graphql-ws",
        );
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(crate::rest::error::ErrorBody::of(&err)),
        )
            .into_response();
    };
    let request_id = request_id(&headers).map(str::to_owned);
    ws.protocols([protocol.name()])
        .max_message_size(MAX_MESSAGE_BYTES)
        // The protocol's messages are small: a read buffer of tungstenite's
        // default 128 KiB per socket made idle connections cost ~150 KiB.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(socket, protocol, state, request_id))
}

/// What the connection loop does after handling one thing.
enum Step {
    Send(Vec<Value>),
    Close(u16, &'static str),
    /// Send these, then close.
    SendAndClose(Vec<Value>, u16, &'static str),
}

/// A subscription's results, then `None` when it ends.
type Results = BoxStream<'static, (String, Option<GqlResponse>)>;

struct Connection {
    protocol: Protocol,
    state: AppState,
    request_id: Option<String>,
    init_received: bool,
    viewer: Option<Viewer>,
    /// Live subscriptions by id, each with the switch that stops it.
    active: HashMap<String, oneshot::Sender<()>>,
    results: SelectAll<Results>,
}

async fn serve(socket: WebSocket, protocol: Protocol, state: AppState, request_id: Option<String>) {
    let (mut sink, mut incoming) = socket.split();
    let mut conn = Connection {
        protocol,
        state,
        request_id,
        init_received: false,
        viewer: None,
        active: HashMap::new(),
        results: SelectAll::new(),
    };
    let init_deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        let expiry = conn.expiry();
        let step = tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(message)) => conn.on_message(message),
                // The client went away.
                Some(Err(_)) | None => break,
            },
            Some((id, result)) = conn.results.next(), if !conn.results.is_empty() => conn.on_result(id, result),
            () = tokio::time::sleep_until(init_deadline), if conn.viewer.is_none() => {
                Step::Close(4408, "Connection initialisation timeout")
            }
            () = tokio::time::sleep_until(expiry), if conn.viewer.is_some() => {
                Step::Close(4401, "Unauthorized: the access token expired")
            }
            _ = keepalive.tick() => Step::Send(vec![match protocol {
                Protocol::Transport => json!({ "type": "ping" }),
                Protocol::Legacy => json!({ "type": "ka" }),
            }]),
        };
        let (messages, close) = match step {
            Step::Send(messages) => (messages, None),
            Step::Close(code, reason) => (Vec::new(), Some((code, reason))),
            Step::SendAndClose(messages, code, reason) => (messages, Some((code, reason))),
        };
        for message in messages {
            let text = Message::Text(Utf8Bytes::from(message.to_string()));
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(text)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::warn!("a subscriber did not read its messages in time and was dropped");
                    return;
                }
            }
        }
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
            return;
        }
    }
}

impl Connection {
    /// When the viewer's access token expires (far off before `connection_init`).
    fn expiry(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let Some(viewer) = &self.viewer else { return far };
        let now = chrono::Utc::now().timestamp();
        let left = Duration::from_secs(u64::try_from(viewer.expires_at - now).unwrap_or(0));
        tokio::time::Instant::from_std(Instant::now() + left)
    }

    fn on_message(&mut self, message: Message) -> Step {
        let text = match message {
            Message::Text(text) => text,
            // Answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => return Step::Send(Vec::new()),
            Message::Close(_) => return Step::Close(1000, "Normal Closure"),
            Message::Binary(_) => return Step::Close(4400, "Invalid message: binary"),
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            return Step::Close(4400, "Invalid message: not JSON");
        };
        let kind = value["type"].as_str().unwrap_or_default();
        match (self.protocol, kind) {
            (_, "connection_init") => self.on_init(&value["payload"]),
            (Protocol::Transport, "ping") => Step::Send(vec![json!({ "type": "pong" })]),
            (Protocol::Transport, "pong") => Step::Send(Vec::new()),
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => self.on_subscribe(&value),
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
                if let Some(id) = value["id"].as_str()
                    && let Some(stop) = self.active.remove(id)
                {
                    let _ = stop.send(());
                }
                Step::Send(Vec::new())
            }
            (Protocol::Legacy, "connection_terminate") => Step::Close(1000, "Normal Closure"),
            _ => Step::Close(4400, "Invalid message: unknown type"),
        }
    }

    fn on_init(&mut self, payload: &Value) -> Step {
        if self.init_received {
            return Step::Close(4429, "Too many initialisation requests");
        }
        self.init_received = true;
        let viewer = bearer(payload).and_then(|token| self.state.services.accounts.authenticate(token).ok());
        match viewer {
            Some(viewer) => {
                self.viewer = Some(viewer.with_request_id(self.request_id.as_deref()));
                let mut messages = vec![json!({ "type": "connection_ack" })];
                if self.protocol == Protocol::Legacy {
                    messages.push(json!({ "type": "ka" }));
                }
                Step::Send(messages)
            }
            None => {
                let refused = match self.protocol {
                    Protocol::Transport => Vec::new(),
                    Protocol::Legacy => vec![json!({
                        "type": "connection_error",
                        "payload": { "message": AppError::Unauthenticated.to_string() },
                    })],
                };
                Step::SendAndClose(refused, 4401, "Unauthorized")
            }
        }
    }

    fn on_subscribe(&mut self, message: &Value) -> Step {
        let Some(viewer) = self.viewer.clone() else {
            return Step::Close(4401, "Unauthorized");
        };
        let Some(id) = message["id"].as_str().filter(|id| !id.is_empty() && id.len() <= 128) else {
            return Step::Close(4400, "Invalid message: no id");
        };
        let id = id.to_owned();
        if self.active.contains_key(&id) {
            return Step::Close(4409, "Subscriber for this id already exists");
        }
        let Ok(mut request) = serde_json::from_value::<async_graphql::Request>(message["payload"].clone()) else {
            return Step::Close(4400, "Invalid message: the payload is not a GraphQL request");
        };
        // A document that runs no operation is left for execution to report.
        if self
            .state
            .documents
            .prepare(&mut request)
            .is_some_and(|ty| ty != OperationType::Subscription)
        {
            let err = AppError::bad_input(
                "query",
                "only subscriptions are served here; send the rest to POST /graphql",
            );
            return Step::Send(vec![self.error_message(&id, &err)]);
        }
        if self.active.len() >= self.state.subscriptions.per_connection {
            return Step::Send(vec![self.error_message(&id, &AppError::TooManySubscriptions)]);
        }
        let Ok(permit) = self.state.subscriptions.server.clone().try_acquire_owned() else {
            return Step::Send(vec![self.error_message(&id, &AppError::TooManySubscriptions)]);
        };
        let request = request
            .data(RequestAuth(Some(viewer)))
            .data(RequestId(self.request_id.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        self.active.insert(id.clone(), stop);
        self.results.push(results(
            id,
            self.state.schemas.data.execute_stream(request),
            stopped,
            permit,
        ));
        Step::Send(Vec::new())
    }

    fn on_result(&mut self, id: String, result: Option<GqlResponse>) -> Step {
        let Some(mut response) = result else {
            // Ended by the server (not stopped by the client): say so.
            return if self.active.remove(&id).is_some() {
                Step::Send(vec![json!({ "type": "complete", "id": id })])
            } else {
                Step::Send(Vec::new())
            };
        };
        if !self.active.contains_key(&id) {
            return Step::Send(Vec::new());
        }
        classify(&mut response.errors);
        // A request that never started (it did not parse or validate) is an
        // `error`, after which the subscription is over.
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            self.active.remove(&id);
            // Both protocols name this message `error`.
            return Step::Send(vec![json!({ "type": "error", "id": id, "payload": response.errors })]);
        }
        let kind = match self.protocol {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        };
        Step::Send(vec![json!({ "type": kind, "id": id, "payload": response })])
    }

    fn error_message(&self, id: &str, err: &AppError) -> Value {
        json!({ "type": "error", "id": id, "payload": [crate::graphql::error::request_error(err)] })
    }
}

/// The token of a `connection_init` payload: `Authorization`,
/// `authorization` or `authToken`, with or without `Bearer `.
fn bearer(payload: &Value) -> Option<&str> {
    let raw = ["Authorization", "authorization", "authToken"]
        .iter()
        .find_map(|key| payload.get(key).and_then(Value::as_str))?
        .trim();
    let token = match raw.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return None,
        None => raw,
    };
    (!token.is_empty()).then_some(token)
}

/// A subscription's responses tagged with its id, ending with `None`; it
/// stops when `stopped` fires and holds its server permit while it lives.
fn results(
    id: String,
    responses: impl futures_util::Stream<Item = GqlResponse> + Send + 'static,
    stopped: oneshot::Receiver<()>,
    permit: OwnedSemaphorePermit,
) -> Results {
    let tagged_id = id.clone();
    responses
        .take_until(stopped)
        .map(move |response| {
            let _held = &permit;
            (tagged_id.clone(), Some(response))
        })
        .chain(stream::once(async move { (id, None) }))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_any_of_the_three_keys() {
        assert_eq!(bearer(&json!({ "Authorization": "Bearer abc" })), Some("abc"));
        assert_eq!(bearer(&json!({ "authorization": "bearer  abc " })), Some("abc"));
        assert_eq!(bearer(&json!({ "authToken": "abc" })), Some("abc"));
        assert_eq!(bearer(&json!({ "Authorization": "Basic abc" })), None);
        assert_eq!(bearer(&json!({ "Authorization": "" })), None);
        assert_eq!(bearer(&json!({})), None);
        assert_eq!(bearer(&Value::Null), None);
    }

    #[test]
    fn protocols_are_chosen_from_the_offer() {
        let offer = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v.parse().unwrap());
            Protocol::requested(&h)
        };
        assert_eq!(offer("graphql-transport-ws"), Some(Protocol::Transport));
        assert_eq!(offer("graphql-ws"), Some(Protocol::Legacy));
        assert_eq!(offer("graphql-ws, graphql-transport-ws"), Some(Protocol::Transport));
        assert_eq!(offer("chat"), None);
    }
}
