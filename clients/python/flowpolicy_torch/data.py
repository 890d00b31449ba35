"""Demonstrations as flowpolicy trains on them: its dataset file, its normalizers, its training pairs.

Mirrors Sources/FlowPolicy/Data (the file itself is read and checked by `flowpolicy_data.read_dataset`, which makes
the Swift reader's checks): `MinMaxNormalizer` maps each dimension to [-1, 1] from the data's min and max, passing
through dimensions whose range is below 1e-4; `TrainingPairs` cuts episodes the way Diffusion Policy's
`SequenceSampler` does. Dimension letters: N dataset rows, E episodes, P training pairs, To window, Tp chunk, Do / Da
observation / action size.
"""

import numpy as np
import torch

RANGE_EPSILON = np.float32(1e-4)


class MinMaxNormalizer:
    """normalized = raw * scale + offset, per dimension, all in float32 as flowpolicy computes it."""

    def __init__(self, minimum, maximum):
        self.minimum = np.asarray(minimum, dtype=np.float32)
        self.maximum = np.asarray(maximum, dtype=np.float32)
        span = self.maximum - self.minimum
        wide = span >= RANGE_EPSILON
        self.scale = np.where(wide, np.float32(2) / np.where(wide, span, 1), np.float32(1)).astype(np.float32)
        self.offset = np.where(wide, np.float32(-1) - self.minimum * self.scale, np.float32(0)).astype(np.float32)

    @classmethod
    def fitting(cls, values):
        """Fitted to the rows of values [N, D]."""
        if len(values) == 0:
            zeros = np.zeros(values.shape[1], dtype=np.float32)
            return cls(zeros, zeros)
        return cls(values.min(axis=0), values.max(axis=0))

    def normalize(self, values):
        return (values * self.scale + self.offset).astype(np.float32)

    def denormalize(self, values):
        return ((values - self.offset) / self.scale).astype(np.float32)


def content_hash(dataset):
    """FNV-1a 64 of the obs, action and episode_ends bytes: `EpisodeDataset.contentHash`, the provenance that names
    the data a checkpoint was trained on (not a security hash). Pure Python: about 2 s for Push-T's 1000 episodes."""
    state = 0xCBF29CE484222325
    for array in (dataset.obs, dataset.action, dataset.episode_ends.astype(np.int64)):
        for byte in np.ascontiguousarray(array).tobytes():
            state = ((state ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"fnv1a64:{state:016x}"


class TrainingPairs:
    """Every (observation window, action chunk) pair of a dataset, normalized, as flowpolicy's `SequenceSampler`
    cuts them: starts run from -(To - 1) to L - Tp + (Ta - 1) in an episode of L steps, and steps outside the episode
    repeat its first or last step.

        time      : t-1   t    t+1  ...  t+Ta-1  ...  t+Tp-2
        window    : o     o                                     (To = 2)
        chunk     : a     a    a    ...  a       ...  a         (Tp)
        executed  :       a    a    ...  a                      (Ta, from index To - 1)
    """

    def __init__(self, dataset, observation_normalizer, action_normalizer, To, Ta, Tp, device):
        if not (To >= 1 and Ta >= 1 and Tp >= 1 and To - 1 + Ta <= Tp):
            raise ValueError(f"the executed actions (steps To-1 ..< To-1+Ta = {To - 1}..<{To - 1 + Ta}) must lie "
                             f"inside the predicted chunk of Tp = {Tp}")
        self.To, self.Tp = To, Tp
        episode_starts, lengths, starts = [], [], []
        for index in range(dataset.episode_count):
            first, end = dataset.episode_range(index)
            length = end - first
            count = max(0, (length - Tp + Ta - 1) - (-(To - 1)) + 1)
            episode_starts.append(np.full(count, first))
            lengths.append(np.full(count, length))
            starts.append(np.arange(-(To - 1), -(To - 1) + count))
        self.episode_starts = torch.from_numpy(np.concatenate(episode_starts).astype(np.int64)).to(device)  # [P]
        self.lengths = torch.from_numpy(np.concatenate(lengths).astype(np.int64)).to(device)  # [P]
        self.starts = torch.from_numpy(np.concatenate(starts).astype(np.int64)).to(device)  # [P]
        if len(self.starts) == 0:
            raise ValueError(f"the dataset's {dataset.episode_count} episodes are too short to cut any (To={To}, "
                             f"Tp={Tp}, Ta={Ta}) training pair")
        self.observations = torch.from_numpy(observation_normalizer.normalize(dataset.obs)).to(device)  # [N, Do]
        self.actions = torch.from_numpy(action_normalizer.normalize(dataset.action)).to(device)  # [N, Da]
        self.offsets = torch.arange(Tp, device=device)  # [Tp]

    def __len__(self):
        return len(self.starts)

    def gather(self, pairs):
        """Windows [B, To*Do] and chunks [B, Tp*Da] of the pairs with these indices [B]."""
        steps = (self.starts[pairs, None] + self.offsets[None, :]).clamp(min=0)
        steps = torch.minimum(steps, self.lengths[pairs, None] - 1)
        rows = self.episode_starts[pairs, None] + steps  # [B, Tp]
        windows = self.observations[rows[:, :self.To]].reshape(len(pairs), -1)
        chunks = self.actions[rows].reshape(len(pairs), -1)
        return windows, chunks
