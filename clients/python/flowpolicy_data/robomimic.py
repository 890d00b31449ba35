"""robomimic HDF5 datasets (read and written with h5py), in robomimic's documented layout:

    data                      attrs: total (steps), env_args (JSON: env_name, type, env_kwargs, env_version)
    data/demo_<i>             attrs: num_samples
    data/demo_<i>/obs/<key>   [L, d] (low-dimensional keys: object, robot0_eef_pos, robot0_eef_quat, ...)
                              [L, H, W, C] uint8 (image keys: agentview_image, robot0_eye_in_hand_image, ...)
    data/demo_<i>/next_obs/<key>
    data/demo_<i>/actions     [L, Da]
    data/demo_<i>/rewards, dones  [L]
    mask/<filter>             demo names (bytes), e.g. mask/train, mask/valid

Observation mapping onto flowpolicy's robomimic tasks (tasks/robomimic_*/task.yaml): the observation is
`object, robot0_eef_pos, robot0_eef_quat, robot0_gripper_qpos` concatenated in that order (Diffusion Policy's
obs_keys). `object` is robosuite's object-state; its contents depend on robosuite's version, and flowpolicy follows:

- Lift: cube_pos, cube_quat (xyzw), gripper_to_cube_pos. robosuite 1.5 computes gripper_to_cube_pos as
  cube - eef; robosuite 1.2-1.4, which made robomimic's published datasets, as eef - cube. flowpolicy's Lift is
  robosuite 1.5's: an imported file in the older convention is negated there (checked against cube_pos and
  robot0_eef_pos on every step, not taken from the version number).
- Can, Square: <obj>_pos, <obj>_quat, <obj>_to_robot0_eef_pos, <obj>_to_robot0_eef_quat (robosuite <= 1.4's order,
  robomimic's published datasets). robosuite 1.5 puts the two relative parts first; such a file is reordered
  (recognised by recomputing the relative position from the object and end-effector poses on every step).

Image keys are imported as cameras when asked for (robomimic's own configs list them apart from the low-dimensional
keys, under obs.modalities.obs.rgb): `obs/<camera>_image` becomes the dataset's camera `<camera>` (`images.<camera>`,
uint8 [N, H, W, C]), its rows reversed: robomimic stores OpenGL's bottom-up rows (`IMAGE_CONVENTION = "opengl"`),
flowpolicy the top row first. An export writes each camera back as `obs/<camera>_image`, bottom-up again.
"""

import json
import os

import h5py
import numpy as np

from .dataset import (DataError, Episode, assemble, atomic_file, check_output_file, compare_arrays, index_ranges,
                      key_listing, rate_text)

IMAGE_SUFFIX = "_image"


def camera_name(key):
    """robomimic's image key -> the dataset's camera: agentview_image -> agentview (other keys stay as they are)."""
    return key[:-len(IMAGE_SUFFIX)] if key.endswith(IMAGE_SUFFIX) and len(key) > len(IMAGE_SUFFIX) else key


def _describe(values):
    return f"{list(values.shape)} {values.dtype}"
from .tasks import fit_task

#: flowpolicy's robomimic tasks (task.yaml environment.task) and robosuite's environment names.
ROBOSUITE_ENVIRONMENTS = {"lift": "Lift", "can": "PickPlaceCan", "square": "NutAssemblySquare"}

#: robomimic's EnvType.ROBOSUITE_TYPE and EnvType.GYM_TYPE (robomimic/envs/env_base.py).
ROBOSUITE_TYPE, GYM_TYPE = 1, 2

#: robosuite's default OSC_POSE controller (controllers/config/osc_pose.json), which the robomimic tasks use: kp 150,
#: damping ratio 1, output limits 0.05 m and 0.5 rad per step (tasks/robomimic_*/task.yaml `controller`).
OSC_POSE = {
    "type": "OSC_POSE", "input_max": 1, "input_min": -1,
    "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5], "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5],
    "kp": 150, "damping_ratio": 1, "impedance_mode": "fixed", "kp_limits": [0, 300],
    "damping_ratio_limits": [0, 10], "position_limits": None, "orientation_limits": None, "uncouple_pos_ori": True,
    "control_delta": True, "interpolation": None, "ramp_ratio": 0.2,
}


