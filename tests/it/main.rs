//! The integration suite, one binary: the HTTP API in process against fake-codex, the server
//! binary as a user starts it, and fake-codex against real codex transcripts.

#[path = "../common/doctor_output.rs"]
mod doctor_output;
#[path = "../common/server.rs"]
mod server;
mod support;

mod accounts;
mod answer_shaping;
mod app_server;
mod app_server_wire;
mod auth;
mod chat_errors;
mod completions;
mod config_startup;
mod docs;
mod doctor;
mod fake_app_server;
mod fake_codex_cli;
mod fidelity;
mod hostile;
mod images;
mod lifecycle;
mod limits;
mod models_health;
mod native_tools;
mod observability;
mod plan_limits;
mod responses;
mod safety;
mod scenarios;
mod spec;
mod tool_parser;
mod tools_e2e;
