#!/usr/bin/env python3
"""Edits a copy of an input dataset (the sample dataset's layout: clips/, metas/<version>/) for
the integration tests. Metadata files that do not parse are skipped where a sub-command picks
clips; rewritten files are `json.dumps(indent=4)` unless said otherwise.

    edit_input.py add-clip ROOT NAME SIZE {sparse,random}
        Adds clip NAME: clips/NAME.mp4 of SIZE bytes (sparse: an ftyp box, then a hole; random:
        seeded random bytes) and metas/v0/NAME.json, a copy of the first valid clip's metadata
        that is at least 720p with a caption on every window, pointing at it. Used by memory.rs
        (a 1 GiB sparse clip) and s3.rs (a 12 MiB clip, uploaded in parts).

    edit_input.py add-copies METAS N
        Adds N clips: copies of the valid metadata files under new span_uuids (same clips), as
        METAS/rNNNNN.json. Used by resume.rs.

    edit_input.py s3-clip-locations METAS URI
        Points every clip_location at URI/clips/<file name>. Used by s3.rs.

    edit_input.py recaption-one METAS
        Rewrites the first window's caption of the first valid clip (compact JSON). Used by s3.rs.

    edit_input.py make-v1 METAS
        Of the valid clips with a caption on their first window: the first two get new captions,
        the third is removed, the fourth turns portrait (another bin). Used by reshard.rs.

    edit_input.py summary-half ROOT
        Writes ROOT/summary.json listing every second metadata file's uuid under two videos,
        plus one clip without metadata and one (huge-meta) whose metadata file is over the 16 MiB
        guard; prints the listed uuids as JSON. Used by options.rs.

    edit_input.py dedup-tables DEDUP ID,ID,ID,ID
        Writes two semantic-dedup pruning tables under DEDUP/extraction/semdedup_pruning_tables
        (one in a subfolder): scores 0.0, 1.0 and 0.99 for the first three ids, 0.9899 for the
        fourth, and an id not in the dataset; plus a README.txt that is no table. Needs pyarrow.
        Used by options.rs.

    edit_input.py summary-and-dedup ROOT DEDUP
        Writes ROOT/summary.json naming every metadata file, and a pruning table under DEDUP that
        removes two valid clips; prints the number listed and the two removed uuids
        ("N a,b"). Needs pyarrow. Used by s3.rs.
"""
import json
import os
import random
import sys


def load(path):
    """The JSON in `path`, or None when it does not parse."""
    try:
        return json.load(open(path))
    except Exception:
        return None


def add_clip(root, name, size, content):
    size = int(size)
    metas = os.path.join(root, "metas/v0")
    for entry in sorted(os.listdir(metas)):
        m = load(os.path.join(metas, entry))
        if isinstance(m, dict) and m.get("valid") and min(m["width"], m["height"]) >= 720 \
                and m["windows"] and all(isinstance(w.get("qwen_caption"), str) for w in m["windows"]):
            break
    with open(os.path.join(root, f"clips/{name}.mp4"), "wb") as f:
        if content == "sparse":
            f.write(b"\0\0\0\x18ftypmp42")
            f.truncate(size)
        elif content == "random":
            f.write(random.Random(7).randbytes(size))
        else:
            sys.exit(f"add-clip: content is sparse or random, not {content!r}")
    m["span_uuid"] = name
    m["clip_location"] = m["clip_location"].rsplit("/", 1)[0] + f"/{name}.mp4"
    m["num_bytes"] = size
    open(os.path.join(metas, f"{name}.json"), "w").write(json.dumps(m, indent=4))


def add_copies(metas, n):
    n = int(n)
    src = []
    for name in sorted(os.listdir(metas)):
        m = load(os.path.join(metas, name))
        if isinstance(m, dict) and m.get("valid") is True and isinstance(m.get("span_uuid"), str):
            src.append(m)
    for i in range(n):
        m = dict(src[i % len(src)])
        m["span_uuid"] = "%s-%05d" % (m["span_uuid"], i)
        open(os.path.join(metas, "r%05d.json" % i), "w").write(json.dumps(m, indent=4))


