//! The resolution chain: which registrations this thread is constructing
//! right now. It finds cycles that the validator cannot see (through
//! factories) before they deadlock or overflow the stack, and names the
//! chain in errors.
//!
//! Construction is synchronous (`Injectable::create` and factories are not
//! `async`), so a constructor runs, with all it resolves, on one thread. The
//! chain is a fixed array of `Copy` frames in thread-local storage: no
//! allocation, no lazy initialisation, no destructor; the chain is rendered
//! only when an error is built.

use std::cell::Cell;

use crate::names::Shape;

/// Frames recorded; deeper ones are counted only (a cycle that starts in
/// the recorded part is still found, since its frames repeat there).
const TRACKED: usize = 64;

/// Deeper than this is taken for a cycle that started beyond [`TRACKED`].
pub(crate) const MAX_DEPTH: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The container (the address of its root).
    root: usize,
    /// The registration being constructed.
    index: u32,
    /// How it was asked for.
    via: Shape,
}

const EMPTY: Frame = Frame {
    root: 0,
    index: 0,
    via: Shape::Arc,
};

/// This thread's chain.
struct Chain {
    depth: Cell<usize>,
    frames: [Cell<Frame>; TRACKED],
}

thread_local! {
    static CHAIN: Chain = const {
        Chain {
            depth: Cell::new(0),
            frames: [const { Cell::new(EMPTY) }; TRACKED],
        }
    };
}

/// Pops the frame it pushed when dropped, also on panic.
#[derive(Debug)]
pub(crate) struct Guard(());

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        CHAIN.with(|chain| chain.depth.set(chain.depth.get().saturating_sub(1)));
    }
}

/// Why a construction cannot start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The registration is already under construction: the cycle, from its
    /// first construction to this request for it.
    Cycle(Vec<(u32, Shape)>),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Enters the construction of registration `index` of container `root`.
#[inline]
pub(crate) fn enter(root: usize, index: u32, via: Shape) -> Result<Guard, Refused> {
    let entered = CHAIN.with(|chain| {
        let depth = chain.depth.get();
        let recorded = &chain.frames[..depth.min(TRACKED)];
        if let Some(start) = recorded.iter().position(|frame| {
            let frame = frame.get();
            frame.root == root && frame.index == index
        }) {
            return Err(Some(start));
        }
        if depth >= MAX_DEPTH {
            return Err(None);
        }
        if let Some(frame) = chain.frames.get(depth) {
            frame.set(Frame { root, index, via });
        }
        chain.depth.set(depth + 1);
        Ok(())
    });
    match entered {
        Ok(()) => Ok(Guard(())),
        Err(start) => Err(refused(start, root, index, via)),
    }
}

#[cold]
#[inline(never)]
fn refused(start: Option<usize>, root: usize, index: u32, via: Shape) -> Refused {
    let Some(start) = start else {
        return Refused::TooDeep;
    };
    let mut cycle = CHAIN.with(|chain| {
        let depth = chain.depth.get();
        chain.frames[start..depth.min(TRACKED)]
            .iter()
            .map(Cell::get)
            .filter(|frame| frame.root == root)
            .map(|frame| (frame.index, frame.via))
            .collect::<Vec<_>>()
    });
    cycle.push((index, via));
    Refused::Cycle(cycle)
}

/// The registrations of container `root` under construction on this
/// thread, outermost first (the first [`TRACKED`] levels).
pub(crate) fn current(root: usize) -> Vec<(u32, Shape)> {
    CHAIN.with(|chain| {
        let depth = chain.depth.get();
        chain.frames[..depth.min(TRACKED)]
            .iter()
            .map(Cell::get)
            .filter(|frame| frame.root == root)
            .map(|frame| (frame.index, frame.via))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cycle_and_unwinds() {
        let a = enter(1, 0, Shape::Arc).unwrap();
        let b = enter(1, 1, Shape::Vec).unwrap();
        let other_container = enter(2, 0, Shape::Arc).unwrap();
        assert_eq!(
            enter(1, 0, Shape::Option).unwrap_err(),
            Refused::Cycle(vec![(0, Shape::Arc), (1, Shape::Vec), (0, Shape::Option)])
        );
        assert_eq!(current(1), [(0, Shape::Arc), (1, Shape::Vec)]);
        drop(other_container);
        drop(b);
        drop(a);
        assert!(current(1).is_empty());
    }

    #[test]
    fn too_deep_is_refused() {
        let guards: Vec<_> = (0..MAX_DEPTH as u32)
            .map(|index| enter(7, index, Shape::Arc).unwrap())
            .collect();
        assert_eq!(
            enter(7, u32::MAX, Shape::Arc).unwrap_err(),
            Refused::TooDeep
        );
        drop(guards);
        assert!(enter(7, 0, Shape::Arc).is_ok());
    }
}
