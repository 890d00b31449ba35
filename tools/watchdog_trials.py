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
"""

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
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
        port = self.states.bind_to_random_port("tcp://127.0.0.1")
        self.commands = context.socket(zmq.SUB)
        self.commands.setsockopt(zmq.LINGER, 0)
        self.commands.setsockopt(zmq.SUBSCRIBE, b"")
        self.commands.bind(f"tcp://127.0.0.1:{port + 1}")
        self.endpoint = f"tcp://127.0.0.1:{port}"
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


def start_run(robot_endpoint, checkpoint="tasks/pusht/policy.safetensors", commands=None):
    return subprocess.Popen([runtime_binary(), "run", "--checkpoint", os.path.join(REPOSITORY, checkpoint),
                             "--robot", robot_endpoint, "--control", "none"]
                            + (["--robot-commands", commands] if commands else []),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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
    run = start_run(bridge.endpoint)
    try:
        if not wait_for_act(bridge):
            raise RuntimeError("run never acted")
        time.sleep(1.5)
        yield bridge, run
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=10)
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
    robot = subprocess.Popen([os.path.join(REPOSITORY, ".build/release/flowpolicy"), "robot", "--task",
                              "franka_kitchen", "--bind", "tcp://127.0.0.1:*", "--hold-after", "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = robot.stdout.readline()
        match = re.search(r"state (tcp://\S+) commands (tcp://\S+)", line)
        if not match:
            return {"error": f"robot did not start: {line}"}
        states = context.socket(zmq.SUB)
        states.setsockopt(zmq.LINGER, 0)
        states.setsockopt(zmq.SUBSCRIBE, b"")
        states.connect(match.group(1))
        log, stop = [], threading.Event()

        def watch():
            poller = zmq.Poller()
            poller.register(states, zmq.POLLIN)
            while not stop.is_set():
                if poller.poll(20):
                    state = pb.Envelope.FromString(states.recv()).robot_state
                    log.append((time.monotonic(), state.applied_command_sequence, list(state.applied_action)))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        run = start_run(match.group(1), "tasks/franka_kitchen/policy.safetensors", match.group(2))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(any(a) for _, _, a in log):
            time.sleep(0.02)
        time.sleep(1.0)
        run.kill()
        killed_at = time.monotonic()
        run.wait()
        time.sleep(1.0)
        stop.set()
        watcher.join()
        states.close()
        # The last state that reports a command applied after the kill's moment is the last command; the robot then
        # repeats it until its own timeout, when the applied action becomes zero.
        last_command = max((t for t, sequence, _ in log if t <= killed_at + 0.05 and sequence), default=None)
        zero = next((t for t, _, action in log if t > killed_at and action and not any(action)), None)
        if last_command is None or zero is None:
            return {"error": "no command seen, or the robot never held"}
        return {"periods_to_hold": (zero - last_command) / KITCHEN_PERIOD}
    finally:
        robot.send_signal(signal.SIGINT)
        robot.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--json", help="write the figures here")
    arguments = parser.parse_args()
    context = zmq.Context()
    results = {}
    for name, trial in (("robot frozen", robot_frozen), ("run frozen then resumed", run_frozen),
                        ("run killed", run_killed)):
        results[name] = [trial(context) for _ in range(arguments.trials)]
        print(f"{name}:")
        for index, result in enumerate(results[name]):
            print(f"  trial {index + 1}: " + ", ".join(f"{key} {value:.2f}" if isinstance(value, float)
                                                       else f"{key} {value}" for key, value in result.items()))
    worst = {name: max((r.get("periods_to_hold") or r.get("periods_to_first_command") or 0.0) for r in trials)
             for name, trials in results.items()}
    print("worst case, periods until HOLD: " + "; ".join(f"{name} {value:.2f}" for name, value in worst.items()))
    if arguments.json:
        with open(arguments.json, "w") as file:
            json.dump({"trials": results, "worst_periods_until_hold": worst}, file, indent=2)
    context.term()


if __name__ == "__main__":
    main()
