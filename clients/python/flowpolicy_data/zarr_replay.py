"""Diffusion Policy's zarr replay buffers (zarr format 2, read and written with zarr-python 2), the layout of
`pusht_cchi_v7_replay.zarr`:

    data/state        [N, 5]     Push-T: agent x, y, block x, y, block angle
    data/keypoint     [N, 9, 2]  Push-T: the block's 9 keypoints in world coordinates
    data/action       [N, Da]
    data/...          other per-step arrays (img, n_contacts, ...), not imported
    meta/episode_ends [E]        exclusive cumulative ends

A folder store, or a zip file of one (`*.zip`, as Diffusion Policy's ReplayBuffer.save_to_path writes it).

Observation mapping onto Push-T (tasks/pusht/task.yaml, mode `keypoints`): keypoint flattened to 18 numbers (x0, y0,
x1, y1, ...) followed by the agent's x, y = state[:, :2], as Diffusion Policy's PushTLowdimDataset builds its 20-D
observation; mode `state` takes state as it is (the 5 numbers are flowpolicy's `state` observation).
"""

import json
import os
import zipfile

import numcodecs
import numpy as np
import zarr

from .dataset import (DataError, Episode, assemble, atomic_file, atomic_folder, compare_arrays, first_non_finite,
                      index_ranges, key_listing, rate_text)
from .tasks import fit_task

if zarr.__version__.split(".")[0] != "2":
    raise ImportError(f"zarr {zarr.__version__} is installed, Diffusion Policy's replay buffers are read with zarr 2",
                      name="zarr 2 (zarr==2.18.7)")

PUSHT_KEYPOINTS = "keypoint[N,9,2] flattened + state[:, :2]"
#: The data keys of Push-T's observation modes (for messages).
PUSHT_MODES = "keypoints: data/keypoint + data/state[:, :2]; state: data/state"


def _open(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "zarr.json")):
        raise DataError(f"{path}: a zarr format 3 store; Diffusion Policy's replay buffers (and this reader) are "
                        "zarr format 2 (.zgroup, .zarray)")
    try:
        store = zarr.ZipStore(path, mode="r") if os.path.isfile(path) else zarr.DirectoryStore(path)
        return store, zarr.open_group(store, mode="r")
    except Exception as error:  # zarr reports foreign or damaged stores as several error types
        raise DataError(f"{path}: not a zarr replay buffer (a zarr v2 group with data/ and meta/; {error})") from None


def _read(path, group, prefix, key):
    if key not in group:
        raise DataError(f"{path}: no {prefix}/{key} (the store has {prefix}/: {key_listing(group)})")
    array = group[key]
    if not isinstance(array, zarr.Array):
        raise DataError(f"{path}: {prefix}/{key} is a group, not an array")
    if array.nchunks_initialized < array.nchunks:
        raise DataError(f"{path}: {prefix}/{key}: {array.nchunks - array.nchunks_initialized} of its {array.nchunks} "
                        "chunks are missing (a truncated or incomplete copy)")
    try:
        return array[...]
    except Exception as error:
        raise DataError(f"{path}: cannot read {prefix}/{key} ({error}); the store may be truncated or "
                        "damaged") from None


