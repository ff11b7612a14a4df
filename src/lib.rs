//! The healthcare records API: a GraphQL server and its REST compatibility
//! API (accounts, patients, doctors and their assignments) on axum,
//! async-graphql and PostgreSQL.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod config;
pub mod db;
pub mod doctors;
pub mod error;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod input;
pub mod mappings;
pub mod paging;
pub mod patients;
pub mod rest;
pub mod subscriptions;
pub mod telemetry;
pub mod time;
pub mod viewer;
