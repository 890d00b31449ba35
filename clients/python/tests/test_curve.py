"""The client's CURVE options and key files, against pyzmq CURVE servers in the same test (no Swift process needed).

The servers authenticate with pyzmq's own ZAP handler (zmq.auth.thread.ThreadAuthenticator) and an allow-list
folder of public key files, as a flowpolicy server does with its ZAPHandler."""

import os
import re
import shutil
import threading
from types import SimpleNamespace

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from flowpolicy_client import (CurveKeys, KeyFileError, PolicyClient, PolicyTimeout, RobotLink, pb, read_key_pair,
                               read_public_key)

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")


def create_pair(folder, name):
    """A key pair as `flowpolicy keys` writes it: pyzmq's certificate files, the secret one private (0600)."""
    public_file, secret_file = zmq.auth.create_certificates(str(folder), name)
    os.chmod(secret_file, 0o600)
    return public_file, secret_file


def server_socket(context, kind, secret_file):
    socket = context.socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    public_key, secret_key = zmq.auth.load_certificate(secret_file)
    socket.curve_server = True
    socket.curve_publickey = public_key
    socket.curve_secretkey = secret_key
    return socket


@pytest.fixture
def keys(tmp_path):
    """Key pairs for a server, an allowed client and a stranger; the allow-list folder holds the client's key."""
    folder, allowed = tmp_path / "keys", tmp_path / "allowed"
    folder.mkdir()
    allowed.mkdir()
    pairs = {name: create_pair(folder, name) for name in ("server", "client", "stranger")}
    shutil.copy(pairs["client"][0], allowed)
    return SimpleNamespace(allowed=str(allowed), **{name: SimpleNamespace(public=public, secret=secret)
                                                   for name, (public, secret) in pairs.items()})