def robomimic_keys(layout, mode=None):
    """robomimic's observation keys for a task layout: the groups before the first robot0_ group form `object`,
    each robot0_ group is its own key; other tasks' groups are keys of their own. Returns [(key, size)]."""
    keys = []
    for group in layout.groups(mode):
        merge = layout.is_robomimic and not group.name.startswith("robot0_")
        if merge and keys and keys[-1][0] == "object":
            keys[-1] = ("object", keys[-1][1] + group.size)
        else:
            keys.append(("object" if merge else group.name, group.size))
    return keys


def _demo_names(group, path):
    names = [name for name in group.keys() if name.startswith("demo_")]
    try:
        return sorted(names, key=lambda name: int(name[5:]))
    except ValueError:
        raise DataError(f"{path}: demo names must be demo_<number>, got {', '.join(sorted(names)[:10])}") from None


def _quaternion_matrices(q):
    """[L, 4] quaternions x y z w -> [L, 3, 3] rotation matrices."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)


def _share(matches):
    return float(np.mean(matches)) if len(matches) else 0.0


def object_convention(layout, columns):
    """Which robosuite convention the `object` observation follows, by its contents (every step of every demo).

    `columns` maps each key to its values [N, d] (float64). Returns (action, note): action is None (already
    flowpolicy's layout), "negate" (Lift: eef - cube -> cube - eef) or "reorder" (Can, Square: relative parts
    first -> last); note says what was found."""
    if not (layout and layout.is_robomimic and "object" in columns and "robot0_eef_pos" in columns):
        return None, None
    tolerance = 1e-4  # metres; float32 data rounds at about 1e-7 m
    objects, eef = columns["object"], columns["robot0_eef_pos"]
    if layout.robosuite_task == "lift" and objects.shape[1] == 10:
        cube, relative = objects[:, 0:3], objects[:, 7:10]
        new = _share(np.abs(relative - (cube - eef)).max(axis=1) < tolerance)
        old = _share(np.abs(relative - (eef - cube)).max(axis=1) < tolerance)
        if new >= 0.99:
            return None, "gripper_to_cube_pos is cube - eef (robosuite 1.5, as flowpolicy)"
        if old >= 0.99:
            return "negate", ("gripper_to_cube_pos negated: the file has eef - cube (robosuite <= 1.4, robomimic's "
                              "published datasets); flowpolicy's Lift is robosuite 1.5's cube - eef")
        return None, (f"gripper_to_cube_pos matches neither cube - eef ({new:.0%} of steps) nor eef - cube "
                      f"({old:.0%}): kept as it is")
    if layout.robosuite_task in ("can", "square") and objects.shape[1] == 14 and "robot0_eef_quat" in columns:
        rotations = _quaternion_matrices(columns["robot0_eef_quat"])

        def fits(position, relative):
            expected = np.einsum("nji,nj->ni", rotations, position - eef)  # R^T (p - eef): the pose in the eef frame
            return _share(np.abs(relative - expected).max(axis=1) < tolerance)

        ours = fits(objects[:, 0:3], objects[:, 7:10])
        newer = fits(objects[:, 7:10], objects[:, 0:3])
        if ours >= 0.95:
            return None, "object is pos, quat, to_eef_pos, to_eef_quat (robosuite <= 1.4's order, as flowpolicy)"
        if newer >= 0.95:
            return "reorder", ("object reordered: the file has to_eef_pos, to_eef_quat, pos, quat (robosuite 1.5's "
                               "object-state); flowpolicy has pos, quat, to_eef_pos, to_eef_quat")
        return None, (f"object matches neither robosuite order (relative position recomputed on {ours:.0%} and "
                      f"{newer:.0%} of steps): kept as it is")
    return None, None


def import_robomimic(path, obs_keys=None, filter_key=None, layout=None, action_key="actions", camera_keys=None):
    """Reads a robomimic HDF5 file into a Dataset (float32). `obs_keys` are concatenated in the order given
    (default: the keys a flowpolicy export recorded, else the task's robomimic keys); `filter_key` takes the demos
    listed in `mask/<filter_key>`; `layout` (a TaskLayout) maps onto a simulated task's observation. `camera_keys`
    are image keys (uint8 [L, H, W, C], e.g. agentview_image), each copied to the camera named without `_image`
    (default: the cameras a flowpolicy export recorded, else none)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error}); robomimic datasets are HDF5") from None
    reading = "data"
    try:
        with handle:
            if "data" not in handle:
                raise DataError(f"{path}: not a robomimic dataset: no group 'data' (the file has: "
                                f"{key_listing(handle)})")
            data = handle["data"]
            recorded = json.loads(data.attrs["flowpolicy"]) if "flowpolicy" in data.attrs else {}
            env_args = data.attrs.get("env_args")
            if isinstance(env_args, bytes):
                env_args = env_args.decode("utf-8")
            if filter_key:
                reading = f"mask/{filter_key}"
                if "mask" not in handle or filter_key not in handle["mask"]:
                    present = key_listing(handle["mask"]) if "mask" in handle else "no mask group"
                    raise DataError(f"{path}: no filter mask/{filter_key} (the file has: {present})")
                names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in handle["mask"][filter_key][()]]
                for name in names:
                    if name not in data:
                        raise DataError(f"{path}: mask/{filter_key} lists {name}, which is not in data")
                names = sorted(names, key=lambda name: int(name[5:]) if name[5:].isdigit() else -1)
            else:
                names = _demo_names(data, path)
            if not names:
                where = f" in mask/{filter_key}" if filter_key else ""
                raise DataError(f"{path}: no demonstrations (data/demo_<i>){where}")
            first = data[names[0]]
            restored = {}
            if camera_keys is None:
                camera_keys = list(recorded.get("camera_keys", [])) if obs_keys is None else []
            cameras = [camera_name(key) for key in camera_keys]
            for key, camera in zip(camera_keys, cameras):
                if cameras.count(camera) > 1:
                    same = ", ".join(k for k in camera_keys if camera_name(k) == camera)
                    raise DataError(f"{path}: the image keys {same} would all be the camera {camera}; choose one")
            if obs_keys is None:
                if recorded.get("observation_keys"):
                    # A flowpolicy export: its keys, and the task it was for (unless another is given).
                    obs_keys = list(recorded["observation_keys"])
                    restored = {key: value for key, value in recorded.get("metadata", {}).items()
                                if key in ("task", "observation_mode", "control_hz", "seeds")}
                elif layout is not None and layout.is_robomimic:
                    obs_keys = [key for key, _ in robomimic_keys(layout)]
                else:
                    present = key_listing(first["obs"]) if "obs" in first else "no obs group"
                    raise DataError(f"{path}: choose the observation keys to concatenate (data/{names[0]}/obs has: "
                                    f"{present})")
            reordered = None
            if layout is not None and layout.is_robomimic:
                expected = [key for key, _ in robomimic_keys(layout)]
                if sorted(obs_keys) != sorted(expected):
                    raise DataError(f"{path}: {layout.name}'s observation is the keys {','.join(expected)}; got "
                                    f"{','.join(obs_keys)} (import other keys without a task)")
                if list(obs_keys) != expected:
                    reordered = (f"keys concatenated in {layout.name}'s order {','.join(expected)} (given as "
                                 f"{','.join(obs_keys)})")
                    obs_keys = expected
            both = [key for key in obs_keys if key in camera_keys]
            if both:
                raise DataError(f"{path}: {both[0]} is given both as an observation key and as a camera; an image key "
                                "is a camera only")
            columns = {key: [] for key in obs_keys}
            frames = {camera: [] for camera in cameras}
            actions = []
            for name in names:
                demo = data[name]
                if "obs" not in demo:
                    raise DataError(f"{path}: data/{name} has no obs group (it has: {key_listing(demo)})")
                reading = f"data/{name}/{action_key}"
                if action_key not in demo:
                    raise DataError(f"{path}: data/{name} has no key '{action_key}' (it has: {key_listing(demo)})")
                action = np.asarray(demo[action_key][()])
                if action.ndim == 1:
                    action = action[:, None]
                for key in obs_keys:
                    reading = f"data/{name}/obs/{key}"
                    if key not in demo["obs"]:
                        raise DataError(f"{path}: data/{name}/obs has no key '{key}' (it has: "
                                        f"{key_listing(demo['obs'])})")
                    values = np.asarray(demo["obs"][key][()])
                    if values.ndim == 1:
                        values = values[:, None]
                    if values.ndim != 2:
                        image = values.ndim == 4 and values.dtype == np.uint8
                        raise DataError(f"{path}: data/{name}/obs/{key} is {_describe(values)}: not a "
                                        "low-dimensional key" + ("; it is an image: import it as a camera, not as an "
                                                                  "observation key" if image else ""))
                    if len(values) != len(action):
                        raise DataError(f"{path}: data/{name}: obs/{key} has {len(values)} steps but {action_key} "
                                        f"has {len(action)} (a truncated or inconsistent file)")
                    columns[key].append(values)
                for key, camera in zip(camera_keys, cameras):
                    reading = f"data/{name}/obs/{key}"
                    if key not in demo["obs"]:
                        raise DataError(f"{path}: data/{name}/obs has no image key '{key}' (it has: "
                                        f"{key_listing(demo['obs'])})")
                    stored = demo["obs"][key]
                    if stored.dtype != np.uint8 or stored.ndim != 4 or stored.shape[3] != 3:
                        raise DataError(f"{path}: data/{name}/obs/{key} is {list(stored.shape)} {stored.dtype}, not "
                                        "an image key: a camera must be uint8 [L, H, W, 3] (channels last, RGB)")
                    if len(stored) != len(action):
                        raise DataError(f"{path}: data/{name}: obs/{key} has {len(stored)} frames "
                                        f"{list(stored.shape)} but {action_key} has {len(action)} steps (a truncated "
                                        "or inconsistent file)")
                    # robomimic keeps OpenGL's bottom-up rows (its IMAGE_CONVENTION "opengl"); flowpolicy's frames
                    # are top row first, as the camera sees the scene.
                    frames[camera].append(stored[()][:, ::-1])
                samples = demo.attrs.get("num_samples")
                if samples is not None and int(samples) != len(action):
                    raise DataError(f"{path}: data/{name}: num_samples is {int(samples)} but {action_key} has "
                                    f"{len(action)} steps (a truncated or inconsistent file)")
                actions.append(action)
    except DataError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise DataError(f"{path}: cannot read {reading} ({error}); the file may be truncated or damaged") from None

    # Episodes of different dimensions are reported per demo, with the key that differs.
    for key in obs_keys:
        widths = [values.shape[1] for values in columns[key]]
        for name, width in zip(names, widths):
            if width != widths[0]:
                raise DataError(f"{path}: episodes of different dimensions: data/{name}/obs/{key} is {width}-D, "
                                f"data/{names[0]}/obs/{key} is {widths[0]}-D")
    if layout is not None and layout.is_robomimic:
        for key, size in robomimic_keys(layout):
            width = columns[key][0].shape[1]
            if width != size:
                raise DataError(f"{path}: obs/{key} is {width}-D but {layout.name}'s {key} is {size}-D (is this a "
                                f"{layout.robosuite_task} dataset?)")
    # Non-finite values are reported with the key they are in.
    for key in list(obs_keys) + [action_key]:
        for name, values in zip(names, columns[key] if key in columns else actions):
            if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
                step, column = (int(i) for i in np.argwhere(~np.isfinite(values))[0])
                where = f"obs/{key}" if key in columns else key
                raise DataError(f"{path}: data/{name}: {where} has a non-finite value {values[step, column]} at step "
                                f"{step} (column {column}); remove or repair that demo")

    joined = {key: np.concatenate(columns[key]).astype(np.float64) for key in obs_keys}
    conversion, note = object_convention(layout, joined)
    if conversion == "negate":
        for values in columns["object"]:
            values[:, 7:10] = -values[:, 7:10]
    elif conversion == "reorder":
        columns["object"] = [np.concatenate([v[:, 7:14], v[:, 0:7]], axis=1) for v in columns["object"]]

    episodes = [Episode(name=f"data/{name}", obs=np.concatenate([columns[key][i] for key in obs_keys], axis=1),
                        action=actions[i], obs_key="obs/" + "+".join(obs_keys), action_key=action_key,
                        images={camera: frames[camera][i] for camera in cameras},
                        image_keys={camera: f"obs/{key}" for key, camera in zip(camera_keys, cameras)})
                for i, name in enumerate(names)]
    metadata = dict(restored)
    metadata["source_format"] = "robomimic hdf5"
    metadata["source_path"] = os.path.abspath(path)
    metadata["observation_keys"] = ",".join(obs_keys)
    metadata["source_episodes"] = f"{filter_key + ': ' if filter_key else ''}demo_{index_ranges(_indices(names))}"
    metadata["source"] = (f"robomimic hdf5 {os.path.abspath(path)}, keys {','.join(obs_keys)}"
                          + (f", cameras {','.join(camera_keys)}" if camera_keys else "")
                          + (f", filter {filter_key}" if filter_key else ""))
    if camera_keys:
        metadata["camera_keys"] = ",".join(camera_keys)
    if env_args:
        metadata["env_args"] = env_args
        try:
            control = json.loads(env_args).get("env_kwargs", {}).get("control_freq")
            if control:
                metadata["control_hz"] = rate_text(control)
        except (ValueError, AttributeError):
            raise DataError(f"{path}: data attrs env_args is not JSON") from None
    if note:
        # A conversion, or a layout that could not be confirmed, is a note; a confirmed layout is only recorded.
        metadata["observation_mapping" if conversion or "neither" in note else "observation_check"] = note
    if reordered:
        metadata["observation_mapping"] = "; ".join(filter(None, [reordered, metadata.get("observation_mapping")]))
    return fit_task(assemble(episodes, path, metadata), layout, path, "the keys " + ",".join(obs_keys))


