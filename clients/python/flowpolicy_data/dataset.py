"""flowpolicy's own dataset file, and the pieces every converter shares.

The file is safetensors in Diffusion Policy's replay-buffer layout (Sources/FlowPolicy/Data/EpisodeDataset.swift):
`obs [N, Do]` F32, `action [N, Da]` F32, `episode_ends [E]` I64 (exclusive cumulative ends), string metadata with
`format: flowpolicy.dataset`, `format_version: 1`, the task and provenance. Camera frames, when there are any, are one
tensor per camera `images.<camera> [N, H, W, C]` U8 (channels last, RGB), and the metadata key `cameras` lists the
camera names in order, comma-separated; a dataset without cameras has neither. Read and written with
`safetensors.numpy`; writes go to a temporary file in the same folder, flushed to disk and renamed over the target,
so an existing file is either replaced whole or left as it was.
"""

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

FORMAT_NAME = "flowpolicy.dataset"
FORMAT_VERSION = 1
IMAGE_PREFIX = "images."
CAMERAS_KEY = "cameras"


class DataError(Exception):
    """Bad input or output: the message names the file and, where it applies, the key, the episode and the step.
    Expected errors of every converter are this type (the command line prints them as one line)."""


@dataclass
class Dataset:
    """Demonstrations in memory: every step of every episode concatenated.

    obs:          [N, Do] float32
    action:       [N, Da] float32
    episode_ends: [E] int64, strictly increasing, the last equals N
    metadata:     strings (task, control_hz, observation_mode, source, ...)
    images:       {camera: [N, H, W, C] uint8, channels last, RGB}, in the cameras' order (empty: no cameras)
    """

    obs: np.ndarray
    action: np.ndarray
    episode_ends: np.ndarray
    metadata: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)

    @property
    def cameras(self):
        return list(self.images)

    @property
    def episode_count(self):
        return len(self.episode_ends)

    @property
    def step_count(self):
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    def episode_range(self, index):
        start = 0 if index == 0 else int(self.episode_ends[index - 1])
        return start, int(self.episode_ends[index])

    def episodes(self):
        """(obs [L, Do], action [L, Da]) per episode, views into the arrays."""
        for index in range(self.episode_count):
            start, end = self.episode_range(index)
            yield self.obs[start:end], self.action[start:end]

    def validate(self, path):
        """The checks flowpolicy's reader makes (shapes agree, ends strictly increasing and ending at N, finite)."""
        if self.obs.dtype != np.float32 or self.obs.ndim != 2 or self.action.dtype != np.float32 \
                or self.action.ndim != 2:
            raise DataError(f"{path}: obs and action must be 2-D float32, got obs {self.obs.dtype} "
                            f"{list(self.obs.shape)}, action {self.action.dtype} {list(self.action.shape)}")
        if self.obs.shape[0] != self.action.shape[0]:
            raise DataError(f"{path}: obs has {self.obs.shape[0]} rows but action has {self.action.shape[0]}")
        if self.episode_ends.dtype != np.int64 or self.episode_ends.ndim != 1:
            raise DataError(f"{path}: episode_ends must be 1-D int64, got {self.episode_ends.dtype} "
                            f"{list(self.episode_ends.shape)}")
        previous = 0
        for index, end in enumerate(self.episode_ends.tolist()):
            if end <= previous:
                raise DataError(f"{path}: episode_ends must be strictly increasing and positive: episode {index} "
                                f"ends at {end} after {previous}")
            previous = end
        if previous != self.obs.shape[0]:
            raise DataError(f"{path}: episode_ends ends at {previous} but obs and action have {self.obs.shape[0]} "
                            "rows (a truncated or inconsistent file)")
        for name, values in (("obs", self.obs), ("action", self.action)):
            bad = np.argwhere(~np.isfinite(values))
            if len(bad):
                row = int(bad[0][0])
                episode = int(np.searchsorted(self.episode_ends, row, side="right"))
                step = row - (0 if episode == 0 else int(self.episode_ends[episode - 1]))
                raise DataError(f"{path}: {name} has a non-finite value {values[row, bad[0][1]]} at row {row} "
                                f"(episode {episode}, step {step}); remove or repair that episode")
        for camera, frames in self.images.items():
            check_camera_name(camera, path)
            check_frames(frames, f"{path}: camera {camera}", self.obs.shape[0], "obs")


