"""The Python client against the Swift policy server and simulated robot over TCP loopback."""

import math
import os
import sys

import pytest
import zmq

from flowpolicy_client import PolicyClient, PolicyServerError, PolicyTimeout, pb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
import drive_robot  # noqa: E402


def window(seed=0):
    return [[50.0 + (7 * i + 13 * seed) % 400 for i in range(20)] for _ in range(2)]


def test_metadata_describes_the_served_policy(server):
    with PolicyClient(server) as client:
        spec = client.metadata()
    assert (spec.protocol_version, spec.task) == (1, "pusht")
    assert (spec.observation_steps, spec.action_steps, spec.prediction_steps) == (2, 8, 16)
    assert (spec.observation_dimensions, spec.action_dimensions) == (20, 2)
    assert spec.control_rate_hz == 10 and spec.action_low == [0, 0] and spec.action_high == [512, 512]
    assert spec.max_step_change == [150, 150] and spec.solver == "euler" and spec.solver_steps >= 1
    assert spec.first_action_index == 1


def test_infer_returns_a_chunk_of_tp_by_da_actions(server):
    with PolicyClient(server) as client:
        actions = client.infer(window())
        assert len(actions) == 16 and all(len(row) == 2 for row in actions)
        assert all(math.isfinite(v) for row in actions for v in row)
        timing = client.last_chunk.timing
        assert timing.inference_ms > 0 and timing.solver == "euler" and client.last_chunk.first_action_index == 1
        assert client.ping(b"hello") == b"hello"


def test_seeded_inference_is_reproducible_and_server_side_windows_match(server):
    observations = window(3)
    with PolicyClient(server) as first, PolicyClient(server) as second:
        # One client sends full windows; the other only the newest observation (the server keeps its window).
        a = [first.infer(observations, noise_seed=11)]
        b = [second.infer(observations[0], noise_seed=11)]
        a.append(first.infer([observations[0], observations[1]], noise_seed=11))
        b.append(second.infer(observations[1], noise_seed=11))
        assert a == b
        # reset() restarts the episode and its noise stream.
        first.reset()
        assert first.infer(observations, noise_seed=11) == a[0]


def test_committed_actions_start_the_chunk(server):
    with PolicyClient(server) as client:
        actions = client.infer(window(), committed=[[100, 300], [120, 310]])
    assert all(abs(x - y) < 1e-3 for x, y in zip(actions[0] + actions[1], [100, 300, 120, 310]))


def test_server_errors_are_raised_with_their_code_and_the_server_keeps_serving(server):
    with PolicyClient(server) as client:
        client.metadata()
        bad = window()
        bad[1][4] = float("nan")
        with pytest.raises(ValueError, match="NaN"):
            client.infer(bad)  # refused before it is sent
        request = pb.Infer(observations=[1.0] * 39, observation_steps=2, batch=1)
        with pytest.raises(PolicyServerError) as error:
            client.request(infer=request)
        assert error.value.code == "INVALID_ARGUMENT" and "40" in error.value.message
        request = pb.Infer(observations=[float("nan")] * 40, observation_steps=2, batch=1)
        with pytest.raises(PolicyServerError) as error:
            client.request(infer=request)
        assert error.value.code == "NON_FINITE"
        with pytest.raises(PolicyServerError) as error:
            client.request(action_chunk=pb.ActionChunk())
        assert error.value.code == "UNEXPECTED_MESSAGE"
        with pytest.raises(ValueError, match="To x Do"):
            client.infer([1.0, 2.0, 3.0])
        assert len(client.infer(window())) == 16


def test_malformed_frames_and_other_versions_get_errors(server):
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 10_000)
    socket.connect(server)
    try:
        socket.send(b"\xff\xff\xff not protobuf")
        reply = pb.Envelope.FromString(socket.recv())
        assert reply.WhichOneof("body") == "error" and reply.error.code == pb.Error.MALFORMED
        socket.send(pb.Envelope(protocol_version=2, sequence=5, ping=pb.Ping()).SerializeToString())
        reply = pb.Envelope.FromString(socket.recv())
        assert reply.sequence == 5 and reply.error.code == pb.Error.UNSUPPORTED_VERSION
        assert "version 2" in reply.error.message
    finally:
        socket.close(linger=0)
    with PolicyClient(server) as client:
        assert client.metadata().action_dimensions == 2


def test_timeouts_raise_a_clear_error():
    context = zmq.Context.instance()
    silent = context.socket(zmq.ROUTER)
    silent.setsockopt(zmq.LINGER, 0)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        with PolicyClient(f"tcp://127.0.0.1:{port}", timeout=0.05) as client:
            with pytest.raises(PolicyTimeout, match="within 0.05 s"):
                client.metadata()
    finally:
        silent.close(linger=0)


def test_the_example_drives_the_simulated_robot_through_an_episode(server, robot):
    outcomes = drive_robot.drive(server, robot[0], robot[1], episodes=1)
    assert len(outcomes) == 1
    episode, steps, success, progress = outcomes[0]
    assert episode >= 100000 and steps == 300 and 0 <= progress <= 1
