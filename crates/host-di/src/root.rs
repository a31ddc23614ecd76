//! What `build()` freezes: the registrations, their lookup tables, the
//! singleton cells, and the root's disposal list.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use crate::creation::CreationLock;
use crate::descriptor::{FactoryFn, Meta};
use crate::dispose::DisposeList;
use crate::hasher::BuildTypeIdHasher;
use crate::{DiError, Lifetime, ServiceCollection, validate};

/// A stored scoped instance: an `Arc<S>` behind `Any`.
pub(crate) type Stored = Box<dyn Any + Send + Sync>;

/// A `Slot<S>` behind `Any`.
pub(crate) type AnySlot = Arc<dyn Any + Send + Sync>;

/// What resolution needs of one registration of `S`, in one allocation:
/// a lookup finds it, one downcast types it, and a created singleton is
/// read from it directly.
pub(crate) struct Slot<S: ?Sized> {
    pub(crate) lifetime: Lifetime,
    /// The registration's position, for names in errors.
    pub(crate) index: u32,
    /// The cell of a scoped registration in each scope.
    pub(crate) scoped_slot: usize,
    /// The singleton, once created (an instance from the start).
    pub(crate) singleton: OnceLock<Arc<S>>,
    /// Held while the singleton is created: one creation per registration,
    /// as .NET locks per service; other singletons are created meanwhile.
    pub(crate) creating: CreationLock,
    /// `None` for an instance.
    pub(crate) factory: Option<FactoryFn<S>>,
}

/// One frozen registration.
pub(crate) struct Registration {
    pub(crate) meta: Meta,
    pub(crate) slot: AnySlot,
}

/// The registrations of one service type (and key).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The last registration's slot: what `get` resolves.
    pub(crate) last: AnySlot,
    /// Every registration, in registration order.
    pub(crate) all: Box<[u32]>,
}

/// Registration indices by key, for one service type.
type ByKey<L> = HashMap<Arc<str>, L>;

/// Registrations by service type (and key), in registration order.
#[derive(Debug, Default)]
pub(crate) struct Index {
    unkeyed: HashMap<TypeId, Entry, BuildTypeIdHasher>,
    keyed: HashMap<TypeId, ByKey<Entry>, BuildTypeIdHasher>,
}

impl Index {
    /// Groups registration indices by service type and key.
    fn lists(metas: &[Meta]) -> Lists {
        let mut lists = Lists::default();
        for (index, meta) in (0u32..).zip(metas) {
            match &meta.key {
                None => lists.unkeyed.entry(meta.service).or_default().push(index),
                Some(key) => lists
                    .keyed
                    .entry(meta.service)
                    .or_default()
                    .entry(Arc::clone(key))
                    .or_default()
                    .push(index),
            }
        }
        lists
    }

    fn new(lists: Lists, registrations: &[Registration]) -> Self {
        let entry = |list: Vec<u32>| {
            let last = list.last().map_or(0, |&last| last as usize);
            Entry {
                last: Arc::clone(&registrations[last].slot),
                all: list.into_boxed_slice(),
            }
        };
        Self {
            unkeyed: lists
                .unkeyed
                .into_iter()
                .map(|(service, list)| (service, entry(list)))
                .collect(),
            keyed: lists
                .keyed
                .into_iter()
                .map(|(service, keys)| {
                    let keys = keys
                        .into_iter()
                        .map(|(key, list)| (key, entry(list)))
                        .collect();
                    (service, keys)
                })
                .collect(),
        }
    }

    /// The registrations of `service` without a key.
    #[inline]
    pub(crate) fn unkeyed(&self, service: TypeId) -> Option<&Entry> {
        self.unkeyed.get(&service)
    }

    /// The registrations of `service` under `key`.
    pub(crate) fn keyed(&self, service: TypeId, key: &str) -> Option<&Entry> {
        self.keyed.get(&service).and_then(|keys| keys.get(key))
    }
}

/// Registration indices by service type and key, before the slots exist.
#[derive(Debug, Default)]
pub(crate) struct Lists {
    unkeyed: HashMap<TypeId, Vec<u32>, BuildTypeIdHasher>,
    keyed: HashMap<TypeId, ByKey<Vec<u32>>, BuildTypeIdHasher>,
}

impl Lists {
    pub(crate) fn find(&self, service: TypeId, key: Option<&str>) -> &[u32] {
        let list = match key {
            None => self.unkeyed.get(&service),
            Some(key) => self.keyed.get(&service).and_then(|keys| keys.get(key)),
        };
        list.map_or(&[], Vec::as_slice)
    }
}

/// The frozen container, shared by the root provider and every scope.
pub(crate) struct Root {
    pub(crate) index: Index,
    pub(crate) registrations: Box<[Registration]>,
    pub(crate) scoped_count: usize,
    pub(crate) disposers: DisposeList,
    pub(crate) disposed: AtomicBool,
}

impl Root {
    pub(crate) fn build(services: ServiceCollection) -> Result<Self, DiError> {
        let metas: Vec<Meta> = services
            .registrations
            .iter()
            .map(|registration| registration.meta.clone())
            .collect();
        let lists = Index::lists(&metas);
        validate::validate(&metas, &lists)?;

        let disposers = DisposeList::default();
        let mut scoped_count = 0;
        let registrations: Box<[Registration]> = (0u32..)
            .zip(services.registrations)
            .map(|(index, registration)| {
                let scoped_slot = scoped_count;
                if registration.meta.lifetime == Lifetime::Scoped {
                    scoped_count += 1;
                }
                let (meta, slot, disposer) = registration.freeze(index, scoped_slot);
                if let Some(disposer) = disposer {
                    disposers.push(disposer);
                }
                Registration { meta, slot }
            })
            .collect();
        Ok(Self {
            index: Index::new(lists, &registrations),
            registrations,
            scoped_count,
            disposers,
            disposed: AtomicBool::new(false),
        })
    }

    /// The identity of this container in resolution chains.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if !*self.disposed.get_mut() {
            self.disposers.dispose_sync("a service provider");
        }
    }
}
