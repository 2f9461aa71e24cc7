#!/usr/bin/env python3
"""Python peer of benches/ot.rs: POT's `ot.bregman.sinkhorn_log` on the same problem sizes.

Same problem definition as the Rust bench: x ~ N(0, I), y ~ N(0.5, I) (float64 numpy, as POT
uses), squared-Euclidean cost (`ot.dist`), uniform weights, eps = factor x median cost, stopping
threshold `stopThr` (POT checks the L2 norm of the column-marginal error every 10 iterations;
the Rust solver checks the L1 norm, which is >= the L2 norm, so the Rust stopping rule is the
stricter one), numItermax = 1000.

Run (unset the OpenBLAS tuning variables of this machine for numpy):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/ot_pot.py
Prints one line per case: n, d, eps factor, median ms per solve, iterations, cost and value.
"""

import argparse
import time

import numpy as np
import ot


def solve(x, y, eps_rel, tol, max_iter):
    n, m = x.shape[0], y.shape[0]
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    t0 = time.perf_counter()
    cost = ot.dist(x, y)  # squared Euclidean
    eps = eps_rel * np.median(cost)
    plan, log = ot.bregman.sinkhorn_log(a, b, cost, eps, numItermax=max_iter, stopThr=tol, log=True)
    transport = float((plan * cost).sum())
    value = float(np.dot(a, log["log_u"]) * eps + np.dot(b, log["log_v"]) * eps)
    elapsed = time.perf_counter() - t0
    return elapsed, int(log["niter"]), transport, value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256,1024,4096")
    parser.add_argument("--dims", default="64,400")
    parser.add_argument("--eps", default="0.05,0.01")
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="skip repeats beyond this")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"POT {ot.__version__}, numpy {np.__version__}")
    print("n\td\teps_rel\tms_per_solve\titers\ttransport_cost")
    for d in [int(v) for v in args.dims.split(",")]:
        for n in [int(v) for v in args.sizes.split(",")]:
            x = rng.standard_normal((n, d))
            y = rng.standard_normal((n, d)) + 0.5
            for eps_rel in [float(v) for v in args.eps.split(",")]:
                times = []
                for _ in range(args.reps):
                    elapsed, iters, transport, _ = solve(x, y, eps_rel, args.tol, args.max_iter)
                    times.append(elapsed)
                    if sum(times) > args.max_seconds:
                        break
                ms = 1e3 * float(np.median(times))
                print(f"{n}\t{d}\t{eps_rel}\t{ms:.1f}\t{iters}\t{transport:.6g}", flush=True)


if __name__ == "__main__":
    main()
