//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, in the
//! `graphql-transport-ws` protocol (the graphql-ws library's) and the legacy
//! `graphql-ws` one (subscriptions-transport-ws), served by
//! async-graphql-axum's `GraphQLWebSocket`. Its `on_connection_init` checks
//! the access token of `connection_init` and gives the connection its viewer;
//! the executor it runs (`Subscriptions`) serves subscriptions only, caps
//! them per connection and per server, and codes their errors.
//!
//! The crate's connection does not carry everything this endpoint promises,
//! so one small layer of our own sits on each side of it:
//! - `Reader`, between the socket and the crate, turns away what the crate
//!   would close with 1002 or not notice: binary or non-JSON messages and
//!   unknown types (4400), a second `connection_init` (4429), a subscription
//!   before `connection_init` (4401), an id already in use (4409; the crate
//!   would replace the running subscription). It gives each subscription an
//!   id of the connection's own, so that the crate's messages about a
//!   stopped subscription can never be taken for those of a new one that
//!   reuses its id.
//! - `Writer`, between the crate and the socket, puts the client's ids back;
//!   sends a result without data (a subscription that did not validate, was
//!   refused, or fell behind) as one `error` message that ends it, as both
//!   protocols say, where the crate sends `next` and then `complete` (the
//!   executor ends such a subscription); sends nothing after a client's own
//!   `complete`; closes with 4401 rather than 1002 when the token is
//!   refused; and keeps the timers the crate has not: 10 s for
//!   `connection_init` (4408), the access token's expiry (4401), the
//!   server's keep-alive, and the 10 s a message may take to go out before a
//!   client that does not read is dropped.

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use async_graphql::{Data, Executor, Request, Response as GqlResponse, parser::types::OperationType};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        FromRequestParts, State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{
    SinkExt as _, Stream, StreamExt as _,
    stream::{self, BoxStream, SplitSink, SplitStream},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json, value::RawValue};
use tokio::sync::{Semaphore, mpsc};

use crate::{
    app::AppState,
    error::AppError,
    graphql::{
        ApiSchema, RequestAuth, RequestId,
        documents::Documents,
        error::{classify, request_error},
        persisted::{Named, PersistedDocuments},
    },
    http::request_id,
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
/// The longest subscription id a client may choose.
const MAX_ID_BYTES: usize = 128;
/// Messages from the crate waiting for the socket.
const OUTGOING_QUEUE: usize = 8;

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

    /// The protocol the client asked for, preferring the current one. (The
    /// crate's own extractor takes the first one offered, while axum answers
    /// with the first of the server's list: the two can disagree.)
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

    /// The crate's name for this protocol, which only its extractor makes.
    async fn for_crate(self) -> Option<GraphQLProtocol> {
        let (mut parts, ()) = axum::http::Request::builder()
            .header(header::SEC_WEBSOCKET_PROTOCOL, self.name())
            .body(())
            .ok()?
            .into_parts();
        GraphQLProtocol::from_request_parts(&mut parts, &()).await.ok()
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
    let chosen = match Protocol::requested(&headers) {
        Some(protocol) => protocol.for_crate().await.map(|named| (protocol, named)),
        None => None,
    };
    let Some((protocol, named)) = chosen else {
        let err = AppError::bad_input(
            "Sec-WebSocket-Protocol",
            "must offer graphql-transport-ws or graphql-ws",
        );
        return (StatusCode::BAD_REQUEST, axum::Json(err.failure_body())).into_response();
    };
    let request_id = request_id(&headers).map(str::to_owned);
    ws.protocols([protocol.name()])
        .max_message_size(MAX_MESSAGE_BYTES)
        // The protocol's messages are small: a read buffer of tungstenite's
        // default 128 KiB per socket made idle connections cost ~150 KiB.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(socket, protocol, named, state, request_id))
}

async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    named: GraphQLProtocol,
    state: AppState,
    request_id: Option<String>,
) {
    let (sink, incoming) = socket.split();
    let live = Arc::new(Live::default());
    let (closer, closes) = mpsc::unbounded_channel();
    let (to_writer, from_crate) = mpsc::channel(OUTGOING_QUEUE);
    let executor = Subscriptions {
        schema: state.schemas.data.clone(),
        documents: state.documents.clone(),
        persisted: state.persisted.clone(),
        server: state.subscriptions.server.clone(),
        connection: Arc::new(Semaphore::new(state.subscriptions.per_connection)),
    };
    let reader = Reader {
        protocol,
        live: live.clone(),
        closer: closer.clone(),
        init_received: false,
        next_id: 0,
    };
    let mut data = Data::default();
    data.insert(RequestId(request_id.clone()));
    let accounts = state.services.accounts.clone();
    let expiry = live.clone();
    let graphql = GraphQLWebSocket::new_with_pair(
        futures_util::sink::unfold(to_writer, |to_writer, message: Message| async move {
            to_writer.send(message).await.map(|()| to_writer)
        }),
        reader.read(incoming),
        executor,
        named,
    )
    .with_data(data)
    .on_connection_init(move |payload| {
        let viewer = bearer(&payload).and_then(|token| accounts.authenticate(token).ok());
        async move {
            let Some(viewer) = viewer else {
                // Said before the crate's own refusal (a 1002 close), which
                // the writer then never sends.
                let _ = closer.send(Close::Unauthorized);
                return Err(AppError::Unauthenticated.into());
            };
            expiry.session().expires_at = Some(viewer.expires_at);
            let mut data = Data::default();
            data.insert(RequestAuth(Some(viewer.with_request_id(request_id.as_deref()))));
            Ok(data)
        }
    })
    .serve();
    let writer = Writer {
        protocol,
        live,
        sink,
        acknowledged: None,
    };
    writer.run(graphql, from_crate, closes).await;
}

