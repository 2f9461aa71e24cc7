#!/usr/bin/env python3
"""PyTorch peer (CPU, or a CUDA GPU with `--device cuda`) of `cargo bench --bench tears`: one
training epoch of TEARS-RecVAE with frozen, cached profile vectors, on the training users of a
split directory written by `tears prepare`.

The step follows ../shared/spec/tears.md as tears-model implements it, with the reference settings:
per mini-batch of 500 users (reshuffled every epoch, densified from a scipy CSR matrix),

* the frozen RecVAE encoder (vae_torch.RecVAEEncoder: items -> 600, four dense 600 -> 600 swish +
  LayerNorm layers, mu / logvar 200) on the L2-normalised clicks with input dropout 0.5, no gradient;
* the profile head, Linear(384 -> 400) without bias: mu_s, logvar_s clamped to [-10, 10];
* z_s, z_r reparameterised; z_c = 0.5 z_s + 0.5 z_r;
* three decodes through the backbone's decoder Linear(200 -> items), each a multinomial NLL;
* loss = (NLL_c + NLL_s + NLL_r) / 3 + 0.5 * W2^2(q_s, q_r) + lambda_kl * KL(q_s || N(0, I)), with
  lambda_kl = min(0.2, updates / 200000);
* backward, AdamW (lr 1e-3, weight decay 0.01, eps 1e-8) over the head and the decoder.

Profile vectors are seeded unit vectors of all-MiniLM-L6-v2's width (384), as in the Rust bench: the
encoder is frozen, so their values do not change the work. One warm-up epoch, then the median and
minimum of --repeats epochs, torch.set_num_threads(--threads). Run it with the OpenBLAS tuning
variables of this machine unset:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/tears_torch.py --split DIR
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vae_torch  # noqa: E402
from vae_torch import RecVAEEncoder, batches, dense, dense_rows, load_train, load_vocab, sync  # noqa: E402

PROFILE_DIM = 384


class TearsRecVAE(nn.Module):
    def __init__(self, n_items, latent=200, lr=1e-3, weight_decay=0.01, lambda_ot=0.5, lambda_kl=0.2,
                 anneal_steps=200_000, alpha=0.5, dropout=0.5):
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, latent=latent)
        self.encoder.requires_grad_(False)
        self.decoder = dense(latent, n_items)
        self.head = nn.Linear(PROFILE_DIM, 2 * latent, bias=False)
        nn.init.xavier_uniform_(self.head.weight)
        self.latent, self.alpha, self.dropout = latent, alpha, dropout
        self.lambda_ot, self.lambda_kl, self.anneal_steps = lambda_ot, lambda_kl, anneal_steps
        self.updates = 0
        params = list(self.head.parameters()) + list(self.decoder.parameters())
        self.opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=1e-8)

    def nll(self, z, x):
        return -(F.log_softmax(self.decoder(z), dim=-1) * x).sum(dim=-1).mean()

    def step(self, x, e):
        out = self.head(e)
        mu_s, logvar_s = out[:, :self.latent], out[:, self.latent:].clamp(-10.0, 10.0)
        with torch.no_grad():
            mu_r, logvar_r = self.encoder(x, self.dropout)
            z_r = mu_r + torch.randn_like(mu_r) * torch.exp(0.5 * logvar_r)
        z_s = mu_s + torch.randn_like(mu_s) * torch.exp(0.5 * logvar_s)
        z_c = self.alpha * z_s + (1.0 - self.alpha) * z_r
        nll = (self.nll(z_c, x) + self.nll(z_s, x) + self.nll(z_r, x)) / 3.0
        w2 = ((mu_s - mu_r).pow(2).sum(dim=-1)
              + (torch.exp(0.5 * logvar_s) - torch.exp(0.5 * logvar_r)).pow(2).sum(dim=-1)).mean()
        kl = (0.5 * (torch.exp(logvar_s) - logvar_s + mu_s.pow(2) - 1.0).sum(dim=-1)).mean()
        lambda_kl = min(self.lambda_kl, self.updates / self.anneal_steps)
        loss = nll + self.lambda_ot * w2 + lambda_kl * kl
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.updates += 1
        return loss.item()

    def train_epoch(self, x_csr, profiles, batch_size, rng):
        self.train()
        total = 0.0
        for idx in batches(x_csr.shape[0], batch_size, rng):
            x = dense_rows(x_csr, idx)
            e = profiles[torch.from_numpy(idx).to(profiles.device)]
            total += self.step(x, e) * len(idx)
        return total / x_csr.shape[0]


def unit_profiles(n, seed=7):
    rng = np.random.default_rng(seed)
    m = rng.random((n, PROFILE_DIM), dtype=np.float32) - 0.5
    m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return torch.from_numpy(m)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", required=True, help="split directory written by `tears prepare`")
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for an NVIDIA GPU")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--positive-above", type=float, default=3.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the result as one JSON line to this file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    vae_torch.set_device(args.device)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vocab = load_vocab(args.split)
    x = load_train(args.split, vocab, args.positive_above)
    profiles = unit_profiles(x.shape[0]).to(vae_torch.DEVICE)
    # Module.to moves the parameters in place, so the optimiser made in __init__ still holds them.
    model = TearsRecVAE(len(vocab)).to(vae_torch.DEVICE)
    print(f"tears-recvae on {x.shape[0]} training users x {len(vocab)} items, batch {args.batch}, "
          f"device {vae_torch.DEVICE}, {args.threads} threads, torch {torch.__version__}")
    model.train_epoch(x, profiles, args.batch, rng)  # warm-up
    sync()
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        model.train_epoch(x, profiles, args.batch, rng)
        sync()
        times.append(time.perf_counter() - started)
    result = {
        "model": "tears-recvae",
        "device": str(vae_torch.DEVICE),
        "epoch_ms_median": 1000 * statistics.median(times),
        "epoch_ms_min": 1000 * min(times),
        "epochs_ms": [1000 * t for t in times],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loadavg": os.getloadavg(),
    }
    print(f"epoch median {result['epoch_ms_median']:.1f} ms, min {result['epoch_ms_min']:.1f} ms; "
          f"peak RSS {result['peak_rss_mib']:.0f} MiB; loadavg {result['loadavg']}")
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
