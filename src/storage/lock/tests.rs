use super::*;
use crate::storage::StorageOptions;

#[test]
fn a_local_lock_is_exclusive_until_dropped_and_says_who_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::Local(dir.path().join("v0/_shardflow/lock"));
    let st = Storage::new(StorageOptions::default());
    let held = st.lock(&loc).unwrap();
    match st.lock(&loc) {
        Err(LockError::Held { holder, location }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            assert!(location.ends_with("lock"), "{location}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second lock was granted"),
    }
    assert!(dir.path().join("v0/_shardflow/lock").exists());
    drop(held);
    // a finished job leaves no lock file: copied to a store, it would read as a lock object
    assert!(!dir.path().join("v0/_shardflow/lock").exists());
    // a killed job's file (there, unlocked) is taken, and removed when released
    std::fs::write(dir.path().join("v0/_shardflow/lock"), "process 1 on gone").unwrap();
    let again = st.lock(&loc).unwrap();
    drop(again);
    assert!(!dir.path().join("v0/_shardflow/lock").exists());
    assert!(dir.path().join("v0/_shardflow").is_dir());
    // a lock whose file was replaced (removed by hand, another job's since) leaves that one
    let held = st.lock(&loc).unwrap();
    std::fs::remove_file(dir.path().join("v0/_shardflow/lock")).unwrap();
    std::fs::write(dir.path().join("v0/_shardflow/lock"), "another job").unwrap();
    drop(held);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("v0/_shardflow/lock")).unwrap(),
        "another job"
    );
}

#[test]
fn empty_except_ignores_the_kept_file_and_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let st = Storage::new(StorageOptions::default());
    let v = Location::Local(dir.path().join("v0"));
    assert!(st.is_empty_dir_except(&v, "_shardflow/lock").unwrap());
    std::fs::create_dir_all(dir.path().join("v0/_shardflow/done")).unwrap();
    std::fs::write(dir.path().join("v0/_shardflow/lock"), b"x").unwrap();
    assert!(st.is_empty_dir_except(&v, "_shardflow/lock").unwrap());
    // a job killed while writing its journal leaves only a temporary file
    std::fs::write(
        dir.path().join("v0/_shardflow/.job.json.77-0.partial"),
        b"{",
    )
    .unwrap();
    assert!(st.is_empty_dir_except(&v, "_shardflow/lock").unwrap());
    // a file that merely ends like one counts
    std::fs::write(dir.path().join("v0/notes.partial"), b"").unwrap();
    assert!(!st.is_empty_dir_except(&v, "_shardflow/lock").unwrap());
    std::fs::remove_file(dir.path().join("v0/notes.partial")).unwrap();
    std::fs::write(dir.path().join("v0/_shardflow/job.json"), b"{}").unwrap();
    assert!(!st.is_empty_dir_except(&v, "_shardflow/lock").unwrap());
}