def _indices(names):
    return [int(name[5:]) for name in names if name[5:].isdigit()]


def environment_arguments(dataset, layout):
    """env_args for an export: the imported file's own if it had one, else robosuite's for the robomimic tasks
    (Panda, OSC_POSE, 20 Hz, object observations), else a gym-type entry naming the flowpolicy task."""
    if "env_args" in dataset.metadata:
        return dataset.metadata["env_args"]
    if layout is not None and layout.is_robomimic:
        return json.dumps({
            "env_name": ROBOSUITE_ENVIRONMENTS[layout.robosuite_task], "env_version": "1.5.2",
            "type": ROBOSUITE_TYPE,
            "env_kwargs": {
                "has_renderer": False, "has_offscreen_renderer": False, "ignore_done": True, "use_object_obs": True,
                "use_camera_obs": False, "control_freq": layout.control_hz, "controller_configs": OSC_POSE,
                "robots": ["Panda"], "camera_depths": False, "camera_heights": 84, "camera_widths": 84,
                "reward_shaping": False,
            },
        })
    name = dataset.metadata.get("task", "unknown")
    return json.dumps({"env_name": f"flowpolicy/{name}", "type": GYM_TYPE, "env_kwargs": {}})


def export_keys(dataset, layout):
    """[(key, size)] the export writes: the task's robomimic keys when the dataset is in a task's layout, else one
    key `state` holding the whole observation."""
    if layout is not None:
        mode = dataset.metadata.get("observation_mode")
        if mode not in layout.observations or layout.observation_dimensions(mode) != dataset.obs.shape[1]:
            mode = layout.mode_for(dataset.obs.shape[1])
        if mode is not None:
            return robomimic_keys(layout, mode)
    return [("state", dataset.obs.shape[1])]


