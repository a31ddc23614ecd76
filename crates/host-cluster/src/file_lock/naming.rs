//! Which file holds which lease or job: a reversible, portable file name
//! per name.

use std::fmt::Write as _;

/// Escaped names longer than this are cut and suffixed with a hash, so that
/// every file name stays well under the usual 255-byte limit.
const LONGEST: usize = 200;
/// How much of a long escaped name is kept before its hash.
const KEPT: usize = 160;

/// The file name of the lease `name`.
///
/// Bytes in `[a-z0-9_-]` are kept, every other byte becomes `%XX` (so `/`,
/// `..`, spaces and capitals never reach the file system, and names that
/// differ only in case stay apart on case-insensitive file systems). An
/// escaped name longer than 200 bytes keeps its first 160 bytes, then `~`
/// and the 64-bit FNV-1a hash of the whole name (`~` never appears in a
/// short form, so the two forms cannot meet). The file also records its
/// lease name, and the store refuses a file that names another.
pub(super) fn file_name(name: &str) -> String {
    let mut file = stem(name);
    file.push_str(".lease");
    file
}

/// The escaped form of `name` that [`file_name`] suffixes, for the other
/// files kept per name (a job's claims): it never holds a `.`, so each
/// suffix keeps its kind of file apart.
pub(super) fn stem(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len() + 6);
    for byte in name.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_' {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    if escaped.len() > LONGEST {
        // Only ASCII was pushed: any byte index is a char boundary.
        escaped.truncate(KEPT);
        let _ = write!(escaped, "~{:016x}", fnv1a(name.as_bytes()));
    }
    escaped
}

/// The 64-bit FNV-1a hash: tiny, and stable across versions and platforms
/// (std's hasher promises neither), so every process derives one file name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(file_name("billing-job_1"), "billing-job_1.lease");
    }

    #[test]
    fn separators_dots_spaces_and_capitals_are_escaped() {
        assert_eq!(file_name("../a b/C"), "%2E%2E%2Fa%20b%2F%43.lease");
        assert_ne!(file_name("Billing"), file_name("billing"));
    }

    #[test]
    fn stems_hold_no_dot_so_suffixes_stay_apart() {
        for name in ["a.lease", "../x", &".".repeat(300)] {
            assert!(!stem(name).contains('.'), "{name:?}");
        }
        assert_eq!(file_name("a.b"), format!("{}.lease", stem("a.b")));
    }

    #[test]
    fn long_names_are_cut_and_hashed_apart() {
        let a = format!("{}a", "/".repeat(100));
        let b = format!("{}b", "/".repeat(100));
        let (fa, fb) = (file_name(&a), file_name(&b));
        assert!(fa.len() <= LONGEST, "{fa}");
        assert!(fa.contains('~'));
        assert_ne!(fa, fb);
    }

    #[test]
    fn the_hash_is_the_published_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
