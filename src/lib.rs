//! prun: run one command on many hosts over SSH, in parallel, and time every step.
//!
//! Layout (see the design): `cli` (clap), `plan` (args + inventory → targets), `inventory`
//! (pure), `ssh` (one host's session, no printing), `runner` (pool → events), `event` (the
//! only contract between runner and sinks), `output` and `report` (sinks), `app` (wiring).

pub mod app;
pub mod cancel;
pub mod cli;
pub mod event;
pub mod exit;
pub mod holder;
pub mod inventory;
pub mod local;
pub mod localtree;
pub mod output;
pub mod paths;
pub mod perhost;
pub mod plan;
pub mod report;
pub mod rollout;
pub mod runner;
pub mod secret;
pub mod shell;
pub mod ssh;
pub mod sshconfig;
pub mod target;
pub mod template;
pub mod text;
