//! How a project runs CouchDB: upstream ships two layouts per release, a single node
//! (`cht-couchdb.yml`) and a three-node cluster (`cht-couchdb-clustered.yml`), and the
//! upgrade service rewrites on an in-app upgrade only the files a project already has, so
//! the layout decides the file's name as well as its services.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// cht-dev's own `.env` variable naming the layout: `1` or `3` CouchDB nodes (absent: 1).
pub const NODES_VAR: &str = "CHT_DEV_COUCHDB_NODES";

/// The CouchDB nodes of upstream's clustered layout, in order; the first one holds the
/// credentials volume and Nouveau's index.
pub const CLUSTER_NODES: [&str; 3] = ["couchdb-1.local", "couchdb-2.local", "couchdb-3.local"];

/// One of upstream's two CouchDB layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One CouchDB node, service `couchdb`, data in `COUCHDB_DATA`.
    #[default]
    Single,
    /// Three CouchDB nodes `couchdb-1.local`..`couchdb-3.local`, data in `DB1_DATA`..`DB3_DATA`.
    Cluster,
}

/// One folder of CouchDB data on the host: a node's bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFolder {
    /// Its name inside a snapshot archive: `data` for a single node, `node-N` in a cluster.
    pub name: &'static str,
    /// The `.env` variable holding its path.
    pub var: &'static str,
    /// Where it is.
    pub path: PathBuf,
}

impl Layout {
    /// The layout with `nodes` CouchDB nodes, as `--couchdb-nodes` asks: 1 or 3 (upstream
    /// ships no other).
    pub fn from_nodes(nodes: u32) -> Result<Layout> {
        match nodes {
            1 => Ok(Layout::Single),
            3 => Ok(Layout::Cluster),
            n => Err(Error::BadOption(format!(
                "--couchdb-nodes {n}: CHT runs CouchDB as a single node or as upstream's three-node cluster; use 1 or 3"
            ))),
        }
    }

    /// How many CouchDB nodes it runs.
    pub fn nodes(self) -> u32 {
        match self {
            Layout::Single => 1,
            Layout::Cluster => 3,
        }
    }

    /// The CouchDB compose file, relative to the project folder.
    pub fn couchdb_file(self) -> &'static str {
        match self {
            Layout::Single => super::render::COUCHDB_FILE,
            Layout::Cluster => super::render::CLUSTER_FILE,
        }
    }

    /// The CouchDB compose file's name inside `compose/`.
    pub fn couchdb_file_name(self) -> &'static str {
        self.couchdb_file().trim_start_matches("compose/")
    }

    /// `COUCHDB_SERVERS` as HAProxy and the healthcheck need it (cht-core.yml's default is
    /// the single node's name, so a cluster sets it in `.env`).
    pub fn couchdb_servers(self) -> String {
        match self {
            Layout::Single => "couchdb".into(),
            Layout::Cluster => CLUSTER_NODES.join(","),
        }
    }

    /// The data folders' names and `.env` variables, with each folder's default relative
    /// to the project folder (`couchdb`, or `couchdb/node-N` in a cluster).
    pub fn data_vars(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Layout::Single => &[("data", "COUCHDB_DATA", "couchdb")],
            Layout::Cluster => &[
                ("node-1", "DB1_DATA", "couchdb/node-1"),
                ("node-2", "DB2_DATA", "couchdb/node-2"),
                ("node-3", "DB3_DATA", "couchdb/node-3"),
            ],
        }
    }

    /// For people: "a single CouchDB node" or "three CouchDB nodes".
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Single => "a single CouchDB node",
            Layout::Cluster => "three CouchDB nodes",
        }
    }
}

/// Whether a compose service is a CouchDB node, in either layout.
pub fn is_couchdb(service: &str) -> bool {
    service == "couchdb" || CLUSTER_NODES.contains(&service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_or_three_nodes() {
        assert_eq!(Layout::from_nodes(1).ok(), Some(Layout::Single));
        assert_eq!(Layout::from_nodes(3).ok(), Some(Layout::Cluster));
        for n in [0, 2, 4, 5] {
            let err = Layout::from_nodes(n).expect_err("refused").to_string();
            assert!(err.contains("use 1 or 3"), "{err}");
        }
        assert_eq!(Layout::Cluster.nodes(), 3);
        assert_eq!(
            Layout::Cluster.couchdb_file_name(),
            "cht-couchdb-clustered.yml"
        );
        assert_eq!(
            Layout::Cluster.couchdb_servers(),
            "couchdb-1.local,couchdb-2.local,couchdb-3.local"
        );
        assert!(is_couchdb("couchdb") && is_couchdb("couchdb-3.local"));
        assert!(!is_couchdb("nouveau") && !is_couchdb("couchdb-4.local"));
    }
}
