"""Command line: `python -m flowpolicy_data import|export --format lerobot|robomimic|zarr SOURCE OUT [options]`.

Bad input ends with one line `error: ...` on standard error and exit status 1 (no traceback); notes (what was
skipped or remapped) go to standard error as `note: ...` lines. `--machine` prints the summary as one JSON object on
standard output (what `flowpolicy import` and `flowpolicy export` read).
"""

import argparse
import json
import shlex
import sys

from . import FORMATS

try:
    from .dataset import DataError, check_output_file, read_dataset, write_dataset
    from .lerobot import export_lerobot, import_lerobot
    from .robomimic import export_robomimic, import_robomimic
    from .tasks import KNOWN_TASKS, load_task
    from .zarr_replay import PUSHT_MODES, export_zarr, import_zarr
except ImportError as missing:  # the interpreter lacks one of the formats' libraries
    sys.stderr.write(f"error: {sys.executable} cannot import {missing.name or missing}: run scripts/setup.sh (it "
                     "installs safetensors, numpy, pyarrow, h5py, zarr 2 and PyYAML into the project's environment), "
                     "or set FLOWPOLICY_PYTHON to an interpreter that has them\n")
    sys.exit(1)

DEFAULT_ACTION_KEYS = {"lerobot": "action", "robomimic": "actions", "zarr": "action"}
DEFAULT_VALID_RATIO = 0.1

# Import options that a format would ignore, and why (an option given but ignored is refused, not dropped).
IMPORT_ONLY_FOR = {
    "obs_keys": (("robomimic", "zarr"), "it names robomimic obs keys or zarr data keys; LeRobot takes --state-key"),
    "filter": (("robomimic",), "it names a robomimic mask (mask/FILTER)"),
    "state_key": (("lerobot",), "it names LeRobot state features; robomimic and zarr take --obs-keys"),
    "cameras": (("lerobot", "robomimic"), "it names LeRobot image/video features or robomimic image keys; a zarr "
                                          "import carries no cameras"),
}
# Export options that apply to one format only.
EXPORT_ONLY_FOR = {
    "fps": ("lerobot", "it sets LeRobot's frame rate"),
    "task_text": ("lerobot", "it sets LeRobot's per-episode language task"),
    "valid_ratio": ("robomimic", "it splits the demos into robomimic's mask/train and mask/valid"),
}


def _keys(text, option):
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise DataError(f"{option} needs at least one key, got {text!r}")
    return keys


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m flowpolicy_data",
        description="Convert demonstrations between flowpolicy's dataset file and LeRobot, robomimic and Diffusion "
                    "Policy zarr.")
    commands = parser.add_subparsers(dest="direction", required=True)

    imports = commands.add_parser("import", help="a LeRobot folder, robomimic HDF5 or zarr replay buffer -> flowpolicy")
    imports.add_argument("--format", required=True, choices=FORMATS)
    imports.add_argument("source", help="LeRobot dataset folder, robomimic .hdf5 file, or zarr folder / .zip")
    imports.add_argument("out", help="flowpolicy dataset file to write (.safetensors; replaced atomically)")
    imports.add_argument("--task", choices=KNOWN_TASKS,
                         help="the simulated task the data is for (checked against its layout, written as metadata)")
    imports.add_argument("--observation-mode", help="the task's observation mode to map onto (Push-T: keypoints or "
                                                    "state; default: the task's own)")
    imports.add_argument("--obs-keys", help="robomimic: obs keys to concatenate, in order (default: the task's "
                                            "robomimic keys); zarr: data keys (default: state)")
    imports.add_argument("--filter", help="robomimic: import the demos of mask/FILTER (e.g. train, valid)")
    imports.add_argument("--state-key", help="LeRobot: state feature(s), comma-separated (default observation.state)")
    imports.add_argument("--cameras", help="cameras to carry as images.<camera>, comma-separated, in order; none: no "
                                           "camera. robomimic: image keys, e.g. agentview_image (camera agentview; "
                                           "default: none); LeRobot: image/video features, e.g. front or "
                                           "observation.images.front (default: all)")
    imports.add_argument("--action-key", help="action key (default: action; robomimic: actions)")
    imports.add_argument("--tasks-folder", help="the folder holding <task>/task.yaml (default: found as flowpolicy "
                                                "finds it)")
    imports.add_argument("--command", help="the command line to record as provenance")
    imports.add_argument("--machine", action="store_true", help="print the summary as one JSON object")

    exports = commands.add_parser("export", help="a flowpolicy dataset file -> LeRobot v3.0, robomimic or zarr")
    exports.add_argument("--format", required=True, choices=FORMATS)
    exports.add_argument("dataset", help="flowpolicy dataset file (.safetensors)")
    exports.add_argument("out", help="LeRobot folder, robomimic .hdf5 file, or zarr folder (or .zip) to write")
    exports.add_argument("--task", choices=KNOWN_TASKS, help="the task whose layout names the keys (default: the "
                                                             "dataset's task)")
    exports.add_argument("--fps", type=float, help="LeRobot: frame rate (default: the dataset's control_hz)")
    exports.add_argument("--task-text", help="LeRobot: the episodes' language task (default: the task name)")
    exports.add_argument("--valid-ratio", type=float,
                         help=f"robomimic: share of demos in mask/valid, in [0, 1) (default {DEFAULT_VALID_RATIO})")
    exports.add_argument("--tasks-folder", help="the folder holding <task>/task.yaml")
    exports.add_argument("--machine", action="store_true", help="print the summary as one JSON object")
    return parser


