//! cht-dev: run Community Health Toolkit stacks locally, in CI and on small servers.
//!
//! The binary is a thin wrapper around [`cli::run`]; the modules below are usable
//! on their own, e.g. [`project::render`] to render a stack for a version.

#![deny(missing_docs)]
#![warn(
    clippy::missing_docs_in_private_items,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit
)]

pub mod cli;
pub mod commands;
pub mod docker;
pub mod error;
pub mod fsutil;
pub mod home;
pub mod net;
pub mod printer;
pub mod project;
pub mod report;
pub mod settings;
pub mod stack;
pub mod tls;

pub use error::{Error, Result};
