"""flowpolicy_data: import from and export to LeRobot, robomimic and Diffusion Policy zarr (no Swift process needed).

The source files are written by the formats' own libraries in the layouts their projects document: pyarrow parquet
in LeRobot's v2.1 and v3.0 layouts, h5py in robomimic's (with masks and env_args), zarr 2 in Diffusion Policy's
replay-buffer layout. The checks: values arrive exactly (float32 of the source's values, in the documented order);
export then import gives bit-identical arrays; bad input (wrong format or version, a missing key, episodes of
different dimensions, NaN, a truncated file) gives one clear line naming the file, key and episode, and no output
file (an existing one is left as it was). Camera frames: robomimic's uint8 image keys written with h5py, LeRobot image
features as PNG in the parquet (Pillow) and video features as mp4 files (PyAV, libx264): PNG and HDF5 frames arrive
bit for bit, video frames within the codec's error, every shape exactly."""

import errno
import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numcodecs
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr
from PIL import Image
from safetensors import safe_open

CLIENTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CLIENTS))

from flowpolicy_data import (DataError, Dataset, export_lerobot, export_robomimic, export_zarr,  # noqa: E402
                             import_lerobot, import_robomimic, import_zarr, load_task, read_dataset, write_dataset)
from flowpolicy_data.__main__ import main  # noqa: E402

TASKS = CLIENTS.parents[1] / "tasks"


@pytest.fixture(scope="module")
def lift():
    return load_task("robomimic_lift", str(TASKS))


@pytest.fixture(scope="module")
def can():
    return load_task("robomimic_can", str(TASKS))


@pytest.fixture(scope="module")
def pusht():
    return load_task("pusht", str(TASKS))


def unit_quaternions(rng, count):
    q = rng.normal(size=(count, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def rotations(q):
    """x y z w -> [L, 3, 3], written out independently of the package's own helper."""
    out = []
    for x, y, z, w in q:
        out.append([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return np.array(out)


def lift_demo(rng, length, convention="robosuite<=1.4"):
    """robomimic's Lift low-dim keys (float64, as robomimic stores them). object = cube_pos, cube_quat,
    gripper_to_cube_pos, the last eef - cube in robosuite <= 1.4 (robomimic's published files), cube - eef in 1.5."""
    cube = rng.normal(0, 0.03, (length, 3)) + [0, 0, 0.83]
    eef = rng.normal(0, 0.1, (length, 3)) + [-0.1, 0, 1.0]
    relative = eef - cube if convention == "robosuite<=1.4" else cube - eef
    return {"object": np.concatenate([cube, unit_quaternions(rng, length), relative], axis=1),
            "robot0_eef_pos": eef, "robot0_eef_quat": unit_quaternions(rng, length),
            "robot0_gripper_qpos": rng.uniform(-0.04, 0.04, (length, 2)),
            "robot0_joint_pos": rng.normal(size=(length, 7))}


def can_demo(rng, length, order="robosuite<=1.4"):
    """PickPlaceCan's keys; object = Can_pos, Can_quat, Can_to_robot0_eef_pos, Can_to_robot0_eef_quat (robosuite
    <= 1.4) or the relative pair first (robosuite 1.5)."""
    position = rng.normal(0, 0.1, (length, 3)) + [0.1, -0.25, 0.86]
    eef = rng.normal(0, 0.1, (length, 3)) + [0, 0, 1.0]
    eef_quat = unit_quaternions(rng, length)
    relative = np.einsum("nji,nj->ni", rotations(eef_quat), position - eef)
    pose = [position, unit_quaternions(rng, length)]
    relative_pose = [relative, unit_quaternions(rng, length)]
    parts = pose + relative_pose if order == "robosuite<=1.4" else relative_pose + pose
    return {"object": np.concatenate(parts, axis=1), "robot0_eef_pos": eef, "robot0_eef_quat": eef_quat,
            "robot0_gripper_qpos": rng.uniform(-0.04, 0.04, (length, 2))}


ENV_ARGS = {"env_name": "Lift", "env_version": "1.4.1", "type": 1,
            "env_kwargs": {"robots": ["Panda"], "control_freq": 20, "use_object_obs": True}}


def write_robomimic(path, demos, masks=None, env_args=ENV_ARGS, actions=None):
    """A robomimic file as robomimic's scripts write it (h5py): data attrs, demo groups, masks of byte strings."""
    rng = np.random.default_rng(1)
    actions = actions or {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args)
        total = 0
        for index, obs in enumerate(demos):
            length = len(next(iter(obs.values())))
            demo = data.create_group(f"demo_{index}")
            demo.attrs["num_samples"] = length
            for key, values in obs.items():
                demo.create_dataset(f"obs/{key}", data=values)
                demo.create_dataset(f"next_obs/{key}", data=values)
            demo.create_dataset("actions", data=actions.get(index, rng.uniform(-1, 1, (length, 7))))
            demo.create_dataset("rewards", data=np.zeros(length))
            demo.create_dataset("dones", data=np.zeros(length))
            demo.create_dataset("states", data=rng.normal(size=(length, 32)))
            total += length
        data.attrs["total"] = total
        for name, members in (masks or {}).items():
            f.create_dataset(f"mask/{name}", data=np.array(members, dtype="S"))


def read_robomimic_arrays(path, keys, names=None):
    with h5py.File(path, "r") as f:
        names = names or sorted(f["data"].keys(), key=lambda n: int(n[5:]))
        obs = np.concatenate([np.concatenate([f[f"data/{n}/obs/{k}"][()] for k in keys], axis=1) for n in names])
        action = np.concatenate([f[f"data/{n}/actions"][()] for n in names])
    return obs, action


def write_lerobot_v21(root, episodes, fps=10, extra_features=None, list_type="variable", videos=None, images=None):
    """LeRobot v2.1: meta/info.json, episodes.jsonl, tasks.jsonl, one parquet file per episode. `videos` (frames per
    episode) writes observation.image's mp4 files; `images` ({key: frames per episode}) adds image features."""
    root = Path(root)
    (root / "meta").mkdir(parents=True)
    Do, Da = episodes[0][0].shape[1], episodes[0][1].shape[1]
    features = {"observation.state": {"dtype": "float32", "shape": [Do], "names": {"motors": None}},
                "action": {"dtype": "float32", "shape": [Da], "names": {"motors": None}},
                "observation.image": {"dtype": "video", "shape": [96, 96, 3], "names": ["height", "width", "channel"]},
                **{k: {"dtype": d, "shape": [1], "names": None} for k, d in
                   (("episode_index", "int64"), ("frame_index", "int64"), ("timestamp", "float32"),
                    ("next.reward", "float32"), ("index", "int64"), ("task_index", "int64"))}}
    features.update(extra_features or {})
    for key, frames in (images or {}).items():
        features[key] = {"dtype": "image", "shape": list(frames[0].shape[1:]), "names": ["height", "width", "channel"]}
    if videos is not None:
        features["observation.image"]["shape"] = list(videos[0].shape[1:])
    total = sum(len(o) for o, _ in episodes)
    info = {"codebase_version": "v2.1", "robot_type": "pusht", "total_episodes": len(episodes), "total_frames": total,
            "total_tasks": 1, "total_videos": len(episodes), "total_chunks": 1, "chunks_size": 1000, "fps": fps,
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "Push the T into place."}) + "\n")
    (root / "meta" / "episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": i, "tasks": ["Push the T into place."], "length": len(o)}) + "\n"
        for i, (o, _) in enumerate(episodes)))
    index = 0
    for i, (obs, action) in enumerate(episodes):
        length = len(obs)
        kind = (lambda d: pa.list_(pa.float32())) if list_type == "variable" else (lambda d: pa.list_(pa.float32(), d))
        table = pa.table({
            "observation.state": pa.array(obs.tolist(), type=kind(obs.shape[1])),
            "action": pa.array(action.tolist(), type=kind(action.shape[1])),
            "episode_index": pa.array([i] * length, type=pa.int64()),
            "frame_index": pa.array(range(length), type=pa.int64()),
            "timestamp": pa.array(np.arange(length, dtype=np.float32) / fps),
            "next.reward": pa.array(np.zeros(length, dtype=np.float32)),
            "index": pa.array(range(index, index + length), type=pa.int64()),
            "task_index": pa.array([0] * length, type=pa.int64()),
            **{key: png_column(frames[i]) for key, frames in (images or {}).items()},
        })
        index += length
        if videos is not None:
            write_mp4(root / f"videos/chunk-000/observation.image/episode_{i:06d}.mp4", videos[i], fps)
        path = root / f"data/chunk-000/episode_{i:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)


