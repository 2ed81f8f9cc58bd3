//! Loading compose files into the model.

use super::*;

#[test]
fn ports_and_sizes() {
    assert_eq!(
        parse_port("10080:80").map(|p| (p.host_port, p.container_port)),
        Some((10080, 80))
    );
    assert_eq!(
        parse_port("127.0.0.1:1:2/udp").map(|p| (p.host_ip, p.protocol)),
        Some(("127.0.0.1".into(), "udp".into()))
    );
    assert!(parse_port("80").is_none());
    assert!(parse_port("0:80").is_none());
    assert!(parse_port("x:80").is_none());
    assert_eq!(parse_bytes("1G"), Some(1 << 30));
    assert_eq!(parse_bytes("512m"), Some(512 << 20));
    assert_eq!(parse_bytes("100"), Some(100));
    assert_eq!(parse_bytes("1gb"), Some(1 << 30));
    assert_eq!(parse_bytes("lots"), None);
}

#[test]
fn profiles_enable_services() {
    let podman = ["podman".to_string()];
    assert!(enabled(&[], ""));
    assert!(!enabled(&podman, ""));
    assert!(enabled(&podman, "podman"));
    assert!(enabled(&podman, "debug, podman"));
    assert!(enabled(&podman, "*"));
    assert!(!enabled(&podman, "podmanx"));
}

use super::super::testing::load_text;

#[test]
fn a_sidecar_shares_its_services_network_namespace() {
    let text = "services:\n  web:\n    image: w\n    networks: [net]\n  dns:\n    image: d\n    profiles: [podman]\n    network_mode: service:web\nnetworks:\n  net: {}\n";
    let off = load_text(text, &[]).expect("loads");
    assert_eq!(off.services.keys().collect::<Vec<_>>(), ["web"]);
    let on = load_text(text, &[("COMPOSE_PROFILES", "podman")]).expect("loads");
    let dns = &on.services["dns"];
    assert_eq!(dns.network_service(), Some("web"));
    assert_eq!(dns.depends_on, ["web"]);
    assert!(dns.networks.is_empty());
    assert_eq!(on.start_order().expect("order"), [["web"], ["dns"]]);
    assert_eq!(on.network_owner(dns).map(|s| s.name.as_str()), Some("web"));
    // By container name, as cht-dev's files say it (compose then hashes the file's
    // words, not the container id it resolves).
    let named = load_text(
        &text.replace(
            "network_mode: service:web",
            "network_mode: container:p-web-1\n    depends_on: [web]",
        ),
        &[("COMPOSE_PROFILES", "podman")],
    )
    .expect("loads");
    let dns = &named.services["dns"];
    assert_eq!(dns.network_service(), None);
    assert_eq!(
        named.network_owner(dns).map(|s| s.name.as_str()),
        Some("web")
    );
    assert!(named.network_owner(&named.services["web"]).is_none());
    let both = text.replace(
        "network_mode: service:web",
        "network_mode: service:web\n    networks: [net]",
    );
    let err = load_text(&both, &[("COMPOSE_PROFILES", "podman")]).expect_err("both");
    assert!(
        err.to_string()
            .contains("sets both network_mode and networks"),
        "{err}"
    );
    let err = load_text(
        &text.replace("service:web", "service:db"),
        &[("COMPOSE_PROFILES", "*")],
    )
    .expect_err("undefined");
    assert!(
        err.to_string()
            .contains("depends on db, which is not defined"),
        "{err}"
    );
}

#[test]
fn services_start_in_waves_after_what_they_depend_on() {
    let text = "services:
  db:
    image: d
    networks: [net]
  api:
    image: a
    networks: [net]
    depends_on: [db]
  proxy:
    image: p
    networks: [net]
    depends_on: [api]
  worker:
    image: w
    networks: [net]
    depends_on: [db]
networks:
  net: {}
";
    let stack = load_text(text, &[]).expect("loads");
    assert_eq!(
        stack.start_order().expect("order"),
        [vec!["db"], vec!["api", "worker"], vec!["proxy"]]
    );
    let waves = stack.start_order().expect("order");
    assert_eq!(stack.longest_chain_heads(&waves), ["db"]);
}