def _summary(dataset, path):
    return {"output": path, "episodes": dataset.episode_count, "steps": dataset.step_count,
            "observation_dimensions": int(dataset.obs.shape[1]), "action_dimensions": int(dataset.action.shape[1]),
            "cameras": {camera: list(frames.shape[1:]) for camera, frames in dataset.images.items()}}


def _note(line):
    sys.stderr.write(f"note: {line}\n")


def _option(name):
    return "--" + name.replace("_", "-")


def run_import(arguments):
    for name, (formats, why) in IMPORT_ONLY_FOR.items():
        if getattr(arguments, name) is not None and arguments.format not in formats:
            raise DataError(f"{_option(name)} does not apply to a {arguments.format} import ({why}); leave it out")
    if arguments.format == "zarr" and arguments.task == "pusht" and arguments.obs_keys is not None:
        raise DataError(f"--obs-keys does not apply to a zarr import with --task pusht: Push-T's observation is "
                        f"fixed by its mode ({PUSHT_MODES}); choose the mode with --observation-mode, or leave out "
                        "--task to import other keys")
    if arguments.filter is not None and not arguments.filter.strip():
        raise DataError("--filter needs the name of a mask (e.g. train, valid: mask/FILTER), got an empty one")
    layout = load_task(arguments.task, arguments.tasks_folder) if arguments.task else None
    action_key = arguments.action_key or DEFAULT_ACTION_KEYS[arguments.format]
    if arguments.observation_mode and layout is None:
        raise DataError("--observation-mode needs --task")
    if arguments.observation_mode and arguments.observation_mode not in layout.observations:
        raise DataError(f"{layout.name} has no observation mode {arguments.observation_mode!r} (it has "
                        f"{', '.join(layout.observations)})")
    # An option given empty (--obs-keys "") is an error, not the default.
    obs_keys = _keys(arguments.obs_keys, "--obs-keys") if arguments.obs_keys is not None else None
    state_keys = _keys(arguments.state_key, "--state-key") if arguments.state_key is not None else None
    cameras = None
    if arguments.cameras is not None:
        cameras = [] if arguments.cameras.strip() == "none" else _keys(arguments.cameras, "--cameras")
    check_output_file(arguments.out)
    if arguments.format == "robomimic":
        dataset = import_robomimic(arguments.source, obs_keys=obs_keys, filter_key=arguments.filter, layout=layout,
                                   action_key=action_key, camera_keys=cameras)
    elif arguments.format == "lerobot":
        dataset = import_lerobot(arguments.source, state_keys=state_keys or ("observation.state",),
                                 action_key=action_key, layout=layout, cameras=cameras)
    else:
        dataset = import_zarr(arguments.source, layout=layout, obs_keys=obs_keys, action_key=action_key,
                              observation_mode=arguments.observation_mode)
    if arguments.observation_mode and dataset.metadata.get("observation_mode") != arguments.observation_mode:
        raise DataError(f"{arguments.source}: the imported observations are {dataset.obs.shape[1]}-D, "
                        f"{layout.name}'s {arguments.observation_mode} mode is "
                        f"{layout.observation_dimensions(arguments.observation_mode)}-D")
    dataset.metadata["command"] = arguments.command or "python -m flowpolicy_data " + shlex.join(sys.argv[1:])
    write_dataset(dataset, arguments.out)
    summary = _summary(dataset, arguments.out)
    summary["notes"] = [f"{label}: {dataset.metadata[key]}" for key, label in
                        (("observation_mapping", "observation mapping"), ("skipped", "not imported"),
                         ("control_rate_mismatch", "control rate"))
                        if key in dataset.metadata]
    summary["metadata"] = dataset.metadata
    return summary


