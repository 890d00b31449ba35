"""Python client of flowpolicy's ZeroMQ protocol (flowpolicy.v1): a policy server (`flowpolicy serve`) and a robot
(`flowpolicy robot`, or a physical arm speaking the same protocol). Needs only pyzmq and protobuf.

    from flowpolicy_client import PolicyClient
    with PolicyClient("tcp://127.0.0.1:5555") as client:
        spec = client.metadata()                  # To, Ta, Tp, dimensions, control rate, action bounds
        actions = client.infer(window)            # window: To observations of Do numbers -> Tp x Da actions
        execute(actions[spec.first_action_index : spec.first_action_index + spec.action_steps])
        client.reset()                            # a new episode

A policy with cameras (`spec.cameras`) takes frames beside the observations, uint8 channels-last RGB, one array per
camera with the observations' steps (numpy needed for frames):

        actions = client.infer(window, frames={"image": images})   # images: uint8 [To, H, W, C] ([B, To, H, W, C]
                                                                    # beside B windows [B, To, Do])

Timestamps are CLOCK_MONOTONIC nanoseconds (time.monotonic_ns() on Linux), comparable with the Swift side on the
same host.

Servers and robots that use CURVE (encrypted, authenticated connections) need the client's key pair on their
allow-list and give the client their public key. Key files are ZeroMQ certificates, as `flowpolicy keys` (or pyzmq's
`zmq.auth.create_certificates`) writes them: NAME.key holds the public key, NAME.key_secret both keys (mode 0600).

    from flowpolicy_client import CurveKeys, PolicyClient
    curve = CurveKeys.from_files(server_key_file="keys/policy-server.key", secret_key_file="keys/laptop.key_secret")
    with PolicyClient("tcp://robot-pc:5555", curve=curve) as client:
        ...

A server that does not let the client in answers nothing: requests time out (PolicyTimeout).
"""

from __future__ import annotations

import math
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import zmq

from . import flowpolicy_pb2 as pb

__all__ = [
    "PROTOCOL_VERSION",
    "Camera",
    "CurveKeys",
    "KeyFileError",
    "PolicyClient",
    "PolicyMetadata",
    "PolicyError",
    "PolicyServerError",
    "PolicyTimeout",
    "RobotLink",
    "RobotState",
    "decode_frames",
    "pb",
    "read_key_pair",
    "read_public_key",
]

PROTOCOL_VERSION = 1


class PolicyError(Exception):
    """Base class of this client's errors."""


