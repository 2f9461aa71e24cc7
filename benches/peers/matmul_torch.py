#!/usr/bin/env python3
"""Python peer of benches/backend.rs: f32 `torch.matmul` throughput on the CPU, 2 threads.

The shapes are the Rust bench's (a square product and the Mult-VAE decoder step on ML-1M,
batch 500 x latent 600 x 3,308 items) and the two other products of a first encoder layer on
that data (its forward pass, 500 x 3,308 x 600, and its weight gradient, 3,308 x 500 x 600).
Prints the median and minimum of 20 products after 3 warm-up products, and GFLOP/s
(2*m*k*n per product), as criterion's "elem/s" on the Rust side.

Run (unset this machine's OpenBLAS tuning variables):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/matmul_torch.py
"""

import argparse
import time

import torch

SHAPES = [(1024, 1024, 1024), (500, 600, 3308), (500, 3308, 600), (3308, 500, 600)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {args.threads}")
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        times.sort()
        median = times[len(times) // 2]
        flop = 2 * m * k * n
        print(f"{m}x{k}x{n}: median {median * 1e3:.2f} ms ({flop / median / 1e9:.0f} GFLOP/s), min {times[0] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
