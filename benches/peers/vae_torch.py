#!/usr/bin/env python3
"""PyTorch peer of the tears-vae backbones: Mult-DAE, Mult-VAE, RecVAE and MacridVAE (CPU, or a CUDA
GPU with `--device cuda`: the models and each densified mini-batch on the GPU, the timers after
torch.cuda.synchronize).

The models follow ../shared/spec/backbones.md (layer sizes, activations, initialisation, losses,
annealing, optimisers), the metrics follow metrics.md, and the data is a split directory written by
`tears prepare` (items.csv, train.csv, {validation,test}_{foldin,heldout}.csv; positive = rating > 3.5,
items outside items.csv ignored). Mini-batches (500 users, reshuffled every pass) are densified one at
a time from a scipy CSR matrix; the whole dense user x item matrix is never built.

Two modes:

* `--bench`: wall time of one training epoch per model on the split's training users: one warm-up
  epoch, then the median and minimum of `--repeats` epochs, with torch.set_num_threads(--threads).
  An epoch includes building the dense mini-batches. RecVAE's epoch is its full outer epoch: 3 encoder
  passes + refreshing the frozen prior encoder + 1 decoder pass. Peak RSS is printed at the end.
* `--train`: train each model for the spec's epochs (or `--epochs`), evaluate validation NDCG@100 after
  every epoch, keep the best epoch's weights and report its test Recall@20/NDCG@20/Recall@50/NDCG@50
  (normalised recall; mean +- standard error over test users with a non-empty held-out set).

Run it with the OpenBLAS tuning variables of this machine unset (they slow numpy here):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/vae_torch.py \
        --bench --split splits/ml1m-gpt4 [--models multdae,multvae,recvae,macridvae] [--json F]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/vae_torch.py \
        --train --split splits/ml100k [--epochs 100 | --epochs multvae=100,recvae=30] [--json F]

Implementation choices that the spec leaves open (the Rust side should match them for timings):
* Glorot = xavier_uniform; "biases N(0, 0.001)" = standard deviation 0.001; LayerNorm affine params
  start at 1 / 0 (they are not "biases" of a dense layer).
* RecVAE: the frozen prior encoder starts as a copy of the initial encoder. During encoder passes the
  decoder gets no gradients; during the decoder pass the encoder runs under no_grad and the KL term
  (constant in the decoder parameters) is skipped; z is still sampled (training mode).
* MacridVAE: the I -> d and d -> 2d layers are shared by the K concepts (independent dropout masks
  per concept); concepts are computed batched as a K x B x I tensor.
* beta / annealing counters use the number of updates done *before* the current one (first beta = 0).
"""

import argparse
import copy
import csv
import json
import math
import os
import resource
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ("multdae", "multvae", "recvae", "macridvae")
SPEC_EPOCHS = {"multdae": 200, "multvae": 200, "recvae": 50, "macridvae": 100}
LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def load_vocab(split):
    with open(os.path.join(split, "items.csv"), newline="", encoding="utf-8") as f:
        return {int(r["item_id"]): int(r["index"]) for r in csv.DictReader(f)}


