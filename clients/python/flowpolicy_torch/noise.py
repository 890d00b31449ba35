"""flowpolicy's random number generator, bit for bit (Sources/FlowPolicy/Tensors/RandomSource.swift).

xoshiro256** seeded through SplitMix64; uniforms from the top bits, Gaussians by Box-Muller on two 53-bit uniforms
(one value per call, nothing cached). Python regenerates what flowpolicy drew for a seed: the sampling noise of
`flowpolicy sample` (to compare chunks) and the initial weights of `flowpolicy train` (so that both trainers start from
the same network for the same seed). Pure Python: fast enough for thousands of Gaussians or a few million uniforms,
which is all these two uses need; the trainer's batches come from torch's own generators.
"""

import math

import numpy as np

MASK = (1 << 64) - 1


def stream_seed(seed, stream):
    """The seed of flowpolicy's independent stream `stream` of `seed` (`RandomSource(seed:stream:)`)."""
    return ((seed ^ ((stream * 0xD1B54A32D192ED03) & MASK)) + 0x632BE59BD9B4E019) & MASK


class RandomSource:
    """flowpolicy's `RandomSource`: the same seed gives the same numbers as the Swift generator."""

    def __init__(self, seed):
        if not 0 <= seed <= MASK:
            raise ValueError(f"a flowpolicy seed is an unsigned 64-bit integer, got {seed}")
        z = seed
        state = []
        for _ in range(4):
            z = (z + 0x9E3779B97F4A7C15) & MASK
            x = z
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
            state.append(x ^ (x >> 31))
        self.state = state

    def next(self):
        s0, s1, s2, s3 = self.state
        r = (s1 * 5) & MASK
        result = ((((r << 7) | (r >> 57)) & MASK) * 9) & MASK
        t = (s1 << 17) & MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & MASK
        self.state = [s0, s1, s2, s3]
        return result

    def uniforms(self, count):
        """`count` floats uniform in [0, 1) with 24 random bits each (`nextUniform`), as float32 [count]."""
        bits = np.fromiter((self.next() >> 40 for _ in range(count)), dtype=np.float64, count=count)
        return (bits * (1.0 / 16777216.0)).astype(np.float32)

    def gaussian(self):
        u1 = 1.0 - (self.next() >> 11) * (1.0 / 9007199254740992.0)  # (0, 1]
        u2 = (self.next() >> 11) * (1.0 / 9007199254740992.0)
        return np.float32(math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))

    def gaussians(self, count):
        """`count` standard normal float32s (`fillGaussian`)."""
        return np.array([self.gaussian() for _ in range(count)], dtype=np.float32)
