#!/usr/bin/env python3
"""DALI index of a webdataset tar, following NVIDIA DALI's tools/wds2idx.py (format v1.2, its
tarfile code path): regular members only; key = name up to the first dot after the last '/',
extension = the rest; hidden files skipped; consecutive members with one key form a sample;
offsets are data offsets. Writes the index text to stdout.

    wds2idx_ref.py TAR
"""
import sys
import tarfile


def index(path):
    samples = []
    last = None
    with tarfile.open(path) as t:
        for m in t:
            if m.type != tarfile.REGTYPE:
                continue
            name = m.name
            dot = name.find(".", name.rfind("/") + 1)
            key, ext = name[:dot], name[dot + 1:]
            if not key or key.endswith("/"):
                continue
            comp = (ext, m.offset_data, m.size, name)
            if key != last:
                samples.append([comp])
                last = key
            else:
                samples[-1].append(comp)
    out = "v1.2 %d\n" % len(samples)
    for s in samples:
        out += " ".join(" ".join(map(str, c)) for c in s) + "\n"
    return out


if __name__ == "__main__":
    sys.stdout.write(index(sys.argv[1]))
