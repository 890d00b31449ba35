"""LeRobot datasets (parquet read and written with pyarrow), codebase versions v2.0/v2.1 and v3.0.

v2.1 (and v2.0):
    meta/info.json          codebase_version, fps, robot_type, features, total_episodes, total_frames, chunks_size,
                            data_path "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    meta/episodes.jsonl     {"episode_index", "tasks", "length"} per line
    meta/tasks.jsonl        {"task_index", "task"} per line
    data/chunk-000/episode_000000.parquet ...  one file per episode
v3.0:
    meta/info.json          as above, data_path "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    meta/episodes/chunk-000/file-000.parquet  episode_index, tasks, length, data/chunk_index, data/file_index,
                            dataset_from_index, dataset_to_index, meta/episodes/..., stats/<feature>/<stat>
    meta/tasks.parquet      task_index, indexed by the task string (pandas index)
    meta/stats.json
    data/chunk-000/file-000.parquet ...  many episodes per file

Every data file has the feature columns (`observation.state`, `action`: lists of numbers) and timestamp, frame_index,
episode_index, index, task_index. Image and video features are listed and skipped. flowpolicy exports v3.0, the
version current LeRobot (0.4 and later) loads; v2.1 datasets must be converted by LeRobot's
convert_dataset_v21_to_v30 before LeRobot itself loads them (flowpolicy imports both).
"""

import glob
import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import (DataError, Episode, assemble, atomic_folder, compare_arrays, first_non_finite, index_ranges,
                      rate_text)
from .tasks import fit_task

V2_VERSIONS = ("v2.0", "v2.1")
V3_VERSION = "v3.0"
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


def _read_json(path, root):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise DataError(f"{root}: cannot read {os.path.relpath(path, root)} ({error.strerror})") from None
    except ValueError as error:
        raise DataError(f"{root}: {os.path.relpath(path, root)} is not valid JSON ({error})") from None


def _read_jsonl(path, root):
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    rows.append(json.loads(line))
    except OSError as error:
        raise DataError(f"{root}: cannot read {os.path.relpath(path, root)} ({error.strerror})") from None
    except ValueError as error:
        raise DataError(f"{root}: {os.path.relpath(path, root)} line {number} is not valid JSON ({error})") from None
    return rows


def _read_parquet(path, root, columns=None):
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise DataError(f"{root}: {os.path.relpath(path, root)} is missing") from None
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{root}: {os.path.relpath(path, root)} is not a readable parquet file ({error}); it may be "
                        "truncated or damaged") from None


