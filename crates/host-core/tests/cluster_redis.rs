//! One configuration key points a host's cluster singletons at Redis
//! (`HOST_TEST_REDIS_URL`; the test prints that it was skipped when it is
//! unset). The store itself is tested in host-cluster.

use std::time::Duration;

use host_core::{BackgroundService, ServiceContext, ServiceError, Singleton, async_trait};
use host_testing::TestHost;

struct Idle;

#[async_trait]
impl BackgroundService for Idle {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_points_singletons_at_redis() {
    let Ok(url) = std::env::var("HOST_TEST_REDIS_URL") else {
        println!("configured: skipped, HOST_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("hc-test-{:08x}:", fastrand::u32(..));
    let mut builder = TestHost::builder();
    builder.args([
        "app".to_owned(),
        format!("--cluster.redis.url={url}"),
        format!("--cluster.redis.prefix={prefix}"),
        "--cluster.instance_id=configured".to_owned(),
    ]);
    builder.add_hosted_service_instance_with(Idle, |idle| {
        idle.cluster_singleton(
            Singleton::new("configured")
                .lease(Duration::from_secs(1))
                .renew_deadline(Duration::from_millis(700))
                .retry_period(Duration::from_millis(200)),
        )
    });
    let host = builder.start().await.unwrap();
    let states = host.states();
    let leads = async {
        loop {
            let leadership = states
                .status(std::any::type_name::<Idle>())
                .and_then(|status| status.leadership);
            if let Some(leadership) = leadership.filter(|leadership| leadership.leading) {
                return leadership;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // A generous bound: a hang fails the test.
    let leadership = tokio::time::timeout(Duration::from_secs(30), leads)
        .await
        .expect("the instance leads within 30 s");
    assert_eq!(
        (&*leadership.instance, leadership.token),
        ("configured", Some(1))
    );
    host.stop().await.unwrap();
}

#[tokio::test]
async fn two_stores_configured_at_once_are_a_build_error() {
    let mut builder = TestHost::builder();
    builder.args([
        "app",
        "--cluster.redis.url=redis://127.0.0.1:1",
        "--cluster.postgres.url=postgres://app:hunter2@127.0.0.1:1/db",
    ]);
    builder.add_hosted_service_instance_with(Idle, |idle| idle.cluster_singleton("x"));
    let error = builder.build_error().to_string();
    assert!(
        error.contains("`cluster.postgres` and `cluster.redis` are both set"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}
