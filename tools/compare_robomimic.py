#!/usr/bin/env python3
"""Compare flowpolicy's robomimic_lift / robomimic_can / robomimic_square with robosuite 1.5.2's Lift / PickPlaceCan /
NutAssemblySquare (Panda, OSC_POSE, 20 Hz) from the same starts.

    ~/.cache/flowpolicy/venv-robosuite/bin/python tools/compare_robomimic.py [--task lift|can|square] [--episodes 5]

Needs robosuite 1.5.2 and MuJoCo 3.3 in the interpreter (python3 -m venv ~/.cache/flowpolicy/venv-robosuite &&
~/.cache/flowpolicy/venv-robosuite/bin/pip install robosuite==1.5.2 mujoco==3.3.7; MuJoCo 4 breaks robosuite 1.5.2).
For each episode, robosuite resets (its own random start); the script reads that start (arm joints, object pose and,
for Lift, the cube's size), replays it in flowpolicy (`flowpolicy replay` with an exact start), drives both with the same delta-action
sequence (moves along each axis, turns about each axis, closes and opens the gripper), and reports the differences of
the initial observations and of the end-effector's response, step by step. Prints a summary and writes the details as
JSON with --json.

Can and Square: flowpolicy's `object` is in robomimic's dataset order (Can_pos, Can_quat, Can_to_robot0_eef_pos,
Can_to_robot0_eef_quat; SquareNut_... likewise); robosuite 1.5's `object-state` has the relative parts first and
reports them as zeros at reset (its sensor cache does not hold the object's pose yet). The script therefore builds the
reference vector from robosuite's named keys, and at reset computes the relative pose from robosuite's own object and
end-effector poses with robosuite's transform_utils (the same formula its sensors use on later steps).
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
import robosuite.utils.transform_utils as T

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


ENVIRONMENTS = {"lift": "Lift", "can": "PickPlaceCan", "square": "NutAssemblySquare"}
OBJECTS = {"lift": "cube", "can": "Can", "square": "SquareNut"}


def observation(obs, task, initial=False):
    if task == "lift":
        return np.concatenate([obs["object-state"], obs["robot0_eef_pos"], obs["robot0_eef_quat"],
                               obs["robot0_gripper_qpos"]])
    o = OBJECTS[task]
    relative_pos, relative_quat = obs[f"{o}_to_robot0_eef_pos"], obs[f"{o}_to_robot0_eef_quat"]
    if initial:
        world_in_gripper = T.pose_inv(T.pose2mat((obs["robot0_eef_pos"], obs["robot0_eef_quat"])))
        relative_pos, relative_quat = T.mat2pose(
            T.pose_in_A_to_pose_in_B(T.pose2mat((obs[f"{o}_pos"], obs[f"{o}_quat"])), world_in_gripper))
    return np.concatenate([obs[f"{o}_pos"], obs[f"{o}_quat"], relative_pos, relative_quat, obs["robot0_eef_pos"],
                           obs["robot0_eef_quat"], obs["robot0_gripper_qpos"]])


def quaternion_angle(a, b):
    """Angle (rad) between two x y z w quaternions."""
    d = abs(float(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))))
    return 2 * math.acos(min(1.0, d))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["lift", "can", "square"], default="lift")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--flowpolicy", default=os.path.join(REPOSITORY, ".build/release/flowpolicy"))
    parser.add_argument("--json", help="write the per-step differences here")
    args = parser.parse_args()

    task = args.task
    name = ENVIRONMENTS[task]
    object_name = OBJECTS[task]
    env = suite.make(name, robots="Panda", has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
                     control_freq=20, horizon=10_000, ignore_done=True, hard_reset=True)
    actions = action_sequence(args.steps)
    episodes, reference = [], []
    for e in range(args.episodes):
        np.random.seed(e)
        obs = env.reset()
        sim = env.sim
        robot = env.robots[0]
        joints = [float(sim.data.qpos[i]) for i in robot._ref_joint_pos_indexes]
        obj = {"lift": lambda: env.cube, "can": lambda: env.objects[env.object_id],
               "square": lambda: env.nuts[env.nut_id]}[task]()
        qpos = np.array(sim.data.get_joint_qpos(obj.joints[0]))  # a copy: the accessor returns a view
        yaw = 2 * math.atan2(qpos[6], qpos[3])
        run = {"initial": observation(obs, task, initial=True), "steps": []}
        for a in actions:
            obs, _, _, _ = env.step(a)
            run["steps"].append(observation(obs, task))
        reference.append(run)
        episode = {"joints": joints, "object": [float(qpos[0]), float(qpos[1]), float(qpos[2]), yaw],
                   "actions": [list(map(float, a)) for a in actions],
                   "object_mass": float(sim.model.body_mass[sim.model.body_name2id(f"{object_name}_main")])}
        if task == "lift":
            episode["cube_half_size"] = [float(x) for x in sim.model.geom_size[sim.model.geom_name2id("cube_g0")]]
        episodes.append(episode)

    with tempfile.TemporaryDirectory() as work:
        episodes_path = os.path.join(work, "episodes.json")
        output = os.path.join(work, "replay.json")
        with open(episodes_path, "w") as stream:
            json.dump([{k: v for k, v in e.items() if k != "object_mass"} for e in episodes], stream)
        subprocess.run([args.flowpolicy, "replay", "--task", f"robomimic_{task}", "--episodes", episodes_path,
                        "--json", output], check=True, stdout=subprocess.DEVNULL)
        with open(output) as stream:
            replay = json.load(stream)
    records = replay["episodes"] if isinstance(replay, dict) and "episodes" in replay else replay

    if task == "lift":
        names = ["cube_pos"] * 3 + ["cube_quat"] * 4 + ["gripper_to_cube"] * 3
    else:
        names = [f"{object_name}_pos"] * 3 + [f"{object_name}_quat"] * 4 + [f"{object_name}_to_eef_pos"] * 3 + \
            [f"{object_name}_to_eef_quat"] * 4
    r = len(names)  # where the robot's part starts
    names += ["eef_pos"] * 3 + ["eef_quat"] * 4 + ["gripper_qpos"] * 2
    initial_diff = []
    eef_pos, eef_angle, gripper, cube = [], [], [], []
    eef_travel = []
    for e, (ours, theirs) in enumerate(zip(records, reference)):
        if ours.get("error"):
            sys.exit(f"flowpolicy replay failed on episode {e}: {ours['error']}")
        initial_diff.append(np.abs(np.array(ours["initial"]) - theirs["initial"]))
        for k, step in enumerate(ours["steps"]):
            a, b = np.array(step["observation"]), theirs["steps"][k]
            eef_pos.append(np.linalg.norm(a[r:r + 3] - b[r:r + 3]))
            eef_angle.append(quaternion_angle(a[r + 3:r + 7], b[r + 3:r + 7]))
            gripper.append(np.max(np.abs(a[r + 7:r + 9] - b[r + 7:r + 9])))
            cube.append(np.linalg.norm(a[0:3] - b[0:3]))
        path = np.array([s[r:r + 3] for s in theirs["steps"]])
        eef_travel.append(float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))))
    initial_diff = np.max(np.array(initial_diff), axis=0)
    print(f"robosuite {suite.__version__} {name} vs flowpolicy robomimic_{task}: {args.episodes} episodes x {args.steps} steps "
          f"(same starts, same actions)")
    for name in dict.fromkeys(names):
        indexes = [i for i, n in enumerate(names) if n == name]
        print(f"  initial {name:16s} max |diff| {np.max(initial_diff[indexes]):.2e}")
    print(f"  eef position    |diff| mean {np.mean(eef_pos) * 1e6:.2f} um, max {np.max(eef_pos) * 1e6:.2f} um "
          f"(robosuite's end-effector travels {np.mean(eef_travel):.2f} m per episode)")
    print(f"  eef orientation angle mean {math.degrees(np.mean(eef_angle)):.2e} deg, max {math.degrees(np.max(eef_angle)):.2e} deg")
    print(f"  gripper qpos    |diff| mean {np.mean(gripper) * 1e6:.2f} um, max {np.max(gripper) * 1e6:.2f} um")
    print(f"  {object_name} position |diff| mean {np.mean(cube) * 1000:.3f} mm, max {np.max(cube) * 1000:.3f} mm")
    if task == "lift":
        print(f"  cube mass robosuite {episodes[0]['object_mass']:.6f} kg; flowpolicy uses density 1000 x volume "
              f"{1000 * 8 * np.prod(episodes[0]['cube_half_size']):.6f} kg")
    else:
        print(f"  {object_name} mass robosuite {episodes[0]['object_mass']:.6f} kg (RobomimicTests checks flowpolicy's "
              f"against it)")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"eef_position_m": list(map(float, eef_pos)), "eef_angle_rad": list(map(float, eef_angle)),
                       "gripper_m": list(map(float, gripper)), "cube_m": list(map(float, cube)),
                       "initial_max_abs": list(map(float, initial_diff))}, stream)


if __name__ == "__main__":
    main()
