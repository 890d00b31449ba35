"""The Swift trainer's optimizer settings, schedule and weight average (Sources/FlowPolicy/Training/AdamW.swift and
TrainingConfiguration.swift), on PyTorch.

flowpolicy's AdamW is `torch.optim.AdamW` written out (decoupled weight decay `p *= 1 - lr * wd` on every parameter,
biases and LayerNorm included; bias-corrected moments; eps added to the corrected root), so PyTorch's own is used with
the same betas, eps and decay over all parameters in one group.
"""

import math
from dataclasses import dataclass

import torch


@dataclass
class TrainingConfiguration:
    """`TrainingConfiguration.swift`'s fields and defaults (METHODS.md section 1)."""

    steps: int = 20_000
    #: The global batch: split across the ranks, so that a step sees as many samples as a Swift step.
    batch_size: int = 256
    learning_rate: float = 1e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 500
    beta1: float = 0.95
    beta2: float = 0.999
    epsilon: float = 1e-8
    gradient_clip_norm: float = 1.0
    ema_power: float = 0.75
    ema_maximum_decay: float = 0.9999
    seed: int = 0

    def adamw(self, parameters):
        return torch.optim.AdamW(parameters, lr=self.learning_rate, betas=(self.beta1, self.beta2), eps=self.epsilon,
                                 weight_decay=self.weight_decay)

    def ema(self, model):
        return ExponentialMovingAverage(model, self.ema_power, self.ema_maximum_decay)

    def learning_rate_at(self, step):
        """Linear warm-up to the peak rate over `warmup_steps` (reaching it at the last warm-up step), then cosine
        decay to zero at `steps` (diffusers' `cosine` schedule, `CosineSchedule`); `step` counts from 0."""
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / max(self.warmup_steps, 1)
        progress = (step - self.warmup_steps) / max(self.steps - self.warmup_steps, 1)
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class ExponentialMovingAverage:
    """Diffusion Policy's `EMAModel` as flowpolicy keeps it: after optimizer step `step` (from 0),
    `average = d * average + (1 - d) * weights` with `d = min(1 - (1 + step)^-power, maximum)`, so the first update
    copies the weights (d = 0). The average is what the checkpoint holds."""

    def __init__(self, model, power, maximum_decay):
        self.power = power
        self.maximum_decay = maximum_decay
        self.average = {name: p.detach().clone() for name, p in model.named_parameters()}

    def decay(self, step):
        return min(max(1 - (1 + step) ** -self.power, 0.0), self.maximum_decay)

    @torch.no_grad()
    def update(self, model, step):
        d = self.decay(step)
        for average, weights in zip(self.average.values(), model.parameters()):
            average.mul_(d).add_(weights, alpha=1 - d)
