//! The GraphQL transport: the schema, `POST /graphql`, `GET /graphql` (queries
//! for API clients, GraphiQL for browsers) and GraphiQL's bundled assets.

#[macro_use]
pub mod connection;

pub mod accounts;
pub mod audit;
pub mod batch;
pub mod doctors;
pub mod documents;
pub mod error;
pub mod loaders;
pub mod mappings;
pub mod over_http;
pub mod patients;
pub mod persisted;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{
    BatchRequest, BatchResponse, Context, MergedObject, Schema, SchemaBuilder, ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};
use axum::{
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
};

use tracing::Instrument as _;

use self::over_http::ResponseType;
use crate::{
    app::AppState,
    audit::Served,
    config::Limits,
    db::Db,
    error::AppError,
    http::{bearer_token, client::Client, is_json, request_id},
    idempotency::IdempotencyKey,
    viewer::Viewer,
};

#[derive(MergedObject, Default)]
pub struct Query(
    accounts::AccountQuery,
    patients::PatientQueries,
    doctors::DoctorQueries,
    mappings::MappingQueries,
    audit::AuditQueries,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    accounts::AccountMutation,
    patients::PatientMutations,
    doctors::DoctorMutations,
    mappings::MappingMutations,
);

pub type ApiSchema = Schema<Query, Mutation, subscription::SubscriptionRoot>;

/// The caller of this request, if its bearer token verified.
#[derive(Clone)]
pub struct RequestAuth(pub Option<Viewer>);

/// The request's `X-Request-Id`.
#[derive(Clone)]
pub struct RequestId(pub Option<String>);

/// The viewer, or `UNAUTHENTICATED`: every non-public resolver starts here.
pub fn viewer<'a>(ctx: &'a Context<'_>) -> Result<&'a Viewer, AppError> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|auth| auth.0.as_ref())
        .ok_or(AppError::Unauthenticated)
}

/// The database and the viewer, or `UNAUTHENTICATED`.
pub fn request_viewer<'a>(ctx: &'a Context<'_>) -> Result<(&'a Db, &'a Viewer), AppError> {
    let viewer = viewer(ctx)?;
    let db = ctx
        .data::<Db>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("the schema has no database")))?;
    Ok((db, viewer))
}

/// A user by id, through the request's loader.
pub async fn user(ctx: &Context<'_>, id: uuid::Uuid) -> async_graphql::Result<types::User> {
    let user = ctx.data::<loaders::Loaders>()?.users.load_one(id).await?;
    Ok(types::User(crate::accounts::Seen::by(
        viewer(ctx)?,
        user.ok_or(AppError::NotFound)?,
    )))
}

/// The schema with its limits, without any data (enough to export the SDL).
pub fn schema_builder(
    limits: &Limits,
    introspection: bool,
) -> SchemaBuilder<Query, Mutation, subscription::SubscriptionRoot> {
    let builder = Schema::build(Query::default(), Mutation::default(), subscription::SubscriptionRoot)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        // Enough to count every field of a deep, wide document once.
        .limit_recursive_depth(64)
        .limit_directives(20);
    if introspection {
        builder
    } else {
        // Field suggestions ("Did you mean ...?") would tell the schema too.
        builder
            .disable_introspection()
            .disable_suggestions()
            .extension(NoIntrospection)
    }
}

/// With introspection off, a document that asks for `__schema` or `__type`
/// is refused with an error rather than answered with null.
struct NoIntrospection;

impl ExtensionFactory for NoIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoIntrospection)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for NoIntrospection {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if document.operations.iter().any(|(_, op)| {
            root_field_names(&document, &op.node.selection_set.node)
                .iter()
                .any(|name| matches!(*name, "__schema" | "__type"))
        }) {
            return Err(ServerError::new("introspection is disabled on this server", None));
        }
        Ok(document)
    }
}

/// The names of an operation's root fields, through fragments. A fragment
/// that is missing or nested beyond 32 levels counts as an unnamed field, so
/// neither check below can be passed by leaving a field out.
fn root_field_names<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet) -> Vec<&'a str> {
    fn collect<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, depth: usize, names: &mut Vec<&'a str>) {
        if depth >= 32 {
            names.push("");
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => names.push(field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => {
                    collect(document, &inline.node.selection_set.node, depth + 1, names)
                }
                Selection::FragmentSpread(spread) => match document.fragments.get(&spread.node.fragment_name.node) {
                    Some(fragment) => collect(document, &fragment.node.selection_set.node, depth + 1, names),
                    None => names.push(""),
                },
            }
        }
    }
    let mut names = Vec::new();
    collect(document, set, 0, &mut names);
    names
}

