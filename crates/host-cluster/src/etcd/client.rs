//! etcd's gRPC calls: one lazily connected channel per member, requests
//! to one member, and on to the next when it cannot be reached; the login token on every request, and a new login when etcd
//! says the token is no longer valid.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_prost::ProstCodec;

use super::options::{Credentials, EtcdOptions};
use super::proto::{
    AuthenticateRequest, AuthenticateResponse, KeyValue, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, RangeRequest, RangeResponse, TxnRequest,
    TxnResponse,
};

const RANGE: &str = "/etcdserverpb.KV/Range";
const TXN: &str = "/etcdserverpb.KV/Txn";
const GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
const REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
const KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
const TIME_TO_LIVE: &str = "/etcdserverpb.Lease/LeaseTimeToLive";
const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";

/// The pause after every member in turn failed to take a request, before
/// the next round (the operation timeout bounds them all).
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// What a request has been through, to decide whether to try it again.
#[derive(Default)]
struct Tries {
    relogged: bool,
    failed_over: usize,
}

/// A connection to the members.
pub(super) struct Client {
    members: Vec<Channel>,
    /// The member requests go to, until it cannot be reached.
    current: AtomicUsize,
    credentials: Option<Credentials>,
    token: Mutex<Option<AsciiMetadataValue>>,
}

impl Client {
    /// A channel per member; each connects at its first request (and
    /// again after a lost connection). Needs a Tokio runtime.
    pub(super) fn new(options: &EtcdOptions) -> Self {
        Self {
            members: options
                .endpoints
                .iter()
                .map(|endpoint| endpoint.clone().connect_lazy())
                .collect(),
            current: AtomicUsize::new(0),
            credentials: options.credentials.clone(),
            token: Mutex::new(None),
        }
    }

    /// The key's current value, if it exists.
    pub(super) async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, Status> {
        let request = RangeRequest {
            key: key.to_vec(),
            range_end: Vec::new(),
        };
        let response: RangeResponse = self.unary(RANGE, request).await?;
        Ok(response.kvs.into_iter().next())
    }

    pub(super) async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Status> {
        self.unary(TXN, request).await
    }

    /// A new etcd lease of `seconds`: its id.
    pub(super) async fn grant(&self, seconds: i64) -> Result<i64, Status> {
        let response: LeaseGrantResponse = self
            .unary(GRANT, LeaseGrantRequest { ttl: seconds })
            .await?;
        if response.error.is_empty() {
            Ok(response.id)
        } else {
            Err(Status::unknown(format!(
                "etcd granted no lease: {}",
                response.error
            )))
        }
    }

