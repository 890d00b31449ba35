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
episode_index, index, task_index.

Cameras: image features (`dtype: image`) are columns of structs {bytes: PNG or JPEG, path}, decoded with Pillow; video
features (`dtype: video`) are mp4 files at info.json's video_path, decoded with PyAV at each frame's timestamp (v2.x:
one file per episode and camera, `videos/chunk-000/<key>/episode_000000.mp4`, timestamps from 0; v3.0: files shared by
episodes, `videos/<key>/chunk-000/file-000.mp4`, the episode's frames at `videos/<key>/from_timestamp` + timestamp, with
the chunk and file in meta/episodes). A frame is taken if the video has one within LeRobot's tolerance (1e-4 s) of
the timestamp. The camera's name in flowpolicy's dataset is the key without `observation.images.` (or
`observation.`): observation.images.front -> front, observation.image -> image. flowpolicy exports v3.0, the
version current LeRobot (0.4 and later) loads; v2.1 datasets must be converted by LeRobot's
convert_dataset_v21_to_v30 before LeRobot itself loads them (flowpolicy imports both).
"""

import glob
import importlib
import io
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
CAMERA_DTYPES = ("image", "video")
CAMERA_PREFIXES = ("observation.images.", "observation.")
#: LeRobot's tolerance between a frame's timestamp and the video frame decoded for it (LeRobotDataset tolerance_s).
VIDEO_TOLERANCE = 1e-4


def camera_name(key):
    """A LeRobot image or video feature -> the dataset's camera: observation.images.front -> front."""
    for prefix in CAMERA_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


