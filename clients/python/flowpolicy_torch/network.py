"""The ResMLP-FiLM velocity network as a PyTorch module (Sources/FlowPolicy/Networks/ResMLPFiLM.swift).

Dimensions: B batch, Dx = Tp * Da (flattened action chunk), Do' = To * Do (flattened observation window), Te time
embedding, Dc = Te + Do' (condition), H hidden width, N blocks.

    c = [temb(t) (Te), o (To*Do)]                                   [B, Dc]
    h = inp(x)                                        Linear(Dx -> H)  [B, H]
    for each block:  (gamma, beta) = film(c)          Linear(Dc -> 2H)
                     y = ln(h) * (1 + gamma) + beta   LayerNorm(H)
                     h = h + l2(mish(l1(mish(y))))    Linear(H -> H) twice
    v = out(mish(ln(h)))                              LayerNorm(H), Linear(H -> Dx)

The module's parameter names are the checkpoint's tensor names (`inp.weight`, `blocks.0.film.weight`, ...), in the
order flowpolicy declares them, so `state_dict()` is the checkpoint's tensor list.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .noise import RandomSource


@dataclass(frozen=True)
class NetworkSizes:
    """The checkpoint's metadata `network` (keys as stored)."""

    chunk_dimensions: int  # Dx
    observation_dimensions: int  # To * Do
    hidden: int = 256  # H
    blocks: int = 4  # N
    time_embedding: int = 64  # Te

    def as_metadata(self):
        return asdict(self)


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
    """v(t, x, o): t [B], x [B, Dx], o [B, To*Do] -> [B, Dx]."""

    def __init__(self, sizes):
        super().__init__()
        if sizes.time_embedding % 2 != 0 or sizes.time_embedding < 2:
            raise ValueError(f"the time embedding size must be even and at least 2, got {sizes.time_embedding}")
        self.sizes = sizes
        H, Dx = sizes.hidden, sizes.chunk_dimensions
        Dc = sizes.time_embedding + sizes.observation_dimensions
        self.inp = nn.Linear(Dx, H)
        self.blocks = nn.ModuleList(Block(H, Dc) for _ in range(sizes.blocks))
        self.ln = nn.LayerNorm(H, eps=1e-5)
        self.out = nn.Linear(H, Dx)
        # f_i = exp(-ln(10000) i / (Te/2)), computed in double and rounded once, as flowpolicy does.
        half = sizes.time_embedding // 2
        frequencies = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / half).astype(np.float32)
        self.register_buffer("frequencies", torch.from_numpy(frequencies), persistent=False)

    def embed(self, t):
        """[sin(1000 t f_i), cos(1000 t f_i)]: [B] -> [B, Te]. The factor 1000 makes t in [0, 1] span the range of
        diffusion timesteps the embedding was designed for."""
        argument = (1000.0 * t)[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(argument), torch.cos(argument)], dim=-1)

    def forward(self, t, x, o):
        c = torch.cat([self.embed(t), o], dim=-1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(nn.functional.mish(self.ln(h)))

    @torch.no_grad()
    def initialize_like_flowpolicy(self, seed):
        """The initial weights `flowpolicy train --seed seed` starts from: tensors in declaration order, Linear
        weights and biases uniform in +-1/sqrt(fan_in) (PyTorch's default bounds) drawn from flowpolicy's generator,
        LayerNorm weights 1 and biases 0."""
        generator = RandomSource(seed)
        for name, parameter in self.named_parameters():
            layer = self.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(layer, nn.LayerNorm):
                parameter.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            bound = np.float32(1) / np.sqrt(np.float32(layer.in_features))
            values = (2 * generator.uniforms(parameter.numel()) - 1) * bound
            parameter.copy_(torch.from_numpy(values).reshape(parameter.shape))
