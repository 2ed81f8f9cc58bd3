//! The `.env` settings that fit a project's files to the engine it runs on: the socket the
//! upgrade service mounts, and on Podman a log driver it has, the `podman` profile and
//! the networks of nginx-dns and haproxy-dns.

use super::Project;

/// The `.env` variable naming the socket the upgrade service mounts as its engine's.
pub const SOCKET_VAR: &str = "CHT_DOCKER_SOCKET";

/// [`engine_settings`]' changes as words: `A=1 and B=2`.
pub fn said(changes: &[(&'static str, String)]) -> String {
    changes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The `.env` variable naming the log driver of every CHT container.
pub const LOG_DRIVER_VAR: &str = "CHT_LOG_DRIVER";
/// Compose's variable naming the enabled profiles.
pub const PROFILES_VAR: &str = "COMPOSE_PROFILES";
/// The `.env` variable naming the network namespace nginx-dns joins.
pub const DNS_NETWORK_VAR: &str = "NGINX_DNS_NETWORK";
/// The `.env` variable naming the network namespace haproxy-dns joins.
pub const HAPROXY_DNS_NETWORK_VAR: &str = "HAPROXY_DNS_NETWORK";
/// The profile of the services only Podman needs (nginx-dns, haproxy-dns).
const PODMAN_PROFILE: &str = "podman";

/// The `.env` settings that fit project `name`'s files to the engine, given what `.env`
/// says now (`env`); empty when they fit. On Podman: a log driver it has (json-file,
/// unless one other than compose's `local` is set), the `podman` profile, and nginx's and
/// HAProxy's containers as the networks of their DNS forwarders. Elsewhere the `podman` profile goes (its DNS
/// forwarder would ask itself at 127.0.0.11); the rest may stay, as every engine has
/// json-file and nginx-dns is off.
pub fn engine_settings<'a>(
    podman: bool,
    name: &str,
    env: &dyn Fn(&str) -> Option<&'a str>,
) -> Vec<(&'static str, String)> {
    let mut changes = Vec::new();
    let listed: Vec<&str> = env(PROFILES_VAR)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let has_profile = listed.contains(&PODMAN_PROFILE);
    if podman {
        if matches!(
            env(LOG_DRIVER_VAR).map(str::trim),
            None | Some("") | Some("local")
        ) {
            changes.push((LOG_DRIVER_VAR, "json-file".to_string()));
        }
        if !has_profile {
            let mut all = listed.clone();
            all.push(PODMAN_PROFILE);
            changes.push((PROFILES_VAR, all.join(",")));
        }
        for (var, service) in [
            (DNS_NETWORK_VAR, "nginx"),
            (HAPROXY_DNS_NETWORK_VAR, "haproxy"),
        ] {
            let network = format!("container:{name}-{service}-1");
            if env(var) != Some(network.as_str()) {
                changes.push((var, network));
            }
        }
    } else if has_profile {
        let rest: Vec<&str> = listed
            .into_iter()
            .filter(|p| *p != PODMAN_PROFILE)
            .collect();
        changes.push((PROFILES_VAR, rest.join(",")));
    }
    changes
}

impl Project {
    /// The socket the upgrade service mounts, when `.env` names one.
    pub fn mounted_socket(&self) -> Option<&str> {
        self.env.get(SOCKET_VAR)
    }

    /// The log driver `.env` sets for every CHT container, if any.
    pub fn log_driver(&self) -> Option<&str> {
        self.env.get(LOG_DRIVER_VAR)
    }

    /// The `.env` changes that fit the project to the engine (see [`engine_settings`]).
    pub fn engine_changes(&self, podman: bool) -> Vec<(&'static str, String)> {
        engine_settings(podman, &self.name, &|var| self.env.get(var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_gets_a_log_driver_it_has_and_the_dns_profile() {
        let set = |podman, vars: &[(&str, &'static str)]| {
            let vars: Vec<(String, &'static str)> =
                vars.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let env = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            engine_settings(podman, "pm", &env)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        let net = "NGINX_DNS_NETWORK=container:pm-nginx-1";
        let hnet = "HAPROXY_DNS_NETWORK=container:pm-haproxy-1";
        assert_eq!(
            set(true, &[]),
            [
                "CHT_LOG_DRIVER=json-file",
                "COMPOSE_PROFILES=podman",
                net,
                hnet
            ]
        );
        assert_eq!(
            set(
                true,
                &[("CHT_LOG_DRIVER", "local"), ("COMPOSE_PROFILES", "debug")]
            ),
            [
                "CHT_LOG_DRIVER=json-file",
                "COMPOSE_PROFILES=debug,podman",
                net,
                hnet
            ]
        );
        // Fitted already, or a driver of the user's own: nothing to change.
        let fitted = [
            ("CHT_LOG_DRIVER", "json-file"),
            ("COMPOSE_PROFILES", "podman"),
            ("NGINX_DNS_NETWORK", "container:pm-nginx-1"),
            ("HAPROXY_DNS_NETWORK", "container:pm-haproxy-1"),
        ];
        assert!(set(true, &fitted).is_empty());
        let mut own = fitted;
        own[0].1 = "journald";
        own[1].1 = "podman, debug";
        assert!(set(true, &own).is_empty());
        // Back on Docker: the profile goes, the driver (which Docker has too) stays.
        assert!(set(false, &[]).is_empty());
        assert_eq!(set(false, &fitted), ["COMPOSE_PROFILES="]);
        assert_eq!(
            set(false, &[("COMPOSE_PROFILES", "debug,podman")]),
            ["COMPOSE_PROFILES=debug"]
        );
    }
}
