#!/usr/bin/env python3
"""Reads a shardflow output dataset back with Python's own readers, independently of shardflow.
Each sub-command fails (an assertion) on what it checks and prints one line.

    read_dataset.py readers VERSION_DIR
        Every bin's tar triples (video, t5_xxl, metas) hold the same keys in the same order; with
        webdataset, every embedding pickle loads (pickle + numpy) as float16 arrays of 16 columns,
        every metas json names its key as span_uuid, every mp4 starts with an ftyp box, and each
        bin holds wdinfo.json's total_key_count samples. Prints the number of samples. Needs
        numpy and webdataset. Used by cli.rs.

    read_dataset.py wids-indexes VERSION_DIR
        Every shardindex.json is a wids v1 index listing each tar of its stream folder (sorted
        relative urls) with its file size and sample count. Prints how many indexes there are.
        Used by dataset_tools.rs.

    read_dataset.py wdinfo-totals OUTPUT_VERSION_DIR BASE
        Every wdinfo.json listed in wdinfo_list.csv (relative paths from BASE) counts the members
        of its video tars and lists them sorted. Prints the total count. Used by reshard.rs.

    read_dataset.py member-sizes VERSION_DIR NAME
        The size of every member NAME in the video tars, one a line. Used by memory.rs.

    read_dataset.py clip-location TAR
        The clip_location of the first member of a metas tar. Used by s3.rs.

    read_dataset.py metas-keys VERSION_DIR
        The keys of every metas tar's members, sorted, comma-separated. Used by s3.rs.
"""
import csv
import glob
import json
import os
import pickle
import sys
import tarfile


def readers(root):
    import numpy as np
    import webdataset as wds

    n = 0
    for info in sorted(glob.glob(os.path.join(root, "**/wdinfo.json"), recursive=True)):
        bindir = os.path.dirname(info)
        wd = json.load(open(info))
        count = 0
        for rel in wd["data_list"]:
            urls = [os.path.join(bindir, k, rel) for k in wd["data_keys"]]
            names = None
            for u in urls:
                with tarfile.open(u) as t:
                    ms = [m.name.split(".")[0] for m in t.getmembers()]
                    assert names is None or names == ms, (u, names, ms)
                    names = ms
            for s in wds.WebDataset(urls[1], shardshuffle=False, empty_check=False):
                arrs = pickle.loads(s["pickle"])
                assert all(a.dtype == np.float16 and a.ndim == 2 and a.shape[1] == 16 for a in arrs)
                count += 1
            for s in wds.WebDataset(urls[2], shardshuffle=False, empty_check=False):
                meta = json.loads(s["json"])
                assert meta["span_uuid"] == s["__key__"]
            for s in wds.WebDataset(urls[0], shardshuffle=False, empty_check=False):
                assert s["mp4"][4:8] == b"ftyp"
        assert count == wd["total_key_count"], (info, count)
        n += count
    print(n)


def wids_indexes(root):
    n = 0
    for idx in glob.glob(root + "/**/shardindex.json", recursive=True):
        d = json.load(open(idx))
        assert d["__kind__"] == "wids-shard-index-v1" and d["wids_version"] == 1
        here = os.path.dirname(idx)
        urls = sorted(os.path.relpath(p, here) for p in glob.glob(here + "/part_*/*.tar"))
        assert [s["url"] for s in d["shardlist"]] == urls, (idx, urls)
        for s in d["shardlist"]:
            p = os.path.join(here, s["url"])
            assert s["filesize"] == os.path.getsize(p)
            keys = [m.name.split(".")[0] for m in tarfile.open(p)]
            assert s["nsamples"] == len(keys)
        n += 1
    print(n)


def wdinfo_totals(out, base):
    def at_base(path):
        return path if os.path.isabs(path) else os.path.join(base, path)

    rows = list(csv.reader(open(os.path.join(out, "wdinfo_list.csv"))))
    total = 0
    for (path,) in rows:
        info = json.load(open(at_base(path)))
        n = 0
        for rel in info["data_list"]:
            with tarfile.open(os.path.join(at_base(info["root"]), "video", rel)) as t:
                n += len(t.getnames())
        assert n == info["total_key_count"], (path, n, info["total_key_count"])
        assert info["data_list"] == sorted(info["data_list"])
        total += n
    print(total)


def member_sizes(root, name):
    for p in glob.glob(root + "/**/video/**/*.tar", recursive=True):
        for m in tarfile.open(p):
            if m.name == name:
                print(m.size)


def clip_location(tar):
    t = tarfile.open(tar)
    m = t.getmembers()[0]
    print(json.load(t.extractfile(m))["clip_location"])


def metas_keys(root):
    names = []
    for t in glob.glob(root + "/**/metas/**/*.tar", recursive=True):
        names += [n[:-5] for n in tarfile.open(t).getnames()]
    print(",".join(sorted(names)))


COMMANDS = {
    "readers": readers,
    "wids-indexes": wids_indexes,
    "wdinfo-totals": wdinfo_totals,
    "member-sizes": member_sizes,
    "clip-location": clip_location,
    "metas-keys": metas_keys,
}


def main(argv):
    if not argv or argv[0] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[argv[0]](*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
