//! The integration test binary: the bouncer runs in-process (or as a child
//! process) against fake upstream servers and scripted clients over
//! loopback sockets.

mod harness;
mod harness_selftest;
mod inspircd;
mod support;

mod admin_cli;
mod bad_input;
mod bouncerserv;
mod burst;
mod caps;
mod chathistory;
mod crash;
mod history;
mod interop;
mod labeled;
mod limits;
mod reconnect;
mod registration;
mod relay;
mod restart;
mod slow_client;
mod smoke;
mod tls_reload;
mod upstream;
