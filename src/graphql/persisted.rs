//! Documents sent by their hash: Apollo's automatic persisted queries
//! (`extensions.persistedQuery { version: 1, sha256Hash }`), and trusted
//! documents (`TRUSTED_DOCUMENTS`: only the documents of a manifest run,
//! sent by `documentId`, by APQ hash, or as text whose hash is listed).

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Registered documents kept for APQ before the store starts again from
/// empty, in entries and in bytes: a client that registers a stream of
/// documents cannot grow it.
const MAX_REGISTERED: usize = 1024;
const MAX_REGISTERED_BYTES: usize = 8 << 20;

/// Where a request's document comes from.
pub enum Source {
    /// Trusted documents only: the manifest, by hash.
    Trusted(HashMap<String, Arc<str>>),
    /// Any document; those sent with an APQ hash are kept by it.
    Open(Mutex<Registered>),
}

#[derive(Default)]
pub struct Registered {
    by_hash: HashMap<String, Arc<str>>,
    bytes: usize,
}

/// What a request names of its document, as sent.
#[derive(Default)]
pub struct Named {
    pub query: Option<String>,
    pub document_id: Option<String>,
    /// `extensions.persistedQuery`, as sent.
    pub persisted_query: Option<async_graphql::Value>,
}

pub struct PersistedDocuments {
    source: Source,
}

impl Default for PersistedDocuments {
    fn default() -> Self {
        Self {
            source: Source::Open(Mutex::default()),
        }
    }
}

impl PersistedDocuments {
    /// The trusted documents of a manifest `{ "<sha256 hex>": "<document>" }`
    /// (what graphql-codegen's client preset writes with
    /// `persistedDocuments`, its keys prefixed `sha256:`); every hash must
    /// be its document's.
    pub fn trusted(manifest: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .map_err(|e| anyhow::anyhow!("TRUSTED_DOCUMENTS {} could not be read: {e}", manifest.display()))?;
        let entries: HashMap<String, String> = serde_json::from_str(&text).map_err(|_| {
            anyhow::anyhow!(
                "TRUSTED_DOCUMENTS {} is not a JSON object of hashes and documents",
                manifest.display()
            )
        })?;
        anyhow::ensure!(
            !entries.is_empty(),
            "TRUSTED_DOCUMENTS {} lists no document",
            manifest.display()
        );
        let mut documents = HashMap::with_capacity(entries.len());
        for (hash, document) in entries {
            let key = hash.strip_prefix("sha256:").unwrap_or(&hash).to_ascii_lowercase();
            anyhow::ensure!(
                sha256_hex(&document) == key,
                "TRUSTED_DOCUMENTS {}: the entry {hash} is not the SHA-256 of its document",
                manifest.display()
            );
            documents.insert(key, Arc::from(document));
        }
        Ok(Self {
            source: Source::Trusted(documents),
        })
    }

    pub fn is_trusted_only(&self) -> bool {
        matches!(self.source, Source::Trusted(_))
    }

    /// The document to run.
    pub fn resolve(&self, named: Named) -> Result<String, AppError> {
        let apq = named.persisted_query.as_ref().map(apq_hash).transpose()?;
        let id = named.document_id.as_deref().map(document_id).transpose()?;
        match &self.source {
            Source::Trusted(manifest) => {
                let hash = match (id.or(apq), &named.query) {
                    (Some(hash), _) => hash,
                    (None, Some(query)) => sha256_hex(query),
                    (None, None) => return Err(QUERY_REQUIRED),
                };
                // A listed hash runs its listed document; text sent with it
                // (a client's own printing of it) is not run.
                let document = manifest.get(&hash).ok_or(AppError::PersistedQueryNotFound)?;
                Ok(document.to_string())
            }
            Source::Open(registered) => {
                let lock = || registered.lock().unwrap_or_else(|e| e.into_inner());
                match (id.or(apq), named.query) {
                    (None, Some(query)) => Ok(query),
                    (None, None) => Err(QUERY_REQUIRED),
                    (Some(hash), None) => lock()
                        .by_hash
                        .get(&hash)
                        .map(|d| d.to_string())
                        .ok_or(AppError::PersistedQueryNotFound),
                    (Some(hash), Some(query)) => {
                        if sha256_hex(&query) != hash {
                            return Err(HASH_MISMATCH);
                        }
                        let mut kept = lock();
                        if !kept.by_hash.contains_key(&hash) {
                            if kept.by_hash.len() >= MAX_REGISTERED || kept.bytes + query.len() > MAX_REGISTERED_BYTES {
                                *kept = Registered::default();
                            }
                            kept.bytes += query.len();
                            kept.by_hash.insert(hash, Arc::from(query.as_str()));
                        }
                        Ok(query)
                    }
                }
            }
        }
    }
}

