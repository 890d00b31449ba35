#!/usr/bin/env python3
"""Compare flowpolicy's Franka Kitchen with Gymnasium-Robotics 1.4.2: same start, same actions, how far apart?

    python tools/compare_kitchen.py [--dataset demos.safetensors] [--episodes 8] [--random 4]
                                    [--flowpolicy .build/release/flowpolicy] [--json report.json]

Needs `gymnasium-robotics==1.4.2` and `mujoco` 3.x (e.g. `pip install gymnasium-robotics==1.4.2 mujoco==3.3.7` in a
virtual environment; 1.4.2 fails with mujoco 4), and `safetensors` for --dataset.

Action sequences: the first --episodes expert episodes of a dataset written by `flowpolicy collect --task
franka_kitchen` (they open doors, turn knobs, carry the kettle: contact-rich), padded to 280 steps with zero actions,
and --random smooth random sequences (sums of sinusoids, |a| <= 0.6). Each runs from the reference's `init_qpos`
with zero velocities and no observation noise (noise would move the action targets differently in each
implementation) in three simulations:

- reference: Gymnasium-Robotics `FrankaKitchen-v1` (all seven subtasks requested, no termination), MuJoCo 3.x;
- flowpolicy: `flowpolicy replay --task franka_kitchen` with the repository's task.yaml (collision settings on);
- flowpolicy, scene as loaded: the same with the collision settings off (visual geoms in the collision loops, no
  exclusions), to show that those settings change nothing.

Reported: the largest absolute qpos difference (robot joints, kitchen objects, kettle) after 50 and 280 steps, over
sequences, for flowpolicy vs reference and flowpolicy vs scene-as-loaded; and the subtasks each completes.
flowpolicy's qpos come from its `full` observation (float32: differences below ~3e-7 are rounding).
"""
import argparse
import json
import math
import os
import re
import subprocess
import tempfile

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBTASKS = ["bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet", "microwave", "kettle"]
CHECKPOINTS = (50, 280)


def random_sequences(count, steps, seed):
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(count):
        t = np.arange(steps)[:, None]
        action = np.zeros((steps, 9))
        for _ in range(3):
            period = rng.uniform(20, 120, size=9)
            phase = rng.uniform(0, 2 * math.pi, size=9)
            action += rng.uniform(0.05, 0.2, size=9) * np.sin(2 * math.pi * t / period + phase)
        sequences.append(np.clip(action, -0.6, 0.6))
    return sequences


def dataset_sequences(path, count, steps):
    from safetensors.numpy import load_file

    data = load_file(path)
    ends = data["episode_ends"]
    sequences = []
    start = 0
    for end in ends[:count]:
        actions = data["action"][start:end].astype(np.float64)
        padded = np.zeros((steps, actions.shape[1]))
        padded[: min(steps, len(actions))] = actions[:steps]
        sequences.append(padded)
        start = end
    return sequences


def run_reference(sequences):
    import gymnasium as gym
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FrankaKitchen-v1", tasks_to_complete=SUBTASKS, terminate_on_tasks_completed=False,
                   robot_noise_ratio=0.0, object_noise_ratio=0.0, max_episode_steps=10_000).unwrapped
    trajectories, completions = [], []
    for actions in sequences:
        env.reset(seed=0)
        qpos, done = [], set()
        for action in actions:
            _, _, _, _, info = env.step(action)
            qpos.append(env.data.qpos.copy())
            done.update(info["step_task_completions"])
        trajectories.append(np.array(qpos))
        completions.append(sorted(done))
    return trajectories, completions


def task_folder(root, collision):
    """A copy of tasks/franka_kitchen/task.yaml without noise, all subtasks, no termination, `full` observations."""
    text = open(os.path.join(REPOSITORY, "tasks", "franka_kitchen", "task.yaml")).read()
    replacements = {
        r"(\n  observation:) *\w+": r"\1 full",
        r"(\n  tasks:) *\[[^\]]*\]": r"\1 [" + ", ".join(SUBTASKS) + "]",
        r"(\n  terminate_on_tasks_completed:) *\w+": r"\1 false",
        r"(\n  robot_noise_ratio:) *[0-9.e-]+": r"\1 0",
        r"(\n  object_noise_ratio:) *[0-9.e-]+": r"\1 0",
        r"(\n  max_steps:) *\d+": r"\1 10000",
    }
    for pattern, replacement in replacements.items():
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"task.yaml: no match for {pattern}"
    if not collision:
        text, count = re.subn(r"\n  collision:\n(    .*\n|\s*#.*\n)*", "\n  collision:\n    skip_visual_geoms: false\n"
                              "    box_prefilter: false\n    exclude: []\n", text)
        assert count == 1, "task.yaml: no collision section"
    folder = os.path.join(root, "tasks", "franka_kitchen")
    os.makedirs(folder)
    with open(os.path.join(folder, "task.yaml"), "w") as stream:
        stream.write(text)
    return os.path.join(root, "tasks")


