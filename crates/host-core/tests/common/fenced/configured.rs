//! The configuration tests of each store: one host whose configuration
//! points its singleton at the store, started in-process, until it leads.

use std::time::Duration;

use host_core::{
    BackgroundService, Leadership, ServiceContext, ServiceError, Singleton, async_trait,
};
use host_testing::TestHost;

/// A singleton's work that waits to be stopped.
pub struct Idle;

#[async_trait]
impl BackgroundService for Idle {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

/// Starts a host configured by `keys` (`--cluster.<store>.url=...` and
/// the like) as the instance `configured`, its [`Idle`] the singleton
/// `configured` on short timings, and waits (bounded generously, so that
/// only a hang fails) until it leads; the host and its leadership.
pub async fn leading_as_configured(keys: &[String]) -> (TestHost, Leadership) {
    let mut builder = TestHost::builder();
    let mut args = vec![
        "app".to_owned(),
        "--cluster.instance_id=configured".to_owned(),
    ];
    args.extend_from_slice(keys);
    builder.args(args);
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
    let leadership = tokio::time::timeout(Duration::from_secs(30), leads)
        .await
        .expect("the instance leads within 30 s");
    assert_eq!(&*leadership.instance, "configured");
    (host, leadership)
}
