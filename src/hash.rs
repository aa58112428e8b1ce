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
    /// `None`: bytes pass through unhashed (a reader that only sometimes needs the digest).
    hasher: Option<sha2::Sha256>,
}

impl<T> Sha256Hashing<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Sha256Hashing {
            inner,
            hasher: Some(<sha2::Sha256 as sha2::Digest>::new()),
        }
    }

    /// Wraps `inner` without hashing when `hash` is false (SHA-256 is not free).
    pub fn hashing_if(inner: T, hash: bool) -> Self {
        Sha256Hashing {
            inner,
            hasher: hash.then(<sha2::Sha256 as sha2::Digest>::new),
        }
    }

    /// The wrapped value, with the digest (lowercase hex) of the bytes through it (`None`
    /// when not hashing).
    pub fn digest(self) -> (T, Option<String>) {
        let digest = self.hasher.map(|h| hex(&sha2::Digest::finalize(h)));
        (self.inner, digest)
    }

    /// The wrapped value, with the digest (lowercase hex) of the bytes through it.
    pub fn finish(self) -> (T, String) {
        let (inner, digest) = self.digest();
        (inner, digest.unwrap_or_default())
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
        if let Some(h) = &mut self.hasher {
            sha2::Digest::update(h, &buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<T: std::io::Read> std::io::Read for Sha256Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            sha2::Digest::update(h, &buf[..n]);
        }
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
        // switched off, it passes the bytes through and has no digest
        let mut off = Sha256Hashing::hashing_if(Vec::new(), false);
        off.write_all(&data).unwrap();
        assert_eq!(off.digest(), (data, None));
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
