#!/usr/bin/env python3
"""Drives a robot (`flowpolicy robot`, or an arm speaking flowpolicy.v1) with a policy server (`flowpolicy serve`):
receding horizon, Ta actions of every chunk, one command per robot state.

    flowpolicy serve --checkpoint policy.safetensors --bind tcp://127.0.0.1:5555 &
    flowpolicy robot --task pusht --lock-step --bind tcp://127.0.0.1:5556 --episodes 3 &
    python examples/drive_robot.py --server tcp://127.0.0.1:5555 --robot tcp://127.0.0.1:5556 --episodes 3
"""

import argparse
from collections import deque

from flowpolicy_client import PolicyClient, RobotLink


def next_port(address: str) -> str:
    host, port = address.rsplit(":", 1)
    return f"{host}:{int(port) + 1}"


def drive(server: str, robot_state: str, robot_commands: str, episodes: int, timeout: float = 30.0):
    """Runs `episodes` episodes and returns [(episode id, steps, success, progress)]."""
    outcomes = []
    with PolicyClient(server, timeout=timeout) as client, RobotLink(robot_state, robot_commands) as robot:
        spec = client.metadata()
        first, Ta = spec.first_action_index, spec.action_steps
        window = deque(maxlen=spec.observation_steps)
        plan = deque()
        state = robot.receive_state(timeout=timeout)
        while len(outcomes) < episodes:
            if state.episode_start and state.step == 0:
                client.reset()
                window.clear()
                plan.clear()
            if state.done:
                outcomes.append((state.episode_id, state.step, state.success, state.progress))
                robot.hold(answering=state)  # answering the final state starts the next episode
            else:
                # The window starts filled with the first observation, as in training.
                while len(window) < spec.observation_steps:
                    window.append(state.observation)
                if not plan:
                    chunk = client.infer(list(window))
                    plan.extend(chunk[first:first + Ta])
                robot.act(plan.popleft(), answering=state)
            if len(outcomes) == episodes:
                break
            state = robot.receive_state(after=state.sequence, timeout=timeout)
            window.append(state.observation)
    return outcomes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="policy server endpoint (flowpolicy serve)")
    parser.add_argument("--robot", required=True, help="robot state endpoint (flowpolicy robot --bind)")
    parser.add_argument("--robot-commands", help="robot command endpoint (default: the next port)")
    parser.add_argument("--episodes", type=int, default=1)
    args = parser.parse_args()
    commands = args.robot_commands or next_port(args.robot)
    for episode, steps, success, progress in drive(args.server, args.robot, commands, args.episodes):
        print(f"episode {episode}: {steps} steps, {'success' if success else 'no success'}, progress {progress:.3f}")


if __name__ == "__main__":
    main()
