//! Hashing helpers shared by every layer.

/// A stable 64-bit hash (FNV-1a) used to route records; the same on every process and run.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
