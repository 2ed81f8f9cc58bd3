//! Render the compose files of a CHT release from Rust, without touching a home.
//!
//! Run: `cargo run --example render_stack -- 4.22.0 /srv/cht/my-app [NODES]`, NODES 1
//! (the default) or 3 for upstream's three-node CouchDB cluster.

use std::path::PathBuf;

use cht_dev::project::layout::Layout;
use cht_dev::project::render::{RenderInput, render};
use cht_dev::project::versions;

fn main() -> Result<(), cht_dev::Error> {
    let mut args = std::env::args().skip(1);
    let version = match args.next() {
        Some(v) => versions::find(&v)?,
        None => versions::latest(),
    };
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/srv/cht/example".into()));
    let layout = match args.next() {
        Some(n) => Layout::from_nodes(n.parse().unwrap_or(0))?,
        None => Layout::Single,
    };
    let files = render(&RenderInput {
        project: "example",
        version,
        registry: None,
        project_dir: &dir,
        layout,
    })?;
    for file in files {
        println!("--- {} ---\n{}", file.path, file.contents);
    }
    Ok(())
}
