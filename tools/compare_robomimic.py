#!/usr/bin/env python3
"""Compare flowpolicy's robomimic_lift with robosuite 1.5.2's Lift (Panda, OSC_POSE, 20 Hz) from the same starts.

    ~/.cache/flowpolicy/venv-robosuite/bin/python tools/compare_robomimic.py [--episodes 5] [--flowpolicy PATH]

Needs robosuite 1.5.2 and MuJoCo 3.3 in the interpreter (python3 -m venv ~/.cache/flowpolicy/venv-robosuite &&
~/.cache/flowpolicy/venv-robosuite/bin/pip install robosuite==1.5.2 mujoco==3.3.7; MuJoCo 4 breaks robosuite 1.5.2).
For each episode, robosuite resets (its own random start); the script reads that start (arm joints, cube pose and
size), replays it in flowpolicy (`flowpolicy replay` with an exact start), drives both with the same delta-action
sequence (moves along each axis, turns about each axis, closes and opens the gripper), and reports the differences of
the initial observations and of the end-effector's response, step by step. Prints a summary and writes the details as
JSON with --json.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import robosuite as suite

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def action_sequence(steps):
    """A deterministic probe: 10-step segments along +x, -x, +y, -y, +z, -z, rotations about x, y, z and back,
    the gripper closing in the second half, with a smooth ramp at each segment's start."""
    actions = []
    segments = [(0, 0.8), (0, -0.8), (1, 0.8), (1, -0.8), (2, 0.8), (2, -0.8), (3, 0.6), (3, -0.6), (4, 0.6),
                (4, -0.6), (5, 0.8), (5, -0.8)]
    for k in range(steps):
        segment = (k // 10) % len(segments)
        axis, value = segments[segment]
        a = np.zeros(7)
        a[axis] = value * min(1.0, (k % 10 + 1) / 3)
        a[6] = -1.0 if k < steps // 2 else 1.0
        actions.append(a)
    return actions


def observation(obs):
    return np.concatenate([obs["object-state"], obs["robot0_eef_pos"], obs["robot0_eef_quat"], obs["robot0_gripper_qpos"]])


def quaternion_angle(a, b):
    """Angle (rad) between two x y z w quaternions."""
    d = abs(float(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))))
    return 2 * math.acos(min(1.0, d))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--flowpolicy", default=os.path.join(REPOSITORY, ".build/release/flowpolicy"))
    parser.add_argument("--json", help="write the per-step differences here")
    args = parser.parse_args()

    env = suite.make("Lift", robots="Panda", has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
                     control_freq=20, horizon=10_000, ignore_done=True, hard_reset=True)
    actions = action_sequence(args.steps)
    episodes, reference = [], []
    for e in range(args.episodes):
        np.random.seed(e)
        obs = env.reset()
        sim = env.sim
        robot = env.robots[0]
        joints = [float(sim.data.qpos[i]) for i in robot._ref_joint_pos_indexes]
        cube_joint = env.cube.joints[0]
        qpos = np.array(sim.data.get_joint_qpos(cube_joint))  # a copy: the accessor returns a view
        yaw = 2 * math.atan2(qpos[6], qpos[3])
        geom = sim.model.geom_name2id("cube_g0")
        half = [float(x) for x in sim.model.geom_size[geom]]
        run = {"initial": observation(obs), "steps": []}
        for a in actions:
            obs, _, _, _ = env.step(a)
            run["steps"].append(observation(obs))
        reference.append(run)
        episodes.append({"joints": joints, "object": [float(qpos[0]), float(qpos[1]), float(qpos[2]), yaw],
                         "cube_half_size": half, "actions": [list(map(float, a)) for a in actions],
                         "cube_mass": float(sim.model.body_mass[sim.model.body_name2id("cube_main")])})

    with tempfile.TemporaryDirectory() as work:
        episodes_path = os.path.join(work, "episodes.json")
        output = os.path.join(work, "replay.json")
        with open(episodes_path, "w") as stream:
            json.dump([{k: v for k, v in e.items() if k != "cube_mass"} for e in episodes], stream)
        subprocess.run([args.flowpolicy, "replay", "--task", "robomimic_lift", "--episodes", episodes_path,
                        "--json", output], check=True, stdout=subprocess.DEVNULL)
        with open(output) as stream:
            replay = json.load(stream)
    records = replay["episodes"] if isinstance(replay, dict) and "episodes" in replay else replay

    names = ["cube_pos"] * 3 + ["cube_quat"] * 4 + ["gripper_to_cube"] * 3 + ["eef_pos"] * 3 + ["eef_quat"] * 4 + \
            ["gripper_qpos"] * 2
    initial_diff = []
    eef_pos, eef_angle, gripper, cube = [], [], [], []
    eef_travel = []
    for e, (ours, theirs) in enumerate(zip(records, reference)):
        if ours.get("error"):
            sys.exit(f"flowpolicy replay failed on episode {e}: {ours['error']}")
        initial_diff.append(np.abs(np.array(ours["initial"]) - theirs["initial"]))
        for k, step in enumerate(ours["steps"]):
            a, b = np.array(step["observation"]), theirs["steps"][k]
            eef_pos.append(np.linalg.norm(a[10:13] - b[10:13]))
            eef_angle.append(quaternion_angle(a[13:17], b[13:17]))
            gripper.append(np.max(np.abs(a[17:19] - b[17:19])))
            cube.append(np.linalg.norm(a[0:3] - b[0:3]))
        path = np.array([s[10:13] for s in theirs["steps"]])
        eef_travel.append(float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))))
    initial_diff = np.max(np.array(initial_diff), axis=0)
    print(f"robosuite {suite.__version__} Lift vs flowpolicy robomimic_lift: {args.episodes} episodes x {args.steps} steps "
          f"(same starts, same actions)")
    for name in dict.fromkeys(names):
        indexes = [i for i, n in enumerate(names) if n == name]
        print(f"  initial {name:16s} max |diff| {np.max(initial_diff[indexes]):.2e}")
    print(f"  eef position    |diff| mean {np.mean(eef_pos) * 1e6:.2f} um, max {np.max(eef_pos) * 1e6:.2f} um "
          f"(robosuite's end-effector travels {np.mean(eef_travel):.2f} m per episode)")
    print(f"  eef orientation angle mean {math.degrees(np.mean(eef_angle)):.2e} deg, max {math.degrees(np.max(eef_angle)):.2e} deg")
    print(f"  gripper qpos    |diff| mean {np.mean(gripper) * 1e6:.2f} um, max {np.max(gripper) * 1e6:.2f} um")
    print(f"  cube position   |diff| mean {np.mean(cube) * 1000:.3f} mm, max {np.max(cube) * 1000:.3f} mm")
    print(f"  cube mass robosuite {episodes[0]['cube_mass']:.6f} kg; flowpolicy uses density 1000 x volume "
          f"{1000 * 8 * np.prod(episodes[0]['cube_half_size']):.6f} kg")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"eef_position_m": list(map(float, eef_pos)), "eef_angle_rad": list(map(float, eef_angle)),
                       "gripper_m": list(map(float, gripper)), "cube_m": list(map(float, cube)),
                       "initial_max_abs": list(map(float, initial_diff))}, stream)


if __name__ == "__main__":
    main()
