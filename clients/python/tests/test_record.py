"""`flowpolicy record` through the robot interface, killed with SIGKILL at 20 random moments: every finished episode
reads back intact.

Each trial starts a lock-step Push-T robot (`flowpolicy robot`), `flowpolicy record --follow-robot` listening to it and
`flowpolicy teleop --expert` driving it, then kills the recorder (SIGKILL) at a random moment between 0.2 and 2 s.
What the recorder left must be a readable dataset whose episodes are exactly the first episodes the expert drives
(checked, bit for bit, against `flowpolicy collect` on the same seeds), at least as many as the recorder had reported
kept. The binaries come from FLOWPOLICY_BIN (default .build/release); no server is needed."""

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

REPOSITORY = Path(__file__).resolve().parents[3]
FLOWPOLICY = str(REPOSITORY / os.environ.get("FLOWPOLICY_BIN", ".build/release") / "flowpolicy")
EPISODES = 40


def start(arguments, pattern, log):
    """Starts flowpolicy with `arguments`, its output in `log`, and waits (at most 30 s) for a line matching
    `pattern`; returns the process and the match."""
    process = subprocess.Popen([FLOWPOLICY] + arguments, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(pattern, Path(log).read_text())
        if match:
            return process, match
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"flowpolicy {' '.join(arguments)} did not start:\n{Path(log).read_text()}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The expert's episodes of seeds 0 ..< EPISODES, collected in process."""
    path = tmp_path_factory.mktemp("reference") / "collect.safetensors"
    subprocess.run([FLOWPOLICY, "collect", "--task", "pusht", "--episodes", str(EPISODES), "--seed", "0", "--out",
                    str(path), "--threads", "1"], check=True, capture_output=True)
    return load_file(str(path))


def test_a_killed_recording_keeps_every_finished_episode(tmp_path, reference):
    generator = random.Random(20261206)
    kills = []
    for trial in range(20):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        output = folder / "recorded.safetensors"
        robot, endpoints = start(["robot", "--task", "pusht", "--lock-step", "--episodes", str(EPISODES), "--seed",
                                  "0", "--bind", "tcp://127.0.0.1:*"], r"state (tcp://\S+) commands (tcp://\S+)",
                                 folder / "robot.log")
        state, commands = endpoints.group(1), endpoints.group(2)
        recorder, _ = start(["record", "--robot", state, "--out", str(output), "--task", "pusht", "--follow-robot",
                             "--control", "none"], r"robot: ", folder / "record.log")
        teleop = subprocess.Popen([FLOWPOLICY, "teleop", "--task", "pusht", "--expert", "--robot", state,
                                   "--robot-commands", commands], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        moment = generator.uniform(0.2, 2.0)
        time.sleep(moment)
        recorder.send_signal(signal.SIGKILL)
        recorder.wait()
        for process in (teleop, robot):
            process.kill()
            process.wait()
        reported = len(re.findall(r"kept:", (folder / "record.log").read_text()))
        kills.append((moment, reported))
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
    print("kills (seconds, episodes reported kept):", [(round(m, 2), r) for m, r in kills])
    # The kills came at different stages: before any episode was finished, and after several.
    assert min(reported for _, reported in kills) < max(reported for _, reported in kills)


def test_episodes_start_end_and_are_discarded_by_control_messages(tmp_path):
    import json

    import zmq
    from safetensors import safe_open
    from flowpolicy_client import pb

    robot, endpoints = start(["robot", "--task", "pusht", "--lock-step", "--episodes", "20", "--seed", "0", "--bind",
                              "tcp://127.0.0.1:*"], r"state (tcp://\S+) commands (tcp://\S+)", tmp_path / "robot.log")
    state, commands = endpoints.group(1), endpoints.group(2)
    output = tmp_path / "controlled.safetensors"
    recorder, control = start(["record", "--robot", state, "--out", str(output), "--task", "pusht", "--notes",
                               "driven by Control messages"], r"control socket (tcp://\S+)", tmp_path / "record.log")
    teleop = subprocess.Popen([FLOWPOLICY, "teleop", "--task", "pusht", "--expert", "--robot", state,
                               "--robot-commands", commands], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(control.group(1))

    def send(command, outcome=""):
        envelope = pb.Envelope(protocol_version=1, sequence=1)
        envelope.control.command = command
        envelope.control.outcome = outcome
        dealer.send(envelope.SerializeToString())
        assert dealer.poll(10_000), "no reply from the record control socket"
        return pb.Envelope.FromString(dealer.recv()).status

    try:
        assert send(pb.Control.START_EPISODE).state == pb.Status.RUNNING
        time.sleep(0.5)
        assert send(pb.Control.END_EPISODE, "success").chunks == 1
        send(pb.Control.START_EPISODE)
        time.sleep(0.3)
        assert send(pb.Control.DISCARD_EPISODE).state == pb.Status.STOPPED
        send(pb.Control.QUIT)
        assert recorder.wait(timeout=10) == 0
    finally:
        for process in (teleop, robot, recorder):
            process.kill()
            process.wait()
        dealer.close()
        context.term()
    data = load_file(str(output))
    assert len(data["episode_ends"]) == 1 and data["episode_ends"][0] > 0
    with safe_open(str(output), "np") as file:
        metadata = file.metadata()
    episodes = json.loads(metadata["episodes"])
    assert [episode["outcome"] for episode in episodes] == ["success"]
    assert metadata["notes"] == "driven by Control messages" and metadata["task"] == "pusht"
    assert metadata["control_hz"] == "10.0"
