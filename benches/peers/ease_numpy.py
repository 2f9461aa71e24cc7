#!/usr/bin/env python3
"""numpy/scipy peer of the EASE fit in tears-baselines (`tears train ease --lambda L`).

Reads a split directory written by `tears prepare` (items.csv, train.csv), builds the binary
training matrix (rating > 3.5) and times the same steps as the Rust fit:

* gram:     G = XᵀX in float64 (scipy CSR product, densified);
* cholesky: P = (G + λI)⁻¹ by scipy.linalg.cho_factor + cho_solve against the identity;
* inv:      P = np.linalg.inv(G + λI) (the reference EASE code's way), timed separately;
* weights:  B = −P / diag(P) column-wise, zero diagonal (float64, then float32 as the Rust model stores).

Each step is repeated (--repeats) and the best time is printed. Run it with the OpenBLAS tuning
variables unset (they slow numpy on this machine):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/ease_numpy.py --split DIR --lam 500
"""

import argparse
import csv
import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp


def load_train(split_dir, positive_above=3.5):
    with open(f"{split_dir}/items.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        column = {int(row["item_id"]): int(row["index"]) for row in reader}
    users, items = {}, []
    rows = []
    with open(f"{split_dir}/train.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if float(row["rating"]) <= positive_above:
                continue
            u = users.setdefault(int(row["user_id"]), len(users))
            rows.append(u)
            items.append(column[int(row["item_id"])])
    n_items = len(column)
    x = sp.csr_matrix((np.ones(len(rows)), (rows, items)), shape=(len(users), n_items))
    x.data[:] = 1.0  # duplicate (user, item) pairs count once
    return x


def best_of(repeats, fn):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--lam", type=float, default=500.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    x = load_train(a.split)
    n = x.shape[1]
    print(f"{x.shape[0]} users x {n} items, {x.nnz} positives, lambda {a.lam}")

    t_gram, g = best_of(a.repeats, lambda: np.asarray((x.T @ x).toarray(), dtype=np.float64))
    diag = np.arange(n)

    def cholesky():
        gl = g.copy()
        gl[diag, diag] += a.lam
        c = scipy.linalg.cho_factor(gl, lower=True, overwrite_a=True, check_finite=False)
        return scipy.linalg.cho_solve(c, np.eye(n), overwrite_b=True, check_finite=False)

    def inverse():
        gl = g.copy()
        gl[diag, diag] += a.lam
        return np.linalg.inv(gl)

    t_chol, p = best_of(a.repeats, cholesky)
    t_inv, p_inv = best_of(a.repeats, inverse)

    def weights():
        b = p / (-np.diag(p))
        b[diag, diag] = 0.0
        return b.astype(np.float32)

    t_b, b = best_of(a.repeats, weights)
    assert np.allclose(p, p_inv, atol=1e-10), "cholesky and inv disagree"
    print(f"gram      {t_gram:8.3f} s")
    print(f"cholesky  {t_chol:8.3f} s   (cho_factor + cho_solve(I))")
    print(f"inv       {t_inv:8.3f} s   (np.linalg.inv)")
    print(f"weights   {t_b:8.3f} s")
    print(f"total (gram + cholesky + weights) {t_gram + t_chol + t_b:8.3f} s")
    print(f"total (gram + inv + weights)      {t_gram + t_inv + t_b:8.3f} s")
    print(f"checksum  sum(B) = {float(b.astype(np.float64).sum()):.6f}  B[0,1] = {float(b[0, 1]):.6e}")


if __name__ == "__main__":
    main()