def _matrix(column, name, where, episodes, root):
    """A parquet column of numbers or lists of numbers as [rows, width]. Errors name the file, the column and the
    episode of the first bad row."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = len(column)
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{root}: {where}: {name} is missing at row {row} (episode {int(episodes[row])})")
    kind = column.type
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if pa.types.is_fixed_size_list(kind):
            width = kind.list_size
        else:
            lengths = column.value_lengths().to_numpy(zero_copy_only=False)
            width = int(lengths[0]) if rows else 0
            odd = np.flatnonzero(lengths != width)
            if len(odd):
                row = int(odd[0])
                raise DataError(f"{root}: episodes of different dimensions: {where}: {name} has {int(lengths[row])} "
                                f"numbers in episode {int(episodes[row])} but {width} in episode {int(episodes[0])}")
        values = column.flatten()
        if values.null_count:
            row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // max(width, 1)
            raise DataError(f"{root}: {where}: {name} has a missing number at row {row} (episode {int(episodes[row])})")
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise DataError(f"{root}: {where}: {name} holds {values.type}, not numbers")
        return values.to_numpy(zero_copy_only=False).reshape(rows, width)
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return column.to_numpy(zero_copy_only=False).reshape(rows, 1)
    raise DataError(f"{root}: {where}: {name} holds {kind}, not numbers")


def _tasks_v3(root):
    path = os.path.join(root, "meta", "tasks.parquet")
    if not os.path.exists(path):
        return []
    table = _read_parquet(path, root)
    texts = (pa.types.is_string, pa.types.is_large_string)
    names = [n for n in table.column_names
             if n != "task_index" and any(test(table.schema.field(n).type) for test in texts)]
    if not names or "task_index" not in table.column_names:
        return []
    order = np.argsort(table.column("task_index").to_numpy(zero_copy_only=False))
    texts = table.column(names[0]).to_pylist()
    return [texts[i] for i in order]


def import_lerobot(path, state_keys=("observation.state",), action_key="action", layout=None):
    """Reads a LeRobot dataset folder (v2.0, v2.1 or v3.0) into a Dataset (float32). `state_keys` are concatenated
    per step in the order given; image and video features are skipped (listed in the metadata)."""
    root = path
    info_path = os.path.join(root, "meta", "info.json")
    if not os.path.isdir(root):
        raise DataError(f"{root}: a LeRobot dataset is a folder (meta/info.json, data/...); this is not one")
    if not os.path.isfile(info_path):
        present = ", ".join(sorted(os.listdir(root))) or "nothing"
        raise DataError(f"{root}: not a LeRobot dataset folder: no meta/info.json (the folder has: {present})")
    info = _read_json(info_path, root)
    version = info.get("codebase_version")
    if version not in V2_VERSIONS + (V3_VERSION,):
        raise DataError(f"{root}: meta/info.json: LeRobot codebase_version {version!r} is not supported (this reads "
                        f"{', '.join(V2_VERSIONS + (V3_VERSION,))})")
    features = info.get("features") or {}
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise DataError(f"{root}: meta/info.json: fps must be a positive number, got {fps!r}")
    skipped = [f"{key} ({spec.get('dtype')})" for key, spec in features.items()
               if spec.get("dtype") in ("image", "video")]
    numeric = [key for key, spec in features.items()
               if spec.get("dtype") not in ("image", "video", "string") and key not in INDEX_FEATURES]
    for key in list(state_keys) + [action_key]:
        if key not in features:
            raise DataError(f"{root}: meta/info.json has no feature '{key}' (its features: {', '.join(features)}; "
                            f"numeric: {', '.join(numeric) or 'none'})")
        if features[key].get("dtype") in ("image", "video"):
            raise DataError(f"{root}: feature '{key}' is a {features[key]['dtype']} feature; flowpolicy imports "
                            f"low-dimensional features ({', '.join(numeric) or 'none'})")
    recorded_path = os.path.join(root, "meta", "flowpolicy.json")
    recorded = _read_json(recorded_path, root) if os.path.isfile(recorded_path) else {}

    # The episodes the metadata lists: index -> length, and the data files that hold them.
    try:
        lengths, files, tasks = _listing(root, info, version)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DataError(f"{root}: the metadata (meta/info.json data_path, meta/episodes, meta/tasks) is incomplete or "
                        f"malformed ({type(error).__name__}: {error})") from None
    if not lengths:
        raise DataError(f"{root}: the metadata lists no episodes")
    pieces = _read_rows(root, files, state_keys, action_key)
    return _finish(root, info, version, lengths, pieces, tasks, skipped, recorded, state_keys, action_key, fps,
                   layout)


def _listing(root, info, version):
    """{episode index: length}, {data file: [episode indices]} and the task strings, from the metadata."""
    if version in V2_VERSIONS:
        listed = _read_jsonl(os.path.join(root, "meta", "episodes.jsonl"), root)
        lengths = {int(row["episode_index"]): int(row["length"]) for row in listed}
        chunks_size = int(info.get("chunks_size", 1000))
        template = info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        files = {template.format(episode_chunk=index // chunks_size, episode_index=index): [index]
                 for index in sorted(lengths)}
        tasks = [row["task"] for row in sorted(_read_jsonl(os.path.join(root, "meta", "tasks.jsonl"), root),
                                               key=lambda row: row["task_index"])] \
            if os.path.exists(os.path.join(root, "meta", "tasks.jsonl")) else []
    else:
        episode_files = sorted(glob.glob(os.path.join(root, "meta", "episodes", "*", "*.parquet")))
        if not episode_files:
            raise DataError(f"{root}: no meta/episodes/chunk-*/file-*.parquet (LeRobot v3.0 lists its episodes there)")
        lengths, files = {}, {}
        template = info.get("data_path", V3_DATA_PATH)
        for episode_file in episode_files:
            table = _read_parquet(episode_file, root)
            needed = ["episode_index", "length", "data/chunk_index", "data/file_index"]
            missing = [c for c in needed if c not in table.column_names]
            if missing:
                raise DataError(f"{root}: {os.path.relpath(episode_file, root)} has no column {missing[0]} (it has: "
                                f"{', '.join(c for c in table.column_names if not c.startswith('stats/'))})")
            columns = {c: table.column(c).to_pylist() for c in needed}
            for index, length, chunk, file in zip(*(columns[c] for c in needed)):
                lengths[int(index)] = int(length)
                files.setdefault(template.format(chunk_index=chunk, file_index=file), []).append(int(index))
        tasks = _tasks_v3(root)
    return lengths, files, tasks


def _read_rows(root, files, state_keys, action_key):
    """{episode index: [(frame_index, state, action) from each data file holding it]}."""
    wanted = list(state_keys) + [action_key, "episode_index", "frame_index"]
    pieces = {}
    for relative, expected in files.items():
        file = os.path.join(root, relative)
        if not os.path.exists(file):
            raise DataError(f"{root}: {relative} is missing (it holds episode {expected[0]}"
                            f"{' and others' if len(expected) > 1 else ''}): a truncated or incomplete download")
        try:
            schema_names = pq.read_schema(file).names
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{root}: {relative} is not a readable parquet file ({error}); it may be truncated or "
                            "damaged") from None
        absent = [c for c in wanted if c not in schema_names]
        if absent:
            raise DataError(f"{root}: {relative} has no column '{absent[0]}' (it has: {', '.join(schema_names)})")
        table = _read_parquet(file, root, columns=wanted)
        episodes = table.column("episode_index").to_numpy(zero_copy_only=False)
        frames = table.column("frame_index").to_numpy(zero_copy_only=False)
        states = [_matrix(table.column(key), key, relative, episodes, root) for key in state_keys]
        action = _matrix(table.column(action_key), action_key, relative, episodes, root)
        for key, values in zip(list(state_keys) + [action_key], states + [action]):
            bad = first_non_finite(values)
            if bad:
                row, column = bad
                raise DataError(f"{root}: episode {int(episodes[row])}: {key} has a non-finite value "
                                f"{values[row, column]} at frame_index {int(frames[row])} (column {column}; "
                                f"{relative}); remove or repair that episode")
        state = np.concatenate(states, axis=1) if len(states) > 1 else states[0]
        for index in np.unique(episodes).tolist():
            rows = np.flatnonzero(episodes == index)
            pieces.setdefault(index, []).append((frames[rows], state[rows], action[rows]))
    return pieces


def _finish(root, info, version, lengths, pieces, tasks, skipped, recorded, state_keys, action_key, fps, layout):
    """Checks every listed episode against its rows (count, frame_index 0..L-1) and assembles the dataset."""
    episodes_out = []
    for index in sorted(set(lengths) | set(pieces)):
        if index not in lengths:
            raise DataError(f"{root}: episode {index} has data but the metadata does not list it")
        if index not in pieces:
            raise DataError(f"{root}: episode {index} ({lengths[index]} frames in the metadata) has no rows in the "
                            "data files: a truncated or incomplete dataset")
        frames = np.concatenate([p[0] for p in pieces[index]])
        order = np.argsort(frames, kind="stable")
        frames = frames[order]
        if len(frames) != lengths[index] or not np.array_equal(frames, np.arange(len(frames))):
            raise DataError(f"{root}: episode {index}: the metadata says {lengths[index]} frames, the data files hold "
                            f"{len(frames)} with frame_index {_span(frames)}: a truncated or inconsistent dataset")
        if len({p[1].shape[1] for p in pieces[index]}) > 1 or len({p[2].shape[1] for p in pieces[index]}) > 1:
            raise DataError(f"{root}: episode {index} has rows of different dimensions in different data files")
        episodes_out.append(Episode(
            name=f"episode {index}", obs=np.concatenate([p[1] for p in pieces[index]])[order],
            action=np.concatenate([p[2] for p in pieces[index]])[order], obs_key="+".join(state_keys),
            action_key=action_key))
    total = info.get("total_frames")
    found = sum(len(e.obs) for e in episodes_out)
    if isinstance(total, int) and total != found:
        raise DataError(f"{root}: meta/info.json says {total} frames, the data files hold {found}: a truncated or "
                        "inconsistent dataset")

    metadata = {}
    if recorded.get("state_keys") == list(state_keys):
        metadata.update({key: value for key, value in recorded.get("metadata", {}).items()
                         if key in ("task", "observation_mode", "control_hz", "seeds")})
    metadata["source_format"] = f"lerobot {version}"
    metadata["source_path"] = os.path.abspath(root)
    metadata["observation_keys"] = ",".join(state_keys)
    metadata["source"] = f"lerobot {version} {os.path.abspath(root)}, state {'+'.join(state_keys)}, action {action_key}"
    metadata["source_episodes"] = index_ranges(sorted(lengths))
    metadata["control_hz"] = rate_text(fps)
    if info.get("robot_type"):
        metadata["robot_type"] = str(info["robot_type"])
    if tasks:
        metadata["lerobot_tasks"] = json.dumps(tasks)
    if skipped:
        metadata["skipped"] = ", ".join(skipped)
    return fit_task(assemble(episodes_out, root, metadata), layout, root, "the state features " + "+".join(state_keys))


def _span(frames):
    return f"{int(frames[0])}..{int(frames[-1])}" if len(frames) else "none"


def _names(layout, dimensions, mode=None):
    """Per-dimension names from the task's groups (cube_pos.0, ...), or None."""
    if layout is None:
        return None
    groups = layout.groups(mode) if mode in layout.observations else None
    if groups is None or sum(g.size for g in groups) != dimensions:
        return None
    return [g.name if g.size == 1 else f"{g.name}.{i}" for g in groups for i in range(g.size)]


