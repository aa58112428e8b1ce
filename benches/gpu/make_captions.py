#!/usr/bin/env python3
"""Realistic caption mix for encode benchmarks: 20–300 words, plus ~5% over 512 tokens.

    make_captions.py OUT.json [--count 2000] [--seed 0]"""
import argparse
import json
import random

WORDS = ("the a video shows camera slowly pans across busy city street at night with neon lights "
         "reflecting on wet asphalt while people walk under umbrellas and cars drive past a red bus "
         "stops near corner cafe where chef prepares food in kitchen drone footage of mountains forest "
         "river waterfall sunset warm golden light children play football in park dog runs after ball "
         "close-up of hands typing on keyboard office workers meeting room whiteboard charts").split()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    caps = []
    for _ in range(a.count):
        n = rng.randint(600, 900) if rng.random() < 0.05 else rng.randint(20, 300)
        words = [rng.choice(WORDS) for _ in range(n)]
        caps.append(" ".join(words).capitalize() + ".")
    json.dump(caps, open(a.out, "w"))


if __name__ == "__main__":
    main()
