//! The integration test binary: the bouncer runs in-process (or as a child
//! process) against fake upstream servers and scripted clients over
//! loopback sockets.

mod harness;
mod harness_selftest;
mod inspircd;
mod support;

mod abuse;
mod admin_cli;
mod away;
mod away_summary;
mod bad_input;
mod bans;
mod bouncer_networks;
mod bouncerserv;
mod burst;
mod caps;
mod chathistory;
mod connect_spacing;
mod crash;
mod db_faults;
mod device_certs;
mod docs;
mod history;
mod ident;
mod import;
mod interop;
mod interop_ircv3;
mod labeled;
mod limits;
mod metrics;
mod monitor;
mod notify_delivery;
mod notify_rules;
mod proxy;
mod reconnect;
mod registration;
mod relay;
mod reload;
mod restart;
mod service_commands;
mod slow_client;
mod smoke;
mod systemd;
mod tls_reload;
mod upstream;
mod upstream_faults;
mod upstream_tls;
mod webhook;
mod webpush;
mod websocket;
mod who_cache;