def _statistics(values):
    values = values.astype(np.float64)
    return {"min": values.min(axis=0).tolist(), "max": values.max(axis=0).tolist(),
            "mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist(), "count": [len(values)]}


EXPORT_KIND = "flowpolicy LeRobot export (a folder with meta/flowpolicy.json)"


def _is_our_export(path):
    """An earlier export_lerobot output: it writes meta/flowpolicy.json beside meta/info.json (a LeRobot dataset from
    elsewhere has no such file and is never replaced)."""
    return all(os.path.isfile(os.path.join(path, "meta", name)) for name in ("info.json", "flowpolicy.json"))


def _write_table(table, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def export_lerobot(dataset, path, layout=None, fps=None, task_text=None):
    """Writes `dataset` as a LeRobot v3.0 dataset folder (atomically: built beside `path`, then renamed), reads it
    back and checks the arrays are identical. `fps` defaults to the dataset's control_hz; `task_text` (LeRobot's
    per-episode language task) to the flowpolicy task name."""
    if fps is None:
        if "control_hz" not in dataset.metadata:
            raise DataError(f"{path}: the dataset records no control rate (control_hz); give the frame rate (--fps)")
        try:
            fps = float(dataset.metadata["control_hz"])
        except ValueError:
            raise DataError(f"{path}: the dataset's control_hz {dataset.metadata['control_hz']!r} is not a number; "
                            "give the frame rate (--fps)") from None
    if not (fps > 0 and math.isfinite(fps)):
        raise DataError(f"{path}: the frame rate must be a positive number, got {fps}; give another one (--fps)")
    fps = int(fps) if float(fps).is_integer() else float(fps)
    task_text = task_text or dataset.metadata.get("task", "flowpolicy")
    N, E = dataset.step_count, dataset.episode_count
    Do, Da = dataset.obs.shape[1], dataset.action.shape[1]
    mode = dataset.metadata.get("observation_mode")
    if layout is not None and (mode not in layout.observations or layout.observation_dimensions(mode) != Do):
        mode = layout.mode_for(Do)
    starts = np.concatenate([[0], dataset.episode_ends[:-1]]).astype(np.int64)
    episode_index = np.repeat(np.arange(E, dtype=np.int64), np.diff(np.concatenate([[0], dataset.episode_ends])))
    frame_index = np.arange(N, dtype=np.int64) - starts[episode_index]
    columns = {
        "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(dataset.obs.reshape(-1)), Do),
        "action": pa.FixedSizeListArray.from_arrays(pa.array(dataset.action.reshape(-1)), Da),
        "timestamp": pa.array((frame_index / fps).astype(np.float32)),
        "frame_index": pa.array(frame_index),
        "episode_index": pa.array(episode_index),
        "index": pa.array(np.arange(N, dtype=np.int64)),
        "task_index": pa.array(np.zeros(N, dtype=np.int64)),
    }
    scalars = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
               "task_index": "int64"}
    features = {
        "observation.state": {"dtype": "float32", "shape": [Do], "names": _names(layout, Do, mode)},
        "action": {"dtype": "float32", "shape": [Da],
                   "names": [g.name if g.size == 1 else f"{g.name}.{i}" for g in layout.actions for i in range(g.size)]
                   if layout is not None and layout.action_dimensions == Da else None},
        **{name: {"dtype": dtype, "shape": [1], "names": None} for name, dtype in scalars.items()},
    }
    info = {
        "codebase_version": V3_VERSION, "robot_type": dataset.metadata.get("robot_type"),
        "total_episodes": E, "total_frames": N, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{E}"}, "data_path": V3_DATA_PATH,
        "video_path": None, "features": features,
    }
    stats = {name: _statistics(dataset.obs if name == "observation.state" else dataset.action if name == "action"
                               else columns[name].to_numpy().reshape(-1, 1))
             for name in features}
    episode_columns = {
        "episode_index": pa.array(np.arange(E, dtype=np.int64)),
        "tasks": pa.array([[task_text]] * E, type=pa.list_(pa.string())),
        "length": pa.array(np.diff(np.concatenate([[0], dataset.episode_ends])).astype(np.int64)),
        "data/chunk_index": pa.array(np.zeros(E, dtype=np.int64)),
        "data/file_index": pa.array(np.zeros(E, dtype=np.int64)),
        "dataset_from_index": pa.array(starts),
        "dataset_to_index": pa.array(dataset.episode_ends.astype(np.int64)),
        "meta/episodes/chunk_index": pa.array(np.zeros(E, dtype=np.int64)),
        "meta/episodes/file_index": pa.array(np.zeros(E, dtype=np.int64)),
    }
    for name, values in (("observation.state", dataset.obs), ("action", dataset.action)):
        per_episode = [_statistics(values[s:e]) for s, e in zip(starts.tolist(), dataset.episode_ends.tolist())]
        for statistic in ("min", "max", "mean", "std", "count"):
            kind = pa.list_(pa.int64()) if statistic == "count" else pa.list_(pa.float64())
            episode_columns[f"stats/{name}/{statistic}"] = pa.array([s[statistic] for s in per_episode], type=kind)
    # meta/tasks.parquet as pandas writes LeRobot's DataFrame({"task_index": [...]}, index=[task strings]).
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3",
    }
    tasks_table = pa.table({"task_index": pa.array([0], type=pa.int64()), "__index_level_0__": pa.array([task_text])})
    tasks_table = tasks_table.replace_schema_metadata({"pandas": json.dumps(pandas_metadata)})
    recorded = {"format_version": 1, "state_keys": ["observation.state"], "metadata": dict(dataset.metadata)}

    with atomic_folder(path, _is_our_export, EXPORT_KIND) as temporary:
        _write_table(pa.table(columns), os.path.join(temporary, V3_DATA_PATH.format(chunk_index=0, file_index=0)))
        _write_table(pa.table(episode_columns),
                     os.path.join(temporary, V3_EPISODES_PATH.format(chunk_index=0, file_index=0)))
        _write_table(tasks_table, os.path.join(temporary, "meta", "tasks.parquet"))
        for name, content in (("info.json", info), ("stats.json", stats), ("flowpolicy.json", recorded)):
            with open(os.path.join(temporary, "meta", name), "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=4)
        compare_arrays(dataset, import_lerobot(temporary), path)
    return {"version": V3_VERSION, "fps": fps, "task": task_text}
