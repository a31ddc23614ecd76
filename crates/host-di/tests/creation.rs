//! Creation is exclusive per registration: a constructor may wait on a
//! thread that creates another service, a slow constructor does not hold
//! up the creation of others, and a cycle is an error, never a deadlock.
//!
//! Each scenario runs on its own thread and the test waits for it with a
//! generous bound, so that a regression (a deadlock) fails the test instead
//! of hanging it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use host_di::{DiError, DiErrorKind, ServiceCollection, ServiceProvider};

/// Far longer than any of these scenarios takes on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// Runs `scenario` on a thread; its result, or a failure if it has not
/// finished within [`BOUND`].
fn within_bound<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(scenario());
    });
    receiver
        .recv_timeout(BOUND)
        .expect("the scenario deadlocked (did not finish within the bound)")
}

struct A;
struct B;

#[test]
fn a_singleton_factory_may_wait_on_a_thread_that_creates_another_singleton() {
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<A, _>(|provider| {
        let provider = provider.clone();
        std::thread::spawn(move || provider.get::<B>().map(drop))
            .join()
            .expect("the thread resolving B panicked")?;
        Ok(Arc::new(A))
    });
    services.add_singleton_factory::<B, _>(|_| Ok(Arc::new(B)));
    let provider = services.build().unwrap();
    let resolved = within_bound(move || provider.get::<A>().map(drop));
    resolved.unwrap();
}

struct Slow;
struct Fast;

#[test]
fn a_slow_singleton_constructor_does_not_block_the_first_resolution_of_another() {
    let (started, slow_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<Slow, _>(move |_| {
        started.send(()).unwrap();
        // Holds its creation until the test has resolved `Fast`.
        released.lock().unwrap().recv().unwrap();
        Ok(Arc::new(Slow))
    });
    services.add_singleton_factory::<Fast, _>(|_| Ok(Arc::new(Fast)));
    let provider = services.build().unwrap();

    let slow = {
        let provider = provider.clone();
        std::thread::spawn(move || provider.get::<Slow>().map(drop))
    };
    slow_started.recv_timeout(BOUND).unwrap();
    let fast = {
        let provider = provider.clone();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || sender.send(provider.get::<Fast>().map(drop)));
        receiver.recv_timeout(BOUND)
    };
    // Released either way, so that a failure does not leave a thread stuck.
    release.send(()).unwrap();
    fast.expect("`Fast` waited for `Slow`'s constructor")
        .unwrap();
    slow.join().unwrap().unwrap();
}

struct Ping;
struct Pong;

#[test]
fn a_cycle_through_singleton_factories_on_one_thread_is_a_named_error() {
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<Ping, _>(|provider| {
        provider.get::<Pong>()?;
        Ok(Arc::new(Ping))
    });
    services.add_singleton_factory::<Pong, _>(|provider| {
        provider.get::<Ping>()?;
        Ok(Arc::new(Pong))
    });
    let provider = services.build().unwrap();
    let err = within_bound(move || provider.get::<Ping>().map(drop))
        .err()
        .unwrap();
    assert_eq!(err.kind(), DiErrorKind::Cycle);
    assert_eq!(
        err.to_string(),
        "dependency cycle: `creation::Ping` needs itself
  cycle: creation::Ping -> Arc<creation::Pong> -> Arc<creation::Ping>
  help: a service cannot need itself, directly or through others; move what they share into a new service they all depend on"
    );
}

struct Left;
struct Right;

/// `Left` needs `Right` and `Right` needs `Left`, through factories that do
/// not declare it; the first two constructions meet at a barrier, so that
/// one thread creates `Left` while the other creates `Right`.
fn crossed_cycle() -> ServiceProvider {
    let barrier = Arc::new(Barrier::new(2));
    let entered = Arc::new(AtomicUsize::new(0));
    let meet = move || {
        if entered.fetch_add(1, Ordering::SeqCst) < 2 {
            barrier.wait();
        }
    };
    let mut services = ServiceCollection::new();
    let meet_left = meet.clone();
    services.add_singleton_factory::<Left, _>(move |provider| {
        meet_left();
        provider.get::<Right>()?;
        Ok(Arc::new(Left))
    });
    services.add_singleton_factory::<Right, _>(move |provider| {
        meet();
        provider.get::<Left>()?;
        Ok(Arc::new(Right))
    });
    services.build().unwrap()
}

#[test]
fn two_threads_each_creating_one_side_of_a_cycle_get_a_cycle_error_not_a_deadlock() {
    let provider = crossed_cycle();
    let (left, right) = within_bound(move || {
        let other = provider.clone();
        let right = std::thread::spawn(move || other.get::<Right>().map(drop));
        let left = provider.get::<Left>().map(drop);
        (left, right.join().unwrap())
    });
    let errors: Vec<DiError> = [left, right].into_iter().map(|r| r.unwrap_err()).collect();
    for err in &errors {
        assert_eq!(err.kind(), DiErrorKind::Cycle, "{err}");
    }
    // One thread found the circle of waits, the other the cycle on its own
    // chain once the first gave up; both name the two services.
    for err in &errors {
        let message = err.to_string();
        assert!(
            message.contains("creation::Left") && message.contains("creation::Right"),
            "{message}"
        );
    }
}
