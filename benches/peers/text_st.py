#!/usr/bin/env python3
"""Python peer of benches/text.rs: sentence-transformers on PyTorch (CPU, or a CUDA GPU with
`--device cuda`), same model, same texts.

Reads the shipped ML-1M GPT-4 summaries (a JSON object user id -> text, xz-compressed), takes
the same texts as the Rust bench (users in ascending id order; the first --limit of them, or
all), and times `SentenceTransformer.encode` with the same batch size, mean pooling and L2
normalisation, on 2 threads (`torch.set_num_threads(2)`). sentence-transformers sorts the
texts by length before batching, as tears-text does. Truncation: 256 tokens (the model's
max_seq_length), as tears-text.

Run (offline; unset this machine's OpenBLAS tuning variables for numpy):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE HF_HUB_OFFLINE=1 python3 benches/peers/text_st.py --limit 64
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE HF_HUB_OFFLINE=1 python3 benches/peers/text_st.py --limit 0
Prints the texts, tokens, the best and median seconds of --reps runs, summaries per second and
the first values of the first embedding (to compare with the Rust side).
"""

import argparse
import json
import lzma
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_SUMMARIES = os.path.join(
    ROOT, "..", "shared", "data", "summaries", "ml-1m", "user_summary_gpt4_all6016users_2023-12-12.json.xz"
)
DEFAULT_MODEL = os.path.join(ROOT, "..", "shared", "models", "all-MiniLM-L6-v2")


def load_texts(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    users = sorted(data, key=lambda k: int(float(k)))
    return [data[u] for u in users]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--summaries", default=DEFAULT_SUMMARIES)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--limit", type=int, default=64, help="first N summaries; 0 = all")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, or cuda for an NVIDIA GPU")
    p.add_argument("--save", default=None, help="also write the embeddings (float32 .npy, input order)")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    texts = load_texts(args.summaries)
    if args.limit > 0:
        texts = texts[: args.limit]
    model = SentenceTransformer(args.model, device=args.device)
    model.max_seq_length = 256
    tokens = [len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, {len(texts)} summaries, "
        f"{sum(tokens) / len(tokens):.1f} tokens on average (max {max(tokens)}), batch {args.batch_size}"
    )
    model.encode(texts[: args.batch_size], batch_size=args.batch_size, normalize_embeddings=True)  # warm-up
    times = []
    emb = None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        with torch.inference_mode():
            emb = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    print(f"seconds: best {best:.3f}, median {median:.3f} over {len(times)} runs")
    print(f"summaries/s: best {len(texts) / best:.2f}, median {len(texts) / median:.2f}")
    print("first embedding starts", [round(float(x), 5) for x in emb[0][:6]])
    if args.save:
        np.save(args.save, np.asarray(emb, dtype=np.float32))
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