def write_lerobot_v30(root, episodes, fps=10, rows_per_file=None, images=None, videos=None):
    """LeRobot v3.0: meta/info.json, meta/episodes/chunk-000/file-000.parquet, meta/tasks.parquet, data files holding
    several episodes each (rows_per_file: a new file once a file holds at least that many rows). `images` ({key:
    frames per episode}) adds image features; `videos` (frames per episode) writes observation.images.front as one mp4
    shared by every episode, each at its from_timestamp."""
    root = Path(root)
    Do, Da = episodes[0][0].shape[1], episodes[0][1].shape[1]
    files, current, start = [], [], 0
    for i, (obs, action) in enumerate(episodes):
        current.append(i)
        if rows_per_file and sum(len(episodes[j][0]) for j in current) >= rows_per_file:
            files.append(current)
            current = []
    if current:
        files.append(current)
    episode_rows = {"episode_index": [], "tasks": [], "length": [], "data/chunk_index": [], "data/file_index": [],
                    "dataset_from_index": [], "dataset_to_index": []}
    for file_index, members in enumerate(files):
        rows = {"observation.state": [], "action": [], "timestamp": [], "frame_index": [], "episode_index": [],
                "index": [], "task_index": [], **{key: [] for key in images or {}}}
        for i in members:
            obs, action = episodes[i]
            length = len(obs)
            rows["observation.state"] += obs.tolist()
            rows["action"] += action.tolist()
            rows["timestamp"] += (np.arange(length, dtype=np.float32) / fps).tolist()
            rows["frame_index"] += list(range(length))
            rows["episode_index"] += [i] * length
            rows["index"] += list(range(start, start + length))
            rows["task_index"] += [0] * length
            for key, frames in (images or {}).items():
                rows[key] += png_column(frames[i]).to_pylist()
            for key, value in (("episode_index", i), ("tasks", ["Lift the cube."]), ("length", length),
                               ("data/chunk_index", 0), ("data/file_index", file_index),
                               ("dataset_from_index", start), ("dataset_to_index", start + length)):
                episode_rows[key].append(value)
            start += length
        table = pa.table({
            "observation.state": pa.array(rows["observation.state"], type=pa.list_(pa.float32(), Do)),
            "action": pa.array(rows["action"], type=pa.list_(pa.float32(), Da)),
            "timestamp": pa.array(rows["timestamp"], type=pa.float32()),
            **{k: pa.array(rows[k], type=pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")},
            **{key: pa.array(rows[key], type=PNG_STRUCT) for key in images or {}}})
        path = root / f"data/chunk-000/file-{file_index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    if videos is not None:
        key = "videos/observation.images.front"
        starts = np.concatenate([[0], np.cumsum([len(v) for v in videos])]) / fps
        episode_rows.update({f"{key}/chunk_index": [0] * len(episodes), f"{key}/file_index": [0] * len(episodes),
                             f"{key}/from_timestamp": starts[:-1].tolist(), f"{key}/to_timestamp": starts[1:].tolist()})
        write_mp4(root / "videos/observation.images.front/chunk-000/file-000.mp4", np.concatenate(videos), fps)
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table(episode_rows), root / "meta/episodes/chunk-000/file-000.parquet")
    # As pandas writes LeRobot's tasks DataFrame (the task strings are its index).
    pq.write_table(pa.table({"task_index": [0], "__index_level_0__": pa.array(["Lift the cube."], pa.large_string())}),
                   root / "meta/tasks.parquet")
    features = {"observation.state": {"dtype": "float32", "shape": [Do], "names": None},
                "action": {"dtype": "float32", "shape": [Da], "names": None},
                "observation.images.front": {"dtype": "video", "shape": [84, 84, 3], "names": None},
                **{k: {"dtype": "int64", "shape": [1], "names": None}
                   for k in ("frame_index", "episode_index", "index", "task_index")},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None}}
    for key, frames in (images or {}).items():
        features[key] = {"dtype": "image", "shape": list(frames[0].shape[1:]), "names": ["height", "width", "channel"]}
    if videos is not None:
        features["observation.images.front"]["shape"] = list(videos[0].shape[1:])
    info = {"codebase_version": "v3.0", "robot_type": "panda", "total_episodes": len(episodes), "total_frames": start,
            "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", "features": features}
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


PNG_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png_column(frames):
    """Frames [L, H, W, 3] as LeRobot (Hugging Face datasets' Image feature) stores them: structs of PNG bytes."""
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": f"frame_{len(encoded):06d}.png"})
    return pa.array(encoded, type=PNG_STRUCT)


