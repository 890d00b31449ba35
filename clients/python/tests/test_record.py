"""`flowpolicy record` through the robot interface, killed with SIGKILL at 20 random moments: every finished episode
reads back intact.

Each trial starts a lock-step Push-T robot (`flowpolicy robot`), `flowpolicy record --follow-robot` listening to it and
`flowpolicy teleop --expert` driving it, then kills the recorder (SIGKILL) at a random moment: after its k-th "kept:"
line (k from 0 to 3) and a random fraction of episode k's steps, as the recorder's STATUS reports them. The moments
are counted in the recorder's own progress, not in seconds, so a slow machine moves them nowhere.
What the recorder left must be a readable dataset whose episodes are exactly the first episodes the expert drives
(checked, bit for bit, against `flowpolicy collect` on the same seeds), at least as many as the recorder had reported
kept. The binaries come from FLOWPOLICY_BIN (default .build/release); no server is needed."""

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from safetensors import safe_open
from safetensors.numpy import load_file

from flowpolicy_client import pb

REPOSITORY = Path(__file__).resolve().parents[3]
FLOWPOLICY = str(REPOSITORY / os.environ.get("FLOWPOLICY_BIN", ".build/release") / "flowpolicy")
EPISODES = 40
TIMEOUT = 30  # seconds: only a hung process takes this long; no result depends on it


def wait_until(condition, what):
    """Polls `condition` until it holds; fails the test after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {TIMEOUT} s for {what}")
        time.sleep(0.002)


@pytest.fixture(scope="module", autouse=True)
def built():
    if not os.access(FLOWPOLICY, os.X_OK):
        pytest.fail(f"{FLOWPOLICY} is missing: run swift build -c release first (or set FLOWPOLICY_BIN)")


@pytest.fixture
def processes():
    """Every process a test starts (appended here), killed and reaped at the end whether the test passed or not."""
    started = []
    yield started
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)  # closes the tests' sockets too


def start(processes, arguments, pattern, log):
    """Starts flowpolicy with `arguments`, its output in `log`, and waits for a match of `pattern` in the output;
    returns the process and the match."""
    with open(log, "w") as output:
        # stdin is not the terminal: record would read keys from it.
        process = subprocess.Popen([FLOWPOLICY] + arguments, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT)
    processes.append(process)
    match = None

    def started():
        nonlocal match
        match = re.search(pattern, Path(log).read_text())
        if not match and process.poll() is not None:
            pytest.fail(f"flowpolicy {' '.join(arguments)} exited:\n{Path(log).read_text()}")
        return match

    wait_until(started, f"flowpolicy {' '.join(arguments)} to print {pattern!r}")
    return process, match


def teleop(processes, state, commands):
    """The scripted expert driving the robot."""
    process = subprocess.Popen([FLOWPOLICY, "teleop", "--task", "pusht", "--expert", "--robot", state,
                                "--robot-commands", commands], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    processes.append(process)
    return process


def control_client(context, endpoint):
    """A DEALER on a record control socket; returns `send(command, outcome="")`, which answers the Status."""
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)

    def send(command, outcome=""):
        envelope = pb.Envelope(protocol_version=1, sequence=1)
        envelope.control.command = command
        envelope.control.outcome = outcome
        dealer.send(envelope.SerializeToString())
        assert dealer.poll(10_000), "no reply from the record control socket"
        return pb.Envelope.FromString(dealer.recv()).status

    return send


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The expert's episodes of seeds 0 ..< EPISODES, collected in process."""
    path = tmp_path_factory.mktemp("reference") / "collect.safetensors"
    subprocess.run([FLOWPOLICY, "collect", "--task", "pusht", "--episodes", str(EPISODES), "--seed", "0", "--out",
                    str(path), "--threads", "1"], check=True, capture_output=True)
    return load_file(str(path))