def _library(name, package, purpose):
    """Imports Pillow or PyAV when a dataset has cameras (a low-dimensional import needs neither)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DataError(f"{purpose} needs {package}, which this Python lacks: run scripts/setup.sh, or pip install "
                        f"{package}") from None


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


def import_lerobot(path, state_keys=("observation.state",), action_key="action", layout=None, cameras=None):
    """Reads a LeRobot dataset folder (v2.0, v2.1 or v3.0) into a Dataset (float32). `state_keys` are concatenated
    per step in the order given. `cameras` names the image and video features to carry as cameras (the camera name,
    e.g. front, or the feature key, observation.images.front), in that order; None: all of them, in info.json's
    order; empty: none. Features not taken are listed in the metadata (`skipped`)."""
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
    camera_keys = _choose_cameras(root, features, cameras)
    skipped = [f"{key} ({spec.get('dtype')})" for key, spec in features.items()
               if spec.get("dtype") in CAMERA_DTYPES and key not in camera_keys]
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
    video_keys = [key for key in camera_keys if features[key]["dtype"] == "video"]
    try:
        lengths, files, tasks, videos = _listing(root, info, version, video_keys)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise DataError(f"{root}: the metadata (meta/info.json data_path, meta/episodes, meta/tasks) is incomplete or "
                        f"malformed ({type(error).__name__}: {error})") from None
    if not lengths:
        raise DataError(f"{root}: the metadata lists no episodes")
    image_keys = [key for key in camera_keys if features[key]["dtype"] == "image"]
    pieces = _read_rows(root, files, state_keys, action_key, image_keys, timestamps=bool(video_keys))
    return _finish(root, info, version, lengths, pieces, tasks, skipped, recorded, state_keys, action_key, fps,
                   layout, camera_keys, videos)


def _choose_cameras(root, features, cameras):
    """The image and video feature keys to carry, in order (`cameras`: camera names or feature keys; None: all)."""
    available = [key for key, spec in features.items() if spec.get("dtype") in CAMERA_DTYPES]
    listing = ", ".join(f"{camera_name(key)} ({key}, {features[key]['dtype']})" for key in available) or "none"
    names = {}
    for key in available:
        if camera_name(key) in names:
            raise DataError(f"{root}: the features {names[camera_name(key)]} and {key} would both be the camera "
                            f"{camera_name(key)}")
        names[camera_name(key)] = key
    if cameras is None:
        return available
    chosen = []
    for camera in cameras:
        key = camera if camera in available else names.get(camera)
        if key is None:
            raise DataError(f"{root}: no image or video feature '{camera}' (its cameras: {listing})")
        if key in chosen:
            raise DataError(f"{root}: the camera {camera_name(key)} ({key}) is asked for twice")
        chosen.append(key)
    return chosen


def _listing(root, info, version, video_keys=()):
    """{episode index: length}, {data file: [episode indices]}, the task strings and {episode index: {video key:
    (video file, the episode's start in it in seconds)}}, from the metadata."""
    videos = {}
    if video_keys and not info.get("video_path"):
        raise DataError(f"{root}: meta/info.json has video features ({', '.join(video_keys)}) but no video_path")
    if version in V2_VERSIONS:
        listed = _read_jsonl(os.path.join(root, "meta", "episodes.jsonl"), root)
        lengths = {int(row["episode_index"]): int(row["length"]) for row in listed}
        chunks_size = int(info.get("chunks_size", 1000))
        template = info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
        files = {template.format(episode_chunk=index // chunks_size, episode_index=index): [index]
                 for index in sorted(lengths)}
        for index in lengths:
            videos[index] = {key: (info["video_path"].format(episode_chunk=index // chunks_size, video_key=key,
                                                             episode_index=index), 0.0) for key in video_keys}
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
            video_columns = [f"videos/{key}/{part}" for key in video_keys
                             for part in ("chunk_index", "file_index", "from_timestamp")]
            missing = [c for c in needed + video_columns if c not in table.column_names]
            if missing and missing[0] in video_columns:
                key = missing[0].split("/")[1]
                raise DataError(f"{root}: {os.path.relpath(episode_file, root)} has no column {missing[0]} (where the "
                                f"camera {camera_name(key)}'s video is); leave the camera {camera_name(key)} out to "
                                "import without it")
            if missing:
                raise DataError(f"{root}: {os.path.relpath(episode_file, root)} has no column {missing[0]} (it has: "
                                f"{', '.join(c for c in table.column_names if not c.startswith('stats/'))})")
            columns = {c: table.column(c).to_pylist() for c in needed}
            for index, length, chunk, file in zip(*(columns[c] for c in needed)):
                lengths[int(index)] = int(length)
                files.setdefault(template.format(chunk_index=chunk, file_index=file), []).append(int(index))
            for key in video_keys:
                parts = [table.column(f"videos/{key}/{part}").to_pylist()
                         for part in ("chunk_index", "file_index", "from_timestamp")]
                for index, chunk, file, start in zip(columns["episode_index"], *parts):
                    videos.setdefault(int(index), {})[key] = (
                        info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file), float(start))
        tasks = _tasks_v3(root)
    return lengths, files, tasks, videos


def _decode_images(column, key, relative, episodes, frames, root):
    """An image feature's column (structs {bytes, path}: PNG or JPEG) as uint8 [rows, H, W, 3] (RGB)."""
    image_module = _library("PIL.Image", "Pillow", f"decoding the image feature {key}")
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_struct(column.type) and column.type.get_field_index("bytes") >= 0:
        data = column.field("bytes").to_pylist()
        paths = column.field("path").to_pylist() if column.type.get_field_index("path") >= 0 else [None] * len(data)
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        data, paths = column.to_pylist(), [None] * len(column)
    else:
        raise DataError(f"{root}: {relative}: the image feature {key} holds {column.type}, not images (structs of "
                        "bytes and path)")
    images = []
    for row, (content, image_path) in enumerate(zip(data, paths)):
        where = f"episode {int(episodes[row])}: {key} at frame_index {int(frames[row])} ({relative})"
        if content is None and image_path:
            try:
                with open(os.path.join(root, image_path), "rb") as handle:
                    content = handle.read()
            except OSError as error:
                raise DataError(f"{root}: {where}: the image file {image_path} cannot be read "
                                f"({error.strerror})") from None
        if content is None:
            raise DataError(f"{root}: {where}: no image (neither bytes nor a path)")
        try:
            with image_module.open(io.BytesIO(content)) as image:
                images.append(np.asarray(image.convert("RGB")))
        except (OSError, ValueError, image_module.DecompressionBombError) as error:
            raise DataError(f"{root}: {where} is not a readable PNG or JPEG image ({error})") from None
        if images[-1].shape != images[0].shape:
            raise DataError(f"{root}: {where}: the image is {list(images[-1].shape)}, the first of the file "
                            f"{list(images[0].shape)} (H, W, C); a camera's frames must be of one size")
    return np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)


def _read_rows(root, files, state_keys, action_key, image_keys=(), timestamps=False):
    """{episode index: [(frame_index, state, action, timestamp or None, {image key: [rows, H, W, 3]}) from each data
    file holding it]}."""
    wanted = list(state_keys) + [action_key, "episode_index", "frame_index"] + list(image_keys)
    if timestamps:
        wanted.append("timestamp")
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
        times = table.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64) if timestamps else None
        images = {key: _decode_images(table.column(key), key, relative, episodes, frames, root) for key in image_keys}
        for index in np.unique(episodes).tolist():
            rows = np.flatnonzero(episodes == index)
            pieces.setdefault(index, []).append((frames[rows], state[rows], action[rows],
                                                 None if times is None else times[rows],
                                                 {key: values[rows] for key, values in images.items()}))
    return pieces


def _decode_videos(root, key, requests):
    """Decodes one video feature. `requests` is {episode index: (video file, [L] times in the file in seconds)};
    returns {episode index: [L, H, W, 3] uint8}. Each file is decoded once, front to back (v3.0 files are shared)."""
    av = _library("av", "PyAV (av)", f"decoding the video feature {key}")
    by_file = {}
    for index, (relative, times) in requests.items():
        by_file.setdefault(relative, []).append((index, times))
    decoded = {}
    for relative, wanted in by_file.items():
        times = np.concatenate([t for _, t in wanted])
        owners = np.concatenate([np.full(len(t), index) for index, t in wanted])
        frames = _frames_at(av, os.path.join(root, relative), times, root, relative, key, owners)
        offset = 0
        for index, episode_times in wanted:
            decoded[index] = frames[offset:offset + len(episode_times)]
            offset += len(episode_times)
    return decoded


def _frames_at(av, file, times, root, relative, key, owners):
    """The frames of a video at `times` (seconds, any order) as uint8 [len(times), H, W, 3]: for each time, the
    decoded frame nearest to it, which must lie within VIDEO_TOLERANCE."""
    if not os.path.isfile(file):
        episodes = index_ranges(sorted(set(owners.tolist())))
        raise DataError(f"{root}: {relative} is missing (it holds {key} of episode {episodes}): a truncated or "
                        f"incomplete download; leave the camera {camera_name(key)} out to import without it")
    order = np.argsort(times, kind="stable")
    chosen = [None] * len(times)  # (frame time, frame as RGB) per requested time
    try:
        with av.open(file) as container:
            if not container.streams.video:
                raise DataError(f"{root}: {relative} has no video stream ({key})")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            previous, position = None, 0
            for frame in container.decode(stream):
                if frame.time is None:
                    raise DataError(f"{root}: {relative}: a frame without a timestamp ({key})")
                current = (float(frame.time), frame.to_ndarray(format="rgb24"))
                while position < len(order) and times[order[position]] <= current[0]:
                    query = times[order[position]]
                    nearer = previous if previous is not None and query - previous[0] < current[0] - query else current
                    chosen[order[position]] = nearer
                    position += 1
                if position == len(order):
                    break
                previous = current
            for rest in order[position:]:
                chosen[rest] = previous
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise DataError(f"{root}: {relative} is not a readable video ({error}); it may be truncated or "
                        "damaged") from None
    for row, (query, found) in enumerate(zip(times, chosen)):
        if found is None or abs(found[0] - query) > VIDEO_TOLERANCE:
            nearest = "it has no frames" if found is None else f"the nearest frame is at {found[0]:.6f} s"
            raise DataError(f"{root}: episode {int(owners[row])}: {key}: {relative} has no frame at {query:.6f} s "
                            f"({nearest}): the video and the data files do not agree")
    shapes = {frame.shape for _, frame in chosen}
    if len(shapes) > 1:
        raise DataError(f"{root}: {relative}: {key} has frames of different sizes ({sorted(shapes)})")
    return np.stack([frame for _, frame in chosen])


def _finish(root, info, version, lengths, pieces, tasks, skipped, recorded, state_keys, action_key, fps, layout,
            camera_keys=(), videos=None):
    """Checks every listed episode against its rows (count, frame_index 0..L-1), decodes the video features at the
    episodes' timestamps and assembles the dataset."""
    features = info.get("features") or {}
    video_requests = {key: {} for key in camera_keys if features[key]["dtype"] == "video"}
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
        images = {key: np.concatenate([p[4][key] for p in pieces[index]])[order] for key in pieces[index][0][4]}
        for key in video_requests:
            if key not in videos.get(index, {}):
                raise DataError(f"{root}: episode {index}: meta/episodes does not say where its {key} video is")
            relative, start = videos[index][key]
            times = np.concatenate([p[3] for p in pieces[index]])[order]
            video_requests[key][index] = (relative, start + times)
        episodes_out.append(Episode(
            name=f"episode {index}", obs=np.concatenate([p[1] for p in pieces[index]])[order],
            action=np.concatenate([p[2] for p in pieces[index]])[order], obs_key="+".join(state_keys),
            action_key=action_key, images=images))
    total = info.get("total_frames")
    found = sum(len(e.obs) for e in episodes_out)
    if isinstance(total, int) and total != found:
        raise DataError(f"{root}: meta/info.json says {total} frames, the data files hold {found}: a truncated or "
                        "inconsistent dataset")
    for key, requests in video_requests.items():
        decoded = _decode_videos(root, key, requests)
        for episode, index in zip(episodes_out, sorted(lengths)):
            episode.images[key] = decoded[index]
    for episode in episodes_out:  # the cameras in the order asked for, named without observation.images.
        episode.images = {camera_name(key): episode.images[key] for key in camera_keys}
        episode.image_keys = {camera_name(key): key for key in camera_keys}

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
    if camera_keys:
        metadata["camera_keys"] = ",".join(camera_keys)
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


def _image_statistics(frames):
    """LeRobot's statistics of an image feature: per channel, of the values scaled to [0, 1], each [C, 1, 1]."""
    values = frames.reshape(-1, frames.shape[-1]).astype(np.float64) / 255.0
    shaped = {name: getattr(values, name)(axis=0).reshape(-1, 1, 1).tolist() for name in ("min", "max", "mean", "std")}
    return {**shaped, "count": [len(frames)]}


def _png_column(frames, camera):
    """Frames [N, H, W, 3] uint8 as LeRobot's image column: structs {bytes: PNG, path} (lossless)."""
    image_module = _library("PIL.Image", "Pillow", f"encoding the camera {camera}")
    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        image_module.fromarray(frame, mode="RGB").save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    return pa.array(encoded, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))


