//! One Redis, or a Redis Cluster: the connection every store call goes through, and the
//! dedicated connections the revocation subscription blocks on. Keys that one script or
//! pipeline touches together share a hash tag (`keys.rs`), so the same calls run on both.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::{RedisConfig, map_error};
use crate::StoreError;

/// Where Lanyard's token store lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedisTopology {
    /// One Redis (with replicas or not): `url` is its address.
    #[default]
    Single,
    /// A Redis Cluster: `url` is a comma-separated list of seed nodes' addresses; the rest of
    /// the cluster is discovered from them, and the client follows slot moves and failovers.
    Cluster,
    /// Redis with Sentinel: `url` is a comma-separated list of the sentinels' addresses and
    /// `RedisConfig::sentinel_master` the monitored master's name. The store asks the
    /// sentinels for the master, and asks again when a call fails (after a failover).
    Sentinel,
}

/// Opens connections to the configured Redis.
#[derive(Clone)]
pub(super) enum Connector {
    Single(redis::Client),
    /// Asks the sentinels for the current master at every (re)connection.
    Sentinel(Arc<tokio::sync::Mutex<SentinelClient>>),
    /// The shared client (calls time out after `operation_timeout`) and one for blocking
    /// reads (no response timeout: each read sets its own deadline).
    Cluster {
        shared: Box<ClusterClient>,
        blocking: Box<ClusterClient>,
    },
}

/// A connection to one Redis or to a cluster.
#[derive(Clone)]
pub(super) enum Conn {
    /// Shared, reconnecting.
    Single(ConnectionManager),
    /// Dedicated to one caller (blocking reads).
    Dedicated(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connector {
    pub(super) fn new(redis: &RedisConfig) -> Result<Self, StoreError> {
        let bad =
            |e: RedisError| StoreError::Unavailable(format!("bad Redis URL: {}", e.category()));
        match redis.topology {
            RedisTopology::Single => redis::Client::open(redis.url.as_str())
                .map(Self::Single)
                .map_err(bad),
            RedisTopology::Sentinel => {
                let sentinels = addresses(redis)?;
                SentinelClient::build(
                    sentinels,
                    redis.sentinel_master.clone(),
                    None,
                    SentinelServerType::Master,
                )
                .map(|c| Self::Sentinel(Arc::new(tokio::sync::Mutex::new(c))))
                .map_err(bad)
            }
            RedisTopology::Cluster => {
                let nodes = addresses(redis)?;
                let shared = ClusterClient::builder(nodes.clone())
                    .connection_timeout(redis.connect_timeout)
                    .response_timeout(redis.operation_timeout)
                    .retries(2)
                    .build()
                    .map_err(bad)?;
                let blocking = ClusterClient::builder(nodes)
                    .connection_timeout(redis.connect_timeout)
                    .retries(0)
                    .build()
                    .map_err(bad)?;
                Ok(Self::Cluster {
                    shared: Box::new(shared),
                    blocking: Box::new(blocking),
                })
            }
        }
    }

    /// The client of the one Redis to talk to now: the configured one, or the master the
    /// sentinels name.
    async fn single(&self) -> Result<redis::Client, RedisError> {
        match self {
            Self::Single(client) => Ok(client.clone()),
            Self::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await,
            Self::Cluster { .. } => Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a cluster has no single node",
            ))),
        }
    }

    /// The shared connection: reconnects by itself, each call bounded by `operation_timeout`.
    pub(super) async fn shared(&self, redis: &RedisConfig) -> Result<Conn, StoreError> {
        let connect = async {
            match self {
                Self::Single(_) | Self::Sentinel(_) => {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(redis.connect_timeout))
                        .set_response_timeout(Some(redis.operation_timeout))
                        .set_number_of_retries(1)
                        .set_min_delay(Duration::from_millis(50))
                        .set_max_delay(Duration::from_millis(500));
                    ConnectionManager::new_with_config(self.single().await?, config)
                        .await
                        .map(Conn::Single)
                }
                Self::Cluster { shared, .. } => {
                    shared.get_async_connection().await.map(Conn::Cluster)
                }
            }
        };
        tokio::time::timeout(redis.connect_timeout + redis.operation_timeout, connect)
            .await
            .map_err(|_| StoreError::Timeout(redis.connect_timeout))?
            .map_err(map_error)
    }

    /// A connection of its own with no response timeout, for blocking reads (each call sets
    /// its own deadline).
    pub(super) async fn dedicated(&self, redis: &RedisConfig) -> Result<Conn, StoreError> {
        let connect = async {
            match self {
                Self::Single(_) | Self::Sentinel(_) => {
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(redis.connect_timeout))
                        .set_response_timeout(None);
                    self.single()
                        .await?
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map(Conn::Dedicated)
                }
                Self::Cluster { blocking, .. } => {
                    blocking.get_async_connection().await.map(Conn::Cluster)
                }
            }
        };
        tokio::time::timeout(redis.connect_timeout + redis.operation_timeout, connect)
            .await
            .map_err(|_| StoreError::Timeout(redis.connect_timeout))?
            .map_err(map_error)
    }
}

/// The comma-separated addresses of `url` (cluster seeds, or sentinels).
fn addresses(redis: &RedisConfig) -> Result<Vec<&str>, StoreError> {
    let list: Vec<&str> = redis
        .url
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if list.is_empty() {
        return Err(StoreError::InvalidRequest(
            "a Redis Cluster or Sentinel setup needs at least one address in the URL",
        ));
    }
    Ok(list)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Dedicated(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Dedicated(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Dedicated(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
