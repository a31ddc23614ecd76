//! Scale-out for the host: a [`LeaseStore`] grants at most one valid lease
//! per name at a time, and each new term of a lease carries a strictly
//! larger [`FencingToken`].
//!
//! A lease makes duplicate work rare; it cannot make it impossible (a
//! leader paused past its lease still believes it leads until it looks).
//! Exclusive effects need every write to carry the fencing token of its
//! term, checked by the target, or work that is idempotent.
//!
//! | what | for |
//! |---|---|
//! | [`LeaseStore`] | leases: cluster singletons campaign for one each |
//! | [`ClaimStore`] | one claim per job and tick: cluster-wide schedules |
//! | [`ClusterStore`] | both, in one store |
//! | [`InProcessStore`] | tests and single-process applications |
//! | [`FileLockStore`] | the instances of one machine: the host's default |
//! | `PostgresStore`, `postgres::Fence` (feature `postgres`) | instances across machines; fencing writes to PostgreSQL targets |
//! | `RedisStore` (feature `redis`) | instances across machines, efficiency-grade: a Redis failover can lose a lease |
//! | `EtcdStore`, `etcd::EtcdOptions` (feature `etcd`) | instances across machines on an etcd cluster: linearizable, the contract holds while a quorum of members lives |
//! | [`cluster_store_for_url`] | the store a configuration's URL names |
//!
//! The host (`host-core`) runs the elections and the claims on these
//! traits; `docs/scale-out.md` describes both.
//!
//! ```
//! use std::time::Duration;
//! use host_cluster::{InProcessStore, LeaseStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), host_cluster::ClusterError> {
//! let store = InProcessStore::new();
//! let ttl = Duration::from_secs(15);
//! let lease = store.try_acquire("billing", "instance-a", ttl).await?.expect("free");
//! // Another instance finds it taken, and sees who holds it.
//! assert!(store.try_acquire("billing", "instance-b", ttl).await?.is_none());
//! assert_eq!(store.current("billing").await?.unwrap().holder(), "instance-a");
//! assert!(store.renew(&lease, ttl).await?);
//! store.release(&lease).await?;
//! // The next term's token is larger.
//! let next = store.try_acquire("billing", "instance-b", ttl).await?.unwrap();
//! assert!(next.token() > lease.token());
//! # Ok(()) }
//! ```
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `async-trait` | an object-safe [`LeaseStore`], held as `Arc<dyn LeaseStore>` |
//! | `fs4` | the file-lock store's `flock`, without unsafe code; std's `File::try_lock` needs Rust 1.89, above the workspace's 1.88 |
//! | `sqlx` (feature `postgres`, on by default) | the PostgreSQL store and fence: its pool, TLS (rustls) and authentication from the connection URL, and the PostgreSQL wire protocol; only `postgres`, `runtime-tokio` and `tls-rustls-ring-webpki` |
//! | `redis` (feature `redis`, on by default) | the Redis store: its reconnecting connection, Lua scripts, and TLS from `rediss://` URLs; only `tokio-comp`, `script`, `connection-manager`, `tokio-rustls-comp` and `tls-rustls-webpki-roots` |
//! | `rustls` (feature `redis`) | a crypto provider (ring, as sqlx's) for `rediss://`: the `redis` crate's rustls comes with none |
//! | `tonic` (feature `etcd`, on by default) | the etcd store's gRPC client: a channel per member, HTTP/2, TLS (rustls with ring, as sqlx's, and the Web PKI roots when no CA is given); only `channel`, `codegen` (its `http` re-export for request paths), `tls-ring` and `tls-webpki-roots`. etcd's own client crate compiles etcd's `.proto` files in a build script that needs `protoc` installed; calling etcd's few gRPC methods through `tonic::client::Grpc` needs only the Rust toolchain |
//! | `prost` (feature `etcd`) | the etcd messages the store sends and reads, declared by hand with `#[derive(prost::Message)]` and the field numbers of etcd's `rpc.proto` and `kv.proto`: no `.proto` file, no build script |
//! | `tonic-prost` (feature `etcd`) | tonic's codec for prost messages (a crate of its own since tonic 0.14) |
//! | `futures` (feature `etcd`) | the one-message request stream of etcd's lease keep-alive |
//! | `thiserror` | [`ClusterError`] |
//! | `tokio` | the in-process store's clock (`tokio::time::Instant`, so that tests run on paused time); its blocking pool for the file-lock store's file operations; the lazy PostgreSQL, Redis and etcd stores' once-cells |

mod claims;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod file_lock;
mod in_process;
mod lease;
mod open;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "postgres", feature = "redis", feature = "etcd"))]
mod redact;
#[cfg(feature = "redis")]
pub mod redis;
mod store;

#[cfg(feature = "etcd")]
pub use crate::etcd::EtcdStore;
#[cfg(feature = "redis")]
pub use crate::redis::RedisStore;
pub use claims::{Claim, ClaimOutcome, ClaimStore, ClusterStore};
pub use error::ClusterError;
pub use file_lock::FileLockStore;
pub use in_process::InProcessStore;
pub use lease::{FencingToken, Lease, LeaseInfo};
pub use open::cluster_store_for_url;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use store::LeaseStore;
