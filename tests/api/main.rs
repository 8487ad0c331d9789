//! API tests: each starts the real service on port 0 with a fresh database (SQLite, or
//! PostgreSQL when `PREGONERO_TEST_POSTGRES_URL` is set) and talks to it over HTTP.

mod api_keys;
mod auth;
#[path = "../common/mod.rs"]
mod common;
mod credit;
mod errors;
mod events;
mod health;
mod helpers;
mod inbox;
mod loads;
mod logs;
mod messages;
mod modems;
mod notifications;
mod openapi;
mod sending;
#[path = "../common/smtp.rs"]
mod smtp;
mod suppressions;
mod templates;
mod users;
mod webhooks;
