"""A simulated task's data layout, read once from its `tasks/<name>/task.yaml` (the file the Swift side reads).

Only what the converters need: the control rate, the task's own observation mode, the named observation groups of
every mode (`interface.observations`) and the action groups. The tasks folder is found as flowpolicy finds it:
`$FLOWPOLICY_TASKS` (the folder itself or its parent), else `tasks/` in the current folder or a folder above it, else
the repository this package lives in.
"""

import os
from dataclasses import dataclass

import yaml

from .dataset import DataError

KNOWN_TASKS = ("pusht", "franka_kitchen", "robomimic_lift", "robomimic_can", "robomimic_square")


@dataclass(frozen=True)
class Group:
    name: str
    size: int


@dataclass(frozen=True)
class TaskLayout:
    name: str
    control_hz: float
    #: The mode the task's environment produces (environment.observation), e.g. keypoints, low_dim, dp.
    observation_mode: str
    #: mode -> [Group], in order.
    observations: dict
    actions: tuple
    #: environment.task for the robomimic tasks: lift, can or square.
    robosuite_task: str = None

    @property
    def action_dimensions(self):
        return sum(g.size for g in self.actions)

    def groups(self, mode=None):
        return self.observations[mode or self.observation_mode]

    def observation_dimensions(self, mode=None):
        return sum(g.size for g in self.groups(mode))

    def mode_for(self, dimensions):
        """The observation mode whose layout has this many dimensions (the task's own mode first), or None."""
        modes = [self.observation_mode] + sorted(m for m in self.observations if m != self.observation_mode)
        return next((m for m in modes if self.observation_dimensions(m) == dimensions), None)

    def describe_modes(self):
        return ", ".join(f"{m} {self.observation_dimensions(m)}-D" for m in self.observations)

    @property
    def is_robomimic(self):
        return self.robosuite_task is not None


def tasks_folder(explicit=None):
    """The folder holding `<task>/task.yaml`."""
    if explicit:
        return explicit
    variable = os.environ.get("FLOWPOLICY_TASKS")
    if variable:
        return variable if os.path.basename(os.path.normpath(variable)) == "tasks" else os.path.join(variable, "tasks")
    folder = os.getcwd()
    for _ in range(8):
        candidate = os.path.join(folder, "tasks")
        if os.path.isfile(os.path.join(candidate, "pusht", "task.yaml")):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    # clients/python/flowpolicy_data/tasks.py -> the repository's tasks/
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "tasks")


def read_task_file(name, folder=None):
    """The parsed `<tasks folder>/<name>/task.yaml` and its path. Errors name the file."""
    if name not in KNOWN_TASKS:
        raise DataError(f"unknown task {name!r}; the simulated tasks are {', '.join(KNOWN_TASKS)}")
    path = os.path.normpath(os.path.join(tasks_folder(folder), name, "task.yaml"))
    try:
        with open(path, encoding="utf-8") as handle:
            text = yaml.safe_load(handle)
    except OSError as error:
        raise DataError(f"{path}: cannot read the task file ({error.strerror}); set FLOWPOLICY_TASKS to the "
                        "repository's tasks folder") from None
    except yaml.YAMLError as error:
        raise DataError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(text, dict) or text.get("task") != name:
        raise DataError(f"{path}: task is {text.get('task') if isinstance(text, dict) else None!r}; the folder "
                        f"is {name}")
    return text, path


def load_task(name, folder=None):
    """Reads `<tasks folder>/<name>/task.yaml` into the task's layout. Errors name the file."""
    text, path = read_task_file(name, folder)
    try:
        environment = text["environment"]
        interface = text["interface"]
        observations = {mode: tuple(Group(str(g["name"]), int(g["size"])) for g in groups)
                        for mode, groups in interface["observations"].items()}
        actions = tuple(Group(str(g["name"]), int(g["size"])) for g in interface["actions"])
        mode = environment.get("observation") or next(iter(observations))
        robosuite_task = environment.get("task") if name.startswith("robomimic_") else None
        layout = TaskLayout(name=name, control_hz=float(environment["control_hz"]), observation_mode=mode,
                            observations=observations, actions=actions, robosuite_task=robosuite_task)
    except (KeyError, TypeError, ValueError, StopIteration) as error:
        raise DataError(f"{path}: missing or malformed environment / interface entries ({error!r})") from None
    if mode not in observations:
        raise DataError(f"{path}: environment.observation is {mode!r} but interface.observations has "
                        f"{', '.join(observations)}")
    return layout


def fit_task(dataset, layout, path, what, mode=None):
    """Checks that an imported dataset fits the task (observation dimensions of one of its modes, or of `mode`;
    action dimensions) and records the task and its observation mode in the metadata. Errors name both layouts."""
    if layout is None:
        return dataset
    found = mode if mode is not None else layout.mode_for(dataset.obs.shape[1])
    if found is None or layout.observation_dimensions(found) != dataset.obs.shape[1]:
        raise DataError(f"{path}: {what} give {dataset.obs.shape[1]}-D observations; {layout.name}'s are "
                        f"{layout.describe_modes()}")
    if dataset.action.shape[1] != layout.action_dimensions:
        raise DataError(f"{path}: the actions are {dataset.action.shape[1]}-D; {layout.name}'s are "
                        f"{layout.action_dimensions}-D")
    dataset.metadata["task"] = layout.name
    dataset.metadata["observation_mode"] = found
    recorded = dataset.metadata.setdefault("control_hz", repr(float(layout.control_hz)))
    if abs(float(recorded) - layout.control_hz) > 1e-9:
        dataset.metadata["control_rate_mismatch"] = (f"the data was recorded at {float(recorded):g} Hz, {layout.name} "
                                                     f"runs at {layout.control_hz:g} Hz")
    return dataset
