//! Create a project in a home of your choice from Rust, as `cht-dev init` does,
//! e.g. in a CI job's setup step, and print where its URL and CA are.
//!
//! Run: `cargo run --example new_project -- /tmp/cht-home ci-run-1`

use std::path::PathBuf;

use cht_dev::home::Home;
use cht_dev::project::{InitOptions, create};

fn main() -> Result<(), cht_dev::Error> {
    let mut args = std::env::args().skip(1);
    let home = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/cht-dev-example".into()));
    let name = args.next().unwrap_or_else(|| "example".into());
    let home = Home::at(&home)?;
    let created = create(
        &home,
        &InitOptions {
            name,
            ..InitOptions::default()
        },
    )?;
    println!("project: {}", created.project.dir.display());
    println!("url:     {}", created.project.url());
    println!("ca:      {}", created.ca.cert.display());
    Ok(())
}
