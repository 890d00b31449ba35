#!/usr/bin/env python3
"""Control steps per second of Gymnasium-Robotics' FrankaKitchen-v1 on one core, with the action pattern of
`flowpolicy bench env --task franka_kitchen`: action component d is 0.390625 sin(k/10 + d pi/2); the episode restarts
with the next seed when it ends (280 steps). Prints one JSON object. Called by `flowpolicy bench env`.

Needs gymnasium-robotics==1.4.2 with mujoco 3.x (1.4.2 fails with mujoco 4).
"""
import argparse
import importlib.metadata
import json
import math
import time

import gymnasium as gym
import gymnasium_robotics
import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    gym.register_envs(gymnasium_robotics)
    env = gym.make("FrankaKitchen-v1", tasks_to_complete=["microwave", "kettle", "light switch", "slide cabinet"])
    seed = 0
    env.reset(seed=seed)
    actions = [np.array([0.390625 * math.sin(k / 10 + d * math.pi / 2) for d in range(9)]) for k in range(args.steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            seed += 1
            env.reset(seed=seed)
    seconds = time.perf_counter() - start
    name = (f"Gymnasium-Robotics {importlib.metadata.version('gymnasium-robotics')} FrankaKitchen-v1 "
            f"(MuJoCo {importlib.metadata.version('mujoco')}, Python)")
    print(json.dumps({"name": name, "steps_per_second": args.steps / seconds}))


if __name__ == "__main__":
    main()
