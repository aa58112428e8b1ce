#!/usr/bin/env python3
"""HF transformers T5 (or UMT5, by the model's `model_type`) encoder throughput on one device, the reference's way (every caption
padded to 512, fp32) and without padding (length-sorted batches).

    hf_encode.py MODEL_DIR CAPTIONS.json [--device cuda] [--batch 64] [--dtype fp32|bf16|fp16] [--mode padded|sorted]

Prints one JSON line: captions, tokens (real, </s> included), encode_seconds, tokens_per_s."""
import argparse
import json
import time

import torch
from transformers import T5EncoderModel, T5TokenizerFast, UMT5EncoderModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("captions")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--mode", default="padded", choices=["padded", "sorted"])
    a = ap.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype]
    tok = T5TokenizerFast.from_pretrained(a.model, model_max_length=512)
    umt5 = json.load(open(f"{a.model}/config.json")).get("model_type") == "umt5"
    cls = UMT5EncoderModel if umt5 else T5EncoderModel
    model = cls.from_pretrained(a.model, dtype=dtype).to(a.device).eval()
    caps = [c.strip() for c in json.load(open(a.captions))]
    lengths = [len(x) for x in tok(caps, truncation=True, max_length=512)["input_ids"]]
    order = list(range(len(caps)))
    if a.mode == "sorted":
        order.sort(key=lambda i: lengths[i])
    batches = [order[i:i + a.batch] for i in range(0, len(order), a.batch)]

    def run() -> float:
        torch.cuda.synchronize() if a.device.startswith("cuda") else None
        t = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                enc = tok([caps[i] for i in b], return_tensors="pt", truncation=True, max_length=512,
                          padding="max_length" if a.mode == "padded" else "longest").to(a.device)
                model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t

    run()  # warm-up
    secs = min(run() for _ in range(2))
    tokens = sum(lengths)
    print(json.dumps({"impl": f"hf-{a.mode}-{a.dtype}", "captions": len(caps), "tokens": tokens,
                      "encode_seconds": secs, "captions_per_s": len(caps) / secs, "tokens_per_s": tokens / secs}))


if __name__ == "__main__":
    main()
