"""Conditional flow matching on demonstrations, data-parallel over the ranks of a torch.distributed group
(Sources/FlowPolicy/Training/FlowMatchingTrainer.swift and FlowMatchingLoss.swift).

Each step every rank draws its share of the global batch B (B / W rows, the first B mod W ranks one more, as the
Swift trainer gives each worker thread a slice of its batch): pair indices uniform over the dataset's pairs,
x0 ~ N(0, I), times t ~ U[0, 1), all from the rank's own generator, so ranks see different batches. It regresses the
field at x_t = (1 - t) x0 + t a onto u = a - x0 (the rectified path, sigma_min = 0, as `flowpolicy train` uses) with
the mean squared error over the whole global batch; DistributedDataParallel averages the ranks' gradients; then
global-norm clipping at 1, AdamW under the warm-up + cosine schedule, and the EMA update (rank 0 keeps the average:
only it writes).

What differs from the Swift trainer: the batches and noise come from torch generators seeded per rank with
flowpolicy's stream derivation (`RandomSource(seed:stream:)` of the seed and the rank), not from the one flowpolicy
generator that also drew the weights, and the arithmetic is PyTorch's. The same seed gives the same initial weights
as `flowpolicy train`, but not the same batches, so the two trainers reach different weights, as two Swift runs with
different seeds do.
"""

import math

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .network import ResMLPFiLM
from .noise import stream_seed


class NonFiniteLoss(Exception):
    pass


class FlowMatchingTrainer:
    def __init__(self, sizes, pairs, configuration, rank, world_size, device):
        if configuration.batch_size < world_size:
            raise ValueError(f"the batch of {configuration.batch_size} cannot be split across {world_size} ranks; "
                             "use a batch at least as large as the number of processes")
        self.configuration = configuration
        self.pairs = pairs
        self.rank, self.world_size, self.device = rank, world_size, device
        self.rows = configuration.batch_size // world_size + (rank < configuration.batch_size % world_size)
        self.step = 0
        model = ResMLPFiLM(sizes)
        model.initialize_like_flowpolicy(configuration.seed)
        self.model = model.to(device)
        distributed = dist.is_available() and dist.is_initialized()
        # DDP also broadcasts rank 0's weights at construction; every rank already holds the same ones.
        self.network = DistributedDataParallel(
            self.model, device_ids=[device] if device.type == "cuda" else None) if distributed else self.model
        self.distributed = distributed
        self.optimizer = configuration.adamw(self.model.parameters())
        self.average = configuration.ema(self.model) if rank == 0 else None
        self.stream_seed = stream_seed(configuration.seed, rank)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(self.stream_seed)

    def train_step(self):
        """One optimization step; returns the mean loss over the global batch (before the update)."""
        configuration, B, Dx = self.configuration, self.configuration.batch_size, self.model.sizes.chunk_dimensions
        rows, generator, device = self.rows, self.generator, self.device
        pair = torch.randint(len(self.pairs), (rows,), generator=generator, device=device)
        window, chunk = self.pairs.gather(pair)  # [rows, To*Do], [rows, Dx]
        noise = torch.randn(rows, Dx, generator=generator, device=device)
        t = torch.rand(rows, generator=generator, device=device)
        state = (1 - t[:, None]) * noise + t[:, None] * chunk
        target = chunk - noise
        self.optimizer.zero_grad(set_to_none=True)
        squared_error = (self.network(t, state, window) - target).square().sum()
        # DDP averages the ranks' gradients: scaling each rank's sum by W / (B * Dx) makes that average the gradient
        # of the mean over the global batch, whatever the split.
        (squared_error * (self.world_size / (B * Dx))).backward()
        total = squared_error.detach().clone()
        if self.distributed:
            dist.all_reduce(total)
        loss = total.item() / (B * Dx)
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the training loss became {loss} at step {self.step}; lower the learning rate or "
                                "check the dataset for extreme values")
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), configuration.gradient_clip_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = configuration.learning_rate_at(self.step)
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.model, self.step)
        self.step += 1
        return loss
