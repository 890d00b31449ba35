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


# Camera frames. The served checkpoint (--server) is low-dimensional: its Metadata lists no cameras and the server
# refuses frames. The round trip with a policy that has cameras runs when FLOWPOLICY_CAMERA_CHECKPOINT names such a
# checkpoint (the test serves it with the flowpolicy of FLOWPOLICY_BIN, by default .build/release).

def test_a_low_dimensional_policy_lists_no_cameras_and_refuses_frames(server):
    np = pytest.importorskip("numpy")
    with PolicyClient(server) as client:
        assert client.metadata().cameras == []
        with pytest.raises(ValueError, match="takes no camera frames"):
            client.infer(window(), frames={"image": np.zeros((2, 96, 96, 3), np.uint8)})  # refused before sending
        frame = pb.CameraFrame(camera="image", height=96, width=96, channels=3, encoding=pb.CameraFrame.RAW_UINT8,
                               data=bytes(96 * 96 * 3))
        request = pb.Infer(observations=[100.0] * 40, observation_steps=2, batch=1, frames=[frame, frame])
        with pytest.raises(PolicyServerError) as error:
            client.request(infer=request)
        assert error.value.code == "INVALID_ARGUMENT" and "takes no camera frames; got 2" in error.value.message
        assert len(client.infer(window())) == 16  # still serving


def _camera_client(cameras):
    """A client that believes its server's policy has `cameras` (the checks before sending need nothing else)."""
    from flowpolicy_client import Camera, PolicyMetadata

    client = PolicyClient("tcp://127.0.0.1:9", timeout=0.05)
    client._metadata = PolicyMetadata(
        protocol_version=1, task="pusht_image", observation_steps=2, action_steps=8, prediction_steps=16,
        observation_dimensions=2, action_dimensions=2, control_rate_hz=10, action_low=[0, 0], action_high=[512, 512],
        max_step_change=[150, 150], solver="euler", solver_steps=10, max_batch=8, checkpoint="", method="fm",
        cameras=[Camera(*camera) for camera in cameras])
    return client


def test_frames_are_checked_against_the_servers_cameras_before_sending():
    np = pytest.importorskip("numpy")
    with _camera_client([("image", 96, 96, 3)]) as client:
        window2 = [[100.0, 200.0], [110.0, 210.0]]
        with pytest.raises(ValueError, match=r"takes camera frames of image 96 x 96 x 3 uint8"):
            client.infer(window2)
        with pytest.raises(ValueError, match=r"frames must hold the cameras \['image'\]"):
            client.infer(window2, frames={"wrist": np.zeros((2, 96, 96, 3), np.uint8)})
        with pytest.raises(ValueError, match=r"uint8 \[To, H, W, C\] = \[2, 96, 96, 3\]; got uint8 \[2, 84, 84, 3\]"):
            client.infer(window2, frames={"image": np.zeros((2, 84, 84, 3), np.uint8)})
        with pytest.raises(ValueError, match=r"got float32 \[2, 96, 96, 3\]"):
            client.infer(window2, frames={"image": np.zeros((2, 96, 96, 3), np.float32)})
        with pytest.raises(ValueError, match=r"uint8 \[B, To, H, W, C\] = \[3, 2, 96, 96, 3\]"):
            client.infer([window2] * 3, frames={"image": np.zeros((2, 96, 96, 3), np.uint8)})
        # Well-formed frames pass the checks and are sent (nothing answers at this address).
        with pytest.raises(PolicyTimeout):
            client.infer(window2, frames={"image": np.zeros((2, 96, 96, 3), np.uint8)})
        with pytest.raises(PolicyTimeout):
            client.infer(window2[1], frames={"image": np.zeros((96, 96, 3), np.uint8)})  # the newest step only


