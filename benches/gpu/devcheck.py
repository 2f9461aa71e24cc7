#!/usr/bin/env python3
"""Helpers of the GPU run (issue 18): random MiniLM-shaped weights, a summaries subset, vector
parity, and the per-epoch times of a `tears train --out DIR` run (its train_log.json)."""
import json, lzma, sys

def weights(d):
    # all-MiniLM-L6-v2's architecture and tokenizer with seeded random weights: the 90 MB
    # checkpoint cannot travel to the GPU machine, and the encoder's work does not depend on values.
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    m = BertModel(BertConfig.from_pretrained(d), add_pooling_layer=True).eval()
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    save_file(sd, f"{d}/model.safetensors", metadata={"format": "pt"})
    print(f"wrote {d}/model.safetensors: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} values")

def subset(src, out, n):
    with lzma.open(src, "rt", encoding="utf-8") as f:
        data = json.load(f)
    users = sorted(data, key=lambda k: int(float(k)))[: int(n)]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({u: data[u] for u in users}, f)
    print(f"wrote {out}: {len(users)} summaries")

def compare(a, b, label):
    import numpy as np
    x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    print(f"parity {label}: {x.shape[0]} vectors, cosine min {cos.min():.9f} mean {cos.mean():.9f}, "
          f"max |diff| {np.abs(x - y).max():.3e}")

def epochs(d, label):
    with open(f"{d}/train_log.json", encoding="utf-8") as f:
        h = json.load(f)
    print(f"{label}: train s per epoch " + " ".join(f"{e['train_seconds']:.3f}" for e in h)
          + " | validation s " + " ".join(f"{e['eval_seconds']:.3f}" for e in h))

if __name__ == "__main__":
    {"weights": weights, "subset": subset, "compare": compare, "epochs": epochs}[sys.argv[1]](*sys.argv[2:])
