#!/usr/bin/env python3
"""Damages a copy of a shardflow output dataset in place, for the `verify` tests.

    damage_dataset.py KIND DATASET BIN     one kind of damage to the first tar triple of BIN
    damage_dataset.py scale-embeddings DATASET

KIND (the files are BIN/<stream>/part_000000/000000.*):
    truncated   the video tar cut to half its length
    missing     the t5_xxl tar removed
    order       the first two members of the metas tar swapped
    pickle      one t5_xxl member over 64 bytes replaced by garbage of the same size
    nan         every t5_xxl embedding replaced by NaNs (still a valid pickle)
    count       BIN/wdinfo.json's total_key_count one too high
    idx         a line appended to the video tar's DALI index

scale-embeddings: every embedding in every t5_xxl tar of DATASET becomes `a * 3 + 1` (still a
valid pickle, but not the model's output).

Rewritten tars keep their members' headers (sizes follow the new bytes), in GNU format.
Used by dataset_tools.rs.
"""
import glob
import io
import json
import os
import pickle
import sys
import tarfile


def rewrite(p, change):
    """Rewrites the tar at `p` with the members `change` returns, given its (TarInfo, bytes) list."""
    src = tarfile.open(p)
    members = change([(m, src.extractfile(m).read()) for m in src.getmembers()])
    with tarfile.open(p + ".new", "w", format=tarfile.GNU_FORMAT) as out:
        for m, data in members:
            m.size = len(data)
            out.addfile(m, io.BytesIO(data))
    os.replace(p + ".new", p)


def first(dataset, bin, stream, ext="tar"):
    return os.path.join(dataset, f"{bin}/{stream}/part_000000/000000.{ext}")


def truncated(dataset, bin):
    p = first(dataset, bin, "video")
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])


def missing(dataset, bin):
    os.remove(first(dataset, bin, "t5_xxl"))


def order(dataset, bin):
    def swap(members):
        assert len(members) >= 2
        return [members[1], members[0]] + members[2:]

    rewrite(first(dataset, bin, "metas"), swap)


def garble_pickle(dataset, bin):
    def garble(members):
        i = next(i for i, (m, d) in enumerate(members) if len(d) > 64)
        m, data = members[i]
        members[i] = (m, b"\x80\x04garbage" + bytes(len(data) - 9))
        return members

    rewrite(first(dataset, bin, "t5_xxl"), garble)


def nan(dataset, bin):
    import numpy as np

    def to_nan(members):
        return [(m, pickle.dumps([np.full_like(a, np.nan) for a in pickle.loads(d)], protocol=4))
                for m, d in members]

    rewrite(first(dataset, bin, "t5_xxl"), to_nan)


def count(dataset, bin):
    p = os.path.join(dataset, f"{bin}/wdinfo.json")
    d = json.load(open(p))
    d["total_key_count"] += 1
    with open(p, "w") as f:
        json.dump(d, f, indent=4)


def idx(dataset, bin):
    p = first(dataset, bin, "video", "idx")
    open(p, "a").write("mp4 512 1 x.mp4\n")


def scale_embeddings(dataset):
    def scale(members):
        return [(m, pickle.dumps([a * 3 + 1 for a in pickle.loads(d)], protocol=4))
                for m, d in members]

    for p in glob.glob(dataset + "/**/t5_xxl/**/*.tar", recursive=True):
        rewrite(p, scale)


KINDS = {
    "truncated": truncated,
    "missing": missing,
    "order": order,
    "pickle": garble_pickle,
    "nan": nan,
    "count": count,
    "idx": idx,
}


def main(argv):
    if len(argv) == 2 and argv[0] == "scale-embeddings":
        scale_embeddings(argv[1])
    elif len(argv) == 3 and argv[0] in KINDS:
        KINDS[argv[0]](argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
