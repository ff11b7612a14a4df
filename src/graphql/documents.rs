//! Parsed documents, kept by their text. Clients send the same few
//! operations again and again, and parsing one (async-graphql's parser is
//! built on pest) was about 8% of the server's CPU time under the point-read
//! bench; a parsed document is cloned instead. async-graphql still checks a
//! kept document's nesting and directives, and validates it, every time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_graphql::{
    Positioned,
    parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType},
};

/// Documents longer than this are parsed every time: real clients' operations
/// are far shorter, and the cache's memory stays small (at most
/// `MAX_ENTRIES` × `MAX_QUERY_BYTES` of text, with their syntax trees).
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// When the cache is full it starts again from empty: a client that sends a
/// stream of distinct documents cannot grow it, and the operations in steady
/// use come back within a request each.
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub struct Documents {
    parsed: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// Gives `request` its parsed document, from the cache or by parsing it
    /// (and then keeping it), and says which type of operation it would run
    /// (see `operation_type`). A document that does not parse is left for
    /// async-graphql to parse and report.
    pub fn prepare(&self, request: &mut async_graphql::Request) -> Option<OperationType> {
        if request.query.len() <= MAX_QUERY_BYTES {
            let known = self.lock().get(request.query.as_str()).cloned();
            match known {
                Some(document) => request.set_parsed_query(ExecutableDocument::clone(&document)),
                None => {
                    let document = Arc::new(request.parsed_query().ok()?.clone());
                    let mut parsed = self.lock();
                    if parsed.len() >= MAX_ENTRIES {
                        parsed.clear();
                    }
                    parsed.insert(request.query.as_str().into(), document);
                }
            }
        }
        let name = request.operation_name.clone();
        operation_type(request.parsed_query().ok()?, name.as_deref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        self.parsed.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The type of the operation that a request for `operation_name` in
/// `document` runs, chosen as async-graphql's execution chooses it: the named
/// one, or the only one. `None` when there is no such operation (execution
/// then refuses the request).
pub fn operation_type(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<OperationType> {
    operation(document, operation_name).map(|op| op.node.ty)
}

/// The operation that a request for `operation_name` in `document` runs (see
/// `operation_type`).
pub fn operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The type and the name (if it has one) of the operation that a request
/// for `operation_name` in `document` runs.
pub fn operation_and_name(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(OperationType, Option<String>)> {
    let op = operation(document, operation_name)?;
    let name = match &document.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(ops) => ops
            .iter()
            .find(|(_, o)| std::ptr::eq(*o, op))
            .map(|(n, _)| n.to_string()),
    };
    Some((op.node.ty, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(query: &str, name: Option<&str>) -> Option<OperationType> {
        let mut request = request(query);
        if let Some(name) = name {
            request = request.operation_name(name);
        }
        Documents::default().prepare(&mut request)
    }

    #[test]
    fn the_operation_type_is_that_of_the_operation_that_would_run() {
        use OperationType::{Mutation, Query, Subscription};
        assert_eq!(type_of("{ me { id } }", None), Some(Query));
        assert_eq!(
            type_of("  # comment {\n mutation M { logout(refreshToken: \"{\") }", None),
            Some(Mutation)
        );
        assert_eq!(
            type_of("mutation M { logout(refreshToken: \"x\") }", Some("M")),
            Some(Mutation)
        );
        assert_eq!(type_of("mutation M { logout(refreshToken: \"x\") }", Some("N")), None);
        assert_eq!(
            type_of("fragment F on User { id } query Q { me { ...F } }", None),
            Some(Query)
        );
        let two = "query A { me { id } } mutation B { logout(refreshToken: \"x\") }";
        assert_eq!(type_of(two, Some("B")), Some(Mutation));
        assert_eq!(type_of(two, Some("A")), Some(Query));
        // Several operations and no name, or an unnamed one and a name:
        // execution refuses them, whichever comes first.
        assert_eq!(type_of(two, None), None);
        assert_eq!(
            type_of("mutation B { logout(refreshToken: \"x\") } { me { id } }", None),
            None
        );
        assert_eq!(type_of("{ me { id } }", Some("Q")), None);
        assert_eq!(
            type_of("subscription { mappingEvents { kind } }", None),
            Some(Subscription)
        );
        assert_eq!(type_of("", None), None);
        assert_eq!(type_of("{ me { id }", None), None);
        // Long documents are not kept, but are typed all the same.
        let long = format!(
            "mutation {{ logout(refreshToken: \"x\") }} #{}",
            "x".repeat(MAX_QUERY_BYTES)
        );
        assert_eq!(type_of(&long, None), Some(Mutation));
    }

    fn request(query: &str) -> async_graphql::Request {
        async_graphql::Request::new(query)
    }

    #[test]
    fn a_document_is_parsed_once_and_given_to_later_requests() {
        let documents = Documents::default();
        let query = "query A { me { id } } query B { me { name } }";
        let mut first = request(query);
        documents.prepare(&mut first);
        assert_eq!(documents.len(), 1);
        let mut second = request(query);
        documents.prepare(&mut second);
        assert_eq!(documents.len(), 1);
        let (a, b) = (first.parsed_query().unwrap(), second.parsed_query().unwrap());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn bad_and_long_documents_are_not_kept() {
        let documents = Documents::default();
        let mut bad = request("{ me { id }");
        documents.prepare(&mut bad);
        assert!(bad.parsed_query().is_err());
        let long = format!("{{ me {{ id }} }} #{}", "x".repeat(MAX_QUERY_BYTES));
        documents.prepare(&mut request(&long));
        assert_eq!(documents.len(), 0);
    }

    #[test]
    fn a_full_cache_starts_again() {
        let documents = Documents::default();
        for n in 0..=MAX_ENTRIES {
            documents.prepare(&mut request(&format!("{{ a{n}: me {{ id }} }}")));
        }
        assert_eq!(documents.len(), 1);
    }
}