class Serving:
    """Runs `serve(stop)` on a thread until the block ends; the server's context and authenticator with it."""

    def __init__(self, allowed_folder):
        self.context = zmq.Context()
        self.authenticator = ThreadAuthenticator(self.context)
        self.authenticator.start()
        self.authenticator.configure_curve(domain="*", location=allowed_folder)
        self.sockets = []
        self._stop = threading.Event()
        self._thread = None

    def run(self, serve):
        self._thread = threading.Thread(target=serve, args=(self._stop,), daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        for socket in self.sockets:
            socket.close(linger=0)
        self.authenticator.stop()
        self.context.term()


@pytest.fixture
def policy_server(keys):
    """A CURVE ROUTER answering Ping with Pong, as `flowpolicy serve` does."""
    with Serving(keys.allowed) as serving:
        router = server_socket(serving.context, zmq.ROUTER, keys.server.secret)
        serving.sockets.append(router)
        port = router.bind_to_random_port("tcp://127.0.0.1")

        def serve(stop):
            while not stop.is_set():
                if not router.poll(20):
                    continue
                routing_id, frame = router.recv_multipart()
                request = pb.Envelope()
                request.ParseFromString(frame)
                reply = pb.Envelope(protocol_version=1, sequence=request.sequence,
                                    pong=pb.Pong(payload=request.ping.payload))
                router.send_multipart([routing_id, reply.SerializeToString()])

        serving.run(serve)
        yield f"tcp://127.0.0.1:{port}"


def test_allowed_client_is_answered(keys, policy_server):
    curve = CurveKeys.from_files(server_key_file=keys.server.public, secret_key_file=keys.client.secret)
    assert curve.public_key == zmq.auth.load_certificate(keys.client.public)[0]
    assert curve.secret_key.decode() not in repr(curve)
    with PolicyClient(policy_server, timeout=10, curve=curve) as client:
        assert client.ping(b"over curve") == b"over curve"


@pytest.mark.parametrize("who", ["stranger", "plain"])
def test_client_not_allowed_gets_nothing(keys, policy_server, who):
    curve = None if who == "plain" else CurveKeys.from_files(keys.server.public, keys.stranger.secret)
    with PolicyClient(policy_server, timeout=0.3, curve=curve) as client:
        with pytest.raises(PolicyTimeout):
            client.ping(b"let me in")
    # The server still answers the allowed client.
    with PolicyClient(policy_server, timeout=10, curve=CurveKeys.from_files(keys.server.public,
                                                                           keys.client.secret)) as client:
        assert client.ping(b"still serving") == b"still serving"


def test_robot_link_over_curve(keys):
    """The robot is the CURVE server of its state PUB and command SUB; the controller connects with its keys."""
    with Serving(keys.allowed) as serving:
        states = server_socket(serving.context, zmq.PUB, keys.server.secret)
        commands = server_socket(serving.context, zmq.SUB, keys.server.secret)
        commands.setsockopt(zmq.SUBSCRIBE, b"")
        serving.sockets += [states, commands]
        state_port = states.bind_to_random_port("tcp://127.0.0.1")
        command_port = commands.bind_to_random_port("tcp://127.0.0.1")
        received = []

        def serve(stop):
            # A lock-step robot: publishes its state until a command answers it.
            state = pb.Envelope(protocol_version=1, sequence=1,
                                robot_state=pb.RobotState(episode_id=1, step=0, observation=[1.0, 2.0]))
            while not stop.is_set() and not received:
                states.send(state.SerializeToString())
                if commands.poll(20):
                    command = pb.Envelope()
                    command.ParseFromString(commands.recv())
                    received.append(command)

        serving.run(serve)
        curve = CurveKeys.from_files(keys.server.public, keys.client.secret)
        with RobotLink(f"tcp://127.0.0.1:{state_port}", f"tcp://127.0.0.1:{command_port}", curve=curve) as link:
            state = link.receive_state(timeout=10)
            assert state.observation == [1.0, 2.0]
            for _ in range(500):  # The command PUB connects in the background; resend until the robot has it.
                link.act([0.5], answering=state)
                if received:
                    break
                threading.Event().wait(0.02)
        assert received and received[0].action_command.values == [0.5]


def test_key_files_are_read_and_checked(keys, tmp_path):
    public, secret = read_key_pair(keys.client.secret)
    assert read_public_key(keys.client.public) == public
    assert zmq.curve_public(secret) == public

    # As `flowpolicy keys` writes them.
    flowpolicy_public = tmp_path / "robot.key"
    flowpolicy_public.write_text('#   ****  Generated by flowpolicy  ****\n#   ZeroMQ CURVE Public Certificate\n\n'
                                 f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
    assert read_public_key(flowpolicy_public) == public

    os.chmod(keys.client.secret, 0o640)
    with pytest.raises(KeyFileError, match=re.escape(f"chmod 600 {keys.client.secret}")):
        read_key_pair(keys.client.secret)
    os.chmod(keys.client.secret, 0o600)

    with pytest.raises(KeyFileError, match="holds a secret key"):
        read_public_key(keys.client.secret)
    short = tmp_path / "short.key"
    short.write_text(f'curve\n    public-key = "{public.decode()[:-1]}"\n')
    with pytest.raises(KeyFileError, match=re.escape(f"{short}: a public key is 40 characters of Z85") + ".*got 39"):
        read_public_key(short)
    odd = tmp_path / "odd.key"
    odd.write_text(f'curve\n    public-key = "~{public.decode()[1:]}"\n')
    with pytest.raises(KeyFileError, match=re.escape(f"{odd}: ") + ".*found '~' at character 1"):
        read_public_key(odd)
    empty = tmp_path / "empty.key"
    empty.write_text("# nothing here\n")
    with pytest.raises(KeyFileError, match=re.escape(f"{empty}: no public-key line")):
        read_public_key(empty)
    with pytest.raises(KeyFileError, match="cannot read"):
        read_public_key(tmp_path / "missing.key")
