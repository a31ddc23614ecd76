//! Creation locks: one per singleton registration and one per scoped
//! registration in each scope, so that a slow constructor only makes wait
//! the threads that want the same instance, and a constructor may wait on a
//! thread that creates another one.
//!
//! A thread asks for a lock only after the resolution chain has checked
//! that it is not already constructing that registration (a cycle on one
//! thread is an error before any lock). Threads can still wait on each
//! other in a circle: thread 1 creates `A`, which needs `B`, while thread 2
//! creates `B`, which needs `A`. Before blocking, a thread follows who holds
//! the lock it wants, what that thread waits for, and so on; if the path
//! comes back to itself, it fails with a cycle instead of blocking. This
//! costs nothing uncontended (one compare-exchange to take a lock, one
//! store and one load to release it): the bookkeeping of who waits for what
//! is kept, under one global mutex, only by threads that have to wait.
//!
//! A thread that waits for something other than a lock (a constructor that
//! joins a thread which needs the instance under construction) is not seen:
//! that remains a deadlock, as in .NET.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

/// The lock of one instance to create.
#[derive(Debug, Default)]
pub(crate) struct CreationLock {
    /// The holding thread ([`thread_id`]), 0 when free.
    owner: AtomicU64,
    /// Threads in [`CreationLock::acquire_slow`] for this lock.
    waiters: AtomicU32,
}

/// The registration a lock creates: the address of its container's root,
/// and its index there.
pub(crate) type Target = (usize, u32);

/// A thread blocked on a lock.
struct Waiting {
    thread: u64,
    /// The lock's address, its identity while anyone waits on it.
    lock: usize,
    /// Its holder when the wait began; kept true, since a release removes
    /// the entries of the lock it frees.
    owner: u64,
    target: Target,
}

/// The threads blocked on creation locks. Few, and only under contention.
static WAITING: Mutex<Vec<Waiting>> = Mutex::new(Vec::new());

/// Signalled when a lock with waiters is released.
static RELEASED: Condvar = Condvar::new();

/// A small number per thread, never 0 and never reused.
fn thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: Cell<u64> = const { Cell::new(0) };
    }
    ID.with(|id| match id.get() {
        0 => {
            let next = NEXT.fetch_add(1, Ordering::Relaxed);
            id.set(next);
            next
        }
        known => known,
    })
}

/// Held while the instance is created; releases the lock when dropped,
/// also on panic.
#[derive(Debug)]
pub(crate) struct Held<'a>(&'a CreationLock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Threads wait on each other in a circle: waiting would never end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Circle {
    /// The registration this thread is creating that another thread of the
    /// circle waits for.
    pub(crate) held: Target,
}

impl CreationLock {
    /// Takes the lock to create `target`, waiting for another thread that
    /// holds it, unless that wait would close a circle of waiting threads.
    #[inline]
    pub(crate) fn acquire(&self, target: Target) -> Result<Held<'_>, Circle> {
        let me = thread_id();
        match self
            .owner
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(Held(self)),
            Err(_) => self.acquire_slow(me, target),
        }
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, me: u64, target: Target) -> Result<Held<'_>, Circle> {
        let lock = std::ptr::from_ref(self) as usize;
        let mut waiting = WAITING.lock();
        // Announced before the owner is read again: a release either is
        // seen here (the lock is free) or sees this waiter and notifies.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let taken = loop {
            let owner = match self
                .owner
                .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break Ok(Held(self)),
                Err(owner) => owner,
            };
            if let Some(held) = circle(&waiting, owner, me, target) {
                break Err(Circle { held });
            }
            waiting.push(Waiting {
                thread: me,
                lock,
                owner,
                target,
            });
            RELEASED.wait(&mut waiting);
            waiting.retain(|entry| entry.thread != me);
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        taken
    }

    fn release(&self) {
        self.owner.store(0, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let lock = std::ptr::from_ref(self) as usize;
            let mut waiting = WAITING.lock();
            // Their owner is no longer true; each re-registers as it wakes.
            waiting.retain(|entry| entry.lock != lock);
            RELEASED.notify_all();
        }
    }
}

/// Follows the holders from `owner` (who holds `target`): the registration
/// held by `me` that closes the circle, if it does.
fn circle(waiting: &[Waiting], mut owner: u64, me: u64, mut target: Target) -> Option<Target> {
    // Each step moves to another waiting thread: a path longer than the
    // number of waiting threads repeats one, in a circle without `me`.
    for _ in 0..=waiting.len() {
        if owner == me {
            return Some(target);
        }
        let next = waiting.iter().find(|entry| entry.thread == owner)?;
        owner = next.owner;
        target = next.target;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let lock = Arc::new(CreationLock::default());
        let held = lock.acquire((1, 0)).unwrap();
        let (sender, receiver) = mpsc::channel();
        let other = Arc::clone(&lock);
        let waiter = std::thread::spawn(move || {
            let _held = other.acquire((1, 0)).unwrap();
            sender.send(()).unwrap();
        });
        // The other thread waits; it gets the lock once this one is dropped.
        assert!(
            receiver
                .recv_timeout(std::time::Duration::from_millis(50))
                .is_err()
        );
        drop(held);
        receiver
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn the_same_thread_asking_again_is_a_circle() {
        let lock = CreationLock::default();
        let _held = lock.acquire((1, 3)).unwrap();
        assert_eq!(lock.acquire((1, 3)).unwrap_err(), Circle { held: (1, 3) });
    }

    #[test]
    fn two_threads_waiting_on_each_other_is_a_circle_not_a_deadlock() {
        let a = Arc::new(CreationLock::default());
        let b = Arc::new(CreationLock::default());
        let (held_b, b_is_held) = mpsc::channel();
        let (thread_2, t2_a, t2_b) = (mpsc::channel::<()>(), Arc::clone(&a), Arc::clone(&b));
        let (go, wait_for_go) = thread_2;
        let other = std::thread::spawn(move || {
            let _b = t2_b.acquire((1, 1)).unwrap();
            held_b.send(()).unwrap();
            wait_for_go.recv().unwrap();
            // Blocks until thread 1 gives up `A`, or finds the circle.
            t2_a.acquire((1, 0)).map(drop)
        });
        let held_a = a.acquire((1, 0)).unwrap();
        b_is_held.recv().unwrap();
        go.send(()).unwrap();
        // Whichever thread registers its wait last sees the circle; if it
        // is this one, it fails here, else thread 2 fails and `B` is free.
        match b.acquire((1, 1)) {
            Err(circle) => {
                assert_eq!(circle, Circle { held: (1, 0) });
                drop(held_a);
                other.join().unwrap().unwrap();
            }
            Ok(_b) => {
                assert_eq!(other.join().unwrap().unwrap_err(), Circle { held: (1, 1) });
            }
        }
    }
}