def test_a_killed_recording_keeps_every_finished_episode(tmp_path, reference, processes, context):
    generator = random.Random(20261206)
    lengths = np.diff(reference["episode_ends"], prepend=0)
    kills = []
    for trial in range(20):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        output, log = folder / "recorded.safetensors", folder / "record.log"
        robot, endpoints = start(processes, ["robot", "--task", "pusht", "--lock-step", "--episodes", str(EPISODES),
                                             "--seed", "0", "--bind", "tcp://127.0.0.1:*"],
                                 r"state (tcp://\S+) commands (tcp://\S+)", folder / "robot.log")
        state, commands = endpoints.group(1), endpoints.group(2)
        recorder, endpoint = start(processes, ["record", "--robot", state, "--out", str(output), "--task", "pusht",
                                               "--follow-robot"], r"control socket (tcp://[^\s;]+)[\s\S]*robot: ", log)
        status = control_client(context, endpoint.group(1))
        expert = teleop(processes, state, commands)
        # The moment: after the k-th "kept:" line, once the recorder has paired `step` steps of episode k (or has
        # already kept it: the poll can come late).
        k = generator.randint(0, 3)
        step = int(generator.random() * lengths[k])
        wait_until(lambda: log.read_text().count("kept:") >= k, f"trial {trial}: {k} episodes kept")

        def reached():
            current = status(pb.Control.STATUS)
            return current.chunks > k or (current.state == pb.Status.RUNNING and current.step >= step)

        wait_until(reached, f"trial {trial}: step {step} of episode {k}")
        recorder.send_signal(signal.SIGKILL)
        recorder.wait()
        for process in (expert, robot):
            process.kill()
            process.wait()
        reported = log.read_text().count("kept:")
        kills.append((k, step, reported))
        if not output.exists():
            assert reported == 0, f"trial {trial}: {reported} episodes reported kept, no file"
            continue
        data = load_file(str(output))  # a half-written file would not load
        ends = data["episode_ends"]
        assert len(ends) >= reported, f"trial {trial}: {reported} episodes reported kept, {len(ends)} in the file"
        assert np.all(np.diff(ends) > 0) and ends[-1] == len(data["obs"]) == len(data["action"])
        n = int(ends[-1])
        assert np.array_equal(data["obs"], reference["obs"][:n]), f"trial {trial}: observations differ"
        assert np.array_equal(data["action"], reference["action"][:n]), f"trial {trial}: actions differ"
        assert np.array_equal(ends, reference["episode_ends"][:len(ends)])
    print("kills (after k kept, at step, episodes reported kept):", kills)
    # The kills came at different stages: before any episode was finished, and after several.
    assert min(reported for *_, reported in kills) < max(reported for *_, reported in kills)


def test_episodes_start_end_and_are_discarded_by_control_messages(tmp_path, processes, context):
    robot, endpoints = start(processes, ["robot", "--task", "pusht", "--lock-step", "--episodes", "20", "--seed", "0",
                                         "--bind", "tcp://127.0.0.1:*"], r"state (tcp://\S+) commands (tcp://\S+)",
                             tmp_path / "robot.log")
    state, commands = endpoints.group(1), endpoints.group(2)
    output = tmp_path / "controlled.safetensors"
    recorder, control = start(processes, ["record", "--robot", state, "--out", str(output), "--task", "pusht",
                                          "--notes", "driven by Control messages"], r"control socket (tcp://[^\s;]+)",
                              tmp_path / "record.log")
    teleop(processes, state, commands)
    send = control_client(context, control.group(1))

    # Each episode is ended or discarded only once the recorder has paired a step of it: the STATUS step, not a wait.
    assert send(pb.Control.START_EPISODE).state == pb.Status.RUNNING
    wait_until(lambda: send(pb.Control.STATUS).step > 0, "the recorder to pair a step of the first episode")
    assert send(pb.Control.END_EPISODE, "success").chunks == 1
    send(pb.Control.START_EPISODE)
    wait_until(lambda: send(pb.Control.STATUS).step > 0, "the recorder to pair a step of the second episode")
    assert send(pb.Control.DISCARD_EPISODE).state == pb.Status.STOPPED
    send(pb.Control.QUIT)
    assert recorder.wait(timeout=10) == 0
    data = load_file(str(output))
    assert len(data["episode_ends"]) == 1 and data["episode_ends"][0] > 0
    with safe_open(str(output), "np") as file:
        metadata = file.metadata()
    episodes = json.loads(metadata["episodes"])
    assert [episode["outcome"] for episode in episodes] == ["success"]
    assert metadata["notes"] == "driven by Control messages" and metadata["task"] == "pusht"
    assert metadata["control_hz"] == "10.0"
