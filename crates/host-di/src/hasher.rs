//! A hasher for `TypeId` keys: the id is already a hash, so hashing it again
//! only costs time on the resolution path.

use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `TypeId`'s 64-bit hash through; any other input is mixed
/// (FxHash style) so the hasher stays correct for any key.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // `TypeId` hashes itself with one `write_u64`: that value is kept as
        // is; anything written after it is mixed in.
        self.0 = if self.0 == 0 {
            value
        } else {
            (self.0.rotate_left(5) ^ value).wrapping_mul(FX_SEED)
        };
    }
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// `BuildHasher` for maps keyed by `TypeId`.
pub(crate) type BuildTypeIdHasher = BuildHasherDefault<TypeIdHasher>;

#[cfg(test)]
mod tests {
    use std::any::TypeId;
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn type_ids_are_found() {
        let mut map: HashMap<TypeId, u32, BuildTypeIdHasher> = HashMap::default();
        map.insert(TypeId::of::<u8>(), 1);
        map.insert(TypeId::of::<String>(), 2);
        map.insert(TypeId::of::<dyn Send>(), 3);
        assert_eq!(map.get(&TypeId::of::<u8>()), Some(&1));
        assert_eq!(map.get(&TypeId::of::<String>()), Some(&2));
        assert_eq!(map.get(&TypeId::of::<dyn Send>()), Some(&3));
        assert_eq!(map.get(&TypeId::of::<u16>()), None);
    }
}
