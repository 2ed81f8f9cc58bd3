//! What `up` keeps or recreates, and how a service becomes a container.

use super::*;
use crate::docker::{ContainerState, Restart, VolumeMount};
use crate::stack::testing::load_text;

const COMPOSE: &str = "\
services:
  web:
    image: web:1
    networks: [net]
    restart: on-failure:3
    ports: ['127.0.0.1:8080:80']
    expose: ['9000']
    volumes: ['/srv/conf:/etc/conf:ro', 'data:/data']
    logging:
      driver: local
      options: {max-size: 10m}
  db:
    image: db:1
    networks: [net]
    restart: unless-stopped
volumes:
  data: {}
networks:
  net: {}
";

/// A container of project `p` for `service`, as the engine lists it.
fn container(service: &str, hash: Option<&str>, image_id: &str) -> ContainerInfo {
    ContainerInfo {
        config_hash: hash.map(str::to_string),
        image_id: Some(image_id.into()),
        ..crate::stack::testing::container("p", service, ContainerState::Running)
    }
}

/// The stack, its target, and a container per service that the target keeps.
fn settled() -> (Stack, Desired, Vec<ContainerInfo>) {
    let stack = load_text(COMPOSE, &[]).expect("stack");
    let images: BTreeMap<String, ImageInfo> = ["web:1", "db:1"]
        .iter()
        .map(|i| {
            let info = ImageInfo {
                id: format!("sha256:{i}"),
                env: Vec::new(),
            };
            (i.to_string(), info)
        })
        .collect();
    let desired = Desired::of(&stack, &images, None);
    let list = stack
        .services
        .values()
        .map(|spec| {
            container(
                &spec.name,
                Some(&Stack::config_hash(spec)),
                &format!("sha256:{}", spec.image),
            )
        })
        .collect();
    (stack, desired, list)
}

#[test]
fn a_container_is_kept_only_as_compose_would_keep_it() {
    let (stack, desired, list) = settled();
    let web = &stack.services["web"];
    let kept = list.iter().find(|c| c.service == "web").expect("web");
    assert!(desired.keeps(web, kept));
    let mut other_hash = kept.clone();
    other_hash.config_hash = Some("changed".into());
    assert_eq!(
        desired.mismatch(web, &other_hash),
        Some("its config hash is not compose's")
    );
    let mut other_image = kept.clone();
    other_image.image_id = Some("sha256:new".into());
    assert_eq!(
        desired.mismatch(web, &other_image),
        Some("its image changed")
    );
    let mut renamed = kept.clone();
    renamed.name = "abc123_p-web-1".into();
    assert!(!desired.keeps(web, &renamed), "a recreate cut short");
}

#[test]
fn a_stack_is_settled_with_exactly_one_keepable_container_per_service() {
    let (stack, desired, list) = settled();
    assert!(is_settled(&list, &stack, &desired));
    let missing: Vec<ContainerInfo> = list.iter().filter(|c| c.service != "db").cloned().collect();
    assert!(!is_settled(&missing, &stack, &desired));
    let mut orphan = list.clone();
    orphan.push(container("gone", Some("h"), "sha256:x"));
    assert!(!is_settled(&orphan, &stack, &desired));
    let mut other_project = list.clone();
    let mut theirs = container("gone", Some("h"), "sha256:x");
    theirs.project = "p-upgrade".into();
    other_project.push(theirs);
    assert!(
        is_settled(&other_project, &stack, &desired),
        "other projects do not count"
    );
}

#[test]
fn container_configs_translate_compose_fields() {
    let stack = load_text(COMPOSE, &[]).expect("stack");
    let config = container_config(&stack.services["web"], &BTreeMap::new(), None);
    assert_eq!(config.name, "p-web-1");
    assert_eq!(config.restart, Some(Restart::OnFailure(Some(3))));
    assert_eq!(config.exposed, ["80/tcp", "9000/tcp"]);
    assert_eq!(config.published[0].host_port, 8080);
    assert_eq!(config.published[0].host_ip, "127.0.0.1");
    assert_eq!(config.binds, ["/srv/conf:/etc/conf:ro"]);
    assert_eq!(
        config.volumes,
        [VolumeMount {
            volume: "p_data".into(),
            target: "/data".into(),
            read_only: false,
        }]
    );
    assert_eq!(
        config
            .log
            .as_ref()
            .map(|(d, o)| (d.as_str(), o.get("max-size").cloned())),
        Some(("local", Some("10m".into())))
    );
    let joined = container_config(
        &stack.services["db"],
        &BTreeMap::new(),
        Some("container:abc".into()),
    );
    assert_eq!(joined.restart, Some(Restart::UnlessStopped));
    assert_eq!(joined.network_mode.as_deref(), Some("container:abc"));
}

#[test]
fn a_busy_published_port_names_the_setting_that_chooses_it() {
    let held = std::net::TcpListener::bind(("0.0.0.0", 0)).expect("bind");
    let port = held.local_addr().expect("addr").port();
    let text = format!(
        "services:\n  web:\n    image: web:1\n    networks: [net]\n    ports: ['{port}:80']\nnetworks:\n  net: {{}}\n"
    );
    let stack = load_text(&text, &[]).expect("stack");
    let stacks = Stacks {
        main: stack.clone(),
        companion: load_text("services: {}\n", &[]).expect("empty"),
    };
    let owned = Profile {
        port_owners: vec![crate::stack::profile::PortOwner {
            port,
            setting: "WEB_PORT".into(),
            file: "/p/.env".into(),
        }],
        ..Profile::default()
    };
    let err = check_published_ports(&[], &stacks, &owned).expect_err("busy");
    assert!(
        err.to_string()
            .contains("WEB_PORT in /p/.env to a free port"),
        "{err}"
    );
    let err = check_published_ports(&[], &stacks, &Profile::default()).expect_err("busy");
    assert!(err.to_string().contains("published by web"), "{err}");
    // The project's own running container holds it: nothing to say.
    let own = container("web", None, "x");
    assert!(check_published_ports(&[own], &stacks, &owned).is_ok());
}
