#!/usr/bin/env python3
"""Control steps per second of robosuite 1.5.2's Lift, PickPlaceCan or NutAssemblySquare (Panda, OSC_POSE, 20 Hz,
no rendering, no camera observations) on one core, with the action pattern of `flowpolicy bench env`: component d is
0.390625 sin(k / 10 + d pi / 2) of its [-1, 1] range; reset with the next seed when an episode ends (400 steps).
Prints one JSON object. Called by `flowpolicy bench env --task robomimic_lift` (or robomimic_can, robomimic_square);
needs robosuite 1.5.2 with MuJoCo 3.x (~/.cache/flowpolicy/venv-robosuite).
"""
import argparse
import importlib.metadata
import json
import math
import time

import numpy as np
import robosuite as suite

ENVIRONMENTS = {"robomimic_lift": "Lift", "robomimic_can": "PickPlaceCan", "robomimic_square": "NutAssemblySquare"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--task", default="robomimic_lift")
    args = parser.parse_args()
    env = suite.make(ENVIRONMENTS[args.task], robots="Panda", has_renderer=False, has_offscreen_renderer=False,
                     use_camera_obs=False, control_freq=20, horizon=400)
    np.random.seed(0)
    env.reset()
    actions = [np.array([0.390625 * math.sin(k / 10 + d * math.pi / 2) for d in range(7)]) for k in range(args.steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, done, _ = env.step(action)
        if done:
            env.reset()
    seconds = time.perf_counter() - start
    version = importlib.metadata.version("robosuite")
    mujoco = importlib.metadata.version("mujoco")
    print(json.dumps({"name": f"robosuite {version} {ENVIRONMENTS[args.task]} (MuJoCo {mujoco}, Python)",
                      "steps_per_second": args.steps / seconds}))


if __name__ == "__main__":
    main()
