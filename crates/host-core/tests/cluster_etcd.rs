//! One configuration key points a host's cluster singletons at etcd (an
//! etcd of the test's own; the test prints that it was skipped without
//! the `etcd` binary). The store itself is tested in host-cluster.

use std::time::Duration;

use host_cluster::LeaseStore as _;
use host_cluster::etcd::EtcdOptions;
use host_core::{BackgroundService, ServiceContext, ServiceError, Singleton, async_trait};
use host_test::EtcdCluster;
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
async fn the_configuration_points_singletons_at_etcd() {
    let Some(etcd) = EtcdCluster::single() else {
        println!("configured: skipped, etcd cannot be started");
        return;
    };
    let prefix = format!("hc-test-{:08x}/", fastrand::u32(..));
    let mut builder = TestHost::builder();
    builder.args([
        "app".to_owned(),
        format!("--cluster.etcd.url={}", etcd.url()),
        format!("--cluster.etcd.prefix={prefix}"),
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
    assert_eq!(&*leadership.instance, "configured");
    // The lease is in etcd, under the prefix configured, with the token the
    // singleton reports.
    let store = EtcdOptions::new(&etcd.url())
        .unwrap()
        .prefix(&prefix)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let info = store.current("configured").await.unwrap().expect("held");
    assert_eq!(info.holder(), "configured");
    assert_eq!(leadership.token, Some(info.token().get()));
    host.stop().await.unwrap();
}

#[tokio::test]
async fn etcd_and_another_store_configured_at_once_are_a_build_error() {
    let mut builder = TestHost::builder();
    builder.args([
        "app",
        "--cluster.etcd.url=etcd://root:hunter2@127.0.0.1:1",
        "--cluster.redis.url=redis://127.0.0.1:1",
    ]);
    builder.add_hosted_service_instance_with(Idle, |idle| idle.cluster_singleton("x"));
    let error = builder.build_error().to_string();
    assert!(
        error.contains("`cluster.redis` and `cluster.etcd` are both set"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn a_bad_etcd_url_is_a_build_error_naming_the_key_without_the_password() {
    let mut builder = TestHost::builder();
    builder.args(["app", "--cluster.etcd.url=etcd://root:hunter2@127.0.0.1"]);
    builder.add_hosted_service_instance_with(Idle, |idle| idle.cluster_singleton("x"));
    let error = builder.build_error().to_string();
    assert!(error.contains("`cluster.etcd`"), "{error}");
    assert!(error.contains("etcd://root@127.0.0.1"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