def read_events(path, vocab):
    """(user_id, item index, rating) rows of one split file, items outside the vocabulary dropped."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            col = vocab.get(int(r["item_id"]))
            if col is not None:
                out.append((int(r["user_id"]), col, float(r["rating"])))
    return out


def binary_csr(rows, cols, n_rows, n_items):
    x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                                                              np.asarray(cols, dtype=np.int64))),
                      shape=(n_rows, n_items), dtype=np.float32)
    x.sum_duplicates()
    x.data[:] = 1.0  # a repeated (user, item) pair counts once
    return x


def load_train(split, vocab, positive_above):
    users, rows, cols = {}, [], []
    for u, i, r in read_events(os.path.join(split, "train.csv"), vocab):
        if r > positive_above:
            rows.append(users.setdefault(u, len(users)))
            cols.append(i)
    return binary_csr(rows, cols, len(users), len(vocab))


class EvalSet:
    """Fold-in positives (model input), fold-in items of any rating (masked as seen), held-out positives."""

    def __init__(self, split, name, vocab, positive_above):
        n_items = len(vocab)
        foldin = read_events(os.path.join(split, f"{name}_foldin.csv"), vocab)
        heldout = read_events(os.path.join(split, f"{name}_heldout.csv"), vocab)
        order = {}
        for u, _, _ in foldin + heldout:
            order.setdefault(u, len(order))
        n = len(order)
        pos_in = [(order[u], i) for u, i, r in foldin if r > positive_above]
        seen = [(order[u], i) for u, i, _ in foldin]
        pos_out = [(order[u], i) for u, i, r in heldout if r > positive_above]
        x_in = binary_csr([a for a, _ in pos_in], [b for _, b in pos_in], n, n_items)
        x_seen = binary_csr([a for a, _ in seen], [b for _, b in seen], n, n_items)
        x_out = binary_csr([a for a, _ in pos_out], [b for _, b in pos_out], n, n_items)
        keep = np.flatnonzero(x_out.getnnz(axis=1) > 0)
        self.excluded = n - len(keep)
        self.x_in, self.x_seen, self.x_out = x_in[keep], x_seen[keep], x_out[keep]
        self.n_users = len(keep)


def batches(n_rows, batch_size, rng=None):
    idx = rng.permutation(n_rows) if rng is not None else np.arange(n_rows)
    for s in range(0, n_rows, batch_size):
        yield idx[s:s + batch_size]


# Where the models and the mini-batches live (`--device`); the CSR matrices stay on the host.
DEVICE = torch.device("cpu")


def set_device(name):
    """Puts the models and mini-batches on `name` ("cpu", "cuda", "cuda:1", ...)."""
    global DEVICE
    DEVICE = torch.device(name)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device {name}: torch {torch.__version__} sees no CUDA device")


def sync():
    """Waits for the device's queued work, so that a wall-clock timer covers it."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def dense_rows(x_csr, idx):
    return torch.from_numpy(x_csr[idx].toarray()).to(DEVICE, non_blocking=True)


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