EXPORT_KIND = "flowpolicy robomimic export (an HDF5 file whose data group has the attribute flowpolicy)"


def _is_our_export(path):
    """An earlier export_robomimic output: an HDF5 file whose `data` group carries the attribute `flowpolicy` (a
    robomimic file from elsewhere has none and is never replaced)."""
    try:
        if not (os.path.isfile(path) and h5py.is_hdf5(path)):
            return False
        with h5py.File(path, "r") as handle:
            return isinstance(handle.get("data"), h5py.Group) and "flowpolicy" in handle["data"].attrs
    except (OSError, RuntimeError, ValueError):  # a damaged file is not replaced either
        return False


def export_robomimic(dataset, path, layout=None, valid_ratio=0.1, seed=0):
    """Writes `dataset` as a robomimic HDF5 file (atomically), reads it back and checks the arrays are identical.

    Observations and actions are stored as float64 (robomimic's own files are; every float32 value is exact in
    float64). next_obs is the following step's observation (the last step repeats its own), rewards are zeros and
    dones are zeros but for each demo's last step. Each camera is written as the image key `obs/<camera>_image`
    (uint8 [L, H, W, C], gzip-compressed). mask/train and mask/valid split the demos (`valid_ratio` of them,
    chosen with `seed`: none when it is 0, else at least one and at most all but one when there are two or more).
    There are no MuJoCo `states`: flowpolicy's simulator state is not robosuite's, so robomimic cannot reset its
    environment to a demo's start. An existing `path` is replaced only if it is an earlier export (its data group
    carries the attribute `flowpolicy`)."""
    if not 0 <= valid_ratio < 1:
        raise DataError(f"{path}: the validation share must be in [0, 1), got {valid_ratio}")
    check_output_file(path)
    keys = export_keys(dataset, layout)
    names = [f"demo_{i}" for i in range(dataset.episode_count)]
    rng = np.random.default_rng(seed)
    count = dataset.episode_count
    valid_count = 0 if count < 2 or valid_ratio == 0 else min(count - 1, max(1, int(round(valid_ratio * count))))
    valid = set(rng.permutation(count)[:valid_count].tolist()) if valid_count else set()
    camera_keys = {camera: camera + IMAGE_SUFFIX for camera in dataset.images}
    taken = [key for key in camera_keys.values() if key in dict(keys)]
    if taken:
        raise DataError(f"{path}: the camera {camera_name(taken[0])} would be written as obs/{taken[0]}, which is "
                        "already an observation key")
    recorded = {"format_version": 1, "observation_keys": [k for k, _ in keys],
                "camera_keys": list(camera_keys.values()), "metadata": {k: v for k, v in dataset.metadata.items()}}
    with atomic_file(path, _is_our_export, EXPORT_KIND) as temporary:
        with h5py.File(temporary, "w") as handle:
            data = handle.create_group("data")
            data.attrs["total"] = dataset.step_count
            data.attrs["env_args"] = environment_arguments(dataset, layout)
            data.attrs["flowpolicy"] = json.dumps(recorded)
            for index, (obs, action) in enumerate(dataset.episodes()):
                demo = data.create_group(names[index])
                demo.attrs["num_samples"] = len(obs)
                following = np.concatenate([obs[1:], obs[-1:]])
                column = 0
                for key, size in keys:
                    demo.create_dataset(f"obs/{key}", data=obs[:, column:column + size].astype(np.float64))
                    demo.create_dataset(f"next_obs/{key}", data=following[:, column:column + size].astype(np.float64))
                    column += size
                start, end = dataset.episode_range(index)
                for camera, key in camera_keys.items():
                    episode_frames = dataset.images[camera][start:end, ::-1]  # back to robomimic's bottom-up rows
                    following_frames = np.concatenate([episode_frames[1:], episode_frames[-1:]])
                    # As robomimic's dataset_states_to_obs.py --compress writes image keys: gzip, lossless.
                    demo.create_dataset(f"obs/{key}", data=episode_frames, compression="gzip")
                    demo.create_dataset(f"next_obs/{key}", data=following_frames, compression="gzip")
                demo.create_dataset("actions", data=action.astype(np.float64))
                demo.create_dataset("rewards", data=np.zeros(len(obs)))
                dones = np.zeros(len(obs))
                dones[-1] = 1
                demo.create_dataset("dones", data=dones)
            handle.create_dataset("mask/train", data=np.array([n for i, n in enumerate(names) if i not in valid],
                                                               dtype="S"))
            handle.create_dataset("mask/valid", data=np.array([n for i, n in enumerate(names) if i in valid],
                                                               dtype="S"))
        back = import_robomimic(temporary)
        compare_arrays(dataset, back, path)
    details = {"keys": [k for k, _ in keys], "train": count - len(valid), "valid": len(valid)}
    if camera_keys:
        details["cameras"] = list(camera_keys.values())
    return details
