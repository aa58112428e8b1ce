#!/usr/bin/env python3
"""The duration bins of SPEC §3, written out independently of shardflow: which valid clips of a
metadata folder land in which `resolution_*/aspect_ratio_*/duration_*` bin.

    duration_bins.py METAS_DIR

Prints a JSON object (sorted keys): bin path -> span_uuids in file name order. Clips that are
invalid, do not parse, have no positive framerate or fall in no bin are left out.
Used by options.rs.
"""
import json
import os
import sys


def main(metas):
    bins = {}
    for name in sorted(os.listdir(metas)):
        try:
            m = json.load(open(os.path.join(metas, name)))
        except Exception:
            continue
        if not isinstance(m, dict) or m.get("valid") is not True:
            continue
        w, h, n, fps = m["width"], m["height"], m["num_frames"], m["framerate"]
        if not (isinstance(fps, (int, float)) and fps > 0):
            continue
        short = min(w, h)
        res = "1080" if short >= 1080 else "720" if short >= 720 else "lt_720"
        r = w / h
        asp = None
        for lo, hi, a in [(0, .65, "9_16"), (.65, .88, "3_4"), (.88, 1.16, "1_1"), (1.16, 1.55, "4_3"),
                          (1.55, 10, "16_9")]:
            if lo < r <= hi:
                asp = a
                break
        d = n / fps
        dur = "5_10" if 5 <= d <= 10 else "10_30" if 10 <= d <= 30 else "30_inf" if d >= 30 else None
        if asp is None or dur is None:
            continue
        bins.setdefault(f"resolution_{res}/aspect_ratio_{asp}/duration_{dur}", []).append(m["span_uuid"])
    print(json.dumps(bins, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
