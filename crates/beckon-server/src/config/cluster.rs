//! `--cluster` / `[cluster]`: the Redis the nodes of a cluster share, and this node's name in it.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// How long a node that stopped refreshing its registration counts as alive; its sessions
/// count as offline after it.
pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(30);

/// How long one Redis command may take before the node treats Redis as unreachable for it.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the cluster's shared state is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterUrl {
    /// One Redis: `redis://host:port[/db]`.
    Single(String),
    /// A Redis Cluster, given by some of its nodes: `redis+cluster://host:port,host:port`
    /// (each kept as a `redis://host:port` URL).
    Cluster(Vec<String>),
}

impl std::fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => f.write_str(url),
            Self::Cluster(nodes) => {
                let hosts: Vec<&str> = nodes
                    .iter()
                    .map(|n| n.trim_start_matches("redis://"))
                    .collect();
                write!(f, "redis+cluster://{}", hosts.join(","))
            }
        }
    }
}

impl ClusterUrl {
    /// The URL for logs and probes: a password in it shows as `***`.
    pub fn redacted(&self) -> String {
        let url = self.to_string();
        let Some((scheme, rest)) = url.split_once("://") else {
            return url;
        };
        let hosts: Vec<String> = rest
            .split(',')
            .map(|h| match h.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}:***@{host}"),
                    None => format!("***@{host}"),
                },
                None => h.to_owned(),
            })
            .collect();
        format!("{scheme}://{}", hosts.join(","))
    }
}

/// Parses `redis://host:port` or `redis+cluster://host:port,host:port,…`.
///
/// # Errors
///
/// A message saying what is wrong with the URL.
pub fn parse_cluster_url(url: &str) -> Result<ClusterUrl, String> {
    if let Some(rest) = url.strip_prefix("redis+cluster://") {
        let nodes: Vec<String> = rest
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}"))
            .collect();
        if nodes.is_empty() {
            return Err(format!(
                "{url:?}: a redis+cluster:// URL names at least one node"
            ));
        }
        for node in &nodes {
            redis::Client::open(node.as_str()).map_err(|e| format!("{url:?}: {node}: {e}"))?;
        }
        return Ok(ClusterUrl::Cluster(nodes));
    }
    if url.starts_with("redis://") {
        redis::Client::open(url).map_err(|e| format!("{url:?}: {e}"))?;
        return Ok(ClusterUrl::Single(url.to_owned()));
    }
    Err(format!(
        "{url:?}: a cluster URL is redis://host:port or redis+cluster://host:port,host:port"
    ))
}

/// Checks a node id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
///
/// A message saying why it is refused.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node id {id:?}: 1 to 64 characters of letters, digits, '.', '_' and '-'"
        ))
    }
}

/// Cluster mode: this server is one node of several sharing one Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub url: ClusterUrl,
    /// This node's name in the cluster; unique among live nodes. Defaults to a random one.
    pub node_id: String,
    /// How long the node counts as alive after its last refresh (it refreshes every third of
    /// it): when a node dies, its accounts go offline within this time.
    pub node_ttl: Duration,
    /// How long one Redis command may take.
    pub redis_timeout: Duration,
}

impl ClusterConfig {
    /// A node of the cluster at `url`, with a random node id and the default timeouts.
    ///
    /// # Errors
    ///
    /// As [`parse_cluster_url`].
    pub fn new(url: &str) -> Result<Self, String> {
        Ok(Self {
            url: parse_cluster_url(url)?,
            node_id: random_node_id(),
            node_ttl: DEFAULT_NODE_TTL,
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
        })
    }
}

fn random_node_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("node-{hex}")
}

/// `[cluster]` in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCluster {
    url: String,
    node_id: Option<String>,
    node_ttl_ms: Option<u64>,
    redis_timeout_ms: Option<u64>,
}

impl FileCluster {
    pub(super) fn into_config(self) -> Result<ClusterConfig, ConfigError> {
        let invalid = |reason: String| ConfigError::Cluster { reason };
        let mut c = ClusterConfig::new(&self.url).map_err(invalid)?;
        if let Some(id) = self.node_id {
            check_node_id(&id).map_err(invalid)?;
            c.node_id = id;
        }
        if let Some(ms) = super::file::positive(self.node_ttl_ms, None, "node_ttl_ms")? {
            if ms < 3 {
                return Err(invalid("node_ttl_ms must be at least 3".into()));
            }
            c.node_ttl = Duration::from_millis(ms);
        }
        if let Some(ms) = super::file::positive(self.redis_timeout_ms, None, "redis_timeout_ms")? {
            c.redis_timeout = Duration::from_millis(ms);
        }
        Ok(c)
    }
}
