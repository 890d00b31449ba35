"""A bounded storm against `flowpolicy serve` on loopback: a well-formed client's round trips before and during a
flood of malformed frames, empty frames and half-sent large frames, with the server's memory watched.

    ~/.cache/flowpolicy/venv/bin/python tools/storm.py [--frames 100000] [--json storm.json]

The server serves the shipped Push-T policy (Euler K = 10). The storm, all at once:
- malformed: 2 DEALER sockets send random bytes (1 to 200 per frame) and 1 sends empty frames, as fast as the
  server takes them, until `--frames` have gone (each in a process of its own, on one core, at the lowest priority:
  standing in for attackers on other machines);
- half-sent large frames: 32 raw TCP connections each speak ZMTP 3.0's greeting, then declare a 62 MB frame and send
  the first 4 MB of it, and stall (what took the server to 2 GB before it limited message sizes).
A well-formed client (PolicyClient) times 300 round trips before the storm and 300 during it (from half a second
into it). Figures: frames sent,
the server's peak resident memory (VmHWM), p50 / p99 round trips before and during, whether the server survived.
"""

import argparse
import json
import multiprocessing
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "clients", "python"))
from flowpolicy_client import PolicyClient  # noqa: E402

REPOSITORY = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered) + 0.5)) - 1))]


def round_trips(endpoint, count):
    window = [[150.0 + i for i in range(20)], [151.0 + i for i in range(20)]]
    times = []
    with PolicyClient(endpoint, timeout=10.0) as client:
        client.metadata()
        for _ in range(count):
            begin = time.perf_counter()
            client.infer(window)
            times.append((time.perf_counter() - begin) * 1000)
    return times


def flood(endpoint, empty, seed, stop, total, core):
    """Sends malformed (or empty) frames from a DEALER until `stop` is set, each send waiting for room in the
    server's queue (so every frame is delivered). It runs in a process of its own, on `core` only and at the
    lowest priority: an attacker on another machine loads this one only through the server's work, so here it must
    not take the server's and the measuring client's share of the cores either."""
    os.nice(19)
    os.sched_setaffinity(0, {core})
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.SNDHWM, 1000)
    dealer.connect(endpoint)
    generator = random.Random(seed)
    payloads = [b"" if empty else generator.randbytes(generator.randint(1, 200)) for _ in range(1000)]
    sent = 0
    while not stop.is_set():
        try:
            dealer.send(payloads[sent % len(payloads)], zmq.NOBLOCK)
            sent += 1
            if sent % 1000 == 0:
                with total.get_lock():
                    total.value += 1000
        except zmq.Again:
            time.sleep(0.0002)  # the server's queue for this peer is full: it reads at its own pace
        while dealer.poll(0):
            dealer.recv()  # the error replies
    dealer.close()
    context.term()
    with total.get_lock():
        total.value += sent % 1000


def half_sent_frame(port, declared=62 << 20, sent=4 << 20):
    """A raw TCP connection: ZMTP 3.0 greeting (NULL mechanism), READY as a DEALER, then a long frame of `declared`
    bytes of which only `sent` follow; then it stalls until closed."""
    connection = socket.create_connection(("127.0.0.1", port))
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    connection.sendall(greeting)
    ready_body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    connection.sendall(b"\x04" + bytes([len(ready_body)]) + ready_body)
    try:
        connection.sendall(b"\x02" + struct.pack(">Q", declared))
        chunk = b"\x00" * (1 << 20)
        for _ in range(sent >> 20):
            connection.sendall(chunk)
    except OSError:
        pass  # the server hung up on the oversized frame
    return connection


def check_floods(floods, running):
    """Raises when a flooder failed: it ended with an error, or (`running` False: told to stop and joined) it has
    not ended with exit code 0. Its traceback, if any, is on stderr above."""
    for index, process in enumerate(floods):
        if process.exitcode not in ((None, 0) if running else (0,)):
            state = "did not stop" if process.exitcode is None else f"exit code {process.exitcode}"
            raise RuntimeError(f"flooder {index} (pid {process.pid}) failed: {state}; the figures would be wrong")


def resident_peak_kilobytes(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000, help="malformed frames in all")
    parser.add_argument("--binary", default=os.path.join(REPOSITORY, ".build/release/flowpolicy"))
    parser.add_argument("--json", help="write the figures here")
    arguments = parser.parse_args()

    server = subprocess.Popen([arguments.binary, "serve", "--checkpoint",
                               os.path.join(REPOSITORY, "tasks/pusht/policy.safetensors"),
                               "--bind", "tcp://127.0.0.1:*"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    floods, connections = [], []
    # Whatever happens (an error, Ctrl-C), no flooder, connection or server outlives the storm.
    try:
        line = server.stdout.readline()
        match = re.search(r"on (tcp://\S+)", line)
        if not match:
            raise RuntimeError(f"flowpolicy serve did not start: {line.strip() or 'no output'}")
        endpoint = match.group(1)
        port = int(endpoint.rsplit(":", 1)[1])
        before = round_trips(endpoint, 300)
        rss_before = resident_peak_kilobytes(server.pid)
        # The flooders' core: the last one this process may run on (taskset, cgroups and containers need not give
        # it cores 0 ..< cpu_count).
        core = max(os.sched_getaffinity(0))
        stop, malformed, empty = multiprocessing.Event(), multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
        floods += [multiprocessing.Process(target=flood, args=(endpoint, False, i, stop, malformed, core))
                   for i in range(2)]
        floods.append(multiprocessing.Process(target=flood, args=(endpoint, True, 100, stop, empty, core)))
        storm_started = time.monotonic()
        for process in floods:
            process.start()
        for _ in range(32):
            connections.append(half_sent_frame(port))
        time.sleep(0.5)  # the storm is on
        during = round_trips(endpoint, 300)
        # Go on until the frames have been sent (at most a minute).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and malformed.value + empty.value < arguments.frames:
            check_floods(floods, running=True)
            time.sleep(0.2)
        stop.set()
        for process in floods:
            process.join(timeout=30)
        check_floods(floods, running=False)
        storm_seconds = time.monotonic() - storm_started
        alive = server.poll() is None
        rss_peak = resident_peak_kilobytes(server.pid) if alive else None
        after = round_trips(endpoint, 20) if alive else []
        figures = {
            "malformed_frames": malformed.value,
            "empty_frames": empty.value,
            "half_sent_large_frames": 32, "storm_seconds": storm_seconds, "server_alive": alive,
            "server_peak_rss_mb_before": rss_before / 1024,
            "server_peak_rss_mb": None if rss_peak is None else rss_peak / 1024,
            "round_trip_ms_before": {"p50": statistics.median(before), "p99": percentile(before, 0.99)},
            "round_trip_ms_during": {"p50": statistics.median(during), "p99": percentile(during, 0.99)},
            "round_trips_after": len(after),
        }
        figures["p99_ratio"] = figures["round_trip_ms_during"]["p99"] / figures["round_trip_ms_before"]["p99"]
        print(json.dumps(figures, indent=2))
        if arguments.json:
            with open(arguments.json, "w") as file:
                json.dump(figures, file, indent=2)
    finally:
        for process in floods:
            if process.pid is not None:  # started
                process.kill()  # a no-op on one that has ended
                process.join()
        for connection in connections:
            connection.close()
        server.terminate()
        try:
            output, _ = server.communicate(timeout=10)
            print(output.strip().splitlines()[-1] if output.strip() else "")
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
