"""Writes a tiny dataset of Push-T's dimensions (20-D observations, 2-D actions) for `flowpolicy train`, so that the
client tests have a checkpoint to serve before the shipped policy exists. Usage: make_policy_dataset.py OUT"""

import sys

import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(0)
episodes, length = 4, 40
obs = rng.uniform(50, 450, size=(episodes * length, 20)).astype(np.float32)
action = rng.uniform(50, 450, size=(episodes * length, 2)).astype(np.float32)
ends = np.arange(1, episodes + 1, dtype=np.int64) * length
save_file({"obs": obs, "action": action, "episode_ends": ends}, sys.argv[1],
          metadata={"format": "flowpolicy.dataset", "format_version": "1", "task": "pusht", "seeds": "0-3"})
