"""Watchdog trials: how many control periods pass before the arm is held, when the robot freezes, when `run` freezes
and comes back, and when `run` is killed. Loopback only, bounded (10 trials of each by default, a few seconds each).

    ~/.cache/flowpolicy/venv/bin/python tools/watchdog_trials.py [--trials 10] [--json watchdog.json]

- robot frozen: a robot bridge written here (Python, flowpolicy.v1 over pyzmq, as a real arm's bridge would be)
  publishes Push-T-shaped states at 10 Hz to `flowpolicy-runtime run` and records every command; after 1.5 s of
  acting it stops publishing (frozen). Measured: periods from its last state to the first HOLD it receives.
- run frozen then resumed: the same bridge keeps publishing; `run` is stopped with SIGSTOP for 1 s and continued.
  Measured: whether any ACT arrives after the pause (it must not: the loop holds until the operator's RESUME), and
  periods from the pause's end to the first command (a HOLD).
- run killed: `flowpolicy robot --task franka_kitchen` (velocity-commanded) driven by `run`, which is killed with
  SIGKILL. A subscriber here watches the robot's states. Measured: periods from the last command the robot applied
  to the first state whose applied action is zero (the robot's own timeout, `--hold-after 3`).

A trial that fails (an error, or a figure it could not measure) is listed in the summary, and the exit status is 1.
Every port is chosen by the system (bound to port 0 here, `tcp://127.0.0.1:*` for the binaries).
"""

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "clients", "python"))
from flowpolicy_client import pb  # noqa: E402

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PERIOD = 0.1  # Push-T and this bridge: 10 Hz
KITCHEN_PERIOD = 0.08  # 12.5 Hz


class Bridge:
    """A robot bridge on loopback: PUB of RobotState at 10 Hz (until frozen), SUB of ActionCommand, every command
    recorded with its arrival time."""

    def __init__(self, context):
        self.states = context.socket(zmq.PUB)
        self.states.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.states.bind_to_random_port('tcp://127.0.0.1')}"
        self.commands = context.socket(zmq.SUB)
        self.commands.setsockopt(zmq.LINGER, 0)
        self.commands.setsockopt(zmq.SUBSCRIBE, b"")
        # A port of its own too: the state port + 1 (run's default) may be taken.
        self.commands_endpoint = f"tcp://127.0.0.1:{self.commands.bind_to_random_port('tcp://127.0.0.1')}"
        self.received = []  # (time, mode)
        self.last_state = None
        self.publishing = True
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        sequence, step, start = 0, 0, time.monotonic()
        poller = zmq.Poller()
        poller.register(self.commands, zmq.POLLIN)
        while not self.stop.is_set():
            deadline = start + (step + 1) * PERIOD
            if self.publishing:
                sequence += 1
                state = pb.RobotState(episode_id=1, step=step, observation=[200.0 + (step % 50)] * 20,
                                      episode_start=step == 0, control_rate_hz=10.0, action_dimensions=2,
                                      robot="watchdog trial bridge")
                envelope = pb.Envelope(protocol_version=1, sequence=sequence,
                                       timestamp_ns=time.clock_gettime_ns(time.CLOCK_MONOTONIC))
                envelope.robot_state.CopyFrom(state)
                self.states.send(envelope.SerializeToString())
                self.last_state = time.monotonic()
            step += 1
            while (remaining := deadline - time.monotonic()) > 0:
                if poller.poll(remaining * 1000):
                    command = pb.Envelope.FromString(self.commands.recv()).action_command
                    self.received.append((time.monotonic(), "ACT" if command.mode == 1 else "HOLD"))

    def close(self):
        self.stop.set()
        self.thread.join()
        self.states.close()
        self.commands.close()


def runtime_binary():
    for candidate in (".build-static/release/flowpolicy-runtime", ".build/release/flowpolicy-runtime"):
        path = os.path.join(REPOSITORY, candidate)
        if os.path.exists(path):
            return path
    sys.exit("error: build flowpolicy-runtime first (swift build -c release --product flowpolicy-runtime)")


def flowpolicy_binary():
    path = os.path.join(REPOSITORY, ".build/release/flowpolicy")
    if not os.path.exists(path):
        sys.exit(f"error: {path} is missing: run swift build -c release first")
    return path


def start(arguments):
    """Starts a binary with its output in a temporary file (a pipe nobody reads would fill up and block it)."""
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log = log
    return process


def output(process):
    process.log.seek(0)
    return process.log.read()


def stop(process):
    """Interrupts `process` (continued first: a stopped one would not handle SIGINT), killed if it does not end."""
    process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log.close()


def start_run(robot_endpoint, commands, checkpoint="tasks/pusht/policy.safetensors"):
    return start([runtime_binary(), "run", "--checkpoint", os.path.join(REPOSITORY, checkpoint),
                  "--robot", robot_endpoint, "--robot-commands", commands, "--control", "none"])


