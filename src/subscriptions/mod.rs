//! The WebSocket transport of GraphQL subscriptions.

pub mod ws;
