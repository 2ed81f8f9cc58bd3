//! What CHT's services are, told to the generic stack runner as a [`Profile`]: nginx's
//! certificate volume and reload, what readiness waits for, which services stop for a
//! consistent copy of CouchDB's data, and which `.env` settings choose the published ports.

use std::path::Path;

use super::layout::CLUSTER_NODES;
use super::{Project, TlsMode, certs};
use crate::error::{Error, Result};
use crate::stack::profile::{LogGate, PortOwner, ProbeTls, Profile, Readiness, VolumeFiles};
use crate::stack::readiness::probe::WaitFor;

pub use super::{HTTP_PORT_VAR, HTTPS_PORT_VAR};

/// The compose volume nginx reads its certificate from.
const CERT_VOLUME: &str = "cht-ssl";

/// The API path readiness asks for through nginx.
const API_PATH: &str = "/api/info";
/// Where CHT's API reports its start-up steps while it answers 503.
const STARTUP_PROGRESS: &str = "/api/v1/startup-progress";

/// nginx-dns and haproxy-dns (Podman's stand-ins for Docker's DNS at 127.0.0.11), when the
/// files run them. nginx asks its resolver once for a name and, if that query is lost (sent
/// before the forwarder listens), asks again only 5 s later, so nothing may reach nginx
/// before its forwarder says it listens; HAProxy takes its servers out of service while its
/// resolver does not answer. Files from before haproxy-dns said "nginx-dns: answering".
const DNS_FORWARDERS: [(&str, &str); 2] = [
    ("nginx-dns", "answering 127.0.0.11:53"),
    ("haproxy-dns", "answering 127.0.0.11:53"),
];

/// The groups services stop in for a consistent copy of CouchDB's data: writers through
/// CouchDB (API, Sentinel) first, then what writes the data folders (every CouchDB node,
/// Nouveau). They start again in the reverse order.
fn quiet_groups() -> Vec<(String, usize)> {
    [("api", 0), ("sentinel", 0), ("nouveau", 1), ("couchdb", 1)]
        .into_iter()
        .chain(CLUSTER_NODES.iter().map(|n| (*n, 1)))
        .map(|(s, g)| (s.to_string(), g))
        .collect()
}

/// The readiness of a project: nginx redirects HTTP, and HTTPS through nginx reaches the
/// API, verified against the local CA (`ca_cert`), or pinned to the project's own
/// certificate when it has another source (readiness probes `localhost`, which neither
/// the user's own nor the local-ip certificate covers).
fn readiness(project: &Project, ca_cert: &Path) -> Result<Readiness> {
    let read = |path: &Path| std::fs::read_to_string(path).map_err(Error::io("read", path));
    let tls = match project.tls_mode() {
        TlsMode::LocalCa => ProbeTls::Trusting(read(ca_cert)?),
        TlsMode::LocalIp | TlsMode::Own => ProbeTls::Pinned(read(&project.path("certs/cert.pem"))?),
    };
    Ok(Readiness {
        gates: DNS_FORWARDERS
            .iter()
            .map(|(service, text)| LogGate {
                service: service.to_string(),
                text: text.to_string(),
            })
            .collect(),
        conditions: vec![
            WaitFor::HttpRedirect {
                port: project.http_port(),
            },
            WaitFor::HttpsApi {
                port: project.https_port(),
                path: API_PATH,
                via: "nginx",
                progress: Some(STARTUP_PROGRESS),
            },
        ],
        tls,
    })
}

/// The profile of `project` for a command: `ca_cert` is the home CA's certificate, and
/// `cert_changed` says the certificate files changed since nginx was given them.
pub fn profile(project: &Project, ca_cert: &Path, cert_changed: bool) -> Result<Profile> {
    let env_file = project.path(".env");
    let port_owners = [
        (project.http_port(), HTTP_PORT_VAR),
        (project.https_port(), HTTPS_PORT_VAR),
    ]
    .into_iter()
    .map(|(port, var)| PortOwner {
        port,
        setting: var.to_string(),
        file: env_file.clone(),
    })
    .collect();
    Ok(Profile {
        volume_files: Some(VolumeFiles {
            volume: CERT_VOLUME.into(),
            tar: certs::cert_tar(project)?,
            reload: ["nginx", "-s", "reload"].map(String::from).to_vec(),
            changed: cert_changed,
            reloaded: "reloaded nginx with the new certificate".into(),
        }),
        readiness: readiness(project, ca_cert)?,
        quiet_groups: quiet_groups(),
        port_owners,
        // HAProxy resolves its agent-addr, the healthcheck, only when it starts.
        restart_with: vec![("haproxy".into(), "healthcheck".into())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_couchdb_node_stops_after_its_writers() {
        let p = Profile {
            quiet_groups: quiet_groups(),
            ..Profile::default()
        };
        for (service, group) in [
            ("api", Some(0)),
            ("sentinel", Some(0)),
            ("couchdb", Some(1)),
            ("couchdb-1.local", Some(1)),
            ("couchdb-3.local", Some(1)),
            ("nouveau", Some(1)),
            ("haproxy", None),
            ("healthcheck", None),
            ("nginx", None),
        ] {
            assert_eq!(p.quiet_group(service), group, "{service}");
        }
        assert_eq!(p.quiet_group_count(), 2);
    }

    #[test]
    fn a_project_profile_names_nginx_its_ports_and_its_readiness() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = crate::home::Home::at(dir.path()).expect("home");
        let opts = crate::project::InitOptions {
            name: "prof".into(),
            ..Default::default()
        };
        let created = crate::project::create(&home, &opts).expect("create");
        let project = created.project;
        let p = profile(&project, &created.ca.cert, true).expect("profile");
        let files = p.volume_files.as_ref().expect("files");
        assert_eq!(files.volume, "cht-ssl");
        assert!(files.changed);
        assert_eq!(files.reload, ["nginx", "-s", "reload"]);
        let https = project.https_port();
        assert_eq!(
            p.port_owner(https).map(|o| o.setting.as_str()),
            Some(HTTPS_PORT_VAR)
        );
        assert!(matches!(p.readiness.tls, ProbeTls::Trusting(_)));
        assert_eq!(p.readiness.conditions.len(), 2);
        assert_eq!(p.readiness.gates[0].service, "nginx-dns");
        assert_eq!(p.readiness.gates[1].service, "haproxy-dns");
    }
}
