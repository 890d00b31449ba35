"""The deployment contract a checkpoint carries, from the task's task.yaml, as `flowpolicy train` writes it.

Mirrors `DeploymentContract.forTraining` (Sources/PolicyLab/Rollout/TaskContract.swift) over `TaskDescription`
(Sources/SimBridge/Environment/TaskDescription.swift): data of a simulated task gets that task's rate, action kind,
bounds (the safety bounds, else the environment's), safety limits and hand-over, and its observation and action layout
where the layout adds up to the policy's dimensions; data of no simulated task gets no contract. The tasks folder is
found as flowpolicy finds it (`$FLOWPOLICY_TASKS`, else `tasks/` in the current folder or one above it, else this
repository's).
"""

import math

import numpy as np

from flowpolicy_data.dataset import DataError
from flowpolicy_data.tasks import KNOWN_TASKS, read_task_file

ACTION_KINDS = ("position", "velocity", "delta")
HAND_OVERS = ("receding", "ensemble", "continuation")


class ContractError(Exception):
    """A task file that cannot give a contract; the message names the file and the field."""


def task_horizons(task, folder=None):
    """(To, Ta, Tp) for data of `task` (`TrainingSession.defaultHorizons`): the task's policy horizons, 1/1/1 for the
    one-step toy mixture, Diffusion Policy's 2/8/16 for data of no simulated task."""
    if task == "toy-mixture":
        return 1, 1, 1
    if task not in KNOWN_TASKS:
        return 2, 8, 16
    text, path = _read_task(task, folder)
    try:
        policy = text["policy"]
        return int(policy["observation_steps"]), int(policy["action_steps"]), int(policy["prediction_steps"])
    except (KeyError, TypeError, ValueError) as error:
        raise ContractError(f"{path}: policy.observation_steps, action_steps and prediction_steps must be integers "
                            f"({error!r})") from None


def deployment_contract(task, observation_mode, observation_dimensions, action_dimensions, folder=None):
    """The contract as a dict of the stored keys (arrays of float32, the rate a float), or None for data of no
    simulated task."""
    if task not in KNOWN_TASKS:
        return None
    text, path = _read_task(task, folder)

    def fail(message):
        return ContractError(f"{path}: {message}")

    try:
        environment, interface, safety = text["environment"], text["interface"], text["safety"]
        rate = float(environment["control_hz"])
        action_low = _floats(safety.get("action_low", environment["action_low"]))
        action_high = _floats(safety.get("action_high", environment["action_high"]))
        kind = str(interface["action_kind"])
        hand_over = str((text.get("policy") or {}).get("hand_over") or "receding")
        observation_groups = interface["observations"]
        own_mode = observation_mode or environment.get("observation") or "default"
        groups = observation_groups.get(own_mode, observation_groups.get("default"))
        contract = {
            "control_rate_hz": rate,
            "observations": _layout(groups, observation_dimensions),
            "actions": _layout(interface["actions"], action_dimensions),
            "action_kind": kind,
            "action_low": action_low,
            "action_high": action_high,
            "max_step_change": _floats(safety["max_step_change"]),
            "hand_over": hand_over,
        }
        for key in ("max_velocity", "max_acceleration", "max_jerk"):
            if safety.get(key) is not None:
                contract[key] = _floats(safety[key])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise fail(f"missing or malformed environment / interface / safety entries ({error!r})") from None
    if kind not in ACTION_KINDS:
        raise fail(f"interface.action_kind must be position, velocity or delta, got {kind}")
    if hand_over not in HAND_OVERS:
        raise fail(f"policy.hand_over must be receding, ensemble or continuation, got {hand_over}")
    _validate(contract, observation_dimensions, action_dimensions, fail)
    return contract


def _read_task(task, folder):
    try:
        return read_task_file(task, folder)
    except DataError as error:
        raise ContractError(str(error)) from None


def _floats(values):
    return np.asarray(values, dtype=np.float32).reshape(-1)


def _layout(groups, dimensions):
    """The named groups if they add up to `dimensions`, else none (as flowpolicy leaves such a layout out)."""
    if not groups or sum(int(g["size"]) for g in groups) != dimensions:
        return []
    return [{"name": str(g["name"]), "size": int(g["size"]), "unit": str(g["unit"])} for g in groups]


def _validate(contract, Do, Da, fail):
    """`DeploymentContract.validate`: the same checks, the same field names."""
    if not (math.isfinite(contract["control_rate_hz"]) and contract["control_rate_hz"] > 0):
        raise fail(f"control_rate_hz must be a positive number of Hz, got {contract['control_rate_hz']}")
    for name, dimensions in (("observations", Do), ("actions", Da)):
        groups = contract[name]
        if groups and (any(g["size"] < 1 for g in groups) or sum(g["size"] for g in groups) != dimensions):
            raise fail(f"the {name} layout adds up to {sum(g['size'] for g in groups)} numbers; the policy has "
                       f"{dimensions}")
    for name in ("action_low", "action_high", "max_step_change"):
        if len(contract[name]) != Da:
            raise fail(f"{name} has {len(contract[name])} numbers; the policy has Da = {Da}")
    low, high = contract["action_low"], contract["action_high"]
    for d in range(Da):
        if not (np.isfinite(low[d]) and np.isfinite(high[d]) and low[d] <= high[d]):
            raise fail(f"the action bounds of dimension {d} are not an interval: [{low[d]}, {high[d]}]")
    for name in ("max_step_change", "max_velocity", "max_acceleration", "max_jerk"):
        values = contract.get(name)
        if values is None:
            continue
        if len(values) != Da:
            raise fail(f"{name} has {len(values)} numbers; the policy has Da = {Da}")
        bad = [d for d in range(Da) if not (np.isfinite(values[d]) and values[d] > 0)]
        if bad:
            raise fail(f"{name}[{bad[0]}] must be a positive finite number, got {values[bad[0]]}")