def write_mp4(path, frames, fps):
    """An H.264 mp4 as LeRobot's encoder writes one (yuv420p), frame i at i / fps seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "g": "4"}
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def camera_frames(rng, length, height=32, width=48, phase=0, noise=2):
    """Smooth frames with a moving square (what a video codec keeps well), and a little noise (what PNG must keep;
    a video codec smooths it away)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for step in range(length):
        frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, (step * 17 + phase) % 256)], axis=-1)
        left = (step * 3 + phase) % (width - 8)
        frame[8:16, left:left + 8] = [250, 30, 30]
        frames.append(frame)
    noisy = np.array(frames) + rng.integers(-noise, noise + 1, (length, height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_pusht_zarr(path, episodes):
    """Diffusion Policy's Push-T replay buffer (pusht_cchi_v7_replay.zarr): data/state [N, 5], data/keypoint
    [N, 9, 2], data/action [N, 2], data/n_contacts, meta/episode_ends; Blosc-compressed like its ReplayBuffer."""
    compressor = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
    root = zarr.group(store=zarr.DirectoryStore(str(path)), overwrite=True)
    data, meta = root.create_group("data"), root.create_group("meta")
    for key in ("state", "keypoint", "action"):
        values = np.concatenate([e[key] for e in episodes])
        data.array(key, values, chunks=(16,) + values.shape[1:], compressor=compressor)
    data.array("n_contacts", np.zeros((sum(len(e["action"]) for e in episodes), 1), dtype=np.float32))
    meta.array("episode_ends", np.cumsum([len(e["action"]) for e in episodes]).astype(np.int64))


def pusht_episode(rng, length):
    return {"state": rng.uniform(0, 512, (length, 5)).astype(np.float32),
            "keypoint": rng.uniform(0, 512, (length, 9, 2)).astype(np.float32),
            "action": rng.uniform(0, 512, (length, 2)).astype(np.float32)}


def run_cli(argv, capsys):
    """The command line in-process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def expect_clean_error(argv, capsys, out, *fragments):
    """One `error:` line naming every fragment, exit 1, and no output (nor a temporary file) left behind."""
    folder_before = sorted(os.listdir(os.path.dirname(out)))
    before = Path(out).read_bytes() if os.path.isfile(out) else None
    status, stdout, stderr = run_cli(argv, capsys)
    assert status == 1, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert sorted(os.listdir(os.path.dirname(out))) == folder_before
    if before is None:
        assert not os.path.exists(out)
    else:
        assert Path(out).read_bytes() == before
    return lines[0]


# --- robomimic -----------------------------------------------------------------------------------------------------

def test_robomimic_lift_maps_onto_the_task(tmp_path, lift, capsys):
    rng = np.random.default_rng(0)
    demos = [lift_demo(rng, n) for n in (30, 25, 40, 20)]
    source = tmp_path / "low_dim.hdf5"
    write_robomimic(source, demos, masks={"train": ["demo_0", "demo_2", "demo_3"], "valid": ["demo_1"]})
    out = tmp_path / "lift.safetensors"
    status, stdout, stderr = run_cli(["import", "--format", "robomimic", source, out, "--task", "robomimic_lift",
                                      "--filter", "train", "--tasks-folder", TASKS], capsys)
    assert status == 0, stderr
    assert "gripper_to_cube_pos negated" in stderr
    dataset = read_dataset(str(out))
    keys = ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]
    expected, action = read_robomimic_arrays(source, keys, ["demo_0", "demo_2", "demo_3"])
    expected[:, 7:10] = -expected[:, 7:10]  # robosuite <= 1.4's eef - cube becomes flowpolicy's cube - eef
    assert np.array_equal(dataset.obs, expected.astype(np.float32))
    assert np.array_equal(dataset.action, action.astype(np.float32))
    assert dataset.episode_ends.tolist() == [30, 70, 90]
    # The gripper-to-cube vector now is cube - eef, as in flowpolicy's Lift (robosuite 1.5).
    np.testing.assert_allclose(dataset.obs[:, 7:10], dataset.obs[:, 0:3] - dataset.obs[:, 10:13], atol=1e-6)
    metadata = dataset.metadata
    assert metadata["task"] == "robomimic_lift" and metadata["observation_mode"] == "low_dim"
    assert metadata["control_hz"] == "20.0"
    assert json.loads(metadata["env_args"]) == ENV_ARGS
    assert metadata["observation_keys"] == ",".join(keys)
    assert "filter train" in metadata["source"] and str(source) in metadata["source"]
    assert metadata["source_episodes"] == "train: demo_0,2-3"


def test_robomimic_lift_in_robosuite_15_convention_is_kept(tmp_path, lift):
    rng = np.random.default_rng(1)
    source = tmp_path / "new.hdf5"
    write_robomimic(source, [lift_demo(rng, 12, convention="robosuite1.5") for _ in range(3)])
    dataset = import_robomimic(str(source), layout=lift)
    expected, _ = read_robomimic_arrays(source, ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"])
    assert np.array_equal(dataset.obs, expected.astype(np.float32))
    assert "robosuite 1.5, as flowpolicy" in dataset.metadata["observation_check"]
    assert "observation_mapping" not in dataset.metadata


@pytest.mark.parametrize("order", ["robosuite<=1.4", "robosuite1.5"])
def test_robomimic_can_object_order(tmp_path, can, order):
    rng = np.random.default_rng(2)
    source = tmp_path / "can.hdf5"
    write_robomimic(source, [can_demo(rng, 15, order) for _ in range(3)])
    dataset = import_robomimic(str(source), layout=can)
    expected, _ = read_robomimic_arrays(source, ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"])
    if order == "robosuite1.5":
        expected[:, 0:14] = np.concatenate([expected[:, 7:14], expected[:, 0:7]], axis=1)
        assert "reordered" in dataset.metadata["observation_mapping"]
    assert np.array_equal(dataset.obs, expected.astype(np.float32))
    assert dataset.obs.shape[1] == 23 and dataset.metadata["observation_mode"] == "low_dim"


def test_robomimic_keys_in_the_order_given(tmp_path):
    rng = np.random.default_rng(3)
    source = tmp_path / "any.hdf5"
    write_robomimic(source, [lift_demo(rng, 10) for _ in range(2)])
    dataset = import_robomimic(str(source), obs_keys=["robot0_gripper_qpos", "robot0_joint_pos"])
    expected, _ = read_robomimic_arrays(source, ["robot0_gripper_qpos", "robot0_joint_pos"])
    assert np.array_equal(dataset.obs, expected.astype(np.float32))
    assert "task" not in dataset.metadata


def test_robomimic_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(4)
    out = tmp_path / "out.safetensors"
    base = ["import", "--format", "robomimic"]
    task = ["--task", "robomimic_lift", "--tasks-folder", TASKS]

    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    expect_clean_error(base + [text, out] + task, capsys, out, str(text), "not a readable HDF5 file")

    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as f:
        f.create_dataset("images", data=np.zeros(3))
    expect_clean_error(base + [other, out] + task, capsys, out, str(other), "no group 'data'", "images")

    demos = [lift_demo(rng, 10) for _ in range(4)]
    del demos[2]["robot0_eef_quat"]
    missing = tmp_path / "missing.hdf5"
    write_robomimic(missing, demos)
    expect_clean_error(base + [missing, out] + task, capsys, out, "data/demo_2/obs has no key 'robot0_eef_quat'",
                       "robot0_eef_pos, robot0_gripper_qpos, robot0_joint_pos")
    expect_clean_error(base + [missing, out] + task + ["--filter", "test"], capsys, out, "no filter mask/test")

    demos = [lift_demo(rng, 10) for _ in range(4)]
    demos[1]["object"] = np.zeros((10, 12))
    wide = tmp_path / "wide.hdf5"
    write_robomimic(wide, demos)
    expect_clean_error(base + [wide, out, "--obs-keys", "object,robot0_eef_pos"], capsys, out,
                       "episodes of different dimensions", "data/demo_1/obs/object is 12-D")

    demos = [lift_demo(rng, 10) for _ in range(4)]
    demos[3]["robot0_eef_pos"][4, 1] = np.nan
    broken = tmp_path / "nan.hdf5"
    write_robomimic(broken, demos)
    expect_clean_error(base + [broken, out] + task, capsys, out, str(broken), "data/demo_3", "obs/robot0_eef_pos",
                       "step 4")

    write_robomimic(tmp_path / "square.hdf5", [can_demo(rng, 10) for _ in range(2)])
    expect_clean_error(base + [tmp_path / "square.hdf5", out] + task, capsys, out, "obs/object is 14-D",
                       "robomimic_lift's object is 10-D")

    good = tmp_path / "good.hdf5"
    write_robomimic(good, [lift_demo(rng, 200) for _ in range(6)])
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expect_clean_error(base + [truncated, out] + task, capsys, out, str(truncated))

    # An existing output file is left exactly as it was.
    write_dataset(Dataset(np.ones((2, 19), np.float32), np.ones((2, 7), np.float32), np.array([2], np.int64)), str(out))
    expect_clean_error(base + [broken, out] + task, capsys, out, "data/demo_3")


# --- LeRobot -------------------------------------------------------------------------------------------------------

def episodes_of(rng, lengths, Do, Da):
    return [(rng.uniform(0, 512, (n, Do)).astype(np.float32), rng.uniform(0, 512, (n, Da)).astype(np.float32))
            for n in lengths]


@pytest.mark.parametrize("list_type", ["variable", "fixed"])
def test_lerobot_v21(tmp_path, pusht, capsys, list_type):
    rng = np.random.default_rng(5)
    episodes = episodes_of(rng, [12, 7, 30], 20, 2)
    root = tmp_path / "pusht_v21"
    write_lerobot_v21(root, episodes, list_type=list_type)
    out = tmp_path / "pusht.safetensors"
    status, _, stderr = run_cli(["import", "--format", "lerobot", root, out, "--task", "pusht", "--tasks-folder",
                                 TASKS, "--cameras", "none"], capsys)
    assert status == 0, stderr
    assert "observation.image (video)" in stderr
    dataset = read_dataset(str(out))
    assert np.array_equal(dataset.obs, np.concatenate([o for o, _ in episodes]))
    assert np.array_equal(dataset.action, np.concatenate([a for _, a in episodes]))
    assert dataset.episode_ends.tolist() == [12, 19, 49]
    assert dataset.metadata["control_hz"] == "10.0" and dataset.metadata["robot_type"] == "pusht"
    assert dataset.metadata["task"] == "pusht" and dataset.metadata["observation_mode"] == "keypoints"
    assert json.loads(dataset.metadata["lerobot_tasks"]) == ["Push the T into place."]
    assert dataset.metadata["source_format"] == "lerobot v2.1"


def test_lerobot_v30_several_files(tmp_path):
    rng = np.random.default_rng(6)
    episodes = episodes_of(rng, [9, 14, 5, 21, 8], 19, 7)
    root = tmp_path / "lift_v30"
    write_lerobot_v30(root, episodes, fps=20, rows_per_file=20)
    assert len(list((root / "data/chunk-000").iterdir())) == 3
    dataset = import_lerobot(str(root), cameras=[])
    assert np.array_equal(dataset.obs, np.concatenate([o for o, _ in episodes]))
    assert np.array_equal(dataset.action, np.concatenate([a for _, a in episodes]))
    assert dataset.episode_ends.tolist() == np.cumsum([9, 14, 5, 21, 8]).tolist()
    assert dataset.metadata["control_hz"] == "20.0"
    assert "observation.images.front (video)" in dataset.metadata["skipped"]
    assert "control_rate_mismatch" not in dataset.metadata
    lift = import_lerobot(str(root), layout=load_task("robomimic_lift", str(TASKS)), cameras=[])
    assert "control_rate_mismatch" not in lift.metadata and lift.metadata["observation_mode"] == "low_dim"
    slow = tmp_path / "slow"
    write_lerobot_v30(slow, episodes, fps=10)
    assert import_lerobot(str(slow), layout=load_task("robomimic_lift", str(TASKS)), cameras=[]).metadata[
        "control_rate_mismatch"] == "the data was recorded at 10 Hz, robomimic_lift runs at 20 Hz"
    assert json.loads(dataset.metadata["lerobot_tasks"]) == ["Lift the cube."]


def test_lerobot_state_keys_concatenate(tmp_path):
    rng = np.random.default_rng(7)
    episodes = episodes_of(rng, [6, 4], 2, 2)
    root = tmp_path / "two_keys"
    environment = [rng.uniform(size=(len(o), 16)).astype(np.float32) for o, _ in episodes]
    write_lerobot_v21(root, episodes, extra_features={
        "observation.environment_state": {"dtype": "float32", "shape": [16], "names": None}})
    for i, values in enumerate(environment):  # add the column to each episode file, as LeRobot's writer would
        path = root / f"data/chunk-000/episode_{i:06d}.parquet"
        table = pq.read_table(path)
        pq.write_table(table.append_column("observation.environment_state",
                                           pa.array(values.tolist(), type=pa.list_(pa.float32()))), path)
    dataset = import_lerobot(str(root), state_keys=["observation.environment_state", "observation.state"], cameras=[])
    expected = np.concatenate([np.concatenate([env, o], axis=1) for env, (o, _) in zip(environment, episodes)])
    assert np.array_equal(dataset.obs, expected)


def test_lerobot_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(8)
    out = tmp_path / "out.safetensors"
    base = ["import", "--format", "lerobot", "--cameras", "none"]

    expect_clean_error(base + [tmp_path / "nothing", out], capsys, out, "nothing", "not one")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README.md").write_text("hello")
    expect_clean_error(base + [plain, out], capsys, out, "no meta/info.json", "README.md")

    old = tmp_path / "old"
    write_lerobot_v21(old, episodes_of(rng, [5, 5], 2, 2))
    info = json.loads((old / "meta/info.json").read_text())
    info["codebase_version"] = "v1.6"
    (old / "meta/info.json").write_text(json.dumps(info))
    expect_clean_error(base + [old, out], capsys, out, "codebase_version 'v1.6' is not supported", "v2.1", "v3.0")

    root = tmp_path / "v21"
    write_lerobot_v21(root, episodes_of(rng, [5, 6, 7], 2, 2))
    expect_clean_error(base + [root, out, "--state-key", "observation.environment_state"], capsys, out,
                       "no feature 'observation.environment_state'", "observation.state", "action")
    expect_clean_error(base + [root, out, "--state-key", "observation.image"], capsys, out,
                       "'observation.image' is a video feature")

    mixed = tmp_path / "mixed"
    episodes = episodes_of(rng, [5, 6, 7], 2, 2)
    episodes[2] = (rng.uniform(size=(7, 5)).astype(np.float32), episodes[2][1])
    write_lerobot_v21(mixed, episodes)
    expect_clean_error(base + [mixed, out], capsys, out, "episodes of different dimensions", "episode 2")

    nan = tmp_path / "nan"
    episodes = episodes_of(rng, [5, 6, 7], 2, 2)
    episodes[1][1][3, 0] = np.nan
    write_lerobot_v21(nan, episodes)
    expect_clean_error(base + [nan, out], capsys, out, "episode 1", "action", "frame_index 3")

    truncated = tmp_path / "truncated"
    write_lerobot_v30(truncated, episodes_of(rng, [50, 60], 2, 2))
    data_file = truncated / "data/chunk-000/file-000.parquet"
    data_file.write_bytes(data_file.read_bytes()[:200])
    expect_clean_error(base + [truncated, out], capsys, out, "data/chunk-000/file-000.parquet",
                       "not a readable parquet file")

    short = tmp_path / "short"
    write_lerobot_v21(short, episodes_of(rng, [5, 6, 7], 2, 2))
    (short / "data/chunk-000/episode_000002.parquet").unlink()
    expect_clean_error(base + [short, out], capsys, out, "episode_000002.parquet is missing", "episode 2")

    cut = tmp_path / "cut"
    episodes = episodes_of(rng, [5, 6, 7], 2, 2)
    write_lerobot_v21(cut, episodes)
    path = cut / "data/chunk-000/episode_000001.parquet"
    pq.write_table(pq.read_table(path).slice(0, 4), path)
    expect_clean_error(base + [cut, out], capsys, out, "episode 1", "says 6 frames", "hold 4")


# --- zarr ------------------------------------------------------------------------------------------------------------

def test_pusht_zarr_maps_onto_keypoints(tmp_path, pusht, capsys):
    rng = np.random.default_rng(9)
    episodes = [pusht_episode(rng, n) for n in (20, 35, 11)]
    source = tmp_path / "pusht_cchi_v7_replay.zarr"
    write_pusht_zarr(source, episodes)
    out = tmp_path / "pusht.safetensors"
    status, _, stderr = run_cli(["import", "--format", "zarr", source, out, "--task", "pusht", "--tasks-folder",
                                 TASKS], capsys)
    assert status == 0, stderr
    dataset = read_dataset(str(out))
    # Diffusion Policy's PushTLowdimDataset: keypoint flattened, then agent x, y = state[:, :2].
    expected = np.concatenate([np.concatenate([e["keypoint"].reshape(len(e["keypoint"]), 18), e["state"][:, :2]],
                                              axis=1) for e in episodes])
    assert np.array_equal(dataset.obs, expected)
    assert np.array_equal(dataset.action, np.concatenate([e["action"] for e in episodes]))
    assert dataset.episode_ends.tolist() == [20, 55, 66]
    assert dataset.metadata["observation_mode"] == "keypoints" and dataset.metadata["control_hz"] == "10.0"
    assert dataset.metadata["skipped"] == "data/n_contacts"

    state = import_zarr(str(source), layout=pusht, observation_mode="state")
    assert np.array_equal(state.obs, np.concatenate([e["state"] for e in episodes]))
    assert state.metadata["observation_mode"] == "state"
    plain = import_zarr(str(source))
    assert np.array_equal(plain.obs, state.obs) and "task" not in plain.metadata


def test_zarr_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(10)
    out = tmp_path / "out.safetensors"
    base = ["import", "--format", "zarr"]
    task = ["--task", "pusht", "--tasks-folder", TASKS]

    folder = tmp_path / "folder"
    folder.mkdir()
    expect_clean_error(base + [folder, out], capsys, out, str(folder), "not a zarr replay buffer")

    no_keypoints = tmp_path / "state_only.zarr"
    write_pusht_zarr(no_keypoints, [pusht_episode(rng, 10)])
    zarr.open_group(str(no_keypoints), mode="a")["data"].__delitem__("keypoint")
    expect_clean_error(base + [no_keypoints, out] + task, capsys, out, "no data/keypoint",
                       "action, n_contacts, state")

    nan = tmp_path / "nan.zarr"
    episodes = [pusht_episode(rng, n) for n in (10, 12)]
    episodes[1]["keypoint"][5, 3, 1] = np.nan
    write_pusht_zarr(nan, episodes)
    expect_clean_error(base + [nan, out] + task, capsys, out, "episode 1: data/keypoint", "step 5")

    truncated = tmp_path / "truncated.zarr"
    write_pusht_zarr(truncated, [pusht_episode(rng, n) for n in (30, 30)])
    (truncated / "data/action/2.0").unlink()
    expect_clean_error(base + [truncated, out] + task, capsys, out, "data/action", "chunks are missing")

    damaged = tmp_path / "damaged.zarr"
    write_pusht_zarr(damaged, [pusht_episode(rng, n) for n in (30, 30)])
    chunk = damaged / "data/state/1.0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    expect_clean_error(base + [damaged, out] + task, capsys, out, "data/state")

    short = tmp_path / "short.zarr"
    write_pusht_zarr(short, [pusht_episode(rng, n) for n in (30, 30)])
    zarr.open_group(str(short), mode="a")["meta/episode_ends"][1] = 70
    expect_clean_error(base + [short, out] + task, capsys, out, "meta/episode_ends ends at 70")


# --- export, then import: bit-identical ---------------------------------------------------------------------------

def flowpolicy_dataset(rng, lengths, Do, Da, metadata):
    obs = rng.normal(size=(sum(lengths), Do)).astype(np.float32)
    obs[0, 0] = np.float32(1e-38)  # a subnormal-range value and an exact float32 survive every format
    return Dataset(obs, rng.normal(size=(sum(lengths), Da)).astype(np.float32),
                   np.cumsum(lengths).astype(np.int64), dict(metadata))


def lift_dataset(rng, lengths):
    """A robomimic_lift dataset as `flowpolicy collect` writes it (the relative vector is cube - eef)."""
    demos = [lift_demo(rng, n, convention="robosuite1.5") for n in lengths]
    obs = np.concatenate([np.concatenate([d[k] for k in ("object", "robot0_eef_pos", "robot0_eef_quat",
                                                         "robot0_gripper_qpos")], axis=1) for d in demos])
    return Dataset(obs.astype(np.float32), rng.uniform(-1, 1, (sum(lengths), 7)).astype(np.float32),
                   np.cumsum(lengths).astype(np.int64),
                   {"task": "robomimic_lift", "observation_mode": "low_dim", "control_hz": "20.0", "seeds": "0-4"})


@pytest.mark.parametrize("format", ["lerobot", "robomimic", "zarr"])
def test_export_then_import_is_bit_identical(tmp_path, capsys, format):
    rng = np.random.default_rng(11)
    cases = {
        "lift": lift_dataset(rng, [13, 9, 21, 5, 17]),
        "pusht": flowpolicy_dataset(rng, [30, 12], 20, 2, {"task": "pusht", "observation_mode": "keypoints",
                                                          "control_hz": "10.0"}),
        "kitchen": flowpolicy_dataset(rng, [8, 8, 3], 60, 9, {"task": "franka_kitchen", "observation_mode": "dp",
                                                              "control_hz": "12.5"}),
        "toy": flowpolicy_dataset(rng, [1, 1, 1, 1], 1, 1, {"task": "toy-mixture", "control_hz": "1.0"}),
    }
    for name, dataset in cases.items():
        source = tmp_path / f"{name}.safetensors"
        write_dataset(dataset, str(source))
        exported = tmp_path / (f"{name}.hdf5" if format == "robomimic" else f"{name}_{format}")
        status, stdout, stderr = run_cli(["export", "--format", format, source, exported, "--tasks-folder", TASKS],
                                         capsys)
        assert status == 0, stderr
        assert "bit-identical" in stdout
        back = tmp_path / f"{name}_back.safetensors"
        status, _, stderr = run_cli(["import", "--format", format, exported, back, "--tasks-folder", TASKS], capsys)
        assert status == 0, stderr
        again = read_dataset(str(back))
        for array in ("obs", "action", "episode_ends"):
            a, b = getattr(dataset, array), getattr(again, array)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (name, array)
        for key in ("task", "observation_mode", "control_hz"):
            assert again.metadata.get(key) == dataset.metadata.get(key), (name, key)


def test_export_layouts(tmp_path, lift, pusht):
    rng = np.random.default_rng(12)
    dataset = lift_dataset(rng, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    info = export_robomimic(dataset, str(tmp_path / "lift.hdf5"), layout=lift)
    assert info == {"keys": ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"], "train": 9,
                    "valid": 1}
    with h5py.File(tmp_path / "lift.hdf5", "r") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        assert env_args["env_name"] == "Lift" and env_args["type"] == 1
        assert env_args["env_kwargs"]["controller_configs"]["type"] == "OSC_POSE"
        assert f["data"].attrs["total"] == 100 and f["data/demo_3"].attrs["num_samples"] == 10
        assert f["data/demo_0/obs/object"].shape == (10, 10) and f["data/demo_0/actions"].dtype == np.float64
        assert np.array_equal(f["data/demo_0/next_obs/robot0_eef_pos"][:-1], f["data/demo_0/obs/robot0_eef_pos"][1:])
        assert f["data/demo_0/dones"][()].tolist() == [0] * 9 + [1]
        masks = {name: sorted(m.decode() for m in f[f"mask/{name}"][()]) for name in ("train", "valid")}
        assert len(masks["valid"]) == 1 and sorted(masks["train"] + masks["valid"]) == sorted(f"demo_{i}"
                                                                                              for i in range(10))

    keypoints = flowpolicy_dataset(rng, [7, 5], 20, 2, {"task": "pusht", "observation_mode": "keypoints",
                                                        "control_hz": "10.0"})
    export_zarr(keypoints, str(tmp_path / "pusht.zarr"), layout=pusht)
    root = zarr.open_group(str(tmp_path / "pusht.zarr"), mode="r")
    assert root["data/keypoint"].shape == (12, 9, 2) and root["data/state"].shape == (12, 2)
    assert np.array_equal(root["data/keypoint"][:].reshape(12, 18), keypoints.obs[:, :18])
    assert root["meta/episode_ends"][:].tolist() == [7, 12]

    export_lerobot(keypoints, str(tmp_path / "pusht_lerobot"), layout=pusht)
    info = json.loads((tmp_path / "pusht_lerobot/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["total_frames"] == 12
    assert info["features"]["observation.state"]["names"][:2] == ["block_keypoints.0", "block_keypoints.1"]
    table = pq.read_table(tmp_path / "pusht_lerobot/data/chunk-000/file-000.parquet")
    assert table.schema.field("observation.state").type == pa.list_(pa.float32(), 20)
    assert table.column("frame_index").to_pylist() == list(range(7)) + list(range(5))


def test_export_refuses_to_replace_a_foreign_folder(tmp_path, capsys):
    rng = np.random.default_rng(13)
    source = tmp_path / "data.safetensors"
    write_dataset(flowpolicy_dataset(rng, [4], 3, 2, {"control_hz": "10.0"}), str(source))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"cat")
    for format in ("lerobot", "zarr"):
        expect_clean_error(["export", "--format", format, source, foreign], capsys, str(foreign / "cat.jpg"),
                           "exists and is not a")
    assert (foreign / "cat.jpg").read_bytes() == b"cat"
    # An earlier export of the same format is replaced whole.
    target = tmp_path / "again_lerobot"
    for _ in range(2):
        status, _, stderr = run_cli(["export", "--format", "lerobot", source, target], capsys)
        assert status == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def snapshot(path):
    """A file's bytes, or every file's bytes (and every folder) under a folder: to check it is left byte-identical."""
    path = Path(path)
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


def foreign_export_target(tmp_path, target, rng):
    """A dataset of the target's format made elsewhere, as its own library writes it (no flowpolicy export marker)."""
    if target == "lerobot":
        path = tmp_path / "their_lerobot"
        write_lerobot_v30(path, episodes_of(rng, [5, 7], 3, 2))
    elif target == "robomimic":
        path = tmp_path / "their.hdf5"
        write_robomimic(path, [lift_demo(rng, 6) for _ in range(2)])
    elif target == "zarr":
        path = tmp_path / "their.zarr"
        write_pusht_zarr(path, [pusht_episode(rng, 8)])
    else:  # a replay buffer zipped, as Diffusion Policy's ReplayBuffer.save_to_path writes one
        path = tmp_path / "their.zarr.zip"
        store = zarr.ZipStore(str(path), mode="w")
        try:
            root = zarr.group(store=store)
            root.create_group("data").array("state", np.zeros((8, 5), np.float32))
            root.create_group("meta").array("episode_ends", np.array([8], np.int64))
        finally:
            store.close()
    return path


EXPORT_TARGETS = {"lerobot": "ours_lerobot", "robomimic": "ours.hdf5", "zarr": "ours.zarr", "zarr-zip": "ours.zarr.zip"}


def expect_left_as_it_was(argv, capsys, path, *fragments):
    """The command fails with one error line naming `path` (a file or a folder) and leaves it and its folder as they
    were (no temporary file or folder left behind)."""
    before, listing = snapshot(path), sorted(os.listdir(os.path.dirname(path)))
    status, stdout, stderr = run_cli(argv, capsys)
    assert status == 1 and stdout == "", stderr
    assert stderr.count("\n") == 1 and stderr.startswith(f"error: {path}: "), stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)
    assert snapshot(path) == before
    assert sorted(os.listdir(os.path.dirname(path))) == listing


@pytest.mark.parametrize("target", ["lerobot", "robomimic", "zarr", "zarr-zip"])
def test_export_replaces_only_an_earlier_export(tmp_path, capsys, target):
    """An existing output is replaced only if it carries the marker our export writes (LeRobot: meta/flowpolicy.json;
    robomimic: the data group's attribute flowpolicy; zarr: the root group's attribute flowpolicy)."""
    rng = np.random.default_rng(15)
    format = target.split("-")[0]
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    write_dataset(flowpolicy_dataset(rng, [4, 6], 3, 2, {"control_hz": "10.0"}), str(first))
    write_dataset(flowpolicy_dataset(rng, [5], 3, 2, {"control_hz": "10.0"}), str(second))

    foreign = foreign_export_target(tmp_path, target, rng)
    expect_left_as_it_was(["export", "--format", format, first, foreign], capsys, foreign,
                        f"exists and is not a flowpolicy {'LeRobot' if format == 'lerobot' else format} export",
                        "only an earlier export is replaced", "choose another output path")

    ours = tmp_path / EXPORT_TARGETS[target]
    for source in (first, second):  # the second export replaces the first
        status, _, stderr = run_cli(["export", "--format", format, source, ours], capsys)
        assert status == 0, stderr
    back = tmp_path / "back.safetensors"
    status, _, stderr = run_cli(["import", "--format", format, ours, back], capsys)
    assert status == 0, stderr
    again, expected = read_dataset(str(back)), read_dataset(str(second))
    assert again.episode_ends.tolist() == [5] and again.obs.tobytes() == expected.obs.tobytes()
    # Our export of one format is not replaced by another format's.
    other = "zarr" if format == "lerobot" else "lerobot"
    expect_left_as_it_was(["export", "--format", other, first, ours], capsys, ours, "exists and is not a flowpolicy")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failed_swap_leaves_the_earlier_export(tmp_path, capsys, monkeypatch):
    """If the new export cannot take the earlier one's place (a full disk), the earlier one stays, and the error is
    one line; if it cannot even be put back, the error says where it is."""
    rng = np.random.default_rng(19)
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    write_dataset(flowpolicy_dataset(rng, [4, 6], 3, 2, {"control_hz": "10.0"}), str(first))
    write_dataset(flowpolicy_dataset(rng, [5], 3, 2, {"control_hz": "10.0"}), str(second))
    targets = {"lerobot": tmp_path / "ours_lerobot", "robomimic": tmp_path / "ours.hdf5"}
    for format, target in targets.items():
        status, _, stderr = run_cli(["export", "--format", format, first, target], capsys)
        assert status == 0, stderr

    real_rename, folder = os.rename, str(targets["lerobot"])

    def full_disk(*_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def new_folder_fails(source, destination):  # the new folder cannot be renamed into place; putting back works
        if str(destination) == folder and str(source).endswith(".tmp"):
            full_disk()
        return real_rename(source, destination)

    def every_rename_into_place_fails(source, destination):
        if str(destination) == folder:
            full_disk()
        return real_rename(source, destination)

    monkeypatch.setattr(os, "rename", new_folder_fails)
    monkeypatch.setattr(os, "replace", full_disk)
    for format, target in targets.items():
        expect_left_as_it_was(["export", "--format", format, second, target], capsys, target, "cannot write it",
                              os.strerror(errno.ENOSPC), "was left as it was")

    before = snapshot(targets["lerobot"])
    monkeypatch.setattr(os, "rename", every_rename_into_place_fails)
    status, _, stderr = run_cli(["export", "--format", "lerobot", second, targets["lerobot"]], capsys)
    assert status == 1 and stderr.count("\n") == 1 and "could not be put back" in stderr, stderr
    kept = Path(stderr.split("the earlier one is at ")[1].split(": move it back")[0])
    assert snapshot(kept) == before and not targets["lerobot"].exists()

def test_robomimic_valid_ratio(tmp_path, capsys):
    """--valid-ratio 0 puts no demo in mask/valid; a positive share puts at least one there (of two or more)."""
    rng = np.random.default_rng(16)
    source = tmp_path / "data.safetensors"
    write_dataset(flowpolicy_dataset(rng, [3] * 10, 3, 2, {"control_hz": "10.0"}), str(source))
    out = tmp_path / "all_train.hdf5"
    status, stdout, stderr = run_cli(["export", "--format", "robomimic", source, out, "--valid-ratio", "0",
                                      "--machine"], capsys)
    assert status == 0, stderr
    assert json.loads(stdout)["details"] == {"keys": ["state"], "train": 10, "valid": 0}
    with h5py.File(out, "r") as f:
        assert f["mask/valid"].shape == (0,)
        assert sorted(m.decode() for m in f["mask/train"][()]) == sorted(f"demo_{i}" for i in range(10))
    expect_clean_error(["import", "--format", "robomimic", out, tmp_path / "valid.safetensors", "--filter", "valid"],
                       capsys, tmp_path / "valid.safetensors", "no demonstrations", "mask/valid")

    for count, ratio, valid in ((2, 0.0, 0), (10, 0.0, 0), (1, 0.5, 0), (2, 0.1, 1), (10, 0.1, 1), (10, 0.3, 3),
                                (4, 0.9, 3)):
        dataset = flowpolicy_dataset(rng, [2] * count, 3, 2, {"control_hz": "10.0"})
        info = export_robomimic(dataset, str(tmp_path / f"split_{count}_{ratio}.hdf5"), valid_ratio=ratio)
        assert (info["train"], info["valid"]) == (count - valid, valid), (count, ratio)
    with pytest.raises(DataError, match=r"must be in \[0, 1\)"):
        export_robomimic(dataset, str(tmp_path / "never.hdf5"), valid_ratio=1)
    expect_clean_error(["export", "--format", "robomimic", source, tmp_path / "never.hdf5", "--valid-ratio", "-0.1"],
                       capsys, tmp_path / "never.hdf5", "--valid-ratio must be in [0, 1)", "-0.1")


def test_options_that_would_be_ignored_are_refused(tmp_path, capsys, pusht):
    """An option given that the conversion would not use is an error naming the option and why, not dropped."""
    rng = np.random.default_rng(17)
    episodes = [pusht_episode(rng, n) for n in (10, 6)]
    source = tmp_path / "pusht.zarr"
    write_pusht_zarr(source, episodes)
    out = tmp_path / "out.safetensors"
    task = ["--task", "pusht", "--tasks-folder", TASKS]
    expect_clean_error(["import", "--format", "zarr", source, out, "--obs-keys", "state"] + task, capsys, out,
                       "--obs-keys does not apply to a zarr import with --task pusht", "fixed by its mode",
                       "--observation-mode")
    with pytest.raises(DataError, match="obs keys do not apply to pusht"):
        import_zarr(str(source), layout=pusht, obs_keys=["state"])
    # Without the task the keys are taken as given; with it, the mode chooses them.
    status, _, stderr = run_cli(["import", "--format", "zarr", source, out, "--obs-keys", "state"], capsys)
    assert status == 0, stderr
    assert np.array_equal(read_dataset(str(out)).obs, np.concatenate([e["state"] for e in episodes]))
    out.unlink()
    for format, option, value in (("lerobot", "--obs-keys", "observation.state"), ("zarr", "--filter", "train"),
                                  ("lerobot", "--filter", "train"), ("robomimic", "--state-key", "observation.state"),
                                  ("zarr", "--state-key", "state")):
        expect_clean_error(["import", "--format", format, source, out, option, value], capsys, out,
                           f"{option} does not apply to a {format} import", "leave it out")
    expect_clean_error(["import", "--format", "zarr", source, out, "--obs-keys", " , "], capsys, out,
                       "--obs-keys needs at least one key")
    expect_clean_error(["import", "--format", "robomimic", source, out, "--filter", ""], capsys, out,
                       "--filter needs the name of a mask")

    data = tmp_path / "data.safetensors"
    write_dataset(flowpolicy_dataset(rng, [4, 4], 3, 2, {"control_hz": "10.0"}), str(data))
    for format, option, value, owner in (("robomimic", "--fps", "30", "lerobot"), ("zarr", "--fps", "30", "lerobot"),
                                         ("robomimic", "--task-text", "Push", "lerobot"),
                                         ("zarr", "--task-text", "Push", "lerobot"),
                                         ("lerobot", "--valid-ratio", "0.2", "robomimic"),
                                         ("zarr", "--valid-ratio", "0", "robomimic")):
        target = tmp_path / ("x.hdf5" if format == "robomimic" else f"x_{format}")
        expect_clean_error(["export", "--format", format, data, target, option, value], capsys, target,
                           f"{option} applies to {owner} exports only", f"leave it out of a {format} export")
    # As flowpolicy runs it: one line, status 1.
    result = subprocess.run([sys.executable, "-m", "flowpolicy_data", "export", "--format", "zarr", str(data),
                             str(tmp_path / "y.zarr"), "--fps", "30", "--machine"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(CLIENTS)})
    assert result.returncode == 1 and result.stdout == "" and not (tmp_path / "y.zarr").exists()
    assert result.stderr.startswith("error: --fps applies to lerobot exports only") and result.stderr.count("\n") == 1


def test_export_reads_flowpolicys_checks(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    from safetensors.numpy import save_file
    save_file({"obs": np.ones((3, 2), np.float32), "action": np.ones((3, 1), np.float32),
               "episode_ends": np.array([2], np.int64)}, str(bad), metadata={"format": "flowpolicy.dataset"})
    out = tmp_path / "x.hdf5"
    expect_clean_error(["export", "--format", "robomimic", bad, out], capsys, out, "episode_ends ends at 2")
    checkpoint = tmp_path / "policy.safetensors"
    save_file({"w": np.ones(2, np.float32)}, str(checkpoint), metadata={"format": "flowpolicy"})
    expect_clean_error(["export", "--format", "zarr", checkpoint, tmp_path / "y.zarr"], capsys, out,
                       "a flowpolicy file, not a dataset")


def test_command_line_process(tmp_path):
    """`python -m flowpolicy_data` as flowpolicy runs it: one error line, status 1, no traceback."""
    missing = tmp_path / "missing.hdf5"
    result = subprocess.run([sys.executable, "-m", "flowpolicy_data", "import", "--format", "robomimic", str(missing),
                             str(tmp_path / "out.safetensors"), "--machine"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(CLIENTS)})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"error: {missing}: no such file\n"


def test_task_layouts_match_task_yaml(lift, can, pusht):
    assert [(g.name, g.size) for g in lift.groups()] == [
        ("cube_pos", 3), ("cube_quat", 4), ("gripper_to_cube_pos", 3), ("robot0_eef_pos", 3), ("robot0_eef_quat", 4),
        ("robot0_gripper_qpos", 2)]
    assert can.observation_dimensions() == 23 and can.action_dimensions == 7 and can.robosuite_task == "can"
    assert pusht.mode_for(20) == "keypoints" and pusht.mode_for(5) == "state" and pusht.control_hz == 10
    with pytest.raises(DataError, match="unknown task 'lift'"):
        load_task("lift", str(TASKS))


def test_robomimic_task_keys_in_robomimics_config_order(tmp_path, lift):
    """robomimic's configs list object last; flowpolicy's robomimic tasks (and Diffusion Policy) take it first."""
    rng = np.random.default_rng(14)
    source = tmp_path / "lift.hdf5"
    write_robomimic(source, [lift_demo(rng, 8, convention="robosuite1.5") for _ in range(2)])
    keys = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]
    dataset = import_robomimic(str(source), obs_keys=keys, layout=lift)
    expected, _ = read_robomimic_arrays(source, ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"])
    assert np.array_equal(dataset.obs, expected.astype(np.float32))
    assert "concatenated in robomimic_lift's order" in dataset.metadata["observation_mapping"]
    with pytest.raises(DataError, match="robomimic_lift's observation is the keys"):
        import_robomimic(str(source), obs_keys=["object", "robot0_joint_pos"], layout=lift)


# --- cameras -------------------------------------------------------------------------------------------------------

def stored_cameras(path):
    """The file's `cameras` metadata and its images.<camera> tensors' dtypes and shapes, as safetensors reads them."""
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata() or {}
        tensors = {k: (str(handle.get_slice(k).get_dtype()), handle.get_slice(k).get_shape()) for k in handle.keys()
                   if k.startswith("images.")}
    return metadata.get("cameras"), tensors


def test_dataset_file_carries_cameras(tmp_path):
    rng = np.random.default_rng(20)
    dataset = flowpolicy_dataset(rng, [5, 7], 3, 2, {"control_hz": "10.0"})
    dataset.images = {"agentview": camera_frames(rng, 12), "robot0_eye_in_hand": camera_frames(rng, 12, 16, 16)}
    path = tmp_path / "cameras.safetensors"
    write_dataset(dataset, str(path))
    assert stored_cameras(path) == ("agentview,robot0_eye_in_hand", {"images.agentview": ("U8", [12, 32, 48, 3]),
                                                                     "images.robot0_eye_in_hand": ("U8",
                                                                                                   [12, 16, 16, 3])})
    back = read_dataset(str(path))
    assert list(back.images) == ["agentview", "robot0_eye_in_hand"] and "cameras" not in back.metadata
    for camera, frames in dataset.images.items():
        assert back.images[camera].dtype == np.uint8 and np.array_equal(back.images[camera], frames)
    # A dataset without cameras has neither the metadata key nor an image tensor.
    plain = tmp_path / "plain.safetensors"
    write_dataset(flowpolicy_dataset(rng, [4], 3, 2, {}), str(plain))
    assert stored_cameras(plain) == (None, {}) and read_dataset(str(plain)).images == {}

    for frames, fragments in ((camera_frames(rng, 11), ["camera agentview", "11 frames [11, 32, 48, 3]", "12 rows"]),
                              (camera_frames(rng, 12).astype(np.float32), ["camera agentview", "float32",
                                                                           "[12, 32, 48, 3]"]),
                              (camera_frames(rng, 12)[..., 0], ["camera agentview", "uint8 [12, 32, 48]"])):
        dataset.images = {"agentview": frames}
        with pytest.raises(DataError) as error:
            write_dataset(dataset, str(tmp_path / "bad.safetensors"))
        for fragment in fragments:
            assert fragment in str(error.value), (fragment, str(error.value))
    assert not (tmp_path / "bad.safetensors").exists()

    # A file whose metadata and image tensors disagree is refused, naming both.
    from safetensors.numpy import save_file
    odd = tmp_path / "odd.safetensors"
    save_file({"obs": dataset.obs, "action": dataset.action, "episode_ends": dataset.episode_ends,
               "images.front": camera_frames(rng, 12)}, str(odd), metadata={"format": "flowpolicy.dataset"})
    with pytest.raises(DataError, match="lists the cameras none but the file has the image tensors images.front"):
        read_dataset(str(odd))


def robomimic_image_demos(rng, lengths):
    demos = []
    for length in lengths:
        demo = lift_demo(rng, length, convention="robosuite1.5")
        demo["agentview_image"] = camera_frames(rng, length, 24, 24, phase=length)
        demo["robot0_eye_in_hand_image"] = camera_frames(rng, length, 16, 20)
        demos.append(demo)
    return demos


def test_robomimic_image_keys_become_cameras(tmp_path, capsys):
    rng = np.random.default_rng(21)
    demos = robomimic_image_demos(rng, [9, 6, 11])
    source = tmp_path / "image.hdf5"
    write_robomimic(source, demos)
    out = tmp_path / "image.safetensors"
    status, stdout, stderr = run_cli(["import", "--format", "robomimic", source, out, "--task", "robomimic_lift",
                                      "--tasks-folder", TASKS, "--cameras",
                                      "agentview_image,robot0_eye_in_hand_image"], capsys)
    assert status == 0, stderr
    assert "camera            agentview 24 x 24 x 3 uint8" in stdout
    assert stored_cameras(out) == ("agentview,robot0_eye_in_hand", {
        "images.agentview": ("U8", [26, 24, 24, 3]), "images.robot0_eye_in_hand": ("U8", [26, 16, 20, 3])})
    dataset = read_dataset(str(out))
    for camera in ("agentview", "robot0_eye_in_hand"):
        # robomimic's rows are bottom-up (OpenGL's); flowpolicy's frames start with the top row.
        assert np.array_equal(dataset.images[camera], np.concatenate([d[f"{camera}_image"][:, ::-1] for d in demos]))
    keys = ["object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]
    expected, _ = read_robomimic_arrays(source, keys)
    assert np.array_equal(dataset.obs, expected.astype(np.float32))  # the low-dimensional observation unchanged
    assert dataset.metadata["camera_keys"] == "agentview_image,robot0_eye_in_hand_image"

    # Export writes each camera back as obs/<camera>_image; importing the export restores them.
    exported = tmp_path / "again.hdf5"
    info = export_robomimic(dataset, str(exported), layout=load_task("robomimic_lift", str(TASKS)))
    assert info["cameras"] == ["agentview_image", "robot0_eye_in_hand_image"]
    with h5py.File(exported, "r") as f:
        stored = f["data/demo_1/obs/agentview_image"]
        assert stored.dtype == np.uint8 and stored.shape == (6, 24, 24, 3)
        assert np.array_equal(stored[()], demos[1]["agentview_image"])
        assert np.array_equal(f["data/demo_1/next_obs/agentview_image"][:-1], demos[1]["agentview_image"][1:])
    again = import_robomimic(str(exported))
    assert list(again.images) == ["agentview", "robot0_eye_in_hand"]
    assert all(np.array_equal(again.images[c], dataset.images[c]) for c in again.images)


def test_robomimic_camera_errors(tmp_path, capsys):
    rng = np.random.default_rng(22)
    out = tmp_path / "out.safetensors"
    base = ["import", "--format", "robomimic"]
    source = tmp_path / "image.hdf5"
    write_robomimic(source, robomimic_image_demos(rng, [5, 4]))
    expect_clean_error(base + [source, out, "--obs-keys", "robot0_eef_pos,agentview_image"], capsys, out,
                       "data/demo_0/obs/agentview_image is [5, 24, 24, 3] uint8", "import it as a camera")
    expect_clean_error(base + [source, out, "--obs-keys", "robot0_eef_pos", "--cameras", "robot0_eef_pos"], capsys,
                       out, "robot0_eef_pos is given both as an observation key and as a camera")
    expect_clean_error(base + [source, out, "--obs-keys", "object", "--cameras", "robot0_joint_pos"], capsys, out,
                       "data/demo_0/obs/robot0_joint_pos is [5, 7] float64, not an image key", "uint8 [L, H, W, 3]")
    expect_clean_error(base + [source, out, "--obs-keys", "object", "--cameras", "birdview_image"], capsys, out,
                       "data/demo_0/obs has no image key 'birdview_image'", "agentview_image")

    demos = robomimic_image_demos(rng, [5, 4])
    demos[1]["agentview_image"] = demos[1]["agentview_image"][..., 0]  # a grey image without its channel axis
    grey = tmp_path / "grey.hdf5"
    write_robomimic(grey, demos)
    expect_clean_error(base + [grey, out, "--obs-keys", "object", "--cameras", "agentview_image"], capsys, out,
                       "data/demo_1/obs/agentview_image is [4, 24, 24] uint8, not an image key")

    demos = robomimic_image_demos(rng, [5, 4])
    demos[0]["agentview_image"] = demos[0]["agentview_image"][:3]
    short = tmp_path / "short.hdf5"
    write_robomimic(short, demos)
    expect_clean_error(base + [short, out, "--obs-keys", "object", "--cameras", "agentview_image"], capsys, out,
                       "data/demo_0: obs/agentview_image has 3 frames [3, 24, 24, 3] but actions has 5 steps")

    demos = robomimic_image_demos(rng, [5, 4])
    demos[1]["agentview_image"] = camera_frames(rng, 4, 32, 24)
    sizes = tmp_path / "sizes.hdf5"
    write_robomimic(sizes, demos)
    expect_clean_error(base + [sizes, out, "--obs-keys", "object", "--cameras", "agentview_image"], capsys, out,
                       "camera agentview (obs/agentview_image) has frames of different sizes",
                       "data/demo_1 [32, 24, 3], data/demo_0 [24, 24, 3]")
    expect_clean_error(["import", "--format", "zarr", source, out, "--cameras", "agentview_image"], capsys, out,
                       "--cameras does not apply to a zarr import")


def test_lerobot_image_features_v30_and_v21(tmp_path, capsys):
    """Image features (PNG bytes in the parquet) arrive bit for bit, in v3.0 (files shared by episodes) and v2.1."""
    rng = np.random.default_rng(23)
    episodes = episodes_of(rng, [6, 9, 4], 5, 2)
    top = [camera_frames(rng, len(o), 24, 32, phase=i) for i, (o, _) in enumerate(episodes)]
    wrist = [camera_frames(rng, len(o), 16, 16) for o, _ in episodes]
    images = {"observation.images.top": top, "observation.images.wrist": wrist}
    v30 = tmp_path / "v30"
    write_lerobot_v30(v30, episodes, images=images, rows_per_file=10)
    out = tmp_path / "v30.safetensors"
    status, _, stderr = run_cli(["import", "--format", "lerobot", v30, out, "--cameras", "wrist,top"], capsys)
    assert status == 0, stderr
    assert "observation.images.front (video)" in stderr  # the camera not asked for is listed as not imported
    assert stored_cameras(out) == ("wrist,top", {"images.wrist": ("U8", [19, 16, 16, 3]),
                                                 "images.top": ("U8", [19, 24, 32, 3])})
    dataset = read_dataset(str(out))
    assert np.array_equal(dataset.images["top"], np.concatenate(top))
    assert np.array_equal(dataset.images["wrist"], np.concatenate(wrist))
    assert np.array_equal(dataset.obs, np.concatenate([o for o, _ in episodes]))
    assert dataset.metadata["camera_keys"] == "observation.images.wrist,observation.images.top"

    v21 = tmp_path / "v21"
    write_lerobot_v21(v21, episodes, images={"observation.images.top": top})
    back = import_lerobot(str(v21), cameras=["observation.images.top"])
    assert list(back.images) == ["top"] and np.array_equal(back.images["top"], np.concatenate(top))
    assert back.metadata["skipped"] == "observation.image (video)"

    base = ["import", "--format", "lerobot", v30, tmp_path / "bad.safetensors"]
    expect_clean_error(base + ["--cameras", "side"], capsys, tmp_path / "bad.safetensors", "no image or video feature "
                       "'side'", "front (observation.images.front, video)", "top (observation.images.top, image)")
    # The video feature listed in info.json has no mp4 file here: asking for every camera says which is missing.
    expect_clean_error(base, capsys, tmp_path / "bad.safetensors", "has no column videos/observation.images.front/",
                       "where the camera front's video is", "leave the camera front out")

    # A damaged image names the episode, the key and the frame.
    table = pq.read_table(v21 / "data/chunk-000/episode_000001.parquet")
    column = table.column("observation.images.top").to_pylist()
    column[3]["bytes"] = column[3]["bytes"][:40]
    table = table.set_column(table.schema.get_field_index("observation.images.top"), "observation.images.top",
                             pa.array(column, type=PNG_STRUCT))
    pq.write_table(table, v21 / "data/chunk-000/episode_000001.parquet")
    expect_clean_error(["import", "--format", "lerobot", v21, tmp_path / "bad.safetensors", "--cameras", "top"],
                       capsys, tmp_path / "bad.safetensors", "episode 1: observation.images.top at frame_index 3",
                       "not a readable PNG or JPEG image")


def decode_all(path):
    """Every frame of a video, in order, as a plain PyAV decode gives them (the reference for the importer)."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def mean_difference(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_lerobot_video_features(tmp_path, capsys):
    """Video features decoded at the episodes' timestamps: v2.1 (a file per episode) and v3.0 (one file shared by
    the episodes, each from its from_timestamp). Shapes exact; each frame is the one a plain decode of the file gives
    at its position, within H.264's error (yuv420p halves the colour resolution) of the source frame and nearer to
    it than to the next one."""
    rng = np.random.default_rng(24)
    episodes = episodes_of(rng, [12, 7, 15], 20, 2)
    videos = [camera_frames(rng, len(o), 32, 48, phase=40 * i, noise=0) for i, (o, _) in enumerate(episodes)]
    expected = np.concatenate(videos)
    v21 = tmp_path / "v21"
    write_lerobot_v21(v21, episodes, videos=videos)
    out = tmp_path / "v21.safetensors"
    status, _, stderr = run_cli(["import", "--format", "lerobot", v21, out], capsys)
    assert status == 0, stderr
    assert stored_cameras(out) == ("image", {"images.image": ("U8", [34, 32, 48, 3])})
    v30 = tmp_path / "v30"
    write_lerobot_v30(v30, episodes, videos=videos, rows_per_file=15)
    reference_v21 = np.concatenate([decode_all(v21 / f"videos/chunk-000/observation.image/episode_{i:06d}.mp4")
                                    for i in range(3)])
    reference_v30 = decode_all(v30 / "videos/observation.images.front/chunk-000/file-000.mp4")
    for dataset, reference in ((read_dataset(str(out)), reference_v21), (import_lerobot(str(v30)), reference_v30)):
        frames = dataset.images[next(iter(dataset.images))]
        assert frames.shape == expected.shape and frames.dtype == np.uint8
        assert np.array_equal(frames, reference)
        assert mean_difference(frames, expected) < 5.0
        # Every frame is far nearer to its own source frame than to the next one (no off-by-one in time).
        for row in range(len(frames) - 1):
            assert mean_difference(frames[row], expected[row]) < mean_difference(frames[row], expected[row + 1])
        assert np.array_equal(dataset.obs, np.concatenate([o for o, _ in episodes]))
    assert list(import_lerobot(str(v30)).images) == ["front"]

    # A video shorter than its episode: the frame at the missing timestamp is named.
    write_mp4(v21 / "videos/chunk-000/observation.image/episode_000001.mp4", videos[1][:5], 10)
    expect_clean_error(["import", "--format", "lerobot", v21, tmp_path / "bad.safetensors"], capsys,
                       tmp_path / "bad.safetensors", "episode 1: observation.image",
                       "episode_000001.mp4 has no frame at 0.500000 s", "the nearest frame is at 0.400000 s")
    write_mp4(v21 / "videos/chunk-000/observation.image/episode_000001.mp4", videos[1], 10)
    (v21 / "videos/chunk-000/observation.image/episode_000002.mp4").write_bytes(b"not a video")
    expect_clean_error(["import", "--format", "lerobot", v21, tmp_path / "bad.safetensors", "--cameras", "image"],
                       capsys, tmp_path / "bad.safetensors", "episode_000002.mp4 is not a readable video")


@pytest.mark.parametrize("format", ["lerobot", "robomimic"])
def test_export_then_import_carries_cameras(tmp_path, capsys, format):
    """A dataset with cameras exports them (LeRobot: PNG image features; robomimic: obs/<camera>_image) and imports
    them back bit for bit; a zarr export notes that it leaves them out."""
    rng = np.random.default_rng(25)
    dataset = flowpolicy_dataset(rng, [5, 8], 4, 2, {"control_hz": "10.0"})
    dataset.images = {"front": camera_frames(rng, 13, 24, 32), "wrist": camera_frames(rng, 13, 16, 16)}
    source = tmp_path / "cameras.safetensors"
    write_dataset(dataset, str(source))
    exported = tmp_path / ("cameras.hdf5" if format == "robomimic" else "cameras_lerobot")
    status, stdout, stderr = run_cli(["export", "--format", format, source, exported, "--machine"], capsys)
    assert status == 0, stderr
    assert json.loads(stdout)["details"]["cameras"] == (["front_image", "wrist_image"] if format == "robomimic" else
                                                        ["observation.images.front", "observation.images.wrist"])
    if format == "lerobot":
        info = json.loads((exported / "meta/info.json").read_text())
        assert info["features"]["observation.images.front"] == {"dtype": "image", "shape": [24, 32, 3],
                                                                "names": ["height", "width", "channel"]}
        stats = json.loads((exported / "meta/stats.json").read_text())
        assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
        cell = pq.read_table(exported / "data/chunk-000/file-000.parquet").column("observation.images.wrist")[0]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(cell["bytes"].as_py()))), dataset.images["wrist"][0])
    back = tmp_path / "back.safetensors"
    status, _, stderr = run_cli(["import", "--format", format, exported, back], capsys)
    assert status == 0, stderr
    again = read_dataset(str(back))
    assert list(again.images) == ["front", "wrist"]
    for camera, frames in dataset.images.items():
        assert again.images[camera].tobytes() == frames.tobytes() and again.images[camera].shape == frames.shape
    assert again.obs.tobytes() == dataset.obs.tobytes()

    status, _, stderr = run_cli(["export", "--format", "zarr", source, tmp_path / "cameras.zarr"], capsys)
    assert status == 0 and "note: cameras not exported: front, wrist" in stderr, stderr