class PolicyServerError(PolicyError):
    """The server answered with an Error message: `code` (e.g. "NON_FINITE") and its `message`."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PolicyTimeout(PolicyError, TimeoutError):
    """No reply within the timeout."""


class KeyFileError(PolicyError, ValueError):
    """A key file is missing, malformed, or (a secret key file) readable by group or others. The message names it."""


Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
PathLike = Union[str, "os.PathLike[str]"]


def _check_key(key: str, role: str, path: PathLike) -> bytes:
    expected = f"a {role} is 40 characters of Z85 (0-9, a-z, A-Z and .-:+=^!/*?&<>()[]{{}}@%$#)"
    for index, character in enumerate(key):
        if character not in Z85_ALPHABET:
            raise KeyFileError(f"{path}: {expected}; found {character!r} at character {index + 1}")
    if len(key) != 40:
        raise KeyFileError(f"{path}: {expected}; got {len(key)} characters")
    return key.encode("ascii")


def _read_certificate(path: PathLike, secret: bool) -> Tuple[Optional[str], Optional[str]]:
    """The public-key and secret-key entries of a ZeroMQ certificate (read as pyzmq's load_certificate does)."""
    try:
        with open(path, "rb") as file:
            if secret and os.name == "posix":
                mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
                if mode & 0o077:
                    raise KeyFileError(
                        f"{path}: permissions {mode:o} are too open: a secret key file must not be accessible by "
                        f"group or others; run `chmod 600 {path}`")
            data = file.read(64 * 1024 + 1)
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: is not a key file (not UTF-8 text)") from None
    if len(data) > 64 * 1024:
        raise KeyFileError(f"{path}: is too large for a key file")
    keys = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        for name in ("public-key", "secret-key"):
            if line.startswith(name):
                rest = line[len(name):].lstrip(" \t")
                if not rest.startswith("="):
                    raise KeyFileError(f'{path}: expected a line {name} = "<40 Z85 characters>"')
                if name in keys:
                    raise KeyFileError(f"{path}: holds two {name} lines; a key file holds one key of each kind")
                keys[name] = rest[1:].strip(" \t'\"")
    return keys.get("public-key"), keys.get("secret-key")


def read_public_key(path: PathLike) -> bytes:
    """The public key (40 Z85 characters, as bytes) of a public key file NAME.key."""
    public_key, secret_key = _read_certificate(path, secret=False)
    if secret_key is not None:
        raise KeyFileError(f"{path}: holds a secret key: only public key files (NAME.key) are given to peers; keep "
                           f"this one private (chmod 600) and use the .key file of the same name")
    if public_key is None:
        raise KeyFileError(f'{path}: no public-key line: expected a public key file (NAME.key) with a line '
                           f'public-key = "<40 Z85 characters>"')
    return _check_key(public_key, "public key", path)


def read_key_pair(path: PathLike) -> Tuple[bytes, bytes]:
    """(public key, secret key), each 40 Z85 characters as bytes, of a secret key file NAME.key_secret.

    Refuses a file that group or others may access (like ssh): `chmod 600` it."""
    public_key, secret_key = _read_certificate(path, secret=True)
    if secret_key is None or public_key is None:
        raise KeyFileError(f'{path}: expected a secret key file (NAME.key_secret) with the lines '
                           f'public-key = "<40 Z85 characters>" and secret-key = "<40 Z85 characters>"')
    public = _check_key(public_key, "public key", path)
    secret = _check_key(secret_key, "secret key", path)
    if zmq.curve_public(secret) != public:
        raise KeyFileError(f"{path}: its public-key does not belong to its secret-key")
    return public, secret


@dataclass(frozen=True)
class CurveKeys:
    """What a CURVE client needs: the server's public key and its own key pair (each 40 Z85 characters, bytes).

    Build it from key files with `CurveKeys.from_files(server_key_file, secret_key_file)`; give it to `PolicyClient`
    or `RobotLink` as `curve=`. The secret key is left out of repr()."""

    server_public_key: bytes
    public_key: bytes
    secret_key: bytes = field(repr=False)

    @classmethod
    def from_files(cls, server_key_file: PathLike, secret_key_file: PathLike) -> "CurveKeys":
        """The server's public key file (its NAME.key) and this client's secret key file (NAME.key_secret, mode
        0600)."""
        public_key, secret_key = read_key_pair(secret_key_file)
        return cls(server_public_key=read_public_key(server_key_file), public_key=public_key, secret_key=secret_key)

    def apply(self, socket: zmq.Socket) -> None:
        """Makes `socket` a CURVE client of the server; call before connect()."""
        if not zmq.has("curve"):
            raise PolicyError("this libzmq has no CURVE support (built without libsodium)")
        socket.curve_serverkey = self.server_public_key
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key


@dataclass(frozen=True)
class Camera:
    """One camera a policy sees (Metadata.cameras): its frames are uint8 [height, width, channels], RGB."""

    name: str
    height: int
    width: int
    channels: int = 3

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def __str__(self) -> str:
        return f"{self.name} {self.height} x {self.width} x {self.channels} uint8"


@dataclass
class PolicyMetadata:
    """What a policy server serves (the Metadata message)."""

    protocol_version: int
    task: str
    observation_steps: int  # To
    action_steps: int  # Ta
    prediction_steps: int  # Tp
    observation_dimensions: int  # Do
    action_dimensions: int  # Da
    control_rate_hz: float
    action_low: List[float]
    action_high: List[float]
    max_step_change: List[float]
    solver: str
    solver_steps: int
    max_batch: int
    checkpoint: str
    method: str
    # The cameras whose frames each observation step takes, in order (none for a low-dimensional policy).
    cameras: List[Camera] = field(default_factory=list)

    @property
    def first_action_index(self) -> int:
        """Index in a chunk of the action for the newest observation's step (To - 1)."""
        return self.observation_steps - 1


@dataclass
class RobotState:
    """One RobotState with its envelope's sequence number and timestamp."""

    sequence: int
    timestamp_ns: int
    episode_id: int
    step: int
    observation: List[float]
    episode_start: bool
    done: bool
    success: bool
    progress: float
    applied_action: List[float] = field(default_factory=list)
    # The current frame of each of the robot's cameras, by name: numpy uint8 [H, W, C] for raw frames, the encoded
    # bytes for others (JPEG; this client does not decode them).
    frames: Dict[str, object] = field(default_factory=dict)


def decode_frames(frames) -> Dict[str, object]:
    """CameraFrame messages as {camera: numpy uint8 [H, W, C]} (raw frames; other encodings stay bytes)."""
    decoded: Dict[str, object] = {}
    if not frames:
        return decoded
    import numpy as np

    for frame in frames:
        if frame.encoding == pb.CameraFrame.RAW_UINT8:
            shape = (frame.height, frame.width, frame.channels)
            if len(frame.data) != frame.height * frame.width * frame.channels:
                raise PolicyError(f"camera {frame.camera}'s frame is {len(frame.data)} bytes; its shape "
                                  f"{shape} needs {frame.height * frame.width * frame.channels}")
            decoded[frame.camera] = np.frombuffer(frame.data, dtype=np.uint8).reshape(shape)
        else:
            decoded[frame.camera] = bytes(frame.data)
    return decoded


def _depth(value) -> int:
    """Nesting depth of sequences (a numpy array's ndim)."""
    depth = 0
    while isinstance(value, (list, tuple)) and value:
        depth += 1
        value = value[0]
    return depth + int(getattr(value, "ndim", 0))


def _frames(frames, cameras: List[Camera], batch: int, steps: int, batched: bool) -> List["pb.CameraFrame"]:
    """Checks {camera: uint8 [steps, H, W, C] (or [B, steps, H, W, C])} against the policy's cameras and returns
    the CameraFrame messages: for each window, each step oldest first, each camera in the policy's order."""
    expected_cameras = ", ".join(str(camera) for camera in cameras)
    if not cameras:
        if frames:
            raise ValueError(f"this policy takes no camera frames; got frames of {', '.join(map(str, frames))}")
        return []
    if not frames:
        raise ValueError(f"this policy takes camera frames of {expected_cameras}: give frames={{name: uint8 array}}")
    import numpy as np

    names = [camera.name for camera in cameras]
    if sorted(frames) != sorted(names):
        raise ValueError(f"frames must hold the cameras {names} ({expected_cameras}); got {sorted(frames)}")
    arrays = []
    for camera in cameras:
        array = np.asarray(frames[camera.name])
        leading = ((batch,) if batched else ()) + (steps,)
        shape = leading + camera.shape
        if steps == 1 and not batched and array.shape == camera.shape:
            array = array.reshape(shape)
        if array.dtype != np.uint8 or array.shape != shape:
            layout = ("[B, " if batched else "[") + ("To" if steps > 1 else "1") + ", H, W, C]"
            raise ValueError(f"frames[{camera.name!r}] must be uint8 {layout} = {list(shape)}; got {array.dtype} "
                             f"{list(array.shape)}")
        arrays.append(np.ascontiguousarray(array.reshape((batch, steps) + camera.shape)))
    messages = []
    for b in range(batch):
        for t in range(steps):
            for camera, array in zip(cameras, arrays):
                messages.append(pb.CameraFrame(camera=camera.name, height=camera.height, width=camera.width,
                                               channels=camera.channels, encoding=pb.CameraFrame.RAW_UINT8,
                                               data=array[b, t].tobytes()))
    return messages


def _envelope(sequence: int, **body) -> bytes:
    envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sequence=sequence, timestamp_ns=time.monotonic_ns())
    (name, message), = body.items()
    getattr(envelope, name).CopyFrom(message)
    return envelope.SerializeToString()


