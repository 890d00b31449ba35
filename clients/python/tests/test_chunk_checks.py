"""The client checks what a server sends: an ActionChunk of the wrong shape, or with a NaN, is an error naming both
shapes, never actions. Against a pyzmq ROUTER in the same test that plays a broken server."""

import threading

import pytest
import zmq

from flowpolicy_client import PolicyClient, PolicyError, pb


def broken_server(context, chunk_steps, value):
    """A ROUTER that answers Metadata (Push-T's shapes) and every Infer with `chunk_steps` x 2 copies of `value`."""
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve():
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        while not stop.is_set():
            if not poller.poll(20):
                continue
            *routing, frame = socket.recv_multipart()
            request = pb.Envelope.FromString(frame)
            reply = pb.Envelope(protocol_version=1, sequence=request.sequence)
            if request.WhichOneof("body") == "metadata_request":
                reply.metadata.CopyFrom(pb.Metadata(
                    protocol_version=1, task="pusht", observation_steps=2, action_steps=8, prediction_steps=16,
                    observation_dimensions=20, action_dimensions=2, solver="euler", solver_steps=4, max_batch=1))
            else:
                reply.action_chunk.CopyFrom(pb.ActionChunk(
                    batch=1, prediction_steps=chunk_steps, action_dimensions=2, actions=[value] * (chunk_steps * 2)))
            socket.send_multipart(routing + [reply.SerializeToString()])
        socket.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"tcp://127.0.0.1:{port}", stop, thread


@pytest.mark.parametrize("chunk_steps, value, message", [
    (8, 256.0, "is [1, 8, 2] (16 numbers); the policy's is [1, 16, 2]"),
    (16, float("nan"), "holds a NaN or infinite number"),
])
def test_a_chunk_of_the_wrong_shape_or_with_a_nan_is_an_error(chunk_steps, value, message):
    context = zmq.Context()
    endpoint, stop, thread = broken_server(context, chunk_steps, value)
    try:
        with PolicyClient(endpoint, timeout=5.0, context=context) as client:
            with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                               .replace(")", r"\)")):
                client.infer([[100.0] * 20, [100.0] * 20])
    finally:
        stop.set()
        thread.join()
        context.term()
