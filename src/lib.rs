//! cht-dev: run Community Health Toolkit stacks locally, in CI and on small servers.
//!
//! The binary is a thin wrapper around [`cli::run`]; the modules below are usable
//! on their own, e.g. [`project::render`] to render a stack for a version.

#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

// The library API (what `examples/` and the integration tests use): the engine client,
// the home, projects and their files, stacks, certificates, progress reporting, errors.
pub mod docker;
pub mod error;
pub mod home;
pub mod local_ip;
pub mod progress;
pub mod project;
pub mod stack;
pub mod tls;

// The binary's own layers: the command line, the commands, and their output.
pub mod cli;
pub(crate) mod commands;
pub(crate) mod faults;
pub(crate) mod fsutil;
pub(crate) mod net;
pub mod printer;
pub(crate) mod settings;
pub(crate) mod shell;

pub use error::{Error, Result};
