#!/usr/bin/env python3
"""numpy peer of benches/metrics.rs: top-k with seen items masked + Recall@k + NDCG@k.

Same data as the Rust bench (a deterministic splitmix64 function of (user, item)), so both
print the same metric means (up to the order of tied scores, which numpy breaks arbitrarily).

Two evaluations are timed, on batches of users as in the Mult-VAE reference code
(Liang et al., "Variational Autoencoders for Collaborative Filtering", vae_cf notebook):

* `reference`: the reference code's two functions as written there (NDCG_binary_at_k_batch and
  Recall_at_k_batch, each with its own argpartition), held-out items as a scipy CSR matrix,
  seen items masked with X_pred[X.nonzero()] = -inf; np.argpartition instead of bottleneck's.
* `shared`: one argpartition + sort of the top k per batch, both metrics from it (the faster
  of the two: the peer the Rust speed-up is measured against).

Run it with the OpenBLAS tuning variables unset (they slow numpy on this machine):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/metrics_numpy.py
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp

M1 = np.uint64(0x9E3779B97F4A7C15)
M2 = np.uint64(0xBF58476D1CE4E5B9)
M3 = np.uint64(0x94D049BB133111EB)


def splitmix64(x):
    z = x + M1
    z = (z ^ (z >> np.uint64(30))) * M2
    z = (z ^ (z >> np.uint64(27))) * M3
    return z ^ (z >> np.uint64(31))


def make_scores(n_users, n_items, chunk=500):
    out = np.empty((n_users, n_items), dtype=np.float32)
    for s in range(0, n_users, chunk):
        e = min(s + chunk, n_users)
        x = np.arange(s * n_items, e * n_items, dtype=np.uint64)
        h = splitmix64(x) >> np.uint64(40)
        out[s:e] = (h.astype(np.float32) / np.float32(1 << 24)).reshape(e - s, n_items)
    return out


def make_lists(n_users, n_items, n_seen, n_heldout, candidates=128):
    x = np.uint64(1 << 40) + np.arange(n_users * candidates, dtype=np.uint64)
    cand = (splitmix64(x) % np.uint64(n_items)).astype(np.int64).reshape(n_users, candidates)
    seen, heldout = [], []
    for row in cand:
        _, first = np.unique(row, return_index=True)
        distinct = row[np.sort(first)][: n_seen + n_heldout]
        seen.append(distinct[:n_seen])
        heldout.append(distinct[n_seen:])
    return seen, heldout


def csr(lists, n_items):
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(l) for l in lists])
    indices = np.concatenate(lists)
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                         shape=(len(lists), n_items))


# --- the reference code (vae_cf), unchanged but for np.argpartition -------------------------

def NDCG_binary_at_k_batch(X_pred, heldout_batch, k=100):
    batch_users = X_pred.shape[0]
    idx_topk_part = np.argpartition(-X_pred, k, axis=1)
    topk_part = X_pred[np.arange(batch_users)[:, np.newaxis], idx_topk_part[:, :k]]
    idx_part = np.argsort(-topk_part, axis=1)
    idx_topk = idx_topk_part[np.arange(batch_users)[:, np.newaxis], idx_part]
    tp = 1. / np.log2(np.arange(2, k + 2))
    DCG = (heldout_batch[np.arange(batch_users)[:, np.newaxis], idx_topk].toarray() * tp).sum(axis=1)
    IDCG = np.array([(tp[:min(n, k)]).sum() for n in heldout_batch.getnnz(axis=1)])
    return DCG / IDCG


def Recall_at_k_batch(X_pred, heldout_batch, k=100):
    batch_users = X_pred.shape[0]
    idx = np.argpartition(-X_pred, k, axis=1)
    X_pred_binary = np.zeros_like(X_pred, dtype=bool)
    X_pred_binary[np.arange(batch_users)[:, np.newaxis], idx[:, :k]] = True
    X_true_binary = (heldout_batch > 0).toarray()
    tmp = (np.logical_and(X_true_binary, X_pred_binary).sum(axis=1)).astype(np.float32)
    recall = tmp / np.minimum(k, X_true_binary.sum(axis=1))
    return recall


def eval_reference(X, seen_csr, heldout_csr, k, batch):
    n100, r100 = [], []
    for s in range(0, X.shape[0], batch):
        e = min(s + batch, X.shape[0])
        X_pred = X[s:e]  # a view: masking is idempotent, so repeated runs see the same data
        X_pred[seen_csr[s:e].nonzero()] = -np.inf
        n100.append(NDCG_binary_at_k_batch(X_pred, heldout_csr[s:e], k))
        r100.append(Recall_at_k_batch(X_pred, heldout_csr[s:e], k))
    return np.concatenate(r100), np.concatenate(n100)


# --- one argpartition per batch, both metrics from it --------------------------------------

def eval_shared(X, seen_rows, seen_cols, heldout_dense, n_heldout, k, batch):
    tp = 1. / np.log2(np.arange(2, k + 2))
    idcg = np.concatenate([[0.0], np.cumsum(tp)])
    recall, ndcg = [], []
    for s in range(0, X.shape[0], batch):
        e = min(s + batch, X.shape[0])
        X_pred = X[s:e]
        sel = (seen_rows >= s) & (seen_rows < e)
        X_pred[seen_rows[sel] - s, seen_cols[sel]] = -np.inf
        rows = np.arange(e - s)[:, np.newaxis]
        idx_part = np.argpartition(-X_pred, k, axis=1)[:, :k]
        order = np.argsort(-X_pred[rows, idx_part], axis=1)
        idx_topk = idx_part[rows, order]
        hits = heldout_dense[s:e][rows, idx_topk]
        n = np.minimum(n_heldout[s:e], k)
        recall.append(hits.sum(axis=1) / n)
        ndcg.append((hits * tp).sum(axis=1) / idcg[n])
    return np.concatenate(recall), np.concatenate(ndcg)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seen", type=int, default=50)
    ap.add_argument("--heldout", type=int, default=20)
    ap.add_argument("--batch", type=int, default=500, help="users per batch (vae_cf: 500)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    X = make_scores(args.users, args.items)
    seen, heldout = make_lists(args.users, args.items, args.seen, args.heldout)
    seen_csr, heldout_csr = csr(seen, args.items), csr(heldout, args.items)
    seen_rows, seen_cols = seen_csr.nonzero()
    heldout_dense = heldout_csr.toarray() > 0
    n_heldout = np.array([len(h) for h in heldout])
    print(f"numpy {np.__version__}; data {args.users} x {args.items} f32 made in {time.perf_counter() - t0:.1f} s")

    for name, fn in [
        ("reference", lambda: eval_reference(X, seen_csr, heldout_csr, args.k, args.batch)),
        ("shared", lambda: eval_shared(X, seen_rows, seen_cols, heldout_dense, n_heldout, args.k, args.batch)),
    ]:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            recall, ndcg = fn()
            times.append(time.perf_counter() - t)
        best, med = min(times), sorted(times)[len(times) // 2]
        print(f"{name:9s} k={args.k} recall={recall.mean():.6f} ndcg={ndcg.mean():.6f} "
              f"time best={best:.3f} s median={med:.3f} s "
              f"-> {args.users / best:,.0f} users/s (best), {args.users / med:,.0f} users/s (median)")


if __name__ == "__main__":
    main()
