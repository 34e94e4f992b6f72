//! The conformance suite on `RedisStore` over a Redis Cluster: three local masters, started
//! once for this test binary (`test_redis::OwnCluster`). Every script and pipeline must keep
//! its keys in one hash slot; the cluster refuses anything else (`CROSSSLOT`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use lanyard_store::RedisTopology;
use lanyard_store::test_redis::OwnCluster;
use support::DeploymentHarness;

async fn harness() -> DeploymentHarness {
    let cluster = tokio::task::spawn_blocking(OwnCluster::shared)
        .await
        .unwrap();
    DeploymentHarness::new(cluster.url(), RedisTopology::Cluster, |prefix| {
        OwnCluster::shared().delete_prefix(prefix);
    })
}

lanyard_store::conformance_suite!(harness());
