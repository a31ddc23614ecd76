//! Spreading the leadership of a host's cluster singletons over the
//! instances that run them.
//!
//! Every instance that runs two or more cluster singletons is a member of
//! its group: it holds one member lease, `<group>.<slot>` with the lowest
//! slot free when it joined, renewed every retry period. The group's name
//! comes from the singletons' names, so only instances that run the same
//! singletons share a group. Reading the slots gives each member the
//! group's members, and from them each singleton's **preferred member**:
//! the member with the highest hash of the singleton's name and its own id
//! (rendezvous hashing: a member that joins or leaves moves only the
//! singletons it gains or loses). Two rules follow:
//!
//! 1. A member that is not a free singleton's preferred one takes it only
//!    after it has seen it free for a retry period: the preferred one, which
//!    tries every retry period, takes it first.
//! 2. A leader that is not a singleton's preferred member hands it over
//!    (steps down) while it leads more than its fair share (the group's
//!    singletons over its members, rounded up), once it has led it for a
//!    lease; a member that did not take a hand-over is not handed that
//!    singleton again until the group changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_cluster::{Lease, LeaseStore};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::Singleton;
use crate::services::record::lock;

/// The most member slots a group reads.
const MAX_SLOTS: usize = 256;

/// Empty slots in a row, past this member's own, that end a reading.
const EMPTY_RUN: usize = 3;

/// One group's membership, shared by the singletons of one host.
pub(crate) struct Balance {
    store: Arc<dyn LeaseStore>,
    group: String,
    holder: Arc<str>,
    /// The member lease's time to live, renew deadline and retry period.
    timings: Singleton,
    /// How many singletons the group runs (this host's).
    singletons: usize,
    state: Mutex<State>,
    /// Wakes the membership task when the last campaign leaves.
    left: Notify,
}

#[derive(Default)]
struct State {
    /// The members' ids as last read, this one's included.
    members: Arc<[Arc<str>]>,
    /// Counts the changes of `members`.
    version: u64,
    /// Whether this instance holds its member lease.
    member: bool,
    /// The campaigns of this host's singletons that run.
    joined: usize,
    /// How many of them lead here.
    leading: usize,
    /// How many of those are being handed over.
    handing_over: usize,
    /// Whether the membership task runs.
    running: bool,
    task: Option<AbortOnDropHandle<()>>,
}

/// A singleton's campaign in its group: leaves it when dropped.
pub(crate) struct Joined(Arc<Balance>);

impl Drop for Joined {
    fn drop(&mut self) {
        lock(&self.0.state).joined -= 1;
        self.0.left.notify_one();
    }
}

/// A term of a singleton, counted while it leads.
pub(crate) struct Leads {
    balance: Arc<Balance>,
    /// Whether this term is being handed over (counted in `handing_over`).
    handed_over: bool,
}

impl Drop for Leads {
    fn drop(&mut self) {
        let mut state = lock(&self.balance.state);
        state.leading -= 1;
        if self.handed_over {
            state.handing_over -= 1;
        }
    }
}

/// To whom a leader hands a singleton over, with the group's version.
pub(crate) struct HandOver {
    pub(crate) to: Arc<str>,
    pub(crate) version: u64,
}

impl Balance {
    /// The group of `names` (this host's singletons), its member lease on
    /// `timings`.
    pub(crate) fn new(
        store: Arc<dyn LeaseStore>,
        names: &[&str],
        holder: Arc<str>,
        timings: Singleton,
    ) -> Self {
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        let group = format!(
            "host.members.{:016x}",
            stable_hash(sorted.join("\u{0}").as_bytes(), b"")
        );
        Self {
            store,
            group,
            holder,
            timings,
            singletons: names.len(),
            state: Mutex::new(State::default()),
            left: Notify::new(),
        }
    }

