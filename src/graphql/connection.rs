//! `connection!` writes a Relay-style connection type and its edge type for
//! one kind of node: `edges`, `nodes`, `pageInfo`, and a `totalCount` that
//! runs its COUNT only when a query selects it.

/// What a connection's `totalCount` counts (with the request's context, for
/// counts that go through a loader).
pub trait Counted: Send + Sync {
    fn count(&self, ctx: &async_graphql::Context<'_>) -> impl Future<Output = async_graphql::Result<i64>> + Send;
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident, $item:ty, $count:ty) => {
        pub struct $edge {
            cursor: String,
            node: $node,
        }

        #[async_graphql::Object]
        impl $edge {
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        pub struct $conn {
            edges: Vec<$edge>,
            page_info: $crate::graphql::types::PageInfo,
            count: $count,
        }

        impl $conn {
            pub fn new(page: $crate::paging::Page<$item>, count: $count) -> Self {
                let page_info = $crate::graphql::types::PageInfo::of(&page);
                let edges = page
                    .rows
                    .into_iter()
                    .map(|(cursor, item)| $edge {
                        cursor: cursor.encode(),
                        node: $node::from(item),
                    })
                    .collect();
                Self {
                    edges,
                    page_info,
                    count,
                }
            }
        }

        #[async_graphql::Object]
        impl $conn {
            async fn edges(&self) -> Vec<&$edge> {
                self.edges.iter().collect()
            }
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            async fn page_info(&self) -> &$crate::graphql::types::PageInfo {
                &self.page_info
            }
            /// Rows matching the filter, over all pages.
            async fn total_count(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<i32> {
                let count = $crate::graphql::connection::Counted::count(&self.count, ctx).await?;
                Ok(i32::try_from(count).unwrap_or(i32::MAX))
            }
        }
    };
}
