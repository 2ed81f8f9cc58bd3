//! Render the compose files of a CHT release from Rust, without touching a home.
//!
//! Run: `cargo run --example render_stack -- 4.22.0 /srv/cht/my-app`

use std::path::PathBuf;

use cht_dev::project::render::{RenderInput, render};
use cht_dev::project::versions;

fn main() -> Result<(), cht_dev::Error> {
    let mut args = std::env::args().skip(1);
    let version = match args.next() {
        Some(v) => versions::find(&v)?,
        None => versions::latest(),
    };
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/srv/cht/example".into()));
    let files = render(&RenderInput {
        project: "example",
        version,
        registry: None,
        project_dir: &dir,
    })?;
    for file in files {
        println!("--- {} ---\n{}", file.path, file.contents);
    }
    Ok(())
}
