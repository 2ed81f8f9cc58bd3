//! A CI job's setup step from Rust: create a project (or reuse it), bring it up through
//! the Docker engine, wait until HTTPS reaches the API, print the URL, and take it down
//! again when asked, keeping the data.
//!
//! Run: `cargo run --example ci_stack -- /tmp/ci-home ci-run [down]`
//! Offline machines: set CHT_IMAGE_REGISTRY to a registry (or local tag prefix) holding the images.

use std::path::PathBuf;
use std::time::Duration;

use cht_dev::docker::Engine;
use cht_dev::home::Home;
use cht_dev::progress::Silent;
use cht_dev::project::profile::profile;
use cht_dev::project::{InitOptions, Project, create};
use cht_dev::stack::images::PullPolicy;
use cht_dev::stack::teardown::down;
use cht_dev::stack::up::{UpOptions, up};

#[tokio::main]
async fn main() -> Result<(), cht_dev::Error> {
    let mut args = std::env::args().skip(1);
    let home = Home::at(&PathBuf::from(
        args.next().unwrap_or_else(|| "/tmp/cht-ci".into()),
    ))?;
    let name = args.next().unwrap_or_else(|| "ci".into());
    let engine = Engine::connect().await?;
    let project = match Project::load(&home, &name) {
        Ok(project) => project,
        Err(_) => {
            let options = InitOptions {
                name: name.clone(),
                image_registry: std::env::var("CHT_IMAGE_REGISTRY").ok(),
                ..InitOptions::default()
            };
            create(&home, &options)?.project
        }
    };
    if args.next().as_deref() == Some("down") {
        if let Some(network) = down(&engine, &project.target(), &Silent).await? {
            println!("network {network} stays: the engine holds an endpoint it no longer has");
        }
        return Ok(());
    }
    let options = UpOptions {
        pull: PullPolicy::Missing,
        timeout: Duration::from_secs(300),
        wait: true,
    };
    // What CHT's services are (nginx's certificate, readiness, ports), for the runner.
    let profile = profile(&project, &home.ca_dir().join("ca.pem"), false)?;
    let outcome = up(&engine, &project.target(), &profile, &options, &Silent).await?;
    println!("url: {}", project.url());
    println!("ca:  {}", home.ca_dir().join("ca.pem").display());
    for s in outcome.services {
        println!("{:<20} {}", s.service, s.state_word());
    }
    for note in outcome.notes {
        println!("note: {note}");
    }
    Ok(())
}
