"""Demonstrations in and out of flowpolicy's dataset file: LeRobot (v2.0, v2.1, v3.0), robomimic HDF5 and Diffusion
Policy zarr replay buffers, each read and written through its own library (pyarrow, h5py, zarr).

    from flowpolicy_data import import_robomimic, load_task, write_dataset
    dataset = import_robomimic("low_dim.hdf5", filter_key="train", layout=load_task("robomimic_lift"))
    write_dataset(dataset, "lift.safetensors")

Every importer returns a Dataset (obs [N, Do] float32, action [N, Da] float32, episode_ends [E] int64, metadata) and
raises DataError, naming the file, the key and the episode, on bad input. Every writer is atomic (a temporary file or
folder beside the target, flushed and renamed), and every exporter reads its output back and checks that the arrays
are bit-identical before it replaces anything. An exporter replaces only an earlier export of its own format (which
carries a marker: LeRobot meta/flowpolicy.json, the attribute `flowpolicy` of robomimic's data group or of the zarr
root group), never another dataset.
"""

import importlib

FORMATS = ("lerobot", "robomimic", "zarr")

# Loaded on first use, so that `python -m flowpolicy_data` can report a missing library in one line.
_EXPORTS = {
    "DataError": "dataset", "Dataset": "dataset", "read_dataset": "dataset", "write_dataset": "dataset",
    "export_lerobot": "lerobot", "import_lerobot": "lerobot",
    "export_robomimic": "robomimic", "import_robomimic": "robomimic",
    "export_zarr": "zarr_replay", "import_zarr": "zarr_replay",
    "KNOWN_TASKS": "tasks", "TaskLayout": "tasks", "load_task": "tasks",
}

__all__ = ["FORMATS"] + sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