#[test]
fn the_heads_of_the_longest_depends_on_chain_are_the_roots_it_starts_from() {
    let service = |name: &str, deps: &[&str]| {
        let deps = if deps.is_empty() {
            String::new()
        } else {
            format!("\n    depends_on: [{}]", deps.join(", "))
        };
        format!("  {name}:\n    image: {name}\n    networks: [net]{deps}\n")
    };
    let stack_of = |services: &[String]| {
        let text = format!("services:\n{}networks:\n  net: {{}}\n", services.concat());
        load_text(&text, &[]).expect("loads")
    };
    let heads = |stack: &Stack| stack.longest_chain_heads(&stack.start_order().expect("order"));
    // CHT 5.x: haproxy -> api -> nginx is longer than nouveau -> couchdb.
    let cht = stack_of(&[
        service("nouveau", &[]),
        service("couchdb", &["nouveau"]),
        service("haproxy", &[]),
        service("api", &["haproxy"]),
        service("sentinel", &["haproxy"]),
        service("nginx", &["api", "haproxy"]),
    ]);
    assert_eq!(heads(&cht), ["haproxy"]);
    // Two chains as long: both heads.
    let tied = stack_of(&[
        service("a", &[]),
        service("b", &["a"]),
        service("c", &[]),
        service("d", &["c"]),
        service("e", &[]),
    ]);
    assert_eq!(heads(&tied), ["a", "c"]);
    // No service waits for another: nothing to put first.
    let flat = stack_of(&[service("a", &[]), service("b", &[])]);
    assert!(heads(&flat).is_empty());
}

#[test]
fn a_dependency_cycle_or_an_unknown_dependency_is_refused() {
    let cycle = "services:
  a:
    image: a
    networks: [net]
    depends_on: [b]
  b:
    image: b
    networks: [net]
    depends_on: [a]
networks:
  net: {}
";
    let err = load_text(cycle, &[]).expect_err("cycle").to_string();
    assert!(err.contains("cycle"), "{err}");
    let unknown = cycle.replace("depends_on: [a]", "depends_on: [c]");
    assert!(load_text(&unknown, &[]).is_err());
}

#[test]
fn variables_fill_images_and_a_missing_required_one_is_named() {
    let text = "services:
  web:
    image: ${REGISTRY:-example}/web:${TAG:?set TAG}
    networks: [net]
networks:
  net: {}
";
    let stack = load_text(text, &[("TAG", "1.2")]).expect("loads");
    assert_eq!(stack.services["web"].image, "example/web:1.2");
    let err = load_text(text, &[]).expect_err("TAG missing").to_string();
    assert!(err.contains("TAG"), "{err}");
}

#[test]
fn restart_policies_are_typed_on_load_and_hash_as_the_word_written() {
    for (word, want) in [
        ("no", Restart::No),
        ("always", Restart::Always),
        ("unless-stopped", Restart::UnlessStopped),
        ("on-failure", Restart::OnFailure(None)),
        ("on-failure:3", Restart::OnFailure(Some(3))),
    ] {
        assert_eq!(parse_restart(word), Some(want), "{word}");
        let text = format!(
            "services:\n  a:\n    image: x:1\n    restart: \"{word}\"\nnetworks:\n  default: {{}}\n"
        );
        let stack = crate::stack::testing::load_text(&text, &[]).expect("loads");
        let spec = &stack.services["a"];
        assert_eq!(spec.restart, Some(want));
        let json = serde_json::to_value(spec).expect("json");
        assert_eq!(json["restart"], word, "the model's hash sees the word");
    }
    let text =
        "services:\n  a:\n    image: x:1\n    restart: sometimes\nnetworks:\n  default: {}\n";
    let err = crate::stack::testing::load_text(text, &[])
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains(
            "service a: restart \"sometimes\" must be no, always, unless-stopped or on-failure[:N]"
        ),
        "{err}"
    );
}
