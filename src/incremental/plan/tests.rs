use super::*;
use crate::record::{ClipMeta, TarContents};
use crate::storage::Location;

fn record(bin: &str, part: u32, tar: u32, keys: &[&str]) -> TarDone {
    TarDone {
        tar: TarId {
            bin_order: 9,
            bin: bin.into(),
            part,
            tar,
        },
        samples: keys.len() as u64,
        contents: Some(TarContents {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            captions: keys.iter().map(|_| vec![]).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn clip(bin: &str, key: &str, seq: u64) -> PlannedClip {
    PlannedClip {
        tar: TarId {
            bin: bin.into(),
            ..Default::default()
        },
        meta: Box::new(ClipMeta {
            seq,
            span_uuid: key.into(),
            num_bytes: 10,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn append_keeps_existing_tars_and_starts_new_parts_after_them() {
    let records: BTreeMap<TripleKey, TarDone> = [
        record("b", 0, 0, &["k1", "k2"]),
        record("b", 0, 1, &["k3"]),
        record("gone", 0, 0, &["k9"]),
    ]
    .into_iter()
    .map(|d| ((d.tar.bin.clone(), d.tar.part, d.tar.tar), d))
    .collect();
    let base = Base {
        version_dir: Location::Local("/x/v0".into()),
        job: crate::journal::JobFingerprint {
            format: crate::journal::FORMAT,
            mtime: 1,
            options: Default::default(),
            model: crate::journal::ModelFingerprint {
                sha256: String::new(),
                weights: vec![],
            },
            inputs: None,
        },
        records,
        names: Default::default(),
    };
    let planned = vec![
        clip("c", "n1", 0),
        clip("b", "k1", 1),
        clip("b", "n2", 2),
        clip("b", "k3", 3),
        clip("b", "n3", 4),
        clip("c", "n4", 5),
    ];
    let mut summary = PlanSummary {
        bins: vec![("c".into(), vec![]), ("b".into(), vec![])],
        ..Default::default()
    };
    let grouping = Grouping {
        target_tar_bytes: 20,
        max_tars_per_part: 2,
        drop_below: 0,
    };
    let mut done = Vec::new();
    let out = append(planned, &mut summary, &base, grouping, &mut done);
    let placed: Vec<(&str, &str, u32, u32, u32)> = out
        .iter()
        .map(|c| {
            (
                c.meta.span_uuid.as_str(),
                c.tar.bin.as_str(),
                c.tar.part,
                c.tar.tar,
                c.index,
            )
        })
        .collect();
    // bin c is new: part 0; bin b had part 0: its new clips start part 1
    assert_eq!(
        placed,
        [
            ("n1", "c", 0, 0, 0),
            ("n4", "c", 0, 0, 1),
            ("n2", "b", 1, 0, 0),
            ("n3", "b", 1, 0, 1),
        ]
    );
    assert!(out.iter().enumerate().all(|(i, c)| c.rank == i as u64));
    assert_eq!(summary.planned, 4);
    let bins: Vec<(String, Vec<(u32, u32)>)> = summary
        .bins
        .iter()
        .map(|(b, t)| (b.clone(), t.iter().map(|t| (t.part, t.tar)).collect()))
        .collect();
    assert_eq!(
        bins,
        [
            ("c".to_string(), vec![(0, 0)]),
            ("b".to_string(), vec![(0, 0), (0, 1), (1, 0)]),
            ("gone".to_string(), vec![(0, 0)]),
        ]
    );
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|d| d.kept));
    // kept records take the bin order of the new plan
    let b_order = done
        .iter()
        .find(|d| d.tar.bin == "b")
        .unwrap()
        .tar
        .bin_order;
    assert_eq!(b_order, 1);
}
