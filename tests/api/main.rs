//! Integration tests: the real server over HTTP, on a real PostgreSQL cluster
//! started once per test run (see `common::cluster`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

mod access_log;
mod accounts;
mod arguments;
mod audit;
mod contract;
mod database;
mod doctors;
mod embedded;
mod http;
mod idempotency;
mod limits;
mod mappings;
mod mfa;
mod nplusone;
mod over_http;
mod paging;
mod patients;
mod persisted;
mod pooler;
mod privacy;
mod production;
mod reads;
mod rest;
mod seal;
mod sessions;
mod subscriptions;
mod traces;
