//! Reading a dataset's tar once, to the end, checking its structure on the way: what
//! `verify`, `inspect` and `index` are built on. Members are handed to a visitor one at a
//! time, so a reader holds one member, never the tar.

use std::io::Read;

use crate::dataset::index::{Counting, DaliIndex};
use crate::hash::Sha256Hashing;
use crate::storage::{Location, Storage};
use crate::text::{shown, shown_within};

/// One regular member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
}

/// A tar as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TarRead {
    /// Regular members in order.
    pub members: Vec<Member>,
    /// Bytes read (the file's size when it read to the end).
    pub bytes: u64,
    /// Its DALI index, as the reader computed it.
    pub dali: DaliIndex,
    /// Why it could not be read to the end, if it could not.
    pub error: Option<String>,
    /// The SHA-256 (lowercase hex) of the bytes read, when asked for and it read to the end.
    pub sha256: Option<String>,
}

/// Reads `loc` through `storage` for its structure alone (no member is kept), and hashes it.
pub fn read_tar(storage: &Storage, loc: &Location) -> TarRead {
    visit_tar_hashing(
        storage,
        loc,
        &mut |_: &str| false,
        &mut |_: &str, _| {},
        true,
    )
}

/// Reads `loc` through `storage`; each regular member whose name `wanted` accepts is read into
/// memory and passed to `visit` (then dropped), in order.
pub fn visit_tar(
    storage: &Storage,
    loc: &Location,
    wanted: &mut dyn FnMut(&str) -> bool,
    visit: &mut dyn FnMut(&str, Vec<u8>),
) -> TarRead {
    visit_tar_hashing(storage, loc, wanted, visit, false)
}

/// [`visit_tar`], which also computes [`TarRead::sha256`] on the same read when `hash`.
pub fn visit_tar_hashing(
    storage: &Storage,
    loc: &Location,
    wanted: &mut dyn FnMut(&str) -> bool,
    visit: &mut dyn FnMut(&str, Vec<u8>),
    hash: bool,
) -> TarRead {
    let mut out = TarRead::default();
    let reader = match storage.fetch(loc).open() {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e.message);
            return out;
        }
    };
    // hashed on the way, so a checksum costs no second read
    let mut counted = Counting::new(Sha256Hashing::hashing_if(reader.reader, hash));
    if let Err(e) = read_members(&mut counted, wanted, visit, &mut out) {
        out.error = Some(e);
    }
    out.bytes = counted.count;
    if out.error.is_none() {
        out.sha256 = counted.into_inner().digest().1;
    }
    out
}

fn read_members(
    counted: &mut Counting<Sha256Hashing<Box<dyn Read + Send>>>,
    wanted: &mut dyn FnMut(&str) -> bool,
    visit: &mut dyn FnMut(&str, Vec<u8>),
    out: &mut TarRead,
) -> Result<(), String> {
    let mut end_of_data = 0u64;
    {
        let mut archive = tar::Archive::new(&mut *counted);
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| {
                format!(
                    "truncated or corrupt header: {}",
                    shown_within(&e.to_string(), 300)
                )
            })?;
            let pos = entry.raw_file_position();
            let size = entry.size();
            end_of_data = pos + size.div_ceil(512) * 512;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| shown_within(&e.to_string(), 300))?
                .to_string_lossy()
                .into_owned();
            if wanted(&name) {
                // a corrupt header may declare any size: grow as data arrives
                let mut d = Vec::with_capacity(size.min(64 << 20) as usize);
                entry
                    .read_to_end(&mut d)
                    .map_err(|e| format!("{}: truncated ({e})", shown(&name)))?;
                if d.len() as u64 != size {
                    return Err(format!(
                        "{}: truncated ({} of {size} bytes)",
                        shown(&name),
                        d.len()
                    ));
                }
                visit(&name, d);
            } else {
                std::io::copy(&mut entry, &mut std::io::sink())
                    .map_err(|e| format!("{}: truncated ({e})", shown(&name)))?;
            }
            out.dali.push(&name, pos, size);
            out.members.push(Member { name, size });
        }
    }
    // the archive must end with its two zero blocks (a tar cut at a member boundary reads
    // like a shorter valid one otherwise)
    let consumed = counted.count;
    let mut rest = Vec::new();
    counted
        .read_to_end(&mut rest)
        .map_err(|e| format!("unreadable end: {e}"))?;
    let trailer = consumed + rest.len() as u64 - end_of_data;
    if trailer < 1024 || rest.iter().any(|b| *b != 0) {
        return Err(format!(
            "truncated: no end-of-archive marker after the last member (byte {end_of_data})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [("a.json", &b"{}"[..]), ("b.json", &[1u8; 600][..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn huge_or_binary_member_names_are_shortened_in_errors() {
        let name = format!("{}\u{1b}[2J\n.json", "n".repeat(64 << 10));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2000);
        h.set_mode(0o444);
        b.append_data(&mut h, &name, &[7u8; 2000][..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tar");
        // cut inside the member's data
        std::fs::write(&p, &bytes[..bytes.len() - 1024 - 1000]).unwrap();
        let st = Storage::new(StorageOptions::default());
        for read_it in [true, false] {
            let r = visit_tar(
                &st,
                &Location::Local(p.clone()),
                &mut |_: &str| read_it,
                &mut |_: &str, _| {},
            );
            let e = r.error.expect("truncated");
            assert!(e.len() < 1024, "{} bytes", e.len());
            assert!(e.contains("truncated"), "{e}");
            assert!(!read_it || e.starts_with("nnnn"), "{e}");
            assert!(!e.contains('\u{1b}') && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn reads_to_the_end_and_catches_truncation_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tar");
        let bytes = tar_bytes();
        std::fs::write(&p, &bytes).unwrap();
        let st = Storage::new(StorageOptions::default());
        let loc = Location::Local(p.clone());
        let mut data = Vec::new();
        let r = visit_tar(&st, &loc, &mut |_: &str| true, &mut |_: &str, d| {
            data.push(d)
        });
        assert_eq!(r.error, None);
        assert_eq!(r.bytes, bytes.len() as u64);
        assert_eq!(data[1].as_slice(), &[1u8; 600][..]);
        // cut inside data, at a member boundary, and inside the end marker
        let cuts = [700, 512 * 2, 512 * 4, bytes.len() - 512];
        for (i, cut) in cuts.into_iter().enumerate() {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let r = visit_tar(&st, &loc, &mut |_: &str| i % 2 == 0, &mut |_: &str, _| {});
            assert!(
                r.error.as_deref().is_some_and(|e| e.contains("truncated")),
                "cut at {cut}: {:?}",
                r.error
            );
        }
    }
}
