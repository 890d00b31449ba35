#!/usr/bin/env python3
"""Compare flowpolicy's MuJoCo Push-T with gym-pusht 0.1.8 (pymunk): same starts, same actions, how far apart?

    python tools/compare_pusht.py [--episodes 50] [--flowpolicy .build/release/flowpolicy] [--json report.json]

For each episode: reset gym-pusht with a seed, take its start (agent position, block position and angle), and build a
smooth action sequence of pushes through the block from random sides (targets move at most 15 units per step, as a
person would push). The actions run in gym-pusht, then `flowpolicy replay` runs them in MuJoCo from the same start.
Reported: the block position and angle differences and the coverage difference after 10, 25, 50 and 100 steps
(median and 90th percentile over episodes), and how often the two agree on success. Needs gym-pusht==0.1.8.
"""
import argparse
import json
import math
import os
import subprocess
import tempfile

import gymnasium as gym
import gym_pusht  # noqa: F401  (registers the environment)
import numpy as np


def pushes(rng, agent, block_center, count=4, speed=15.0):
    """Targets: from the agent, around to a random side of the block, through it, and back out, `count` times."""
    targets = []
    position = np.array(agent, dtype=float)

    def move_to(goal):
        nonlocal position
        goal = np.clip(np.array(goal, dtype=float), 20, 492)
        distance = np.linalg.norm(goal - position)
        steps = max(1, int(math.ceil(distance / speed)))
        for k in range(1, steps + 1):
            targets.append((position + (goal - position) * k / steps).tolist())
        position = goal

    for _ in range(count):
        angle = rng.uniform(-math.pi, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
        lateral = np.array([-direction[1], direction[0]]) * rng.uniform(-40, 40)
        move_to(block_center + 150 * direction + lateral)     # stand off on that side (outside the T)
        move_to(block_center - rng.uniform(10, 60) * direction + lateral)   # push through
        move_to(block_center + 150 * direction + lateral)     # back out
    return targets


def run_reference(seed, rng):
    env = gym.make("gym_pusht/PushT-v0", obs_type="state").unwrapped
    env.reset(seed=seed)
    agent = list(env.agent.position)
    block = list(env.block.position) + [env.block.angle]
    center = np.array(env.block.local_to_world((0, 45)))
    actions = pushes(rng, agent, center)
    poses, coverages = [], []
    for action in actions:
        env.step(np.array(action))
        poses.append(list(env.block.position) + [env.block.angle])
        coverages.append(env._get_coverage())
    return {"agent": agent, "block": block, "actions": actions}, np.array(poses), np.array(coverages)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flowpolicy", default=".build/release/flowpolicy")
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    episodes, reference = [], []
    for i in range(args.episodes):
        episode, poses, coverages = run_reference(args.seed + i, rng)
        episodes.append(episode)
        reference.append((poses, coverages))
    with tempfile.TemporaryDirectory() as folder:
        given, replayed = os.path.join(folder, "episodes.json"), os.path.join(folder, "replayed.json")
        json.dump(episodes, open(given, "w"))
        subprocess.run([args.flowpolicy, "replay", "--task", "pusht", "--episodes", given, "--json", replayed],
                       check=True, stdout=subprocess.DEVNULL)
        ours = json.load(open(replayed))
    checkpoints = [10, 25, 50, 100]
    position, angle, coverage = {k: [] for k in checkpoints}, {k: [] for k in checkpoints}, {k: [] for k in checkpoints}
    moved = []
    success_agree = 0
    for (poses, coverages), record in zip(reference, ours):
        assert record.get("error") is None, record.get("error")
        mine = np.array([step["block"] for step in record["steps"]])
        my_coverage = np.array([step["progress"] for step in record["steps"]])
        moved.append(np.linalg.norm(poses[-1, :2] - poses[0, :2]))
        for k in checkpoints:
            if k <= len(poses):
                position[k].append(np.linalg.norm(mine[k - 1, :2] - poses[k - 1, :2]))
                difference = (mine[k - 1, 2] - poses[k - 1, 2] + math.pi) % (2 * math.pi) - math.pi
                angle[k].append(abs(math.degrees(difference)))
                coverage[k].append(abs(my_coverage[k - 1] - coverages[k - 1]))
        success_agree += int((coverages.max() > 0.95) == (my_coverage.max() > 0.95))
    report = {"episodes": args.episodes, "steps_per_episode": [len(e["actions"]) for e in episodes],
              "median_block_travel": float(np.median(moved)), "by_step": {}}
    print(f"{args.episodes} episodes of 4 pushes each (median {int(np.median(report['steps_per_episode']))} steps); "
          f"the block travels {report['median_block_travel']:.0f} units (median) in the reference")
    print("after step | position diff (units) median / p90 | angle diff (deg) median / p90 | coverage diff median / p90")
    for k in checkpoints:
        if not position[k]:
            continue
        row = {name: [float(np.median(values[k])), float(np.percentile(values[k], 90))]
               for name, values in (("position", position), ("angle", angle), ("coverage", coverage))}
        report["by_step"][k] = row
        print(f"{k:>10} | {row['position'][0]:8.2f} / {row['position'][1]:8.2f} | {row['angle'][0]:7.2f} / "
              f"{row['angle'][1]:7.2f} | {row['coverage'][0]:.4f} / {row['coverage'][1]:.4f}")
    print(f"success (coverage > 0.95 at some step) agrees in {success_agree} of {args.episodes} episodes")
    report["success_agreement"] = success_agree
    if args.json:
        json.dump(report, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
