mod harness;
mod harness_selftest;
mod inspircd;
mod support;

mod admin_cli;
mod bad_input;
mod bouncerserv;
mod burst;
mod interop;
mod reconnect;
mod registration;
mod relay;
mod restart;
mod slow_client;
mod tls_reload;