const QUERY_REQUIRED: AppError = AppError::BadInput {
    field: "query",
    message: "is required: the GraphQL document to run, or its hash",
};
const HASH_MISMATCH: AppError = AppError::BadInput {
    field: "extensions.persistedQuery.sha256Hash",
    message: "is not the SHA-256 of the query sent with it",
};

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A SHA-256 in hex, in lower case.
fn hex_hash(field: &'static str, raw: &str) -> Result<String, AppError> {
    if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(AppError::bad_input(
            field,
            "must be a SHA-256 hash in hex (64 characters)",
        ))
    }
}

/// `"sha256:<hex>"` or the bare hash.
fn document_id(raw: &str) -> Result<String, AppError> {
    hex_hash("documentId", raw.strip_prefix("sha256:").unwrap_or(raw))
}

/// The hash of `extensions.persistedQuery { version: 1, sha256Hash }`.
fn apq_hash(value: &async_graphql::Value) -> Result<String, AppError> {
    use async_graphql::Value;
    const SHAPE: AppError = AppError::BadInput {
        field: "extensions.persistedQuery",
        message: "must be { \"version\": 1, \"sha256Hash\": \"<hex>\" }",
    };
    let Value::Object(fields) = value else {
        return Err(SHAPE);
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(SHAPE),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash)) => hex_hash("extensions.persistedQuery.sha256Hash", hash),
        _ => Err(SHAPE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "{ __typename }";

    fn apq(hash: &str) -> Option<async_graphql::Value> {
        Some(async_graphql::Value::from_json(serde_json::json!({ "version": 1, "sha256Hash": hash })).unwrap())
    }

    #[test]
    fn apq_registers_a_document_sent_with_its_hash() {
        let store = PersistedDocuments::default();
        let hash = sha256_hex(QUERY);
        let by_hash = || Named {
            persisted_query: apq(&hash),
            ..Named::default()
        };
        assert!(matches!(
            store.resolve(by_hash()),
            Err(AppError::PersistedQueryNotFound)
        ));
        let wrong = Named {
            query: Some("{ me { id } }".into()),
            persisted_query: apq(&hash),
            ..Named::default()
        };
        assert_eq!(
            store.resolve(wrong).unwrap_err().field(),
            Some("extensions.persistedQuery.sha256Hash")
        );
        let both = Named {
            query: Some(QUERY.into()),
            persisted_query: apq(&hash.to_uppercase()),
            ..Named::default()
        };
        assert_eq!(store.resolve(both).unwrap(), QUERY);
        assert_eq!(store.resolve(by_hash()).unwrap(), QUERY);
        let id = Named {
            document_id: Some(format!("sha256:{hash}")),
            ..Named::default()
        };
        assert_eq!(store.resolve(id).unwrap(), QUERY);
        for bad in [
            serde_json::json!({ "version": 2, "sha256Hash": hash }),
            serde_json::json!({ "version": 1, "sha256Hash": "abc" }),
            serde_json::json!({ "version": 1 }),
            serde_json::json!("x"),
        ] {
            let named = Named {
                persisted_query: Some(async_graphql::Value::from_json(bad).unwrap()),
                ..Named::default()
            };
            assert!(matches!(store.resolve(named), Err(AppError::BadInput { .. })));
        }
    }

    #[test]
    fn trusted_mode_runs_only_the_manifest() {
        let dir = std::env::temp_dir().join(format!("trusted-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("persisted-documents.json");
        let hash = sha256_hex(QUERY);
        // Keyed as graphql-codegen writes it.
        std::fs::write(
            &manifest,
            serde_json::json!({ format!("sha256:{hash}"): QUERY }).to_string(),
        )
        .unwrap();
        let store = PersistedDocuments::trusted(&manifest).unwrap();
        assert!(store.is_trusted_only());
        for named in [
            Named {
                document_id: Some(hash.clone()),
                ..Named::default()
            },
            Named {
                persisted_query: apq(&hash),
                ..Named::default()
            },
            Named {
                query: Some(QUERY.into()),
                ..Named::default()
            },
        ] {
            assert_eq!(store.resolve(named).unwrap(), QUERY);
        }
        let other = "{ me { id } }";
        for named in [
            Named {
                query: Some(other.into()),
                ..Named::default()
            },
            // Registering by APQ is not possible either.
            Named {
                query: Some(other.into()),
                persisted_query: apq(&sha256_hex(other)),
                ..Named::default()
            },
            Named {
                document_id: Some(sha256_hex(other)),
                ..Named::default()
            },
        ] {
            assert!(matches!(store.resolve(named), Err(AppError::PersistedQueryNotFound)));
        }
        // A manifest whose hash is not its document's stops start-up.
        std::fs::write(&manifest, serde_json::json!({ sha256_hex(other): QUERY }).to_string()).unwrap();
        assert!(PersistedDocuments::trusted(&manifest).is_err());
        std::fs::write(&manifest, "[]").unwrap();
        assert!(PersistedDocuments::trusted(&manifest).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
