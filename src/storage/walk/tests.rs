use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::storage::local::list_local;

/// A small deterministic generator (splitmix64), so that a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Name pieces around `/` (0x2F) in byte order: `!` `+` `,` `-` `.` below it, `0` and `a`
/// above it, and a non-ASCII letter.
const PIECES: [&str; 9] = ["a", "b", "-", ".", "0", "!", ",", "+", "é"];

fn name(rng: &mut Rng) -> String {
    (0..1 + rng.below(3))
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

/// A random tree below `dir`: files and directories whose names share prefixes, links back
/// to an ancestor (reported as already listed), broken links, a FIFO, non-UTF-8 names.
fn grow(rng: &mut Rng, root: &Path, dir: &Path, depth: usize) {
    let here = root.join(dir);
    for _ in 0..rng.below(7) {
        let mut n = name(rng);
        // a directory and a file sharing a prefix, on purpose now and then
        let twin = rng.below(3) == 0;
        let p = here.join(&n);
        if p.symlink_metadata().is_ok() {
            continue;
        }
        match rng.below(10) {
            0..=4 => {
                std::fs::write(&p, vec![b'x'; rng.below(50)]).unwrap();
            }
            5..=7 if depth < 3 => {
                std::fs::create_dir(&p).unwrap();
                grow(rng, root, &dir.join(&n), depth + 1);
            }
            8 => {
                // back to an ancestor: "." (here), "..", or the root
                // or, below the top, to a top-level directory: found when the root is read,
                // before this link, which is reported
                let tops: Vec<PathBuf> = std::fs::read_dir(root)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect();
                let target = match rng.below(4) {
                    0 => Path::new(".").to_path_buf(),
                    1 if depth > 0 => Path::new("..").to_path_buf(),
                    2 if depth > 0 && !tops.is_empty() => tops[rng.below(tops.len())].clone(),
                    _ => root.to_path_buf(),
                };
                std::os::unix::fs::symlink(target, &p).unwrap();
            }
            _ => match rng.below(3) {
                0 => std::os::unix::fs::symlink("nowhere", &p).unwrap(),
                1 => {
                    let status = std::process::Command::new("mkfifo")
                        .arg(&p)
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
                _ => {
                    // one non-UTF-8 name per directory: two would collide once made lossy
                    let raw = here.join(std::ffi::OsStr::from_bytes(b"z\xff"));
                    if raw.symlink_metadata().is_err() {
                        std::fs::create_dir(&raw).unwrap();
                        std::fs::write(raw.join("in.json"), b"{}").unwrap();
                    }
                }
            },
        }
        if twin {
            n.push(['-', '.', '!', '0'][rng.below(4)]);
            // not over an existing name: writing to a FIFO would wait for a reader
            let t = here.join(n);
            if t.symlink_metadata().is_err() {
                std::fs::write(t, b"{}").unwrap();
            }
        }
    }
}

/// What listing gave before it was streamed: everything collected, then sorted.
fn collected_and_sorted(root: &Path) -> Vec<Listed> {
    let mut all = list_local(root).unwrap();
    all.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    all
}

#[test]
fn ordered_walk_equals_collect_and_sort_on_random_trees() {
    // what the trees held, over all seeds: each case must have come up
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for seed in 0..300u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        grow(&mut rng, dir.path(), Path::new(""), 0);
        let walked: Vec<Listed> = OrderedWalk::new(dir.path()).unwrap().collect();
        let expected = collected_and_sorted(dir.path());
        assert_eq!(walked, expected, "seed {seed}");
        for l in &walked {
            let e = l.error.as_deref().unwrap_or("");
            for (case, hit) in [
                ("depth 3", l.rel.matches('/').count() >= 2),
                ("already listed", e.contains("already listed")),
                ("not UTF-8", e.contains("not valid UTF-8")),
                ("special", e.contains("not a regular file")),
            ] {
                *seen.entry(case).or_default() += usize::from(hit);
            }
        }
        // an error entry sorting before a sibling that shares its name as a prefix
        let before_sibling = walked.windows(2).any(|w| {
            w[0].error.is_some()
                && w[1].rel.starts_with(&w[0].rel)
                && !w[1].rel[w[0].rel.len()..].starts_with('/')
        });
        *seen.entry("error before sibling").or_default() += usize::from(before_sibling);
    }
    assert!(seen.values().all(|&n| n > 0), "{seen:?}");
}

#[test]
fn error_entries_go_where_their_path_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // `c` is a link back to the root: reported, before `c-x.json` and `c.json`
    std::os::unix::fs::symlink(".", root.join("c")).unwrap();
    for f in ["c-x.json", "c.json", "d.json"] {
        std::fs::write(root.join(f), b"{}").unwrap();
    }
    // `a` and `b` are the same directory: the first in listing order is listed
    std::fs::create_dir(root.join("b")).unwrap();
    std::fs::write(root.join("b/f.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("b", root.join("a")).unwrap();
    std::fs::write(root.join("a-1.json"), b"{}").unwrap();
    let got: Vec<(String, bool)> = OrderedWalk::new(root)
        .unwrap()
        .map(|l| (l.rel, l.error.is_some()))
        .collect();
    let want = [
        ("a-1.json", false),
        ("a/f.json", false),
        ("b", true),
        ("c", true),
        ("c-x.json", false),
        ("c.json", false),
        ("d.json", false),
    ];
    let want: Vec<(String, bool)> = want.iter().map(|(r, e)| (r.to_string(), *e)).collect();
    assert_eq!(got, want);
}

#[test]
fn missing_root_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = OrderedWalk::new(&dir.path().join("nope")).err().unwrap();
    assert!(err.not_found, "{err}");
    std::fs::write(dir.path().join("f"), b"").unwrap();
    assert!(
        OrderedWalk::new(&dir.path().join("f"))
            .err()
            .unwrap()
            .not_found
    );
}