def wait_for_act(bridge, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(mode == "ACT" for _, mode in bridge.received):
            return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def acting(context):
    """A bridge driven by `run`, once `run` has acted for 1.5 s; both stopped afterwards."""
    bridge = Bridge(context)
    try:
        run = start_run(bridge.endpoint, bridge.commands_endpoint)
        try:
            if not wait_for_act(bridge):
                raise RuntimeError(f"run never acted; its output:\n{output(run).strip() or '(none)'}")
            time.sleep(1.5)
            yield bridge, run
        finally:
            stop(run)
    finally:
        bridge.close()


def robot_frozen(context):
    with acting(context) as (bridge, run):
        bridge.publishing = False
        time.sleep(0.05)  # the state being published now is the last
        frozen_at = bridge.last_state
        time.sleep(1.0)
        first_hold = next((t for t, mode in bridge.received if t > frozen_at and mode == "HOLD"), None)
        acts_after = sum(1 for t, mode in bridge.received if first_hold and t > first_hold and mode == "ACT")
        return {"periods_to_hold": None if first_hold is None else (first_hold - frozen_at) / PERIOD,
                "acts_after_hold": acts_after}


def run_frozen(context):
    with acting(context) as (bridge, run):
        run.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        resumed_at = time.monotonic()
        run.send_signal(signal.SIGCONT)
        time.sleep(1.0)
        after = [(t, mode) for t, mode in bridge.received if t > resumed_at]
        return {"acts_after_pause": sum(1 for _, mode in after if mode == "ACT"),
                "first_after_pause": after[0][1] if after else None,
                "periods_to_first_command": (after[0][0] - resumed_at) / PERIOD if after else None}


def run_killed(context):
    robot = start([flowpolicy_binary(), "robot", "--task", "franka_kitchen", "--bind", "tcp://127.0.0.1:*",
                   "--hold-after", "3"])
    states = context.socket(zmq.SUB)
    states.setsockopt(zmq.LINGER, 0)
    states.setsockopt(zmq.SUBSCRIBE, b"")
    log, watching = [], threading.Event()
    watching.set()
    watcher, run = None, None
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"state (tcp://\S+) commands (tcp://\S+)", output(robot))):
            if robot.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"robot did not start; its output:\n{output(robot).strip() or '(none)'}")
            time.sleep(0.02)
        states.connect(match.group(1))

        def watch():
            poller = zmq.Poller()
            poller.register(states, zmq.POLLIN)
            while watching.is_set():
                if poller.poll(20):
                    state = pb.Envelope.FromString(states.recv()).robot_state
                    log.append((time.monotonic(), state.applied_command_sequence, list(state.applied_action)))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        run = start_run(match.group(1), match.group(2), "tasks/franka_kitchen/policy.safetensors")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(any(a) for _, _, a in log):
            time.sleep(0.02)
        time.sleep(1.0)
        run.kill()
        killed_at = time.monotonic()
        run.wait()
        time.sleep(1.0)
        watching.clear()
        watcher.join()
        # The last state that reports a command applied after the kill's moment is the last command; the robot then
        # repeats it until its own timeout, when the applied action becomes zero.
        last_command = max((t for t, sequence, _ in log if t <= killed_at + 0.05 and sequence), default=None)
        zero = next((t for t, _, action in log if t > killed_at and action and not any(action)), None)
        if last_command is None or zero is None:
            return {"error": "no command seen, or the robot never held"}
        return {"periods_to_hold": (zero - last_command) / KITCHEN_PERIOD}
    finally:
        watching.clear()
        if watcher is not None:
            watcher.join()
        states.close()
        if run is not None:
            stop(run)
        stop(robot)


def attempt(trial, context):
    """One trial's figures, or with "error" when it failed: it raised, or left a figure unmeasured (None)."""
    try:
        result = trial(context)
    except Exception as error:  # a failed trial is reported with the others, not the end of the run
        return {"error": f"{type(error).__name__}: {error}"}
    unmeasured = [key for key, value in result.items() if value is None]
    if unmeasured and "error" not in result:
        result["error"] = "not measured: " + ", ".join(unmeasured)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--json", help="write the figures here")
    arguments = parser.parse_args()
    context = zmq.Context()
    results = {}
    for name, trial in (("robot frozen", robot_frozen), ("run frozen then resumed", run_frozen),
                        ("run killed", run_killed)):
        results[name] = [attempt(trial, context) for _ in range(arguments.trials)]
        print(f"{name}:")
        for index, result in enumerate(results[name]):
            print(f"  trial {index + 1}: " + ", ".join(f"{key} {value:.2f}" if isinstance(value, float)
                                                       else f"{key} {value}" for key, value in result.items()))
    # The worst case over the trials that measured it: a failed trial is counted as failed, never as 0 periods.
    worst = {name: max((r.get("periods_to_hold", r.get("periods_to_first_command")) for r in trials
                        if "error" not in r), default=None)
             for name, trials in results.items()}
    failed = {name: [index + 1 for index, r in enumerate(trials) if "error" in r] for name, trials in results.items()}
    print("worst case, periods until HOLD: " + "; ".join(
        f"{name} {'none measured' if value is None else f'{value:.2f}'}" for name, value in worst.items()))
    failures = [f"{name} {len(trials)} of {arguments.trials} (trial {', '.join(map(str, trials))})"
                for name, trials in failed.items() if trials]
    print("failed trials: " + ("; ".join(failures) or "none"))
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump({"trials": results, "worst_periods_until_hold": worst, "failed_trials": failed}, file,
                      indent=2)
    context.term()
    if any(failed.values()):
        sys.exit("error: some trials failed (their errors are above): the figures are incomplete")


if __name__ == "__main__":
    main()