def check_camera_name(camera, path):
    """A camera name is a tensor-name part (`images.<camera>`) and an item of the comma-separated `cameras` list."""
    if not isinstance(camera, str) or not camera or "," in camera or camera != camera.strip():
        raise DataError(f"{path}: camera name {camera!r} must be non-empty, without commas or surrounding spaces")


def check_frames(frames, where, rows, rows_of):
    """Frames must be uint8 [rows, H, W, 3] (channels last, RGB); `where` starts the message, `rows_of` names what
    fixes the row count."""
    shape = list(getattr(frames, "shape", []))
    dtype = getattr(frames, "dtype", type(frames).__name__)
    if dtype != np.uint8 or len(shape) != 4 or shape[3] != 3 or min(shape[1:]) < 1:
        raise DataError(f"{where}: frames must be uint8 [N, H, W, 3] (channels last, RGB), got {dtype} {shape}")
    if shape[0] != rows:
        raise DataError(f"{where}: {shape[0]} frames {shape} but {rows_of} has {rows} rows")


@dataclass
class Episode:
    """One episode as an importer found it: `name` says where (e.g. "data/demo_7", "episode 3")."""

    name: str
    obs: np.ndarray
    action: np.ndarray
    obs_key: str = "obs"
    action_key: str = "action"
    images: dict = field(default_factory=dict)  # {camera: [L, H, W, C] uint8}
    image_keys: dict = field(default_factory=dict)  # {camera: the source's key}, for messages


def assemble(episodes, path, metadata):
    """Checks the episodes (same dimensions, equal lengths, finite values, at least one step) and concatenates them.
    Errors name the file, the episode and the key."""
    if not episodes:
        raise DataError(f"{path}: no episodes to import")
    first = episodes[0]
    for episode in episodes:
        obs, action = episode.obs, episode.action
        if obs.ndim != 2 or action.ndim != 2:
            raise DataError(f"{path}: {episode.name}: observations must be [L, Do] and actions [L, Da], got "
                            f"{episode.obs_key} {list(obs.shape)} and {episode.action_key} {list(action.shape)}")
        if obs.shape[0] != action.shape[0]:
            raise DataError(f"{path}: {episode.name}: {episode.obs_key} has {obs.shape[0]} steps but "
                            f"{episode.action_key} has {action.shape[0]}")
        if obs.shape[0] == 0:
            raise DataError(f"{path}: {episode.name} has no steps")
        if obs.shape[1] != first.obs.shape[1] or action.shape[1] != first.action.shape[1]:
            raise DataError(f"{path}: episodes of different dimensions: {episode.name} has {obs.shape[1]}-D "
                            f"observations ({episode.obs_key}) and {action.shape[1]}-D actions, {first.name} has "
                            f"{first.obs.shape[1]}-D and {first.action.shape[1]}-D")
        for key, values in ((episode.obs_key, obs), (episode.action_key, action)):
            finite = np.isfinite(values)
            if not finite.all():
                step, column = (int(i) for i in np.argwhere(~finite)[0])
                raise DataError(f"{path}: {episode.name}: {key} has a non-finite value {values[step, column]} at "
                                f"step {step} (column {column}); remove or repair that episode")
        if list(episode.images) != list(first.images):
            raise DataError(f"{path}: {episode.name} has the cameras {', '.join(episode.images) or 'none'} but "
                            f"{first.name} has {', '.join(first.images) or 'none'}")
        for camera, frames in episode.images.items():
            key = episode.image_keys.get(camera, camera)
            check_frames(frames, f"{path}: {episode.name}: camera {camera} ({key})", len(obs), episode.obs_key)
            if frames.shape[1:] != first.images[camera].shape[1:]:
                raise DataError(f"{path}: camera {camera} ({key}) has frames of different sizes: {episode.name} "
                                f"{list(frames.shape[1:])}, {first.name} {list(first.images[camera].shape[1:])} "
                                "(H, W, C)")
    obs = np.ascontiguousarray(np.concatenate([e.obs for e in episodes]), dtype=np.float32)
    action = np.ascontiguousarray(np.concatenate([e.action for e in episodes]), dtype=np.float32)
    ends = np.cumsum([len(e.obs) for e in episodes]).astype(np.int64)
    images = {camera: np.ascontiguousarray(np.concatenate([e.images[camera] for e in episodes]))
              for camera in first.images}
    dataset = Dataset(obs=obs, action=action, episode_ends=ends, metadata=dict(metadata), images=images)
    # The cast to float32 can overflow (a float64 value beyond 3.4e38 becomes inf): check again after it.
    try:
        dataset.validate(path)
    except DataError as error:
        raise DataError(f"{error} (after the conversion to float32)") from None
    return dataset