    /// The group's name: the prefix of its member leases.
    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// Joins the group for one singleton's campaign, starting the
    /// membership task if it does not run.
    pub(crate) fn join(self: &Arc<Self>) -> Joined {
        let mut state = lock(&self.state);
        state.joined += 1;
        if !state.running {
            state.running = true;
            state.task = Some(AbortOnDropHandle::new(tokio::spawn(
                self.clone().membership(),
            )));
        }
        Joined(self.clone())
    }

    /// Counts a term that began.
    pub(crate) fn leads(self: &Arc<Self>) -> Leads {
        lock(&self.state).leading += 1;
        Leads {
            balance: self.clone(),
            handed_over: false,
        }
    }

    /// Whether this member leaves a free `singleton` to its preferred
    /// member for a retry period.
    pub(crate) fn defers(&self, singleton: &str) -> bool {
        let state = lock(&self.state);
        state.member
            && state.members.len() > 1
            && preferred(&state.members, singleton).is_some_and(|p| **p != *self.holder)
    }

    /// Whether the term `leads` of `singleton` is to be handed over, and to
    /// whom: this member leads more than its fair share and is not the
    /// singleton's preferred member; not to `refused` (a member that did
    /// not take it) while the group is as it was then. Counts the hand-over
    /// against the fair share at once.
    pub(crate) fn hand_over(
        &self,
        singleton: &str,
        leads: &mut Leads,
        refused: Option<&HandOver>,
    ) -> Option<HandOver> {
        let mut state = lock(&self.state);
        if leads.handed_over || !state.member || state.members.len() < 2 {
            return None;
        }
        let fair = self.singletons.div_ceil(state.members.len());
        if state.leading - state.handing_over <= fair {
            return None;
        }
        let to = preferred(&state.members, singleton)?.clone();
        let refused = refused.is_some_and(|r| r.version == state.version && r.to == to);
        if *to == *self.holder || refused {
            return None;
        }
        state.handing_over += 1;
        leads.handed_over = true;
        Some(HandOver {
            to,
            version: state.version,
        })
    }

    /// The group's members as last read.
    #[cfg(test)]
    fn members(&self) -> Arc<[Arc<str>]> {
        lock(&self.state).members.clone()
    }

    /// Holds this member's lease and reads the group every retry period
    /// while a campaign runs; then releases the lease.
    async fn membership(self: Arc<Self>) {
        let retry = self.timings.retry_period_duration();
        let mut slot: Option<Slot> = None;
        loop {
            let left = self.left.notified();
            tokio::pin!(left);
            left.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if state.joined == 0 {
                    state.running = false;
                    state.member = false;
                    state.members = Arc::new([]);
                    break;
                }
            }
            slot = match slot {
                Some(slot) => self.renew(slot).await,
                None => self.take_slot().await,
            };
            let members = self.read(slot.as_ref().map(|slot| slot.index)).await;
            {
                let mut state = lock(&self.state);
                state.member = slot.is_some();
                if let Some(members) = members
                    && members != state.members
                {
                    state.members = members;
                    state.version += 1;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                () = left => {}
            }
        }
        if let Some(slot) = slot {
            let _ = tokio::time::timeout(retry, self.store.release(&slot.lease)).await;
        }
    }

    fn slot_name(&self, index: usize) -> String {
        format!("{}.{index}", self.group)
    }