    /// Revokes the etcd lease `id` (deleting its keys); one already gone
    /// is no error.
    pub(super) async fn revoke(&self, id: i64) -> Result<(), Status> {
        match self
            .unary::<_, LeaseRevokeResponse>(REVOKE, LeaseRevokeRequest { id })
            .await
        {
            Err(status) if status.code() == Code::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    /// Renews the etcd lease `id` to its granted time to live: whether it
    /// still existed. One request on a stream of its own, which ends with
    /// the answer.
    pub(super) async fn keep_alive(&self, id: i64) -> Result<bool, Status> {
        let mut tries = Tries::default();
        loop {
            let member = self.current.load(Ordering::Relaxed) % self.members.len();
            let message = LeaseKeepAliveRequest { id };
            let mut request = Request::new(futures::stream::once(std::future::ready(message)));
            let answered = match self.authorize(member, &mut request).await {
                Ok(()) => self.keep_alive_on(member, request).await,
                Err(status) => Err(status),
            };
            match answered {
                Ok(alive) => return Ok(alive),
                Err(status) => self.recover(status, member, &mut tries).await?,
            }
        }
    }

    async fn keep_alive_on(
        &self,
        member: usize,
        request: Request<impl futures::Stream<Item = LeaseKeepAliveRequest> + Send + 'static>,
    ) -> Result<bool, Status> {
        let mut grpc = Grpc::new(self.members[member].clone());
        grpc.ready()
            .await
            .map_err(|error| Status::from_error(error.into()))?;
        let codec = ProstCodec::<LeaseKeepAliveRequest, LeaseKeepAliveResponse>::default();
        let mut answers = grpc
            .streaming(request, PathAndQuery::from_static(KEEP_ALIVE), codec)
            .await?
            .into_inner();
        match answers.message().await? {
            Some(answer) => Ok(answer.ttl > 0),
            None => Err(Status::unavailable(
                "the keep-alive stream ended unanswered",
            )),
        }
    }

    /// Whole seconds the etcd lease `id` has left (rounded down), `None`
    /// when it is gone.
    pub(super) async fn time_to_live(&self, id: i64) -> Result<Option<i64>, Status> {
        let response: LeaseTimeToLiveResponse = self
            .unary(TIME_TO_LIVE, LeaseTimeToLiveRequest { id })
            .await?;
        Ok((response.ttl >= 0).then_some(response.ttl))
    }

    /// One request and its answer, logging in first when needed, again
    /// once when etcd refuses the token, and on the next member when one
    /// cannot be reached.
    async fn unary<Q, A>(&self, path: &'static str, message: Q) -> Result<A, Status>
    where
        Q: prost::Message + Clone + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let mut tries = Tries::default();
        loop {
            let member = self.current.load(Ordering::Relaxed) % self.members.len();
            let mut request = Request::new(message.clone());
            let answered = match self.authorize(member, &mut request).await {
                Ok(()) => self.call(member, path, request).await,
                Err(status) => Err(status),
            };
            match answered {
                Ok(answer) => return Ok(answer),
                Err(status) => self.recover(status, member, &mut tries).await?,
            }
        }
    }

    /// After a failed try: `Ok` to try again (after a new login, or on the
    /// next member), or the failure to report.
    async fn recover(
        &self,
        status: Status,
        member: usize,
        tries: &mut Tries,
    ) -> Result<(), Status> {
        if !tries.relogged && self.token_refused(&status) {
            tries.relogged = true;
            *self.token.lock().unwrap_or_else(PoisonError::into_inner) = None;
            return Ok(());
        }
        if status.code() != Code::Unavailable {
            return Err(status);
        }
        // Unreachable, or without a leader: the next request goes to the
        // next member. The request itself is tried again only when it
        // cannot have been applied.
        let _ = self.current.compare_exchange(
            member,
            (member + 1) % self.members.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if !never_applied(&status) {
            return Err(status);
        }
        tries.failed_over += 1;
        if tries.failed_over.is_multiple_of(self.members.len()) {
            tokio::time::sleep(ROUND_PAUSE).await;
        }
        Ok(())
    }

    async fn call<Q, A>(
        &self,
        member: usize,
        path: &'static str,
        request: Request<Q>,
    ) -> Result<A, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = Grpc::new(self.members[member].clone());
        grpc.ready()
            .await
            .map_err(|error| Status::from_error(error.into()))?;
        let codec = ProstCodec::<Q, A>::default();
        let response = grpc
            .unary(request, PathAndQuery::from_static(path), codec)
            .await?;
        Ok(response.into_inner())
    }

    /// Puts the login token on `request`, logging in on `member` first if
    /// there are credentials and no token yet.
    async fn authorize<T>(&self, member: usize, request: &mut Request<T>) -> Result<(), Status> {
        if self.credentials.is_none() {
            return Ok(());
        }
        let token = self
            .token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let token = match token {
            Some(token) => token,
            None => self.login(member).await?,
        };
        request.metadata_mut().insert("token", token);
        Ok(())
    }

    /// Logs in, keeping the token for the requests that follow.
    async fn login(&self, member: usize) -> Result<AsciiMetadataValue, Status> {
        let Some(credentials) = &self.credentials else {
            return Err(Status::unauthenticated("no credentials to log in with"));
        };
        let request = Request::new(AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        });
        let answer: AuthenticateResponse =
            self.call(member, AUTHENTICATE, request)
                .await
                .map_err(|status| {
                    // The code kept, so that an unreachable member is still
                    // one to fail over from.
                    Status::new(
                        status.code(),
                        format!(
                            "logging in as `{}` failed: {}",
                            credentials.user,
                            status.message()
                        ),
                    )
                })?;
        let token = AsciiMetadataValue::try_from(answer.token)
            .map_err(|_| Status::unknown("etcd's login token is not ASCII"))?;
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(token)
    }

    /// Whether etcd refused the request's token (expired, or lost with a
    /// restart), so that a new login may help.
    fn token_refused(&self, status: &Status) -> bool {
        self.credentials.is_some()
            && status.code() == Code::Unauthenticated
            && status.message().contains("token")
    }
}

/// Whether a request that failed so cannot have been applied, and may be
/// sent again: the connection was never made, or etcd had no leader to
/// propose it to.
fn never_applied(status: &Status) -> bool {
    let mut text = status.message().to_owned();
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text.contains("connect error")
        || text.contains("Connection refused")
        || text.contains("etcdserver: no leader")
}