def first_non_finite(values):
    """(row, column) of the first NaN or infinity in a [rows, columns] array of numbers, or None."""
    if not np.issubdtype(values.dtype, np.floating):
        return None
    finite = np.isfinite(values)
    if finite.all():
        return None
    row, column = (int(i) for i in np.argwhere(~finite.reshape(len(values), -1))[0])
    return row, column


def read_dataset(path):
    """Reads and validates flowpolicy's dataset file. Errors name the file and the problem."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            format_name = metadata.pop("format", None)
            if format_name is not None and format_name != FORMAT_NAME:
                raise DataError(f"{path}: this is a {format_name} file, not a dataset ({FORMAT_NAME})")
            version = metadata.pop("format_version", None)
            if version is not None and version != str(FORMAT_VERSION):
                raise DataError(f"{path}: dataset format version {version} is not supported (this reads "
                                f"{FORMAT_VERSION})")
            keys = set(handle.keys())
            missing = [name for name in ("obs", "action", "episode_ends") if name not in keys]
            if missing:
                raise DataError(f"{path}: a flowpolicy dataset needs the tensors obs [N, Do], action [N, Da] and "
                                f"episode_ends [E]; missing {', '.join(missing)} (the file has: "
                                f"{', '.join(sorted(keys)) or 'none'})")
            tensors = {name: handle.get_tensor(name) for name in ("obs", "action", "episode_ends")}
            listed = metadata.pop(CAMERAS_KEY, None)
            cameras = [c.strip() for c in listed.split(",") if c.strip()] if listed is not None else []
            if len(set(cameras)) != len(cameras):
                raise DataError(f"{path}: the metadata lists a camera twice: cameras {listed}")
            stored = sorted(k[len(IMAGE_PREFIX):] for k in keys if k.startswith(IMAGE_PREFIX))
            if sorted(cameras) != stored:
                raise DataError(f"{path}: the metadata lists the cameras {listed or 'none'} but the file has the image "
                                f"tensors {', '.join(IMAGE_PREFIX + c for c in stored) or 'none'}")
            images = {camera: handle.get_tensor(IMAGE_PREFIX + camera) for camera in cameras}
    except DataError:
        raise
    except Exception as error:  # safetensors reports a damaged or foreign file as its own error types
        raise DataError(f"{path}: not a readable safetensors file ({error})") from None
    dataset = Dataset(obs=tensors["obs"], action=tensors["action"], episode_ends=tensors["episode_ends"],
                      metadata=metadata, images=images)
    dataset.validate(path)
    return dataset


def write_dataset(dataset, path):
    """Validates and writes flowpolicy's dataset file atomically (temporary file, fsync, rename)."""
    dataset.validate(path)
    metadata = {str(k): str(v) for k, v in dataset.metadata.items()}
    metadata["format"] = FORMAT_NAME
    metadata["format_version"] = str(FORMAT_VERSION)
    metadata.pop(CAMERAS_KEY, None)
    if dataset.images:
        metadata[CAMERAS_KEY] = ",".join(dataset.images)
    tensors = {"obs": np.ascontiguousarray(dataset.obs), "action": np.ascontiguousarray(dataset.action),
               "episode_ends": np.ascontiguousarray(dataset.episode_ends)}
    tensors.update({IMAGE_PREFIX + camera: np.ascontiguousarray(frames) for camera, frames in dataset.images.items()})
    with atomic_file(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)