/// The aliased fields of the operation the request runs, its fragments
/// included as often as they are spread (0 when it does not parse).
fn aliases(request: &mut async_graphql::Request) -> usize {
    fn count(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
        if depth >= 32 {
            return usize::MAX;
        }
        set.items.iter().fold(0usize, |total, item| {
            let here = match &item.node {
                Selection::Field(field) => usize::from(field.node.alias.is_some()).saturating_add(count(
                    document,
                    &field.node.selection_set.node,
                    depth + 1,
                )),
                Selection::InlineFragment(inline) => count(document, &inline.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |f| count(document, &f.node.selection_set.node, depth + 1)),
            };
            total.saturating_add(here)
        })
    }
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return 0;
    };
    documents::operation(document, name.as_deref()).map_or(0, |op| count(document, &op.node.selection_set.node, 0))
}

/// How many of the mutations that take an `Idempotency-Key` the request's
/// operation selects.
fn keyed_fields(request: &mut async_graphql::Request) -> usize {
    const KEYED: [&str; 3] = ["createPatient", "createDoctor", "assignDoctor"];
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return 0;
    };
    match documents::operation(document, name.as_deref()) {
        Some(op) if op.node.ty == OperationType::Mutation => root_field_names(document, &op.node.selection_set.node)
            .iter()
            .filter(|name| KEYED.contains(name))
            .count(),
        _ => 0,
    }
}

/// The SDL that `schema.graphql` must equal.
pub fn sdl() -> String {
    schema_builder(&Limits::default(), true).finish().sdl()
}

/// How deep a document that only introspects may nest. The introspection
/// query of GraphiQL, graphql-codegen and Apollo's tools follows type
/// wrappers nine levels down, about 15 levels in all: deeper than any data
/// query needs. The complexity limit still bounds its size.
pub const INTROSPECTION_DEPTH: usize = 32;

/// The schema for data operations, and the same schema with the deeper
/// depth limit that introspection-only documents run against.
#[derive(Clone)]
pub struct Schemas {
    pub data: ApiSchema,
    pub introspection: ApiSchema,
}

impl Schemas {
    pub fn build(
        state: &crate::app::Services,
        db: &Db,
        notifications: &crate::db::listen::Notifications,
        limits: &Limits,
        introspection: bool,
    ) -> Self {
        // No extension here: async-graphql runs every field through each
        // extension's resolve hook, which measurably slows wide reads.
        let build = |limits: &Limits| {
            schema_builder(limits, introspection)
                .data(state.accounts.clone())
                .data(db.clone())
                .data(notifications.clone())
                .finish()
        };
        let deeper = Limits {
            max_depth: limits.max_depth.max(INTROSPECTION_DEPTH),
            ..limits.clone()
        };
        Self {
            data: build(limits),
            introspection: build(&deeper),
        }
    }

    /// The schema a batch runs against: the introspection one only when
    /// every operation of every request asks for nothing but `__schema`,
    /// `__type` and `__typename`. The document parsed here is kept in the
    /// request, so it is not parsed twice.
    fn for_batch(&self, batch: &mut BatchRequest) -> &ApiSchema {
        let introspective = batch
            .iter_mut()
            .all(|request| request.query.contains("__") && request.parsed_query().is_ok_and(only_introspects));
        if introspective { &self.introspection } else { &self.data }
    }
}

fn only_introspects(document: &ExecutableDocument) -> bool {
    document.operations.iter().all(|(_, op)| {
        op.node.ty == OperationType::Query
            && root_field_names(document, &op.node.selection_set.node)
                .iter()
                .all(|name| matches!(*name, "__schema" | "__type" | "__typename"))
    })
}