def test_robot_state_frames_decode_to_numpy_arrays():
    np = pytest.importorskip("numpy")
    from flowpolicy_client import decode_frames

    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    frames = [pb.CameraFrame(camera="image", height=4, width=5, channels=3, encoding=pb.CameraFrame.RAW_UINT8,
                             data=image.tobytes()),
              pb.CameraFrame(camera="wrist", height=8, width=8, channels=3, encoding=pb.CameraFrame.JPEG,
                             data=b"\xff\xd8 not decoded")]
    decoded = decode_frames(frames)
    assert decoded["image"].dtype == np.uint8 and (decoded["image"] == image).all()
    assert decoded["wrist"] == b"\xff\xd8 not decoded"


@pytest.fixture
def camera_server():
    """`flowpolicy serve` of FLOWPOLICY_CAMERA_CHECKPOINT on a free loopback port (skipped without one)."""
    import re
    import subprocess

    checkpoint = os.environ.get("FLOWPOLICY_CAMERA_CHECKPOINT")
    if not checkpoint:
        pytest.skip("FLOWPOLICY_CAMERA_CHECKPOINT names no checkpoint of a policy with cameras")
    binary = os.path.join(os.environ.get("FLOWPOLICY_BIN", ".build/release"), "flowpolicy")
    process = subprocess.Popen([binary, "serve", "--checkpoint", checkpoint, "--bind", "tcp://127.0.0.1:*"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        endpoint = None
        for line in process.stdout:
            match = re.search(r"on (tcp://[0-9.]+:[0-9]+)", line)
            if match:
                endpoint = match.group(1)
                break
        assert endpoint, "flowpolicy serve did not say where it listens"
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_frames_travel_to_a_policy_with_cameras_and_wrong_ones_are_refused(camera_server):
    np = pytest.importorskip("numpy")
    with PolicyClient(camera_server) as client:
        spec = client.metadata()
        assert spec.cameras, "FLOWPOLICY_CAMERA_CHECKPOINT must be a policy with cameras"
        To, Do = spec.observation_steps, spec.observation_dimensions
        rng = np.random.default_rng(0)
        observations = [[256.0] * Do for _ in range(To)]
        frames = {c.name: rng.integers(0, 256, (To,) + c.shape, dtype=np.uint8) for c in spec.cameras}
        actions = client.infer(observations, frames=frames)
        assert len(actions) == spec.prediction_steps and all(len(row) == spec.action_dimensions for row in actions)
        # A batch of two windows.
        batch = {name: np.stack([array, array[::-1]]) for name, array in frames.items()}
        chunks = client.infer([observations, observations], frames=batch)
        assert len(chunks) == 2 and all(len(chunk) == spec.prediction_steps for chunk in chunks)
        # Wrong frames sent as they are: the server names the expected shape and keeps serving.
        camera = spec.cameras[0]
        wrong = [pb.CameraFrame(camera=c.name, height=c.height, width=c.width, channels=c.channels,
                                encoding=pb.CameraFrame.RAW_UINT8, data=bytes(c.height * c.width * c.channels))
                 for _ in range(To) for c in spec.cameras]
        wrong[0] = pb.CameraFrame(camera=camera.name, height=camera.height // 2, width=camera.width,
                                  channels=camera.channels, encoding=pb.CameraFrame.RAW_UINT8,
                                  data=bytes(camera.height // 2 * camera.width * camera.channels))
        request = pb.Infer(observations=[256.0] * (To * Do), observation_steps=To, batch=1, frames=wrong)
        with pytest.raises(PolicyServerError) as error:
            client.request(infer=request)
        assert error.value.code == "INVALID_ARGUMENT"
        assert f"expected {camera} raw ({camera.height * camera.width * camera.channels} bytes)" in error.value.message
        wrong[0] = pb.CameraFrame(camera=camera.name, height=camera.height, width=camera.width,
                                  channels=camera.channels, encoding=pb.CameraFrame.JPEG, data=b"\xff\xd8")
        with pytest.raises(PolicyServerError, match="takes raw uint8 frames only"):
            client.request(infer=pb.Infer(observations=[256.0] * (To * Do), observation_steps=To, batch=1,
                                          frames=wrong))
        assert len(client.infer(observations, frames=frames)) == spec.prediction_steps