def check_output_file(path):
    """Fails early (before any work) if `path` cannot be written: a folder, or a folder that does not exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DataError(f"{path}: this is a folder; give a file path to write")
    if not os.path.isdir(folder):
        raise DataError(f"{path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise DataError(f"{path}: the folder {folder} is not writable")


def _umask():
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(root):
    for folder, _, files in os.walk(root):
        for name in files:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_folder(folder)


def _refuse_foreign(path, looks_like_ours, kind):
    """Raises unless `path` is absent or `looks_like_ours(path)` finds the marker an earlier export writes."""
    if os.path.lexists(path) and not looks_like_ours(path):
        raise DataError(f"{path}: exists and is not a {kind}, and only an earlier export is replaced; choose another "
                        "output path, or remove this one first")


def _write_failed(path, error):
    """An OSError while writing (a full disk, a folder that is not writable) as one line: `path` was not replaced."""
    return DataError(f"{path}: cannot write it ({error.strerror or error}); {path} was left as it was: make room or "
                     "fix the folder's permissions, then run again")


@contextlib.contextmanager
def atomic_file(path, looks_like_ours=None, kind=None):
    """Yields a temporary path in the target's folder; on success it is flushed to disk and renamed over `path`,
    on any error it is removed and `path` is left as it was. With `looks_like_ours`, an existing `path` is replaced
    only if `looks_like_ours(path)` finds the marker an earlier export of the same `kind` writes."""
    check_output_file(path)
    if looks_like_ours is not None:
        _refuse_foreign(path, looks_like_ours, kind)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        os.close(descriptor)
    except OSError as error:
        raise _write_failed(path, error) from None
    try:
        yield temporary
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600; an output gets the mode open() would give
        os.replace(temporary, path)
    except OSError as error:
        raise _write_failed(path, error) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    _fsync_folder(folder)


@contextlib.contextmanager
def atomic_folder(path, looks_like_ours, kind):
    """Yields a temporary folder beside `path`; on success it takes `path`'s place. An existing `path` is replaced
    only if `looks_like_ours(path)` finds the marker an earlier export of the same kind writes (never another
    dataset or a folder of other things); on any error the temporary folder is removed and `path` is left as it was
    (the earlier folder is put back if the new one cannot take its place)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DataError(f"{path}: the folder {parent} does not exist; create it first")
    _refuse_foreign(path, lambda folder: os.path.isdir(folder) and looks_like_ours(folder), kind)
    try:
        temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    except OSError as error:
        raise _write_failed(path, error) from None
    retired = None  # holds the earlier folder while the new one is renamed into its place
    try:
        yield temporary
        _fsync_tree(temporary)
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes it 0700; an output gets the mode mkdir() would give
        if os.path.lexists(path):
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent)
            previous = os.path.join(retired, "previous")
            try:
                os.rename(path, previous)
                os.rename(temporary, path)
            except BaseException:
                if os.path.lexists(previous) and not os.path.lexists(path):
                    try:
                        os.rename(previous, path)  # the earlier folder back in its place
                    except OSError as failure:
                        kept, retired = previous, None
                        raise DataError(f"{path}: the new export could not take its place and the earlier one could "
                                        f"not be put back ({failure.strerror or failure}); the earlier one is at "
                                        f"{kept}: move it back by hand") from None
                raise
        else:
            os.rename(temporary, path)
    except OSError as error:
        raise _write_failed(path, error) from None
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)  # the replaced folder, or nothing if it was put back
    _fsync_folder(parent)


def key_listing(group):
    """The keys of an HDF5 or zarr group, sorted and comma-separated (for error messages)."""
    return ", ".join(sorted(group.keys())) or "nothing"


def index_ranges(indices):
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8" (as flowpolicy writes seed ranges)."""
    parts, start, previous = [], None, None
    for index in indices:
        if start is None:
            start = previous = index
        elif index == previous + 1:
            previous = index
        else:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = previous = index
    if start is not None:
        parts.append(f"{start}" if start == previous else f"{start}-{previous}")
    return ",".join(parts)


def rate_text(rate):
    """A control rate as flowpolicy's Swift side writes it (`String(Double)`: "10.0", "12.5")."""
    return repr(float(rate))


def same_arrays(a, b):
    """Bit-identical arrays: same dtype, shape and bytes (NaN payloads included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compare_arrays(expected, actual, what, images=True):
    """Raises if `actual` (a dataset read back from an export) differs from `expected` in any bit; with `images`,
    the cameras' frames too (an export that carries them)."""
    for name in ("obs", "action", "episode_ends"):
        if not same_arrays(getattr(expected, name), getattr(actual, name)):
            raise DataError(f"{what}: reading the export back gives a different {name} (this is a bug; the export "
                            "was not written)")
    if not images:
        return
    if list(expected.images) != list(actual.images):
        raise DataError(f"{what}: reading the export back gives the cameras {', '.join(actual.images) or 'none'}, "
                        f"not {', '.join(expected.images)} (this is a bug; the export was not written)")
    for camera, frames in expected.images.items():
        if not same_arrays(frames, actual.images[camera]):
            raise DataError(f"{what}: reading the export back gives different frames of camera {camera} (this is a "
                            "bug; the export was not written)")