def import_zarr(path, layout=None, obs_keys=None, action_key="action", observation_mode=None):
    """Reads a Diffusion Policy replay buffer into a Dataset (float32).

    With `layout` = Push-T, the observation is Push-T's `keypoints` mode (keypoint flattened + state[:, :2]) or, with
    `observation_mode` "state", state as it is. Otherwise `obs_keys` (default: the keys a flowpolicy export recorded,
    else `state`) are flattened per step and concatenated; Push-T's layout is fixed, so it takes no `obs_keys`."""
    if obs_keys and layout is not None and layout.name == "pusht":
        raise DataError(f"{path}: obs keys do not apply to pusht, whose observation is fixed by its mode "
                        f"({PUSHT_MODES}); choose the mode, or import other keys without the task")
    store, root = _open(path)
    try:
        recorded = json.loads(root.attrs["flowpolicy"]) if "flowpolicy" in root.attrs else {}
        for name in ("data", "meta"):
            if name not in root:
                raise DataError(f"{path}: not a replay buffer: no group '{name}' (the store has: {key_listing(root)})")
        data, meta = root["data"], root["meta"]
        ends = _read(path, meta, "meta", "episode_ends")
        restored = {}
        pusht = layout is not None and layout.name == "pusht"
        if pusht:
            mode = observation_mode or ("state" if recorded.get("mapping") == "state" else "keypoints")
            if mode not in layout.observations:
                raise DataError(f"{path}: pusht has no observation mode {mode!r} (it has "
                                f"{', '.join(layout.observations)})")
            keys = ["keypoint", "state"] if mode == "keypoints" else ["state"]
        else:
            mode = observation_mode
            if obs_keys:
                keys = list(obs_keys)
            elif recorded.get("observation_keys"):
                keys = list(recorded["observation_keys"])
                restored = {key: value for key, value in recorded.get("metadata", {}).items()
                            if key in ("task", "observation_mode", "control_hz", "seeds")}
            else:
                keys = ["state"]
        arrays = {key: _read(path, data, "data", key) for key in keys}
        action = _read(path, data, "data", action_key)
        skipped = sorted(set(data.keys()) - set(keys) - {action_key})
    finally:
        if isinstance(store, zarr.ZipStore):
            store.close()

    if ends.ndim != 1 or not np.issubdtype(ends.dtype, np.integer):
        raise DataError(f"{path}: meta/episode_ends must be 1-D integers, got {ends.dtype} {list(ends.shape)}")
    previous = 0
    for index, end in enumerate(ends.tolist()):
        if end <= previous:
            raise DataError(f"{path}: meta/episode_ends must be strictly increasing: episode {index} ends at {end} "
                            f"after {previous}")
        previous = end
    for key, values in list(arrays.items()) + [(action_key, action)]:
        if len(values) != previous:
            raise DataError(f"{path}: data/{key} has {len(values)} steps but meta/episode_ends ends at {previous} (a "
                            "truncated or inconsistent store)")

    for key, values in list(arrays.items()) + [(action_key, action)]:
        bad = first_non_finite(values.reshape(len(values), -1))
        if bad:
            row, column = bad
            episode = int(np.searchsorted(ends, row, side="right"))
            step = row - (0 if episode == 0 else int(ends[episode - 1]))
            raise DataError(f"{path}: episode {episode}: data/{key} has a non-finite value "
                            f"{values.reshape(len(values), -1)[row, column]} at step {step} (flattened column "
                            f"{column}); remove or repair that episode")

    recorded_mapping = recorded.get("mapping")
    if pusht and mode == "keypoints" or recorded_mapping == "pusht_keypoints" and not obs_keys:
        keypoint, state = arrays["keypoint"], arrays["state"]
        flat = keypoint.reshape(len(keypoint), -1)
        if flat.shape[1] != 18 or state.ndim != 2 or state.shape[1] < 2:
            raise DataError(f"{path}: Push-T keypoints need data/keypoint [N, 9, 2] and data/state [N, >= 2], got "
                            f"{list(keypoint.shape)} and {list(state.shape)}")
        obs = np.concatenate([flat, state[:, :2]], axis=1)
        obs_name, mapping = "data/keypoint+data/state[:, :2]", PUSHT_KEYPOINTS
    else:
        obs = np.concatenate([arrays[key].reshape(len(arrays[key]), -1) for key in keys], axis=1)
        obs_name, mapping = "+".join(f"data/{key}" for key in keys), None
    action = action.reshape(len(action), -1)

    starts = np.concatenate([[0], ends[:-1]])
    episodes = [Episode(name=f"episode {i}", obs=obs[start:end], action=action[start:end], obs_key=obs_name,
                        action_key=f"data/{action_key}")
                for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist()))]
    metadata = dict(restored)
    metadata["source_format"] = "zarr replay buffer"
    metadata["source_path"] = os.path.abspath(path)
    metadata["observation_keys"] = ",".join(keys)
    metadata["source"] = f"zarr replay buffer {os.path.abspath(path)}, obs {obs_name}, action data/{action_key}"
    metadata["source_episodes"] = index_ranges(range(len(ends)))
    if mapping:
        metadata["observation_mapping"] = mapping
    if skipped:
        metadata["skipped"] = ", ".join(f"data/{key}" for key in skipped)
    dataset = assemble(episodes, path, metadata)
    if layout is not None:
        dataset.metadata.setdefault("control_hz", rate_text(layout.control_hz))
    return fit_task(dataset, layout, path, obs_name, mode=mode)