/// The subscriptions of one connection, by the connection's own id.
#[derive(Default)]
struct Live(Mutex<Session>);

#[derive(Default)]
struct Session {
    /// The access token's expiry (Unix seconds), once it is accepted.
    expires_at: Option<i64>,
    /// The client's id by the connection's own.
    by_own_id: HashMap<u64, String>,
    by_client_id: HashMap<String, u64>,
}

impl Live {
    fn session(&self) -> MutexGuard<'_, Session> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Session {
    fn end(&mut self, own_id: u64) -> Option<String> {
        let client_id = self.by_own_id.remove(&own_id)?;
        self.by_client_id.remove(&client_id);
        Some(client_id)
    }
}

/// How the connection ends, when a layer of ours ends it.
#[derive(Debug, PartialEq, Eq)]
enum Close {
    /// The token of `connection_init` was missing or refused.
    Unauthorized,
    With(u16, &'static str),
}

/// A message of either side, as far as the two layers read it.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// A message with an id, on its way to the crate or to the client.
#[derive(Serialize)]
struct Forward<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
}

impl Forward<'_> {
    fn text(&self) -> Utf8Bytes {
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// What the reader does with one message from the client.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Pass(Utf8Bytes),
    Skip,
    Close(Close),
}

struct Reader {
    protocol: Protocol,
    live: Arc<Live>,
    closer: mpsc::UnboundedSender<Close>,
    init_received: bool,
    next_id: u64,
}

