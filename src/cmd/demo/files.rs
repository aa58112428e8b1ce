//! The files `shardflow demo` writes, built into the binary: the sample dataset's clips and
//! metadata (`tests/data/sample-dataset`) and the tiny random-weight T5 (`tests/data/t5-tiny`).

/// `(path under tests/data, contents)` for each file.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $path)))),*]
    };
}

/// The sample input: `sample-dataset/clips/*.mp4` and `sample-dataset/metas/v0/*.json`.
pub(super) const INPUT: &[(&str, &[u8])] = embed![
    "sample-dataset/clips/22756df8-ac7e-5b10-bbe1-b392e219c386.mp4",
    "sample-dataset/clips/2354f984-9e42-50c3-a864-20b3a58b9700.mp4",
    "sample-dataset/clips/2a2599cc-1cdd-5cc3-8ffc-2b97add609ee.mp4",
    "sample-dataset/clips/2bc89d43-6b7c-504c-af85-12583b4e5e77.mp4",
    "sample-dataset/clips/2cb5f290-b7b5-57da-97e3-40441ed234d5.mp4",
    "sample-dataset/clips/3ff24c95-b4e2-5c3b-a9bb-e2d00d7cbb6d.mp4",
    "sample-dataset/clips/43f57d60-cb48-5361-a153-d3631d1736d3.mp4",
    "sample-dataset/clips/4ba4e725-d8e4-553e-a09d-0044d4ab5e35.mp4",
    "sample-dataset/clips/56721b71-6552-5aec-9dd7-70df5cd7fd81.mp4",
    "sample-dataset/clips/63f76768-df2d-587a-ab69-56fd52ae8823.mp4",
    "sample-dataset/clips/687db7fe-1229-5026-bb0e-104186712bbb.mp4",
    "sample-dataset/clips/7af5e99a-2a9f-5924-8d03-e1decf7f6f38.mp4",
    "sample-dataset/clips/8b24a97d-4926-5851-9d9f-07c845a310b2.mp4",
    "sample-dataset/clips/8ca527d1-3767-54e3-8030-560e8cecaf19.mp4",
    "sample-dataset/clips/8eb59363-9383-5acb-b833-97efe64f825e.mp4",
    "sample-dataset/clips/935184e1-d81e-5c46-98f5-2327ed977413.mp4",
    "sample-dataset/clips/9da649e7-2519-5c98-9f57-2cfd30cf842f.mp4",
    "sample-dataset/clips/a9a232b9-ea02-545c-9e80-754491b83904.mp4",
    "sample-dataset/clips/ae380c84-d2e4-5642-a39f-a3695db1155b.mp4",
    "sample-dataset/clips/bcb2d216-92f9-5c7b-bbff-1f4e922157b1.mp4",
    "sample-dataset/clips/bf6a9b2c-2a31-57a5-aa10-d8e84611788b.mp4",
    "sample-dataset/clips/c5d915d1-7910-5b31-8e8c-1e4160aad13a.mp4",
    "sample-dataset/clips/e38d96ed-4c98-5bd0-8be9-3aeb5f3cf04b.mp4",
    "sample-dataset/clips/eb2ebdbd-331b-5373-ac8a-1a4f7fac5dac.mp4",
    "sample-dataset/clips/f2e4978e-324b-513f-a70b-a9b3b3922127.mp4",
    "sample-dataset/clips/f583624a-47e1-5974-b176-430be5001ae1.mp4",
    "sample-dataset/metas/v0/22756df8-ac7e-5b10-bbe1-b392e219c386.json",
    "sample-dataset/metas/v0/2354f984-9e42-50c3-a864-20b3a58b9700.json",
    "sample-dataset/metas/v0/2a2599cc-1cdd-5cc3-8ffc-2b97add609ee.json",
    "sample-dataset/metas/v0/2cb5f290-b7b5-57da-97e3-40441ed234d5.json",
    "sample-dataset/metas/v0/3ff24c95-b4e2-5c3b-a9bb-e2d00d7cbb6d.json",
    "sample-dataset/metas/v0/43f57d60-cb48-5361-a153-d3631d1736d3.json",
    "sample-dataset/metas/v0/4ba4e725-d8e4-553e-a09d-0044d4ab5e35.json",
    "sample-dataset/metas/v0/56721b71-6552-5aec-9dd7-70df5cd7fd81.json",
    "sample-dataset/metas/v0/63f76768-df2d-587a-ab69-56fd52ae8823.json",
    "sample-dataset/metas/v0/687db7fe-1229-5026-bb0e-104186712bbb.json",
    "sample-dataset/metas/v0/7af5e99a-2a9f-5924-8d03-e1decf7f6f38.json",
    "sample-dataset/metas/v0/8b24a97d-4926-5851-9d9f-07c845a310b2.json",
    "sample-dataset/metas/v0/8ca527d1-3767-54e3-8030-560e8cecaf19.json",
    "sample-dataset/metas/v0/8eb59363-9383-5acb-b833-97efe64f825e.json",
    "sample-dataset/metas/v0/935184e1-d81e-5c46-98f5-2327ed977413.json",
    "sample-dataset/metas/v0/9a5dca49-2522-5aa3-91d7-d6c1298844ce.json",
    "sample-dataset/metas/v0/9da649e7-2519-5c98-9f57-2cfd30cf842f.json",
    "sample-dataset/metas/v0/a9a232b9-ea02-545c-9e80-754491b83904.json",
    "sample-dataset/metas/v0/ae380c84-d2e4-5642-a39f-a3695db1155b.json",
    "sample-dataset/metas/v0/bcb2d216-92f9-5c7b-bbff-1f4e922157b1.json",
    "sample-dataset/metas/v0/bf6a9b2c-2a31-57a5-aa10-d8e84611788b.json",
    "sample-dataset/metas/v0/c5d915d1-7910-5b31-8e8c-1e4160aad13a.json",
    "sample-dataset/metas/v0/e38d96ed-4c98-5bd0-8be9-3aeb5f3cf04b.json",
    "sample-dataset/metas/v0/eb2ebdbd-331b-5373-ac8a-1a4f7fac5dac.json",
    "sample-dataset/metas/v0/extra_batch/2bc89d43-6b7c-504c-af85-12583b4e5e77.json",
    "sample-dataset/metas/v0/f2e4978e-324b-513f-a70b-a9b3b3922127.json",
    "sample-dataset/metas/v0/f583624a-47e1-5974-b176-430be5001ae1.json",
    "sample-dataset/metas/v0/f7962946-d78b-5082-9e4a-3ba4490fc795.json",
];

/// The model: what `t5::load` reads.
pub(super) const MODEL: &[(&str, &[u8])] = embed![
    "t5-tiny/config.json",
    "t5-tiny/tokenizer.json",
    "t5-tiny/model.safetensors",
];