def _chunks(shape, itemsize, target_bytes=2_000_000):
    """Rows per chunk so that a chunk holds about `target_bytes` (Diffusion Policy's get_optimal_chunks aims at
    2 MB)."""
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    return (max(1, min(shape[0], target_bytes // max(row, 1))),) + tuple(shape[1:])


EXPORT_KIND = "flowpolicy zarr export (a zarr group whose attributes have the key flowpolicy)"


def _is_our_export(path):
    """An earlier export_zarr output: a zarr group (a folder, or a zip file of one) whose attributes (.zattrs) have
    the key `flowpolicy`, which the export writes (a replay buffer from elsewhere has none and is never replaced)."""
    try:
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, ".zgroup")):
                return False
            with open(os.path.join(path, ".zattrs"), encoding="utf-8") as handle:
                attributes = json.load(handle)
        else:
            with zipfile.ZipFile(path) as archive:
                if ".zgroup" not in archive.namelist():
                    return False
                attributes = json.loads(archive.read(".zattrs"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # no attributes, or not JSON: not ours
        return False
    return isinstance(attributes, dict) and "flowpolicy" in attributes


def export_zarr(dataset, path, layout=None):
    """Writes `dataset` as a Diffusion Policy replay buffer (a folder, or a zip file if `path` ends in .zip),
    atomically; reads it back and checks the arrays are identical.

    A Push-T dataset in the keypoints mode is written as Diffusion Policy's Push-T buffer: data/keypoint [N, 9, 2] and
    data/state [N, 2] (the agent's x, y: the block pose is not part of the keypoint observation, and Diffusion
    Policy's low-dim Push-T reads only state[:, :2]). Every other dataset: data/state = the observation."""
    pusht_keypoints = (layout is not None and layout.name == "pusht" and dataset.obs.shape[1] == 20
                       and dataset.metadata.get("observation_mode", "keypoints") == "keypoints")
    if pusht_keypoints:
        arrays = {"keypoint": dataset.obs[:, :18].reshape(-1, 9, 2), "state": dataset.obs[:, 18:20]}
        mapping = "pusht_keypoints"
    else:
        arrays = {"state": dataset.obs}
        mapping = "state" if layout is not None and layout.name == "pusht" else None
    arrays["action"] = dataset.action
    recorded = {"format_version": 1, "observation_keys": [k for k in arrays if k != "action"], "mapping": mapping,
                "metadata": dict(dataset.metadata)}
    compressor = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)

    def write(store):
        root = zarr.group(store=store, overwrite=True)
        root.attrs["flowpolicy"] = json.dumps(recorded)
        data, meta = root.create_group("data"), root.create_group("meta")
        for key, values in arrays.items():
            values = np.ascontiguousarray(values)
            data.array(key, values, chunks=_chunks(values.shape, values.itemsize), compressor=compressor)
        meta.array("episode_ends", dataset.episode_ends, chunks=(max(1, len(dataset.episode_ends)),),
                   compressor=None)

    if path.endswith(".zip"):
        with atomic_file(path, _is_our_export, EXPORT_KIND) as temporary:
            os.remove(temporary)  # ZipStore creates the file itself
            store = zarr.ZipStore(temporary, mode="w")
            try:
                write(store)
            finally:
                store.close()
            compare_arrays(dataset, import_zarr(temporary), path, images=False)
    else:
        with atomic_folder(path, _is_our_export, EXPORT_KIND) as temporary:
            write(zarr.DirectoryStore(temporary))
            compare_arrays(dataset, import_zarr(temporary), path, images=False)
    return {"keys": [f"data/{k}" for k in arrays], "mapping": mapping}