/// `POST /graphql`: one operation or a batch, as JSON.
pub async fn post(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Client>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(kind) = ResponseType::negotiate(&headers) else {
        return over_http::not_acceptable();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return over_http::refused(StatusCode::PAYLOAD_TOO_LARGE, kind, &AppError::PayloadTooLarge);
        }
        Err(_) => {
            return over_http::refused(
                StatusCode::BAD_REQUEST,
                kind,
                &AppError::bad_input("body", "the request body could not be read"),
            );
        }
    };
    if !is_json(&headers) {
        return over_http::refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, kind, &AppError::NotJson);
    }
    // An array is a batch, an object one operation; nothing else is a request.
    let batch = match over_http::parse_body(&body, &state.persisted) {
        Ok(batch) => batch,
        Err(err @ AppError::PersistedQueryNotFound) => return over_http::request_error(kind, &err),
        Err(err) => return over_http::refused(StatusCode::BAD_REQUEST, kind, &err),
    };
    let size = match &batch {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(list) => list.len(),
    };
    if size == 0 {
        return over_http::refused(
            StatusCode::BAD_REQUEST,
            kind,
            &AppError::bad_input("body", "the batch is empty"),
        );
    }
    if size > state.limits.max_batch {
        return over_http::refused(
            StatusCode::BAD_REQUEST,
            kind,
            &AppError::bad_input("body", "the batch has more operations than the limit allows"),
        );
    }
    execute(&state, client, &headers, batch, kind).await
}

