#!/usr/bin/env python3
"""Control steps per second of gym-pusht 0.1.8 on one core, with the action pattern of `flowpolicy bench env`
(target (256 + 100 sin(k/10), 256 + 100 sin(k/10 + pi/2)): a circle of radius 100, one revolution every 63 steps; reset with the next seed when an
episode ends). Prints one JSON object. Called by `flowpolicy bench env --task pusht`."""
import argparse
import importlib.metadata
import json
import math
import time

import gymnasium as gym
import gym_pusht  # noqa: F401
import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    env = gym.make("gym_pusht/PushT-v0", obs_type="state").unwrapped
    seed = 0
    env.reset(seed=seed)
    targets = [np.array([256 + 100 * math.sin(k / 10), 256 + 100 * math.sin(k / 10 + math.pi / 2)]) for k in range(args.steps)]
    start = time.perf_counter()
    for target in targets:
        _, _, terminated, _, _ = env.step(target)
        if terminated:
            seed += 1
            env.reset(seed=seed)
    seconds = time.perf_counter() - start
    version = importlib.metadata.version("gym-pusht")
    print(json.dumps({"name": f"gym-pusht {version} (pymunk, Python)", "steps_per_second": args.steps / seconds}))


if __name__ == "__main__":
    main()