    /// Takes the lowest free slot.
    async fn take_slot(&self) -> Option<Slot> {
        let retry = self.timings.retry_period_duration();
        for index in 0..MAX_SLOTS {
            let sent = Instant::now();
            let taken = tokio::time::timeout(
                retry,
                self.store.try_acquire(
                    &self.slot_name(index),
                    &self.holder,
                    self.timings.lease_duration(),
                ),
            )
            .await;
            match taken {
                Ok(Ok(Some(lease))) => {
                    return Some(Slot {
                        index,
                        lease,
                        renewed: sent,
                    });
                }
                Ok(Ok(None)) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
        None
    }

    /// Renews the slot; gives it up when the store says it is lost, or no
    /// renew succeeded within the renew deadline.
    async fn renew(&self, mut slot: Slot) -> Option<Slot> {
        let retry = self.timings.retry_period_duration();
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            retry,
            self.store.renew(&slot.lease, self.timings.lease_duration()),
        )
        .await;
        match renewed {
            Ok(Ok(true)) => {
                slot.renewed = sent;
                Some(slot)
            }
            Ok(Ok(false)) => None,
            Ok(Err(_)) | Err(_) => {
                (slot.renewed.elapsed() < self.timings.renew_deadline_duration()).then_some(slot)
            }
        }
    }

    /// The members holding slots, in slot order, read up to a few empty
    /// slots past the last member (and past `own`); `None` when the store
    /// failed.
    async fn read(&self, own: Option<usize>) -> Option<Arc<[Arc<str>]>> {
        let retry = self.timings.retry_period_duration();
        let mut members = Vec::new();
        let mut empty = 0;
        for index in 0..MAX_SLOTS {
            let current =
                tokio::time::timeout(retry, self.store.current(&self.slot_name(index))).await;
            match current {
                Ok(Ok(Some(info))) => {
                    empty = 0;
                    members.push(Arc::from(info.holder()));
                }
                Ok(Ok(None)) => {
                    empty += 1;
                    if empty >= EMPTY_RUN && own.is_none_or(|own| index > own) {
                        break;
                    }
                }
                Ok(Err(_)) | Err(_) => return None,
            }
        }
        Some(members.into())
    }
}

struct Slot {
    index: usize,
    lease: Lease,
    /// When the last successful renew (or the take) was sent.
    renewed: Instant,
}

/// The preferred member of `singleton` among `members`: the highest
/// [`stable_hash`] of the two (ties to the lower id).
pub(crate) fn preferred<'m>(members: &'m [Arc<str>], singleton: &str) -> Option<&'m Arc<str>> {
    members.iter().max_by(|a, b| {
        let score = |member: &Arc<str>| stable_hash(singleton.as_bytes(), member.as_bytes());
        score(a).cmp(&score(b)).then_with(|| b.cmp(a))
    })
}

