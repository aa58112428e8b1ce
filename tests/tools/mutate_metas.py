#!/usr/bin/env python3
"""Edge cases for the oracle test: rewrites metas/v0/ of a `make_dataset.py generate --size random`
dataset (40 clips), keeping `json.dumps(indent=4)` formatting.

    mutate_metas.py DATASET SEED [relative] [algo=NAME]

SEED picks which clips get which edge case: unknown keys with NaN/Infinity spellings, bin
boundaries, exact tar-size boundaries (0.0625 MiB), invalid clips and missing captions, long,
non-ASCII, astral and Python-whitespace captions, and file names that trap listing order.
`relative` makes every clip_location relative (clips/NAME); `algo=NAME` adds a NAME_caption to
every window. Used by oracle.rs.
"""
import json, random, sys
from pathlib import Path

# argv: DATASET SEED [flags]; flags: relative | algo=NAME
d = Path(sys.argv[1])
seed = int(sys.argv[2])
flags = sys.argv[3:]
algo = next((f.split("=", 1)[1] for f in flags if f.startswith("algo=")), None)
rng = random.Random(seed * 1000003 + 17)
base = d / "metas" / "v0"
files = sorted(p for p in base.rglob("*") if p.is_file())
metas = [json.loads(p.read_text()) for p in files]
for p in files:
    p.unlink()
order = list(range(len(metas)))
rng.shuffle(order)
pick = iter(order)

WORDS = ("camera pans across street people walk cars drive buildings sky trees wind birds robot arm picks "
         "red cube blue bin kitchen chef vegetables dog beach waves rocks drone mountains river night city").split()


def words(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


SPECIAL = [
    "A" + " " + words(900) + ".",                                       # > 512 tokens
    "x" * 3000,                                                         # one huge word
    "雪の中を走る犬と、遠くに見える山々。" * 40,                          # CJK, > 512 tokens of <unk>s
    "Emoji 😀 🚗💨 🐕‍🦺 🇩🇪 and astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 🀄 \U0010fffd end.",
    "\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000 Python strips all of these. \t\n\x0b\x0c\r\x1f\x85",
    "\u200b zero width space and BOM are not whitespace \ufeff",
    "",
    "   \n\t  ",
    "Special tokens </s> inside <pad> and <extra_id_5> and <unk> text.",
    "Combining e\u0301 n\u0303, NFKC ﬁ ① ½ Ⅻ ＦＵＬＬ ｗｉｄｔｈ, Ångström.",
    "مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก Ελληνικά Кошка.",
    "Controls \x00 \x01 \x7f \x1b[0m and \\ backslash \"quotes\" / slash.",
    "  Une caméra suit un cycliste à travers la forêt enneigée.  ",
]

# 1. unknown keys with Python-only float spellings, inserted in the middle of the object
EXTRA = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "neg_zero": -0.0, "big": 1e16,
         "tiny": 1e-05, "third": 1 / 3, "small": 2.5e-300, "denorm": 5e-324, "int_big": 2 ** 64 + 1,
         "neg_int": -7, "nested": [[], {}, [1, 2.0, "x", None, True, False]], "ключ": "значение 😀"}
for _ in range(3):
    i = next(pick)
    m2 = {}
    for k, v in metas[i].items():
        m2[k] = v
        if k == "video_codec":
            m2["extra_fields"] = EXTRA
    m2["zz_after_valid"] = {"a": 1.5, "b": [0.1, 1e100]}
    metas[i] = m2

# 2. bin boundaries (metadata only; bins never look at the mp4)
BOUNDS = [(780, 1200, 10), (782, 1200, 20), (880, 1000, 120), (882, 1000, 121), (1160, 1000, 255),
          (1162, 1000, 256), (1674, 1080, 1023), (1242, 800, 1024), (7200, 720, 0), (7220, 720, 50),
          (1276, 718, 50), (1916, 1078, 100000), (1080, 1920, 121), (2560, 1080, 130)]
for w, h, n in BOUNDS:
    m = metas[next(pick)]
    m["width"], m["height"], m["num_frames"] = w, h, n

# 3. exact tar-size boundaries at 0.0625 MiB = 65536 bytes, in bins of their own
for (w, h), sizes in (((1080, 1080), (40000, 25536)), ((1440, 1080), (40000, 25537))):
    for nb in sizes:
        m = metas[next(pick)]
        m["width"], m["height"], m["num_frames"], m["num_bytes"] = w, h, 60, nb
metas[next(pick)]["num_bytes"] = 10 ** 6             # larger than the small target: a tar of its own
metas[next(pick)]["num_bytes"] = 600 * 1024 * 1024   # larger than the default target

# 4. invalid clips and missing captions (last window only; the reference crashes otherwise):
#    one single-window clip (pickle of []) and one multi-window clip
for _ in range(2):
    metas[next(pick)]["valid"] = False
rest = list(pick)
for want in (lambda n: n == 1, lambda n: n > 1):
    i = next(j for j in rest if want(len(metas[j]["windows"])))
    rest.remove(i)
    metas[i]["windows"][-1].pop("qwen_caption", None)
pick = iter(rest)

# 5. captions: every special caption once, on windows of clips that are written with their captions
wins = [(i, w) for i in rest for w in metas[i]["windows"] if "qwen_caption" in w]
rng.shuffle(wins)
assert len(wins) >= len(SPECIAL), len(wins)
for (i, w), cap in zip(wins, SPECIAL):
    w["qwen_caption"] = cap

# 6. another captioning algorithm
if algo:
    key = f"{algo}_caption"
    for m in metas:
        for w in m["windows"]:
            nw = {}
            for k, v in w.items():
                nw[k] = v
                if k == "qwen_caption":
                    nw[key] = f"{algo} says: " + " ".join(v.split()[:40][::-1])
            w.clear()
            w.update(nw)
    metas[next(pick)]["windows"][-1].pop(key, None)

# 7. relative clip locations
if "relative" in flags:
    for m in metas:
        m["clip_location"] = "clips/" + m["clip_location"].rsplit("/", 1)[1]

# 8. file names: flat, nested, sort-order traps, odd extensions, hidden file, junk
names = {i: f"{m['span_uuid']}.json" for i, m in enumerate(metas)}
a, b, c, e, f, g, h = (next(pick) for _ in range(7))
names[a] = f"{metas[b]['span_uuid'][:8]}/{metas[a]['span_uuid']}.json"   # dir = 8-hex prefix of b ('-' < '/')
names[c] = f"{metas[e]['span_uuid']}/{metas[c]['span_uuid']}.json"       # dir = stem of e ('.' < '/')
names[f] = f"deep/er/{metas[f]['span_uuid']}"                              # no extension
names[g] = f"{metas[g]['span_uuid']}.txt"                                  # every file counts
names[h] = f".{metas[h]['span_uuid']}.json"                                # hidden file
for i, m in enumerate(metas):
    p = base / names[i]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(m, indent=4))
(base / "zz_corrupt.json").write_text('{"span_uuid": "broken", ')
(base / "zz_array.json").write_text("[1, 2, 3]")
print(f"mutated {len(metas)} metas in {d}")
