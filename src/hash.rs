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

/// A reader or writer that computes the SHA-256 of the bytes through it: tars are hashed
/// while they are written or read, never read a second time for it.
#[derive(Debug)]
pub struct Sha256Hashing<T> {
    inner: T,
    hasher: sha2::Sha256,
}

impl<T> Sha256Hashing<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Sha256Hashing {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        }
    }

    /// The wrapped value, with the digest (lowercase hex) of the bytes through it.
    pub fn finish(self) -> (T, String) {
        let digest = sha2::Digest::finalize(self.hasher);
        (self.inner, hex(&digest))
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: std::io::Write> std::io::Write for Sha256Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        // only what the inner writer took
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: std::io::Read> std::io::Read for Sha256Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 (lowercase hex) of everything `r` yields, read once to its end.
pub fn sha256_of(r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = Sha256Hashing::new(r);
    std::io::copy(&mut h, &mut std::io::sink())?;
    Ok(h.finish().1)
}

#[cfg(test)]
mod sha256_tests {
    use super::*;
    use sha2::Digest;
    use std::io::Write;

    #[test]
    fn the_writer_digest_is_the_sha256_of_the_bytes_written() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = Sha256Hashing::new(Vec::new());
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        let (inner, digest) = w.finish();
        assert_eq!(inner, data);
        assert_eq!(digest, hex(&sha2::Sha256::digest(&data)));
        assert_eq!(digest.len(), 64);
        // the reader agrees
        assert_eq!(sha256_of(&data[..]).unwrap(), digest);
    }

    #[test]
    fn the_empty_input_has_the_well_known_digest() {
        let (_, d) = Sha256Hashing::new(Vec::<u8>::new()).finish();
        assert_eq!(
            d,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