/// `GET /graphql`: GraphiQL for a browser, a query for API clients.
pub async fn get(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Client>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or_default();
    if query.is_empty() && state.graphiql && accepts_html(&headers) {
        return graphiql();
    }
    let Some(kind) = ResponseType::negotiate(&headers) else {
        return over_http::not_acceptable();
    };
    let mut request = match over_http::parse_query_string(query, &state.persisted) {
        Ok(request) => request,
        Err(err @ AppError::PersistedQueryNotFound) => return over_http::request_error(kind, &err),
        Err(err) => return over_http::refused(StatusCode::BAD_REQUEST, kind, &err),
    };
    if state.documents.prepare(&mut request) == Some(OperationType::Mutation) {
        let mut response = over_http::refused(
            StatusCode::METHOD_NOT_ALLOWED,
            kind,
            &AppError::bad_input("query", "mutations must be sent with POST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    execute(&state, client, &headers, BatchRequest::Single(request), kind).await
}

async fn execute(
    state: &AppState,
    client: Client,
    headers: &HeaderMap,
    batch: BatchRequest,
    kind: ResponseType,
) -> Response {
    let key = match IdempotencyKey::from_headers(headers) {
        Ok(key) => key,
        Err(err) => return over_http::refused(StatusCode::BAD_REQUEST, kind, &err),
    };
    let request_id = request_id(headers);
    let viewer = bearer_token(headers)
        .and_then(|token| state.services.accounts.authenticate(token).ok())
        .map(|viewer| viewer.with_request_id(request_id));
    let mut batch = batch;
    let queue = batch::FetchQueue::default();
    // The patients each operation serves, for its `PATIENTS_READ` event.
    let mut served = Vec::new();
    if let Some(viewer) = &viewer {
        // Loaders are per request: each applies this viewer's access rule.
        for request in batch.iter_mut() {
            let operation = Served::default();
            let loaders = loaders::Loaders::new(&state.db, &state.services.accounts, viewer, &queue, &operation);
            request.data.insert(loaders);
            request.data.insert(operation.clone());
            served.push(operation);
        }
    }
    let mut batch = batch
        .data(RequestAuth(viewer.clone()))
        .data(RequestId(request_id.map(str::to_owned)))
        .data(client);
    let started = std::time::Instant::now();
    let kinds: Vec<Option<OperationType>> = batch.iter_mut().map(|r| state.documents.prepare(r)).collect();
    if batch.iter_mut().any(|r| aliases(r) > state.limits.max_aliases) {
        let err = AppError::bad_input("query", "has more aliased fields than GRAPHQL_MAX_ALIASES allows");
        return match batch {
            // A request error, like the depth and complexity limits'.
            BatchRequest::Single(_) => over_http::request_error(kind, &err),
            BatchRequest::Batch(_) => over_http::refused(StatusCode::BAD_REQUEST, kind, &err),
        };
    }
    if let Some(key) = key {
        // The key covers the one create of the request; with several, a
        // retry could not tell which one it answers for.
        let keyed: Vec<usize> = batch.iter_mut().map(keyed_fields).collect();
        if keyed.iter().sum::<usize>() > 1 {
            return over_http::refused(
                StatusCode::BAD_REQUEST,
                kind,
                &AppError::bad_input(
                    "Idempotency-Key",
                    "one key covers one createPatient, createDoctor or assignDoctor: send each in a request of its own",
                ),
            );
        }
        if let Some(request) = batch.iter_mut().zip(keyed).find_map(|(r, n)| (n == 1).then_some(r)) {
            request.data.insert(key);
        }
    }
    let schema = state.schemas.for_batch(&mut batch);
    let mut response = run_operations(schema, queue, batch).await;
    let seconds = started.elapsed().as_secs_f64();
    for kind in kinds {
        state.metrics.observe_graphql(kind, seconds);
    }
    let mut responses: Vec<&mut async_graphql::Response> = match &mut response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(list) => list.iter_mut().collect(),
    };
    responses.iter_mut().for_each(|r| error::classify(&mut r.errors));
    if let Some(viewer) = &viewer {
        account_for_reads(&state.db, viewer, &served, &mut responses).await;
    }
    over_http::respond(&response, kind)
}

/// Runs a request's operations one after another, as `execute_batch` does,
/// each in a span of its own when traces are on. A single operation's span
/// also covers its loaders' statements; in a batch, which shares them, they
/// belong to the request.
async fn run_operations(schema: &ApiSchema, queue: batch::FetchQueue, batch: BatchRequest) -> BatchResponse {
    match batch {
        BatchRequest::Single(mut request) => {
            let span = operation_span(&mut request);
            BatchResponse::Single(batch::run(queue, schema.execute(request)).instrument(span).await)
        }
        BatchRequest::Batch(mut requests) => {
            let spans: Vec<tracing::Span> = requests.iter_mut().map(operation_span).collect();
            let each = async move {
                let mut responses = Vec::with_capacity(requests.len());
                for (request, span) in requests.into_iter().zip(spans) {
                    responses.push(schema.execute(request).instrument(span).await);
                }
                responses
            };
            BatchResponse::Batch(batch::run(queue, each).await)
        }
    }
}

/// The span of one GraphQL operation, named by its type and name ("query
/// PatientChart"), as OpenTelemetry's conventions for GraphQL say. Never its
/// variables, nor its document, whose literals may be patient data.
/// Disabled, at no cost, unless traces are on.
fn operation_span(request: &mut async_graphql::Request) -> tracing::Span {
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE_ONLY,
        "graphql.operation",
        otel.name = tracing::field::Empty,
        "graphql.operation.type" = tracing::field::Empty,
        "graphql.operation.name" = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let requested = request.operation_name.clone();
    let Some((ty, name)) = request
        .parsed_query()
        .ok()
        .and_then(|document| documents::operation_and_name(document, requested.as_deref()))
    else {
        // It does not parse, or names no operation: async-graphql says why.
        span.record("otel.name", "GraphQL Operation");
        return span;
    };
    let ty = match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    span.record("graphql.operation.type", ty);
    match name {
        Some(name) => {
            span.record("otel.name", format!("{ty} {name}"));
            span.record("graphql.operation.name", name.as_str());
        }
        None => {
            span.record("otel.name", ty);
        }
    }
    span
}

/// Writes the `PATIENTS_READ` event of each operation that served patients,
/// before the response leaves. If they cannot be written, each of those
/// operations answers with an error and no data: no patient is served
/// unaccounted for.
async fn account_for_reads(
    db: &Db,
    viewer: &Viewer,
    served: &[Served],
    responses: &mut [&mut async_graphql::Response],
) {
    let reads: Vec<(&Viewer, Vec<uuid::Uuid>)> = served.iter().map(|s| (viewer, s.ids())).collect();
    let Err(err) = crate::audit::record_reads(db, &reads).await else {
        return;
    };
    err.log();
    for (response, (_, ids)) in responses.iter_mut().zip(&reads) {
        if !ids.is_empty() {
            **response = async_graphql::Response::from_errors(vec![error::request_error(&err)]);
        }
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

const GRAPHIQL_HTML: &str = include_str!("../../assets/graphiql/index.html");

fn graphiql() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        ],
        Html(GRAPHIQL_HTML),
    )
        .into_response()
}

/// GraphiQL's scripts and styles, bundled into the binary.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match name.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "graphiql.min.css" => (include_bytes!("../../assets/graphiql/graphiql.min.css"), "text/css"),
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js"),
            "text/javascript",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
            "text/javascript",
        ),
        "init.js" => (include_bytes!("../../assets/graphiql/init.js"), "text/javascript"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
