//! Parsed documents, kept by their text. Clients send the same few
//! operations again and again, and parsing one (async-graphql's parser is
//! built on pest) was about 8% of the server's CPU time under the point-read
//! bench; a parsed document is cloned instead. async-graphql still checks a
//! kept document's nesting and directives, and validates it, every time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_graphql::parser::types::ExecutableDocument;

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
    /// (and then keeping it). A document that does not parse is left for
    /// async-graphql to parse and report.
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_QUERY_BYTES {
            return;
        }
        let known = self.lock().get(request.query.as_str()).cloned();
        if let Some(document) = known {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return;
        }
        let Ok(document) = request.parsed_query() else {
            return;
        };
        let document = Arc::new(document.clone());
        let mut parsed = self.lock();
        if parsed.len() >= MAX_ENTRIES {
            parsed.clear();
        }
        parsed.insert(request.query.as_str().into(), document);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        self.parsed.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