/// A 64-bit hash of `a` and `b` that every build of every version computes
/// alike, so that instances agree on preferences (std's hashers promise
/// neither): FNV-1a over both, a separator between, then SplitMix64's
/// finalizer to spread the bits.
pub(crate) fn stable_hash(a: &[u8], b: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for byte in a.iter().chain(&[0xff]).chain(b) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// How long a leader leads a singleton before it may hand it over: a
/// lease, so that a group whose members start together has read itself.
pub(crate) fn settle(timings: &Singleton) -> Duration {
    timings.lease_duration()
}

#[cfg(test)]
mod tests {
    use host_cluster::InProcessStore;

    use super::*;

    fn timings() -> Singleton {
        Singleton::new("members")
            .lease(Duration::from_secs(15))
            .renew_deadline(Duration::from_secs(10))
            .retry_period(Duration::from_secs(2))
    }

    #[test]
    fn the_hash_is_fixed_across_builds() {
        // Changing these changes which instance leads what after an upgrade
        // (the values computed apart from this code, from the algorithm).
        assert_eq!(stable_hash(b"", b""), 0x4f2d_b50f_1240_40cd);
        assert_eq!(
            stable_hash(b"billing", b"instance-1"),
            0x8f7b_fe15_d48a_88a3
        );
        assert_ne!(
            stable_hash(b"ab", b"c"),
            stable_hash(b"a", b"bc"),
            "the separator keeps the parts apart"
        );
    }

    #[test]
    fn preferences_spread_and_move_only_what_a_leaving_member_had() {
        let members: Vec<Arc<str>> = (1..=5).map(|i| format!("instance-{i}").into()).collect();
        let names: Vec<String> = (0..50).map(|i| format!("singleton-{i}")).collect();
        let mut counts = [0usize; 5];
        for name in &names {
            let p = preferred(&members, name).unwrap();
            counts[members.iter().position(|m| m == p).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&n| n >= 4), "{counts:?}");
        let without_third: Vec<Arc<str>> = members
            .iter()
            .filter(|m| &***m != "instance-3")
            .cloned()
            .collect();
        for name in &names {
            let before = preferred(&members, name).unwrap();
            if &**before != "instance-3" {
                assert_eq!(preferred(&without_third, name), Some(before), "{name}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn members_join_read_each_other_and_leave() {
        let store: Arc<dyn LeaseStore> = Arc::new(InProcessStore::new());
        let names = ["a", "b"];
        let one = Arc::new(Balance::new(store.clone(), &names, "one".into(), timings()));
        let two = Arc::new(Balance::new(store.clone(), &names, "two".into(), timings()));
        assert_eq!(one.group(), two.group());
        let joined_one = one.join();
        let joined_two = two.join();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let both: Arc<[Arc<str>]> = Arc::new(["one".into(), "two".into()]);
        assert_eq!((one.members(), two.members()), (both.clone(), both));
        // Leaving releases the slot at once; the other reads it gone.
        drop(joined_one);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(store.current(&one.slot_name(0)).await.unwrap().is_none());
        assert_eq!(&*two.members(), &[Arc::<str>::from("two")]);
        // Joining again takes the lowest free slot.
        let _again = one.join();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            store
                .current(&one.slot_name(0))
                .await
                .unwrap()
                .map(|info| info.holder().to_owned()),
            Some("one".to_owned())
        );
        drop(joined_two);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_over_its_fair_share_hands_over_what_others_prefer() {
        let store: Arc<dyn LeaseStore> = Arc::new(InProcessStore::new());
        let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let one = Arc::new(Balance::new(store.clone(), &refs, "one".into(), timings()));
        let two = Arc::new(Balance::new(store.clone(), &refs, "two".into(), timings()));
        let _joined = (one.join(), two.join());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let members = one.members();
        let mut terms: Vec<(&str, Leads)> = refs.iter().map(|name| (*name, one.leads())).collect();
        let mut handed = Vec::new();
        for (name, leads) in &mut terms {
            if let Some(hand_over) = one.hand_over(name, leads, None) {
                assert_eq!(&*hand_over.to, "two");
                handed.push(*name);
            }
        }
        let preferred_by_two: Vec<&str> = refs
            .iter()
            .copied()
            .filter(|name| &**preferred(&members, name).unwrap() == "two")
            .collect();
        // Over its share of 3, it hands over what `two` prefers, no more
        // than brings it down to 3.
        let expected = preferred_by_two.len().min(3);
        assert_eq!(handed.len(), expected, "{handed:?} of {preferred_by_two:?}");
        assert!(handed.iter().all(|name| preferred_by_two.contains(name)));
        // The one that prefers a singleton defers on nothing it prefers.
        assert!(
            refs.iter()
                .all(|name| two.defers(name) != preferred_by_two.contains(name))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_not_taken_is_not_made_again_until_the_group_changes() {
        let store: Arc<dyn LeaseStore> = Arc::new(InProcessStore::new());
        let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let one = Arc::new(Balance::new(store.clone(), &refs, "one".into(), timings()));
        let two = Arc::new(Balance::new(store.clone(), &refs, "two".into(), timings()));
        let _joined = (one.join(), two.join());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let members = one.members();
        let name = *refs
            .iter()
            .find(|name| &**preferred(&members, name).unwrap() == "two")
            .expect("`two` prefers one of six");
        // `one` leads all six, over its share of 3.
        let _others: Vec<Leads> = (0..5).map(|_| one.leads()).collect();
        let mut first = one.leads();
        let handed = one.hand_over(name, &mut first, None).expect("handed over");
        // `two` did not take it: `one` leads it again, in a new term.
        drop(first);
        let mut again = one.leads();
        assert!(one.hand_over(name, &mut again, Some(&handed)).is_none());
        // Once the group has changed, it is tried again.
        let changed = HandOver {
            to: handed.to.clone(),
            version: handed.version + 1,
        };
        assert!(one.hand_over(name, &mut again, Some(&changed)).is_some());
    }
}