def dense(n_in, n_out):
    """Linear layer with Glorot (uniform) weights and N(0, 0.001^2) biases."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.normal_(layer.bias, 0.0, 0.001)
    return layer


def l2_normalise(x):
    """Per-user L2 normalisation of the input rows, 1e-10 added to the norm."""
    return x / (x.norm(dim=-1, keepdim=True) + 1e-10)


def multinomial_nll(log_probs, x):
    """-(sum over items of x * log_softmax(logits)), mean over the batch."""
    return -(log_probs * x).sum(dim=-1).mean()


def log_normal(z, mu, logvar):
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


class MultDAE(nn.Module):
    """I -> 200 (tanh) -> I, input dropout 0.5, L2 penalty 2e-5 * sum ||W||^2, Adam 1e-3."""

    def __init__(self, n_items, hidden=200, dropout=0.5, lam=2e-5, lr=1e-3):
        super().__init__()
        self.enc, self.dec = dense(n_items, hidden), dense(hidden, n_items)
        self.dropout, self.lam = dropout, lam
        self.opt = torch.optim.Adam(self.parameters(), lr=lr)

    def logits(self, x, p_drop=0.0):
        h = F.dropout(l2_normalise(x), p=p_drop, training=p_drop > 0)
        return self.dec(torch.tanh(self.enc(h)))

    def train_epoch(self, x_csr, batch_size, rng):
        self.train()
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            loss = multinomial_nll(F.log_softmax(self.logits(x, self.dropout), dim=-1), x)
            loss = loss + self.lam * (self.enc.weight.pow(2).sum() + self.dec.weight.pow(2).sum())
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(idx)
        return total / x_csr.shape[0]

    @torch.no_grad()
    def scores(self, x):
        self.eval()
        return self.logits(x)


class MultVAE(nn.Module):
    """I -> 600 (tanh) -> (mu, logvar) 200; z -> 600 (tanh) -> I. beta = min(0.2, updates / 200000)."""

    def __init__(self, n_items, hidden=600, latent=200, dropout=0.5, lr=1e-3,
                 beta_cap=0.2, anneal_steps=200_000):
        super().__init__()
        self.enc1, self.enc_mu, self.enc_logvar = dense(n_items, hidden), dense(hidden, latent), dense(hidden, latent)
        self.dec1, self.dec2 = dense(latent, hidden), dense(hidden, n_items)
        self.dropout, self.beta_cap, self.anneal_steps = dropout, beta_cap, anneal_steps
        self.updates = 0
        self.opt = torch.optim.Adam(self.parameters(), lr=lr)

    def encode(self, x, p_drop=0.0):
        h = torch.tanh(self.enc1(F.dropout(l2_normalise(x), p=p_drop, training=p_drop > 0)))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):
        return self.dec2(torch.tanh(self.dec1(z)))

    def train_epoch(self, x_csr, batch_size, rng):
        self.train()
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            mu, logvar = self.encode(x, self.dropout)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            nll = multinomial_nll(F.log_softmax(self.decode(z), dim=-1), x)
            kl = (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0)).sum(dim=-1).mean()
            beta = min(self.beta_cap, self.updates / self.anneal_steps)
            loss = nll + beta * kl
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.updates += 1
            total += loss.item() * len(idx)
        return total / x_csr.shape[0]

    @torch.no_grad()
    def scores(self, x):
        self.eval()
        return self.decode(self.encode(x)[0])


class RecVAEEncoder(nn.Module):
    """Five densely connected swish + LayerNorm(eps 0.1) layers of 600, then linear mu / logvar (200)."""

    def __init__(self, n_items, hidden=600, latent=200, layers=5):
        super().__init__()
        self.fcs = nn.ModuleList([dense(n_items, hidden)] + [dense(hidden, hidden) for _ in range(layers - 1)])
        self.lns = nn.ModuleList([nn.LayerNorm(hidden, eps=0.1) for _ in range(layers)])
        self.mu, self.logvar = dense(hidden, latent), dense(hidden, latent)

    def forward(self, x, p_drop=0.0):
        h = F.dropout(l2_normalise(x), p=p_drop, training=p_drop > 0)
        h = self.lns[0](F.silu(self.fcs[0](h)))
        acc = h  # h_1 + ... + h_{k-1}
        for fc, ln in zip(self.fcs[1:], self.lns[1:]):
            h = ln(F.silu(fc(h) + acc))
            acc = acc + h
        return self.mu(h), self.logvar(h)


class RecVAE(nn.Module):
    """RecVAE: composite prior 0.15 N(0,1) + 0.75 N(mu_old, sigma_old^2) + 0.10 N(0, e^10),
    MC KL weighted by gamma * |x_u|, alternating 3 encoder passes (dropout 0.5) / 1 decoder pass."""

    MIX = (0.15, 0.75, 0.10)

    def __init__(self, n_items, hidden=600, latent=200, dropout=0.5, gamma=0.005, lr=5e-4,
                 encoder_passes=3, decoder_passes=1):
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, hidden, latent)
        self.decoder = dense(latent, n_items)
        self.prior_encoder = copy.deepcopy(self.encoder)
        self.prior_encoder.requires_grad_(False)
        self.dropout, self.gamma = dropout, gamma
        self.encoder_passes, self.decoder_passes = encoder_passes, decoder_passes
        self.log_mix = [math.log(w) for w in self.MIX]
        self.opt_enc = torch.optim.Adam(self.encoder.parameters(), lr=lr)
        self.opt_dec = torch.optim.Adam(self.decoder.parameters(), lr=lr)

    def log_prior(self, z, x):
        with torch.no_grad():
            mu_old, logvar_old = self.prior_encoder(x)
        zeros = torch.zeros_like(z)
        comps = torch.stack([
            self.log_mix[0] + log_normal(z, zeros, zeros),
            self.log_mix[1] + log_normal(z, mu_old, logvar_old),
            self.log_mix[2] + log_normal(z, zeros, zeros + 10.0),
        ], dim=-1)
        return torch.logsumexp(comps, dim=-1)

    def refresh_prior(self):
        self.prior_encoder.load_state_dict(self.encoder.state_dict())

    def encoder_pass(self, x_csr, batch_size, rng):
        self.decoder.requires_grad_(False)
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            mu, logvar = self.encoder(x, self.dropout)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            mll = (F.log_softmax(self.decoder(z), dim=-1) * x).sum(dim=-1)
            kl = (log_normal(z, mu, logvar) - self.log_prior(z, x)).sum(dim=-1)
            loss = -(mll - self.gamma * x.sum(dim=-1) * kl).mean()
            self.opt_enc.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_enc.step()
            total += loss.item() * len(idx)
        self.decoder.requires_grad_(True)
        return total / x_csr.shape[0]

    def decoder_pass(self, x_csr, batch_size, rng):
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            with torch.no_grad():
                mu, logvar = self.encoder(x)  # no dropout in the decoder phase
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            loss = multinomial_nll(F.log_softmax(self.decoder(z), dim=-1), x)
            self.opt_dec.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_dec.step()
            total += loss.item() * len(idx)
        return total / x_csr.shape[0]

    def train_epoch(self, x_csr, batch_size, rng):
        self.train()
        enc_loss = 0.0
        for _ in range(self.encoder_passes):
            enc_loss = self.encoder_pass(x_csr, batch_size, rng)
        self.refresh_prior()
        for _ in range(self.decoder_passes):
            self.decoder_pass(x_csr, batch_size, rng)
        return enc_loss  # the negative ELBO of the last encoder pass

    @torch.no_grad()
    def scores(self, x):
        self.eval()
        return self.decoder(self.encoder(x)[0])


class MacridVAE(nn.Module):
    """MacridVAE: K prototypes, per-item concept assignment, per-concept shared encoder I -> d -> 2d,
    decoder p(i) ∝ sum_k c_ik exp(cos(z_k, item_i) / tau). beta = min(0.2, updates / (5 * batches))."""

    def __init__(self, n_items, d=100, k=7, tau=0.1, std=0.075, dropout=0.5, lr=1e-3,
                 beta_cap=0.2, anneal_epochs=5, batches_per_epoch=1):
        super().__init__()
        self.items = nn.Parameter(torch.empty(n_items, d))
        self.protos = nn.Parameter(torch.empty(k, d))
        nn.init.xavier_uniform_(self.items)
        nn.init.xavier_uniform_(self.protos)
        self.fc1, self.fc2 = dense(n_items, d), dense(d, 2 * d)
        self.d, self.k, self.tau, self.std, self.dropout = d, k, tau, std, dropout
        self.beta_cap, self.anneal_steps = beta_cap, anneal_epochs * batches_per_epoch
        self.updates = 0
        self.opt = torch.optim.Adam(self.parameters(), lr=lr)

    def forward(self, x, training):
        items = F.normalize(self.items, dim=-1)
        protos = F.normalize(self.protos, dim=-1)
        concept_logits = items @ protos.t() / self.tau  # I x K
        if training:  # relaxed one-hot (Gumbel-softmax, temperature 1) over K per item
            u = torch.rand_like(concept_logits).clamp_(1e-20, 1.0 - 1e-7)
            concept_logits = concept_logits - torch.log(-torch.log(u))
        log_c = F.log_softmax(concept_logits, dim=-1).t()  # K x I
        c = log_c.exp()
        xk = x.unsqueeze(0) * c.unsqueeze(1)  # K x B x I
        p = self.dropout if training else 0.0
        h = F.dropout(l2_normalise(xk), p=p, training=training and p > 0)
        h = self.fc2(torch.tanh(self.fc1(h)))  # K x B x 2d
        mu = F.normalize(h[..., :self.d], dim=-1)
        logvar = -h[..., self.d:]
        kl = (0.5 * (-logvar + logvar.exp() - 1.0)).sum(dim=-1).mean(dim=-1).sum()  # sum_k KL_k
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) * self.std if training else mu
        z = F.normalize(z, dim=-1) / self.tau  # 1/tau folded into z: one op on K x B x d, not K x B x I
        logits_k = z @ items.t()  # K x B x I: cos(z_k, item_i) / tau
        logits = torch.logsumexp(logits_k + log_c.unsqueeze(1), dim=0)  # log sum_k c_ik exp(cos / tau)
        return F.log_softmax(logits, dim=-1), kl

    def train_epoch(self, x_csr, batch_size, rng):
        self.train()
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            log_p, kl = self(x, True)
            beta = min(self.beta_cap, self.updates / self.anneal_steps)
            loss = multinomial_nll(log_p, x) + beta * kl
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.updates += 1
            total += loss.item() * len(idx)
        return total / x_csr.shape[0]

    @torch.no_grad()
    def scores(self, x):
        self.eval()
        return self(x, False)[0]


def build(name, n_items, batches_per_epoch):
    # Module.to moves the parameters in place, so the optimisers made in __init__ still hold them.
    if name == "multdae":
        return MultDAE(n_items).to(DEVICE)
    if name == "multvae":
        return MultVAE(n_items).to(DEVICE)
    if name == "recvae":
        return RecVAE(n_items).to(DEVICE)
    if name == "macridvae":
        return MacridVAE(n_items, batches_per_epoch=batches_per_epoch).to(DEVICE)
    raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")


# ---------------------------------------------------------------------------------------------
# metrics (metrics.md): normalised Recall@k, NDCG@k, seen items masked, ties -> lower index first
# ---------------------------------------------------------------------------------------------

def evaluate(model, ev, ks, batch_size=500):
    kmax = max(ks)
    disc = 1.0 / np.log2(np.arange(2, kmax + 2))
    idcg_prefix = np.concatenate([[0.0], np.cumsum(disc)])
    per_k = {k: ([], []) for k in ks}
    for idx in batches(ev.n_users, batch_size):
        s = model.scores(dense_rows(ev.x_in, idx)).cpu().numpy().astype(np.float64)
        seen = ev.x_seen[idx]
        s[seen.nonzero()] = -np.inf
        top = np.argsort(-s, axis=1, kind="stable")[:, :kmax]  # stable: ties -> lower item index
        held = ev.x_out[idx]
        hits = held.toarray()[np.arange(len(idx))[:, None], top] > 0
        n_held = held.getnnz(axis=1)
        for k in ks:
            n = np.minimum(n_held, k)
            per_k[k][0].append(hits[:, :k].sum(axis=1) / n)
            per_k[k][1].append((hits[:, :k] * disc[:k]).sum(axis=1) / idcg_prefix[n])
    out = {}
    for k in ks:
        for name, vals in zip(("recall", "ndcg"), per_k[k]):
            v = np.concatenate(vals)
            out[f"{name}@{k}"] = (float(v.mean()), float(v.std() / np.sqrt(len(v))), len(v))
    return out


# ---------------------------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------------------------

def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    return np.random.default_rng(seed)


def parse_epochs(text, models):
    if text is None:
        return {m: SPEC_EPOCHS[m] for m in models}
    if "=" not in text:
        return {m: int(text) for m in models}
    out = {m: SPEC_EPOCHS[m] for m in models}
    for part in text.split(","):
        m, n = part.split("=")
        out[m.strip()] = int(n)
    return out


def run_bench(args, x_train, models):
    n_batches = math.ceil(x_train.shape[0] / args.batch)
    print(f"bench: {x_train.shape[0]} training users x {x_train.shape[1]} items, {x_train.nnz} positives, "
          f"batch {args.batch} ({n_batches} batches/epoch), device {DEVICE}, threads {torch.get_num_threads()}, "
          f"1 warm-up + {args.repeats} timed epochs, loadavg at start {os.getloadavg()}")
    print("recvae epoch = 3 encoder passes + prior refresh + 1 decoder pass")
    print(f"{'model':10s} {'epoch_ms_median':>16s} {'epoch_ms_min':>13s}")
    results = []
    for name in models:
        rng = seed_all(args.seed)
        model = build(name, x_train.shape[1], n_batches)
        model.train_epoch(x_train, args.batch, rng)  # warm-up
        sync()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.train_epoch(x_train, args.batch, rng)
            sync()
            times.append(1e3 * (time.perf_counter() - t))
        med, best = float(np.median(times)), float(min(times))
        print(f"{name:10s} {med:16.1f} {best:13.1f}", flush=True)
        results.append({"model": name, "epoch_ms_median": med, "epoch_ms_min": best, "epoch_ms": times})
    rss = peak_rss_mib()
    print(f"peak RSS {rss:.0f} MiB; loadavg at end {os.getloadavg()}")
    return {"mode": "bench", "results": results, "peak_rss_mib": rss}


def run_train(args, x_train, models, split):
    val = EvalSet(split, "validation", load_vocab(split), args.positive_above)
    test = EvalSet(split, "test", load_vocab(split), args.positive_above)
    n_batches = math.ceil(x_train.shape[0] / args.batch)
    epochs = parse_epochs(args.epochs, models)
    print(f"train: {x_train.shape[0]} training users x {x_train.shape[1]} items, {x_train.nnz} positives; "
          f"validation {val.n_users} users ({val.excluded} excluded), test {test.n_users} users "
          f"({test.excluded} excluded); threads {torch.get_num_threads()}, loadavg {os.getloadavg()}")
    results = []
    for name in models:
        rng = seed_all(args.seed)
        model = build(name, x_train.shape[1], n_batches)
        best, best_epoch, best_state, since = -1.0, 0, None, 0
        t0 = time.perf_counter()
        for epoch in range(1, epochs[name] + 1):
            loss = model.train_epoch(x_train, args.batch, rng)
            ndcg = evaluate(model, val, [100])["ndcg@100"][0]
            if ndcg > best:
                best, best_epoch, since = ndcg, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since += 1
            if args.verbose:
                print(f"  {name} epoch {epoch:3d} loss {loss:10.4f} val NDCG@100 {ndcg:.4f}", flush=True)
            if args.patience and since >= args.patience:
                break
        train_s = time.perf_counter() - t0
        model.load_state_dict(best_state)
        m = evaluate(model, test, [20, 50])
        row = {"model": name, "epochs_max": epochs[name], "epochs_run": epoch, "best_epoch": best_epoch,
               "val_ndcg@100": best, "train_seconds": train_s,
               "test": {key: {"mean": v[0], "se": v[1], "users": v[2]} for key, v in m.items()}}
        results.append(row)
        print(f"{name:10s} epochs {epoch}/{epochs[name]} best {best_epoch:3d} val N@100 {best:.4f} | test "
              + "  ".join(f"{key} {v[0]:.4f}±{v[1]:.4f}" for key, v in m.items())
              + f" | n={m['ndcg@20'][2]} | {train_s:.0f} s", flush=True)
    rss = peak_rss_mib()
    print(f"peak RSS {rss:.0f} MiB; loadavg at end {os.getloadavg()}")
    return {"mode": "train", "results": results, "peak_rss_mib": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--bench", action="store_true", help="time training epochs")
    mode.add_argument("--train", action="store_true", help="train, select on validation NDCG@100, test")
    ap.add_argument("--split", required=True, help="split directory written by `tears prepare`")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per model (--bench)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for an NVIDIA GPU")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--epochs", default=None,
                    help="N for all models, or model=N,... (default: the spec's 200/200/50/100)")
    ap.add_argument("--patience", type=int, default=0, help="early stopping patience (0 = off)")
    ap.add_argument("--positive-above", type=float, default=3.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results as one JSON line to this file")
    ap.add_argument("--verbose", action="store_true", help="print every epoch's validation NDCG@100")
    args = ap.parse_args()

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            sys.exit(f"unknown model {m!r} (known: {', '.join(MODELS)})")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    set_device(args.device)
    x_train = load_train(args.split, load_vocab(args.split), args.positive_above)
    print(f"torch {torch.__version__}, numpy {np.__version__}, split {args.split}, seed {args.seed}")
    out = run_bench(args, x_train, models) if args.bench else run_train(args, x_train, models, args.split)
    if args.json:
        out.update({"split": os.path.abspath(args.split), "threads": args.threads, "seed": args.seed,
                    "batch": args.batch, "device": str(DEVICE), "torch": torch.__version__, "loadavg_end": os.getloadavg()})
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
