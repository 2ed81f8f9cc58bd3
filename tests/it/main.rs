//! The integration tests: one binary (one link, one shared harness), a module per area.
//! Each runs the real `cht-dev` binary; the engine tests run it against the real Docker
//! engine with stand-in images and fail with a clear message when Docker is absent.

mod cluster;
mod coexist;
mod common;
mod disk;
mod engine;
mod engines;
mod export;
mod faults;
mod hostile;
mod init;
mod kills;
mod no_panic;
mod operations;
mod outputs;
mod phones;
mod platforms;
mod production;
mod upstream;
