//! Pregonero: an SMS gateway for GSM modems with a REST/JSON API.
//!
//! The binary in `main.rs` is a thin shell around [`app::Application`]; everything it runs lives
//! here so that the API tests can start the same service in-process.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod credit;
pub mod dispatch;
pub mod domain;
pub mod eventlog;
pub mod jobs;
pub mod loads;
pub mod metrics;
pub mod modem;
pub mod notify;
pub mod optout;
pub mod store;
