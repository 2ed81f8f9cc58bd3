//! What the owner of a compose project knows about its services, handed to the generic
//! runner as data: the runner reads no service names, settings or commands of its own.

use super::readiness::probe::WaitFor;

/// The owner's knowledge of one project, for one command.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Files that live in a named volume and the command that takes them up.
    pub volume_files: Option<VolumeFiles>,
    /// What readiness waits for.
    pub readiness: Readiness,
    /// The group each service stops in for a consistent copy of its data, lowest first (they
    /// start again in the reverse order); services not listed keep running.
    pub quiet_groups: Vec<(String, usize)>,
    /// The setting that chooses each published host port, for the error when one is busy.
    pub port_owners: Vec<PortOwner>,
    /// Services that read another's address once, when they start: `(service, of)` has
    /// `service` restarted, once every container has started, whenever `of` got a new
    /// container in that run (the old address is gone, or worse, reused).
    pub restart_with: Vec<(String, String)>,
}

/// Files put into a named volume's mount in the container that mounts it, before that
/// container first starts, and again, followed by `reload` run inside it, when `changed`.
#[derive(Debug, Clone)]
pub struct VolumeFiles {
    /// The volume's key in the compose file.
    pub volume: String,
    /// A tar archive of the files.
    pub tar: Vec<u8>,
    /// The command that makes the running container take the files up.
    pub reload: Vec<String>,
    /// Whether the files changed since the container was given them.
    pub changed: bool,
    /// The progress line said after a reload.
    pub reloaded: String,
}

/// What readiness waits for: log lines first (gates), then every condition, probed over
/// TLS as `tls` says.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Lines a service logs once it serves, awaited before any condition is probed.
    pub gates: Vec<LogGate>,
    /// The conditions, all of which must hold.
    pub conditions: Vec<WaitFor>,
    /// How HTTPS probes verify the server.
    pub tls: ProbeTls,
}

/// How HTTPS probes verify the server's certificate.
#[derive(Debug, Clone, Default)]
pub enum ProbeTls {
    /// No HTTPS condition is probed.
    #[default]
    None,
    /// Chains to this CA (PEM), for `localhost`.
    Trusting(String),
    /// Is exactly this certificate (PEM, first block), whatever names it covers.
    Pinned(String),
}

/// A line a service's container logs once it serves, for a service others use before they
/// can answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGate {
    /// The compose service.
    pub service: String,
    /// The text its log shows once it serves.
    pub text: String,
}

/// The setting that chooses a published host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    /// The host port.
    pub port: u16,
    /// The setting's name.
    pub setting: String,
    /// Where it is set.
    pub file: std::path::PathBuf,
}

impl Profile {
    /// The group `service` stops in for a consistent copy, if it stops.
    pub fn quiet_group(&self, service: &str) -> Option<usize> {
        self.quiet_groups
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, g)| *g)
    }

    /// How many quiet groups there are.
    pub fn quiet_group_count(&self) -> usize {
        self.quiet_groups
            .iter()
            .map(|(_, g)| g + 1)
            .max()
            .unwrap_or(0)
    }

    /// The setting that chooses host `port`, if the owner named one.
    pub fn port_owner(&self, port: u16) -> Option<&PortOwner> {
        self.port_owners.iter().find(|o| o.port == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_from_the_highest_and_owners_are_found_by_port() {
        let p = Profile {
            quiet_groups: vec![("a".into(), 0), ("b".into(), 2)],
            port_owners: vec![PortOwner {
                port: 8080,
                setting: "PORT".into(),
                file: "/x/.env".into(),
            }],
            ..Profile::default()
        };
        assert_eq!(p.quiet_group_count(), 3);
        assert_eq!(p.quiet_group("b"), Some(2));
        assert_eq!(p.quiet_group("c"), None);
        assert_eq!(p.port_owner(8080).map(|o| o.setting.as_str()), Some("PORT"));
        assert!(p.port_owner(8081).is_none());
        assert_eq!(Profile::default().quiet_group_count(), 0);
    }
}