def s3_clip_locations(metas, uri):
    paths = [os.path.join(d, f) for d, _, fs in os.walk(metas) for f in fs]
    for p in paths:
        try:
            m = json.load(open(p))
            m["clip_location"] = uri + "/clips/" + m["clip_location"].rsplit("/", 1)[1]
        except Exception:
            continue
        open(p, "w").write(json.dumps(m, indent=4))


def captioned(metas):
    """(file name, metadata) of the valid clips with a caption on their first window, in file
    name order (files that do not parse skipped)."""
    for name in sorted(os.listdir(metas)):
        try:
            m = json.load(open(os.path.join(metas, name)))
        except Exception:
            continue
        if m.get("valid") is True and m["windows"] and "qwen_caption" in m["windows"][0]:
            yield name, m


def recaption_one(metas):
    name, m = next(captioned(metas))
    m["windows"][0]["qwen_caption"] = "A caption rewritten for v1."
    open(os.path.join(metas, name), "w").write(json.dumps(m))


def make_v1(metas):
    names = list(captioned(metas))
    for i, (name, m) in enumerate(names[:2]):
        m["windows"][0]["qwen_caption"] = "A re-annotated caption, number %d." % i
        open(os.path.join(metas, name), "w").write(json.dumps(m, indent=4))
    os.remove(os.path.join(metas, names[2][0]))
    name, m = names[3]
    m["width"], m["height"] = m["height"], m["width"]
    open(os.path.join(metas, name), "w").write(json.dumps(m, indent=4))


def uuids(root):
    return sorted(n[:-5] for n in os.listdir(os.path.join(root, "metas/v0")) if n.endswith(".json"))


def summary_half(root):
    listed = uuids(root)[::2]
    summary = {"num_input_videos": 2,
               "v1.mp4": {"source_video": "v1.mp4", "clips": listed[:3], "filtered_clips": listed[3:4]},
               "v2.mp4": {"source_video": "v2.mp4", "clips": listed[3:] + ["no-such-clip", "huge-meta"]},
               "v3.mp4": {"source_video": "v3.mp4", "processed": False}}
    json.dump(summary, open(os.path.join(root, "summary.json"), "w"))
    with open(os.path.join(root, "metas/v0/huge-meta.json"), "wb") as f:
        f.truncate((16 << 20) + 1)
    print(json.dumps(listed))


def dedup_tables(root, ids):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = ids.split(",")
    tables = os.path.join(root, "extraction", "semdedup_pruning_tables")
    os.makedirs(os.path.join(tables, "more"), exist_ok=True)
    t1 = pa.table({"id": [ids[0], ids[1], ids[2]], "max_id": [ids[0]] * 3,
                   "cosine_sim_score": [0.0, 1.0, 0.99]})
    pq.write_table(t1, os.path.join(tables, "cluster_0.parquet"))
    t2 = pa.table({"id": [ids[3], "not-in-the-dataset"], "max_id": [ids[3]] * 2,
                   "cosine_sim_score": [0.9899, 1.0]})
    pq.write_table(t2, os.path.join(tables, "more", "cluster_1.PARQUET"))
    open(os.path.join(tables, "README.txt"), "w").write("not a table")


def summary_and_dedup(root, dedup):
    import pyarrow as pa
    import pyarrow.parquet as pq

    all_uuids = uuids(root)
    json.dump({"video.mp4": {"clips": all_uuids}}, open(os.path.join(root, "summary.json"), "w"))
    valid = []
    for u in all_uuids:
        try:
            m = json.load(open(os.path.join(root, "metas/v0", u + ".json")))
        except Exception:
            continue
        if m.get("valid") is True and m.get("span_uuid") == u:
            valid.append(u)
    tables = os.path.join(dedup, "extraction", "semdedup_pruning_tables")
    os.makedirs(tables)
    pq.write_table(pa.table({"id": valid[:3], "max_id": valid[:1] * 3,
                             "cosine_sim_score": [0.0, 0.999, 1.0]}),
                   os.path.join(tables, "cluster_0.parquet"))
    print(len(all_uuids), ",".join(valid[1:3]))


COMMANDS = {
    "add-clip": add_clip,
    "add-copies": add_copies,
    "s3-clip-locations": s3_clip_locations,
    "recaption-one": recaption_one,
    "make-v1": make_v1,
    "summary-half": summary_half,
    "dedup-tables": dedup_tables,
    "summary-and-dedup": summary_and_dedup,
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[argv[0]](*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