def run_export(arguments):
    for name, (format_name, why) in EXPORT_ONLY_FOR.items():
        if getattr(arguments, name) is not None and arguments.format != format_name:
            raise DataError(f"{_option(name)} applies to {format_name} exports only ({why}); leave it out of a "
                            f"{arguments.format} export")
    valid_ratio = DEFAULT_VALID_RATIO if arguments.valid_ratio is None else arguments.valid_ratio
    if not 0 <= valid_ratio < 1:
        raise DataError(f"--valid-ratio must be in [0, 1) (0: no validation demos), got {valid_ratio}")
    dataset = read_dataset(arguments.dataset)
    task = arguments.task or dataset.metadata.get("task")
    layout = load_task(task, arguments.tasks_folder) if task in KNOWN_TASKS else None
    if arguments.format == "robomimic":
        details = export_robomimic(dataset, arguments.out, layout=layout, valid_ratio=valid_ratio)
    elif arguments.format == "lerobot":
        details = export_lerobot(dataset, arguments.out, layout=layout, fps=arguments.fps,
                                 task_text=arguments.task_text)
    else:
        details = export_zarr(dataset, arguments.out, layout=layout)
    summary = _summary(dataset, arguments.out)
    summary["format"] = arguments.format
    summary["details"] = details
    summary["notes"] = []
    if dataset.images and arguments.format == "zarr":
        summary["notes"].append(f"cameras not exported: {', '.join(dataset.images)} (the zarr export writes the "
                                "low-dimensional observation only)")
    return summary


def _print_human(command, arguments, summary):
    if command == "import":
        print(f"imported {summary['episodes']} episodes, {summary['steps']} steps ({arguments.format} "
              f"{arguments.source}): obs {summary['observation_dimensions']}-D, action "
              f"{summary['action_dimensions']}-D")
        for key in ("task", "observation_mode", "control_hz", "observation_keys"):
            if key in summary["metadata"]:
                print(f"  {key:<17} {summary['metadata'][key]}")
        for camera, shape in summary["cameras"].items():
            print(f"  {'camera':<17} {camera} {' x '.join(map(str, shape))} uint8")
        print(f"wrote {summary['output']}")
    else:
        details = ", ".join(f"{k} {v if not isinstance(v, list) else ','.join(map(str, v))}"
                            for k, v in summary["details"].items())
        print(f"exported {summary['episodes']} episodes, {summary['steps']} steps to {arguments.format} ({details}); "
              "read back: arrays bit-identical")
        print(f"wrote {summary['output']}")


def main(argv=None):
    arguments = _parser().parse_args(argv)
    try:
        summary = run_import(arguments) if arguments.direction == "import" else run_export(arguments)
    except DataError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing was written\n")
        return 130
    for note in summary["notes"]:
        _note(note)
    if arguments.machine:
        print(json.dumps(summary))
    else:
        _print_human(arguments.direction, arguments, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
