#!/usr/bin/env python3
"""Cross-check a flowpolicy checkpoint against PyTorch, and time the same network in PyTorch.

  check:  python tools/pytorch_reference.py check POLICY.safetensors SAMPLE.json
          Rebuilds the ResMLP-FiLM network as a PyTorch module from the checkpoint (the layout the README documents),
          regenerates the same seeded noise as flowpolicy (xoshiro256** seeded by SplitMix64, Box-Muller), integrates
          with the same fixed-step solver and compares with the chunks `flowpolicy sample --json` wrote.
  bench:  python tools/pytorch_reference.py bench [--steps 10] [--threads 1]
          Latency of one chunk at batch 1 and throughput at batch 64 for the reference network, PyTorch on the CPU.

Needs torch, safetensors and numpy (pip install torch safetensors numpy). Not needed by flowpolicy itself.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn


class Block(nn.Module):
    def __init__(self, hidden, condition):
        super().__init__()
        self.film = nn.Linear(condition, 2 * hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-5)
        self.l1 = nn.Linear(hidden, hidden)
        self.l2 = nn.Linear(hidden, hidden)

    def forward(self, h, c):
        gamma, beta = self.film(c).chunk(2, dim=-1)  # first H: scale, last H: shift
        y = self.ln(h) * (1 + gamma) + beta
        return h + self.l2(nn.functional.mish(self.l1(nn.functional.mish(y))))


class ResMLPFiLM(nn.Module):
    """v(t, x, o): x [B, Tp*Da], t [B], o [B, To*Do]."""

    def __init__(self, chunk, observation, hidden, blocks, time_embedding):
        super().__init__()
        self.time_embedding = time_embedding
        self.inp = nn.Linear(chunk, hidden)
        self.blocks = nn.ModuleList(Block(hidden, time_embedding + observation) for _ in range(blocks))
        self.ln = nn.LayerNorm(hidden, eps=1e-5)
        self.out = nn.Linear(hidden, chunk)

    def embed(self, t):
        half = self.time_embedding // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        argument = 1000.0 * t[:, None] * frequencies[None, :]
        return torch.cat([torch.sin(argument), torch.cos(argument)], dim=-1)

    def forward(self, t, x, o):
        c = torch.cat([self.embed(t), o], dim=-1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(nn.functional.mish(self.ln(h)))


def load_policy(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    sizes = json.loads(meta["network"])
    model = ResMLPFiLM(sizes["chunk_dimensions"], sizes["observation_dimensions"], sizes["hidden"], sizes["blocks"],
                       sizes["time_embedding"])
    tensors = load_file(path)
    normalizer = {k: v for k, v in tensors.items() if k.startswith("normalizer.")}
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("normalizer.")}, strict=True)
    return model.eval(), meta, normalizer


def affine(minimum, maximum):
    """normalized = raw * scale + offset; dimensions with range < 1e-4 pass through."""
    span = maximum - minimum
    scale = torch.where(span >= 1e-4, 2 / span, torch.ones_like(span))
    offset = torch.where(span >= 1e-4, -1 - minimum * scale, torch.zeros_like(span))
    return scale, offset


class RandomSource:
    """flowpolicy's RandomSource: xoshiro256** seeded through SplitMix64, Box-Muller Gaussians."""
    MASK = (1 << 64) - 1

    def __init__(self, seed):
        z = seed
        state = []
        for _ in range(4):
            z = (z + 0x9E3779B97F4A7C15) & self.MASK
            x = z
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & self.MASK
            state.append(x ^ (x >> 31))
        self.s = state

    def next(self):
        s0, s1, s2, s3 = self.s
        r = ((s1 * 5) & self.MASK)
        result = ((((r << 7) | (r >> 57)) & self.MASK) * 9) & self.MASK
        t = (s1 << 17) & self.MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & self.MASK
        self.s = [s0, s1, s2, s3]
        return result

    def gaussian(self):
        u1 = 1.0 - (self.next() >> 11) * (1.0 / 9007199254740992.0)
        u2 = (self.next() >> 11) * (1.0 / 9007199254740992.0)
        return np.float32(math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))


def integrate(model, x, o, method, steps):
    h = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0],), k * h)
        if method == "euler":
            x = x + h * model(t, x, o)
        elif method == "midpoint":
            k1 = model(t, x, o)
            x = x + h * model(t + h / 2, x + h / 2 * k1, o)
        elif method == "rk4":
            k1 = model(t, x, o)
            k2 = model(t + h / 2, x + h / 2 * k1, o)
            k3 = model(t + h / 2, x + h / 2 * k2, o)
            k4 = model(t + h, x + h * k3, o)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def check(args):
    model, meta, normalizer = load_policy(args.checkpoint)
    summary = json.load(open(args.samples))
    method, steps = summary["solver"].split(" K=")
    steps = int(steps)
    chunks = np.array(summary["chunks"], dtype=np.float32)
    count = min(len(chunks), 256)  # `flowpolicy sample` draws the noise of up to 256 chunks at once
    To, Do = int(meta["To"]), int(meta["obs_dim"])
    Tp, Da = int(meta["Tp"]), int(meta["action_dim"])
    rng = RandomSource(summary["seed"])
    x0 = torch.tensor([rng.gaussian() for _ in range(count * Tp * Da)]).reshape(count, Tp * Da)
    o_scale, o_offset = affine(normalizer["normalizer.observation.min"], normalizer["normalizer.observation.max"])
    a_scale, a_offset = affine(normalizer["normalizer.action.min"], normalizer["normalizer.action.max"])
    window = torch.tensor(summary["observationWindow"]).reshape(To, Do)
    o = (window * o_scale + o_offset).reshape(1, To * Do).expand(count, -1)
    with torch.no_grad():
        x = integrate(model, x0, o, method, steps)
    actions = ((x.reshape(count, Tp, Da) - a_offset) / a_scale).reshape(count, Tp * Da).numpy()
    difference = np.abs(actions - chunks[:count])
    print(f"{count} chunks, {method} K={steps}: largest |flowpolicy - pytorch| = {difference.max():.3g}, "
          f"mean {difference.mean():.3g}, action scale {np.abs(chunks).max():.3g}")


def bench(args):
    torch.set_num_threads(args.threads)
    model = ResMLPFiLM(32, 10, 512, 4, 64).eval()
    o1, x1 = torch.zeros(1, 10), torch.randn(1, 32)
    with torch.inference_mode():
        for _ in range(20):
            integrate(model, x1, o1, "euler", args.steps)
        latencies = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            integrate(model, x1, o1, "euler", args.steps)
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        o64, x64 = torch.zeros(64, 10), torch.randn(64, 32)
        integrate(model, x64, o64, "euler", args.steps)
        repeats = 10
        start = time.perf_counter()
        for _ in range(repeats):
            integrate(model, x64, o64, "euler", args.steps)
        rate = repeats * 64 / (time.perf_counter() - start)
    print(f"pytorch {torch.__version__} cpu, {args.threads} thread(s), reference network, euler K={args.steps}: "
          f"batch 1 p50 {p50:.3f} ms p99 {p99:.3f} ms; batch 64 {rate:.0f} chunks/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("check")
    c.add_argument("checkpoint")
    c.add_argument("samples")
    b = commands.add_parser("bench")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    check(args) if args.command == "check" else bench(args)


if __name__ == "__main__":
    main()