def _flatten(values, name: str) -> List[float]:
    """Nested sequences (lists, tuples, numpy arrays) of numbers, flattened row-major."""
    flat: List[float] = []

    def walk(value):
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        else:
            try:
                flat.append(float(value))
            except (TypeError, ValueError):
                raise ValueError(f"{name} must hold numbers, got {value!r}") from None

    walk(values)
    return flat


class PolicyClient:
    """A client of `flowpolicy serve` over a DEALER socket. One request at a time; replies are matched by sequence
    number, so a late reply to a request that timed out is dropped instead of being taken for the next one.

    `timeout` (seconds) bounds every request; `PolicyTimeout` is raised when it passes. Error replies raise
    `PolicyServerError` with the server's code and message. Use as a context manager, or call `close()`.

    `curve`: the keys for a server that uses CURVE (`CurveKeys.from_files(...)`); without it the connection is plain.
    A CURVE server that does not have this client's public key on its allow-list never answers (PolicyTimeout).
    """

    def __init__(self, address: str, timeout: float = 10.0, context: Optional[zmq.Context] = None,
                 curve: Optional[CurveKeys] = None):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.address = address
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self._socket)
        self._socket.connect(address)
        self._sequence = 0
        self._episode = 0
        self._reset_next = True
        self._metadata: Optional[PolicyMetadata] = None
        self.last_chunk: Optional[pb.ActionChunk] = None

    # Context manager and closing.
    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close(linger=0)

    # Requests.
    def request(self, timeout: Optional[float] = None, **body) -> pb.Envelope:
        """Sends one message (`metadata_request=...`, `infer=...`, `ping=...`) and returns the reply envelope."""
        self._sequence += 1
        sequence = self._sequence
        self._socket.send(_envelope(sequence, **body))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                raise PolicyTimeout(
                    f"no reply from the policy server at {self.address} within {timeout or self.timeout:g} s "
                    f"(is `flowpolicy serve` running there?)")
            while True:
                try:
                    frame = self._socket.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                reply = pb.Envelope()
                try:
                    reply.ParseFromString(frame)
                except Exception:
                    continue
                if reply.sequence != sequence:
                    continue  # a late reply to an earlier request
                if reply.WhichOneof("body") == "error":
                    raise PolicyServerError(pb.Error.Code.Name(reply.error.code), reply.error.message)
                return reply

    def metadata(self) -> PolicyMetadata:
        """The served policy's dimensions, horizons, control rate and action bounds."""
        reply = self.request(metadata_request=pb.MetadataRequest())
        if reply.WhichOneof("body") != "metadata":
            raise PolicyError(f"expected Metadata, got {reply.WhichOneof('body')}")
        m = reply.metadata
        self._metadata = PolicyMetadata(
            protocol_version=m.protocol_version, task=m.task, observation_steps=m.observation_steps,
            action_steps=m.action_steps, prediction_steps=m.prediction_steps,
            observation_dimensions=m.observation_dimensions, action_dimensions=m.action_dimensions,
            control_rate_hz=m.control_rate_hz, action_low=list(m.action_low), action_high=list(m.action_high),
            max_step_change=list(m.max_step_change), solver=m.solver, solver_steps=m.solver_steps,
            max_batch=m.max_batch, checkpoint=m.checkpoint, method=m.method,
            cameras=[Camera(c.name, c.height, c.width, c.channels) for c in m.cameras])
        return self._metadata

    def ping(self, payload: bytes = b"") -> bytes:
        reply = self.request(ping=pb.Ping(payload=payload))
        if reply.WhichOneof("body") != "pong":
            raise PolicyError(f"expected Pong, got {reply.WhichOneof('body')}")
        return reply.pong.payload

    def reset(self) -> None:
        """Starts a new episode: the server forgets the window it keeps for this client's episode."""
        self._episode += 1
        self._reset_next = True

    def infer(self, observation_window, committed=None, noise_seed: Optional[int] = None,
              timeout: Optional[float] = None, frames: Optional[Dict[str, object]] = None):
        """Samples one action chunk and returns it as Tp rows of Da numbers (task units).

        `observation_window`: To observations of Do numbers, oldest first (a full window), or one observation of
        Do numbers (the server appends it to the window it keeps for this episode). Nested lists, tuples or numpy
        arrays. Row `To - 1` of the result is the action for the newest observation's step. B full windows
        (`[B, To, Do]`) sample B chunks at once, returned as B lists of Tp rows.
        `frames` (a policy with cameras, `metadata().cameras`): {camera name: numpy uint8 [To, H, W, C]}, the frames
        of the window's steps, oldest first, channels last, RGB ([B, To, H, W, C] beside B windows; [H, W, C] or
        [1, H, W, C] beside only the newest observation). Checked against the server's cameras before sending.
        `committed`: optional P rows of Da actions that the chunk must start with (continuation).
        `noise_seed`: reproducible sampling (a noise stream of its own, restarted at each `reset()`).
        """
        spec = self._metadata or self.metadata()
        values = _flatten(observation_window, "observation_window")
        Do, To, Da = spec.observation_dimensions, spec.observation_steps, spec.action_dimensions
        batched = _depth(observation_window) == 3 and len(values) % (To * Do) == 0 and len(values) > 0
        batch = len(values) // (To * Do) if batched else 1
        if batched:
            steps = To
        elif len(values) == To * Do:
            steps = To
        elif len(values) == Do:
            steps = 1
        else:
            raise ValueError(f"observation_window must hold To x Do = {To} x {Do} numbers (a full window) or Do = "
                             f"{Do} (the newest observation); got {len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError("observation_window holds a NaN or infinite number")
        camera_frames = _frames(frames, spec.cameras, batch, steps, batched)
        request = pb.Infer(episode_id=self._episode, reset=self._reset_next, observations=values,
                           observation_steps=steps, batch=batch)
        request.frames.extend(camera_frames)
        if committed is not None:
            flat = _flatten(committed, "committed")
            if len(flat) % Da:
                raise ValueError(f"committed must hold rows of Da = {Da} actions; got {len(flat)} numbers")
            request.committed.extend(flat)
            request.committed_steps = len(flat) // (Da * batch)
        if noise_seed is not None:
            request.noise_seed = noise_seed
        reply = self.request(timeout=timeout, infer=request)
        if reply.WhichOneof("body") != "action_chunk":
            raise PolicyError(f"expected ActionChunk, got {reply.WhichOneof('body')}")
        self._reset_next = False
        chunk = reply.action_chunk
        self.last_chunk = chunk
        Tp = spec.prediction_steps
        actions = list(chunk.actions)
        shape = f"[{chunk.batch}, {chunk.prediction_steps}, {chunk.action_dimensions}] ({len(actions)} numbers)"
        B = batch
        if (chunk.batch, chunk.prediction_steps, chunk.action_dimensions) != (B, Tp, Da) or len(actions) != B * Tp * Da:
            raise PolicyError(f"the ActionChunk is {shape}; the policy's is [{B}, {Tp}, {Da}]")
        if not all(math.isfinite(v) for v in actions):
            raise PolicyError(f"the ActionChunk {shape} holds a NaN or infinite number")
        chunks = [[actions[(b * Tp + i) * Da:(b * Tp + i + 1) * Da] for i in range(Tp)] for b in range(B)]
        return chunks if batched else chunks[0]


class RobotLink:
    """The controller side of a robot's ZeroMQ interface: subscribes to its RobotState stream and publishes
    ActionCommand messages (`flowpolicy robot`, or a physical arm speaking flowpolicy.v1).

    `curve`: the keys for a robot that uses CURVE (it is the server of both its sockets; `CurveKeys.server_public_key`
    is the robot's public key). Without it the connections are plain."""

    def __init__(self, state_address: str, command_address: str, context: Optional[zmq.Context] = None,
                 curve: Optional[CurveKeys] = None):
        self._context = context or zmq.Context.instance()
        self._states = self._context.socket(zmq.SUB)
        self._states.setsockopt(zmq.LINGER, 0)
        self._states.setsockopt(zmq.SUBSCRIBE, b"")
        if curve is not None:
            curve.apply(self._states)
        self._states.connect(state_address)
        self._commands = self._context.socket(zmq.PUB)
        self._commands.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self._commands)
        self._commands.connect(command_address)
        self._sequence = 0
        self._last_command: Optional[bytes] = None
        self._last_answered = -1

    def __enter__(self) -> "RobotLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._states.close(linger=0)
        self._commands.close(linger=0)

    def receive_state(self, after: int = 0, timeout: float = 10.0) -> RobotState:
        """The next state whose sequence number is above `after`. Raises PolicyTimeout.

        A lock-step robot re-publishes the state that waits for its command; seeing the state last answered again
        means the command was lost (a connection still being made), so it is sent again."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._states.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                raise PolicyTimeout(f"no robot state within {timeout:g} s")
            envelope = pb.Envelope()
            envelope.ParseFromString(self._states.recv())
            if envelope.WhichOneof("body") != "robot_state" or envelope.sequence <= after:
                if envelope.sequence == self._last_answered and self._last_command is not None:
                    self._commands.send(self._last_command)
                continue
            s = envelope.robot_state
            return RobotState(sequence=envelope.sequence, timestamp_ns=envelope.timestamp_ns, episode_id=s.episode_id,
                              step=s.step, observation=list(s.observation), episode_start=s.episode_start,
                              done=s.done, success=s.success, progress=s.progress,
                              applied_action=list(s.applied_action), frames=decode_frames(s.frames))

    def act(self, values: Sequence[float], answering: RobotState) -> None:
        self._send(pb.ActionCommand.ACT, values, answering)

    def hold(self, answering: RobotState) -> None:
        self._send(pb.ActionCommand.HOLD, [], answering)

    def _send(self, mode, values, answering: RobotState) -> None:
        self._sequence += 1
        command = pb.ActionCommand(mode=mode, values=_flatten(values, "values"), state_sequence=answering.sequence,
                                   state_timestamp_ns=answering.timestamp_ns, episode_id=answering.episode_id,
                                   step=answering.step)
        self._last_command = _envelope(self._sequence, action_command=command)
        self._last_answered = answering.sequence
        self._commands.send(self._last_command)