def run_flowpolicy(binary, sequences, collision):
    with tempfile.TemporaryDirectory() as root:
        tasks = task_folder(root, collision)
        episodes = os.path.join(root, "episodes.json")
        with open(episodes, "w") as stream:
            json.dump([{"seed": 0, "actions": actions.tolist()} for actions in sequences], stream)
        output = os.path.join(root, "steps.json")
        subprocess.run([binary, "replay", "--task", "franka_kitchen", "--episodes", episodes, "--json", output],
                       check=True, env=dict(os.environ, FLOWPOLICY_TASKS=tasks), stdout=subprocess.DEVNULL)
        records = json.load(open(output))
    trajectories = []
    for record in records:
        if record.get("error"):
            raise SystemExit(f"flowpolicy replay stopped: {record['error']}")
        observations = np.array([step["observation"] for step in record["steps"]], dtype=np.float64)
        trajectories.append(np.concatenate([observations[:, 0:9], observations[:, 18:39]], axis=1))
    return trajectories


def completed(qpos):
    goals = {"bottom burner": ([11, 12], [-0.88, -0.01]), "top burner": ([15, 16], [-0.92, -0.01]),
             "light switch": ([17, 18], [-0.69, -0.05]), "slide cabinet": ([19], [0.37]),
             "hinge cabinet": ([20, 21], [0.0, 1.45]), "microwave": ([22], [-0.75]),
             "kettle": ([23, 24, 25, 26, 27, 28, 29], [-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06])}
    return sorted(name for name, (index, goal) in goals.items()
                  if (np.linalg.norm(qpos[:, index] - np.array(goal), axis=1) < 0.3).any())


def differences(a, b):
    report = {}
    for k in CHECKPOINTS:
        gap = np.abs(a[k - 1] - b[k - 1])
        report[str(k)] = {"all": float(gap.max()), "robot": float(gap[:9].max()), "objects": float(gap[9:23].max()),
                          "kettle": float(gap[23:].max())}
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", help="a franka_kitchen dataset from `flowpolicy collect` (expert actions)")
    parser.add_argument("--episodes", type=int, default=8, help="expert episodes to take from the dataset")
    parser.add_argument("--random", type=int, default=4, help="smooth random action sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flowpolicy", default=os.path.join(REPOSITORY, ".build", "release", "flowpolicy"))
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()

    steps = max(CHECKPOINTS)
    sequences, kinds = [], []
    if args.dataset:
        expert = dataset_sequences(args.dataset, args.episodes, steps)
        sequences += expert
        kinds += ["expert"] * len(expert)
    sequences += random_sequences(args.random, steps, args.seed)
    kinds += ["random"] * args.random

    reference, reference_done = run_reference(sequences)
    optimized = run_flowpolicy(args.flowpolicy, sequences, collision=True)
    as_loaded = run_flowpolicy(args.flowpolicy, sequences, collision=False)

    rows = []
    for i, kind in enumerate(kinds):
        rows.append({"sequence": i, "kind": kind,
                     "flowpolicy_vs_reference": differences(optimized[i], reference[i]),
                     "flowpolicy_vs_scene_as_loaded": differences(optimized[i], as_loaded[i]),
                     "subtasks_reference": reference_done[i], "subtasks_flowpolicy": completed(optimized[i])})
    summary = {}
    for name in ("flowpolicy_vs_reference", "flowpolicy_vs_scene_as_loaded"):
        summary[name] = {k: {part: max(row[name][k][part] for row in rows) for part in ("all", "robot", "objects",
                                                                                         "kettle")}
                         for k in map(str, CHECKPOINTS)}
    agree = sum(row["subtasks_reference"] == row["subtasks_flowpolicy"] for row in rows)

    import gymnasium_robotics
    import mujoco

    print(f"reference: Gymnasium-Robotics {gymnasium_robotics.__version__} FrankaKitchen-v1 on MuJoCo "
          f"{mujoco.__version__}; {len(rows)} sequences ({kinds.count('expert')} expert, {kinds.count('random')} random)")
    print("largest |qpos difference| (all / robot / objects / kettle):")
    for name, label in (("flowpolicy_vs_reference", "flowpolicy vs reference"),
                        ("flowpolicy_vs_scene_as_loaded", "collision settings on vs off")):
        for k in map(str, CHECKPOINTS):
            s = summary[name][k]
            print(f"  {label:30s} after {k:>3s} steps: {s['all']:.2e}  ({s['robot']:.2e} / {s['objects']:.2e} / "
                  f"{s['kettle']:.2e})")
    for row in rows:
        r = row["flowpolicy_vs_reference"]
        print(f"  sequence {row['sequence']:2d} ({row['kind']}): {r['50']['all']:.2e} after 50, {r['280']['all']:.2e} "
              f"after 280; subtasks reference {row['subtasks_reference']}, flowpolicy {row['subtasks_flowpolicy']}")
    print(f"same subtasks completed in {agree} of {len(rows)} sequences")
    if args.json:
        # Atomically: a temporary file beside the report, then a rename.
        temporary = args.json + ".tmp"
        with open(temporary, "w") as stream:
            json.dump({"summary": summary, "sequences": rows, "same_subtasks": agree}, stream, indent=1)
        os.replace(temporary, args.json)


if __name__ == "__main__":
    main()