impl Reader {
    /// The client's messages as the crate should see them; the stream ends
    /// (after the writer is told how to close) when the connection must.
    fn read(self, socket: SplitStream<WebSocket>) -> impl Stream<Item = Result<Message, axum::Error>> + Send + 'static {
        stream::unfold((self, socket), |(mut reader, mut socket)| async move {
            loop {
                let Some(Ok(message)) = socket.next().await else {
                    // The client went away.
                    return None;
                };
                match reader.on_message(message) {
                    Read::Pass(text) => return Some((Ok(Message::Text(text)), (reader, socket))),
                    Read::Skip => {}
                    Read::Close(close) => {
                        let _ = reader.closer.send(close);
                        return None;
                    }
                }
            }
        })
    }

    fn on_message(&mut self, message: Message) -> Read {
        let text = match message {
            Message::Text(text) => text,
            // Answered by the WebSocket layer itself.
            Message::Ping(_) | Message::Pong(_) => return Read::Skip,
            Message::Close(_) => return Read::Close(Close::With(1000, "Normal Closure")),
            Message::Binary(_) => return Read::Close(Close::With(4400, "Invalid message: binary")),
        };
        let Ok(message) = serde_json::from_str::<Envelope>(text.as_str()) else {
            return Read::Close(Close::With(4400, "Invalid message: not JSON"));
        };
        match (self.protocol, message.kind.as_ref()) {
            (_, "connection_init") if self.init_received => {
                Read::Close(Close::With(4429, "Too many initialisation requests"))
            }
            (_, "connection_init") => {
                self.init_received = true;
                Read::Pass(text.clone())
            }
            (Protocol::Transport, "ping" | "pong") => Read::Pass(text.clone()),
            (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => self.on_subscribe(&message),
            (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => self.on_stop(&message),
            (Protocol::Legacy, "connection_terminate") => Read::Close(Close::With(1000, "Normal Closure")),
            _ => Read::Close(Close::With(4400, "Invalid message: unknown type")),
        }
    }

    fn on_subscribe(&mut self, message: &Envelope) -> Read {
        // The crate only reads on once `connection_init` is answered, and
        // reads nothing more after refusing it.
        if !self.init_received {
            return Read::Close(Close::With(4401, "Unauthorized"));
        }
        let Some(client_id) = message
            .id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
        else {
            return Read::Close(Close::With(4400, "Invalid message: no id"));
        };
        let Some(payload) = message
            .payload
            .filter(|payload| serde_json::from_str::<Request>(payload.get()).is_ok())
        else {
            return Read::Close(Close::With(
                4400,
                "Invalid message: the payload is not a GraphQL request",
            ));
        };
        let mut session = self.live.session();
        if session.by_client_id.contains_key(client_id) {
            return Read::Close(Close::With(4409, "Subscriber for this id already exists"));
        }
        self.next_id += 1;
        let own_id = self.next_id;
        session.by_client_id.insert(client_id.to_owned(), own_id);
        session.by_own_id.insert(own_id, client_id.to_owned());
        Read::Pass(
            Forward {
                kind: &message.kind,
                id: &own_id.to_string(),
                payload: Some(payload),
            }
            .text(),
        )
    }

    /// A client's `complete`: the crate stops the subscription, and the
    /// writer says nothing more about it.
    fn on_stop(&mut self, message: &Envelope) -> Read {
        let mut session = self.live.session();
        let Some(own_id) = message
            .id
            .as_deref()
            .and_then(|id| session.by_client_id.get(id).copied())
        else {
            return Read::Skip;
        };
        session.end(own_id);
        Read::Pass(
            Forward {
                kind: &message.kind,
                id: &own_id.to_string(),
                payload: None,
            }
            .text(),
        )
    }
}

/// The executor of one connection's subscriptions.
#[derive(Clone)]
struct Subscriptions {
    schema: ApiSchema,
    documents: Arc<Documents>,
    /// With `TRUSTED_DOCUMENTS`, only the manifest's subscriptions run here too.
    persisted: Arc<PersistedDocuments>,
    server: Arc<Semaphore>,
    connection: Arc<Semaphore>,
}

impl Executor for Subscriptions {
    /// The crate runs everything as a subscription; nothing else is served here.
    async fn execute(&self, _request: Request) -> GqlResponse {
        refusal(&only_subscriptions())
    }

    fn execute_stream(&self, mut request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, GqlResponse> {
        let named = Named {
            query: Some(std::mem::take(&mut request.query)).filter(|q| !q.is_empty()),
            document_id: None,
            persisted_query: request.extensions.get("persistedQuery").cloned(),
        };
        match self.persisted.resolve(named) {
            Ok(query) => request.query = query,
            Err(err) => return stream::once(async move { refusal(&err) }).boxed(),
        }
        // A document that runs no operation is left for execution to report.
        if self
            .documents
            .prepare(&mut request)
            .is_some_and(|ty| ty != OperationType::Subscription)
        {
            return stream::once(async { refusal(&only_subscriptions()) }).boxed();
        }
        let permits = (
            self.connection.clone().try_acquire_owned(),
            self.server.clone().try_acquire_owned(),
        );
        let (Ok(on_connection), Ok(on_server)) = permits else {
            return stream::once(async { refusal(&AppError::TooManySubscriptions) }).boxed();
        };
        let responses = self
            .schema
            .execute_stream_with_session_data(request, session.unwrap_or_default());
        // A result without data (the request did not validate, or the
        // subscriber fell behind) is the subscription's last.
        stream::unfold(Some(responses), move |responses| {
            let _held = (&on_connection, &on_server);
            async move {
                let mut responses = responses?;
                let mut response = responses.next().await?;
                classify(&mut response.errors);
                let over = response.data == async_graphql::Value::Null && !response.errors.is_empty();
                Some((response, (!over).then_some(responses)))
            }
        })
        .boxed()
    }
}

fn only_subscriptions() -> AppError {
    AppError::bad_input(
        "query",
        "only subscriptions are served here; send the rest to POST /graphql",
    )
}

fn refusal(err: &AppError) -> GqlResponse {
    GqlResponse::from_errors(vec![request_error(err)])
}

/// Enough of a result to tell a failed one: no data, only errors.
#[derive(Deserialize)]
struct Outcome<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    errors: Option<&'a RawValue>,
}

struct Writer {
    protocol: Protocol,
    live: Arc<Live>,
    sink: SplitSink<WebSocket, Message>,
    /// When the crate acknowledged `connection_init`.
    acknowledged: Option<tokio::time::Instant>,
}

/// What the writer does after reading one thing.
enum Step {
    Send(Vec<Utf8Bytes>),
    Close(Close),
}

impl Writer {
    async fn run(
        mut self,
        graphql: impl Future<Output = ()>,
        mut from_crate: mpsc::Receiver<Message>,
        mut closes: mpsc::UnboundedReceiver<Close>,
    ) {
        let mut graphql = std::pin::pin!(graphql);
        let mut graphql_ended = false;
        let init_deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let expiry = self.expiry();
            let step = tokio::select! {
                // A close of ours goes before anything the crate said after it.
                biased;
                Some(close) = closes.recv() => Step::Close(close),
                message = from_crate.recv() => match message {
                    Some(message) => self.on_crate_message(message),
                    // The crate's connection ended: the client went away.
                    None => return,
                },
                () = &mut graphql, if !graphql_ended => {
                    graphql_ended = true;
                    Step::Send(Vec::new())
                }
                () = tokio::time::sleep_until(init_deadline), if self.acknowledged.is_none() => {
                    Step::Close(Close::With(4408, "Connection initialisation timeout"))
                }
                () = tokio::time::sleep_until(expiry), if self.acknowledged.is_some() => {
                    Step::Close(Close::With(4401, "Unauthorized: the access token expired"))
                }
                _ = keepalive.tick() => Step::Send(vec![match self.protocol {
                    Protocol::Transport => Utf8Bytes::from_static(r#"{"type":"ping"}"#),
                    Protocol::Legacy => Utf8Bytes::from_static(r#"{"type":"ka"}"#),
                }]),
            };
            match step {
                Step::Send(texts) => {
                    for text in texts {
                        if !self.send(Message::Text(text)).await {
                            return;
                        }
                    }
                }
                Step::Close(close) => {
                    self.close(close).await;
                    return;
                }
            }
        }
    }

    /// When the viewer's access token expires (far off before it is known).
    fn expiry(&self) -> tokio::time::Instant {
        let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let Some(expires_at) = self.live.session().expires_at else {
            return far;
        };
        let left = Duration::from_secs(u64::try_from(expires_at - chrono::Utc::now().timestamp()).unwrap_or(0));
        tokio::time::Instant::from_std(Instant::now() + left)
    }

    fn on_crate_message(&mut self, message: Message) -> Step {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let code = frame.map_or(1000, |frame| frame.code);
                return Step::Close(Close::With(code, "Closed"));
            }
            _ => return Step::Send(Vec::new()),
        };
        let Ok(message) = serde_json::from_str::<Envelope>(text.as_str()) else {
            return Step::Send(vec![text]);
        };
        let Some(own_id) = message.id else {
            if message.kind == "connection_ack" {
                self.acknowledged = Some(tokio::time::Instant::now());
                if self.protocol == Protocol::Legacy {
                    return Step::Send(vec![text, Utf8Bytes::from_static(r#"{"type":"ka"}"#)]);
                }
            }
            return Step::Send(vec![text]);
        };
        let Ok(own_id) = own_id.parse::<u64>() else {
            return Step::Send(Vec::new());
        };
        let mut session = self.live.session();
        // Stopped by the client, or already ended with an `error`.
        let Some(client_id) = session.by_own_id.get(&own_id).cloned() else {
            return Step::Send(Vec::new());
        };
        // A result without data (the request did not validate, was refused,
        // or the subscriber fell behind) is an `error`, after which the
        // subscription is over: both protocols name this message `error`.
        let failed = message
            .payload
            .and_then(|payload| serde_json::from_str::<Outcome>(payload.get()).ok())
            .and_then(|outcome| outcome.errors.filter(|_| outcome.data.is_none()));
        let (kind, payload) = match failed {
            Some(errors) => ("error", Some(errors)),
            None => (message.kind.as_ref(), message.payload),
        };
        if matches!(kind, "error" | "complete") {
            session.end(own_id);
        }
        Step::Send(vec![
            Forward {
                kind,
                id: &client_id,
                payload,
            }
            .text(),
        ])
    }

    /// Sends one message; false when the client is gone or too slow to read.
    async fn send(&mut self, message: Message) -> bool {
        match tokio::time::timeout(SEND_TIMEOUT, self.sink.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::warn!("a subscriber did not read its messages in time and was dropped");
                false
            }
        }
    }

    async fn close(&mut self, close: Close) {
        let (code, reason) = match close {
            Close::Unauthorized => {
                if self.protocol == Protocol::Legacy {
                    let refused = json!({
                        "type": "connection_error",
                        "payload": { "message": AppError::Unauthenticated.to_string() },
                    });
                    if !self.send(Message::Text(refused.to_string().into())).await {
                        return;
                    }
                }
                (4401, "Unauthorized")
            }
            Close::With(code, reason) => (code, reason),
        };
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.sink.send(Message::Close(Some(frame)))).await;
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

    #[test]
    fn each_subscription_gets_an_id_of_the_connections_own() {
        let (closer, _closes) = mpsc::unbounded_channel();
        let mut reader = Reader {
            protocol: Protocol::Transport,
            live: Arc::default(),
            closer,
            init_received: false,
            next_id: 0,
        };
        let text = |v: Value| Message::Text(v.to_string().into());
        let subscribe =
            || text(json!({ "type": "subscribe", "id": "a", "payload": { "query": "subscription { x }" } }));
        let sent_id = |read: Read| match read {
            Read::Pass(text) => serde_json::from_str::<Value>(text.as_str()).unwrap()["id"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reader.on_message(subscribe()),
            Read::Close(Close::With(4401, "Unauthorized"))
        );
        assert!(matches!(
            reader.on_message(text(json!({ "type": "connection_init" }))),
            Read::Pass(_)
        ));
        assert_eq!(sent_id(reader.on_message(subscribe())), "1");
        assert_eq!(
            reader.on_message(subscribe()),
            Read::Close(Close::With(4409, "Subscriber for this id already exists"))
        );
        assert_eq!(
            sent_id(reader.on_message(text(json!({ "type": "complete", "id": "a" })))),
            "1"
        );
        assert_eq!(
            reader.on_message(text(json!({ "type": "complete", "id": "a" }))),
            Read::Skip
        );
        assert_eq!(sent_id(reader.on_message(subscribe())), "2");
        assert_eq!(reader.live.session().by_client_id["a"], 2);
        assert_eq!(
            reader.on_message(text(json!({ "type": "connection_init" }))),
            Read::Close(Close::With(4429, "Too many initialisation requests"))
        );
    }
}