def _write_table(table, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="snappy")


def export_lerobot(dataset, path, layout=None, fps=None, task_text=None):
    """Writes `dataset` as a LeRobot v3.0 dataset folder (atomically: built beside `path`, then renamed), reads it
    back and checks the arrays are identical. `fps` defaults to the dataset's control_hz; `task_text` (LeRobot's
    per-episode language task) to the flowpolicy task name. Each camera becomes the image feature
    `observation.images.<camera>` (PNG in the parquet, so the frames read back bit for bit)."""
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
    image_features = {f"observation.images.{camera}": camera for camera in dataset.images}
    for key, camera in image_features.items():
        frames = dataset.images[camera]
        columns[key] = _png_column(frames, camera)
        features[key] = {"dtype": "image", "shape": list(frames.shape[1:]), "names": ["height", "width", "channel"]}
        stats[key] = _image_statistics(frames)
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
    for key, camera in image_features.items():
        per_episode = [_image_statistics(dataset.images[camera][s:e])
                       for s, e in zip(starts.tolist(), dataset.episode_ends.tolist())]
        for statistic in ("min", "max", "mean", "std", "count"):
            kind = pa.list_(pa.int64()) if statistic == "count" else pa.list_(pa.list_(pa.list_(pa.float64())))
            episode_columns[f"stats/{key}/{statistic}"] = pa.array([s[statistic] for s in per_episode], type=kind)
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
    details = {"version": V3_VERSION, "fps": fps, "task": task_text}
    if image_features:
        details["cameras"] = list(image_features)
    return details
