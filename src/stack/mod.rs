//! A project's compose files as a stack of containers, and how cht-dev runs it.

pub mod compose_hash;
pub mod interpolate;
pub mod model;
pub mod probe;
pub mod run;
