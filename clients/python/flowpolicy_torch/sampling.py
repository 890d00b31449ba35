"""Sampling action chunks as flowpolicy does (Sources/FlowPolicy/Policy/Policy.swift, Solvers/ODESolver.swift): draw
x0 ~ N(0, I) from flowpolicy's seeded generator, integrate dx/dt = v(t, x, o) from t = 0 to 1 in K fixed steps, and
map the normalized chunk back to action units.
"""

import torch

from .noise import RandomSource

SOLVERS = ("euler", "midpoint", "rk4")


def integrate(model, x, o, method, steps):
    """x(1) from x(0) = x [B, Dx] under the window o [B, To*Do], K = `steps` steps of `method`."""
    if method not in SOLVERS:
        raise ValueError(f"unknown solver {method!r}; flowpolicy's fixed-step solvers are {', '.join(SOLVERS)}")
    h = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0],), k * h)
        if method == "euler":
            x = x + h * model(t, x, o)
        elif method == "midpoint":
            k1 = model(t, x, o)
            x = x + h * model(t + h / 2, x + h / 2 * k1, o)
        else:
            k1 = model(t, x, o)
            k2 = model(t + h / 2, x + h / 2 * k1, o)
            k3 = model(t + h / 2, x + h / 2 * k2, o)
            k4 = model(t + h, x + h * k3, o)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def sample_chunks(model, observation_normalizer, action_normalizer, window, count, seed, method, steps, frames=None):
    """`flowpolicy sample`'s chunks for one observation window [To, Do] (action units): (chunks [count, Tp*Da],
    the same chunks normalized). flowpolicy draws the noise of its batches of up to 256 chunks one after another from
    one generator seeded with `seed`, so the noise of all `count` chunks is one stream of count * Tp * Da Gaussians.
    A policy with cameras takes the window's `frames` too ({camera: uint8 [To, H, W, C]})."""
    Dx = model.sizes.chunk_dimensions
    Da = len(action_normalizer.scale)
    x0 = torch.from_numpy(RandomSource(seed).gaussians(count * Dx)).reshape(count, Dx)
    normalized_window = torch.from_numpy(observation_normalizer.normalize(window))
    with torch.no_grad():
        if frames is None:
            o = normalized_window.reshape(1, -1).expand(count, -1)
        else:
            o = model.condition(normalized_window[None], {k: v[None] for k, v in frames.items()}).expand(count, -1)
        normalized = integrate(model, x0, o, method, steps).numpy()
    chunks = action_normalizer.denormalize(normalized.reshape(count, -1, Da)).reshape(count, Dx)
    return chunks, normalized
