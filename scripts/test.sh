#!/usr/bin/env bash
# The test command: installs what is missing, builds in release (numeric code is slow in debug), runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export FLOWPOLICY_PYTHON="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/venv/bin/python"
# The rendering tests draw the MuJoCo scenes with their visual meshes and textures, fetched only when asked for.
"$FLOWPOLICY_PYTHON" scripts/fetch_assets.py --render >&2
printf '==> building and running the tests (release)\n' >&2
swift build -c release --build-tests
swift test -c release --skip-build "$@"
[ $# -eq 0 ] || exit 0  # a filtered run is Swift only

# The Python client against the Swift server and simulated robot over TCP loopback (ports chosen by the system).
printf '==> Python client tests (clients/python) against flowpolicy serve and flowpolicy robot\n' >&2
python="$FLOWPOLICY_PYTHON"
flowpolicy=".build/release/flowpolicy"
source scripts/background.sh
# A policy of Push-T's dimensions to serve (two training steps: the tests check the protocol, not the policy).
"$python" clients/python/tests/make_policy_dataset.py "$work/data.safetensors"
"$flowpolicy" train --dataset "$work/data.safetensors" --out "$work/policy.safetensors" --steps 2 --hidden 32 \
    --blocks 1 --warmup 1 --threads 1 >"$work/train.log" 2>&1 || { cat "$work/train.log" >&2; exit 1; }
start "$work/serve.log" ' on tcp://' \
    "$flowpolicy" serve --checkpoint "$work/policy.safetensors" --bind 'tcp://127.0.0.1:*'
server="$(grep -oE 'on tcp://[0-9.]+:[0-9]+' "$work/serve.log" | head -1 | cut -c4-)"
start "$work/robot.log" 'commands tcp://' \
    "$flowpolicy" robot --task pusht --lock-step --episodes 1 --bind 'tcp://127.0.0.1:*'
robot_state="$(grep -oE 'state tcp://[0-9.]+:[0-9]+' "$work/robot.log" | head -1 | cut -c7-)"
robot_commands="$(grep -oE 'commands tcp://[0-9.]+:[0-9]+' "$work/robot.log" | head -1 | cut -c10-)"
# The camera round trip serves the shipped Push-T image policy.
FLOWPOLICY_CAMERA_CHECKPOINT=tasks/pusht_image/policy.safetensors \
PYTHONPATH="clients/python${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest clients/python/tests -q -p no:cacheprovider \
    --server "$server" --robot-state "$robot_state" --robot-commands "$robot_commands"

# The robot computer: the static flowpolicy-runtime and the shipped checkpoints, nothing else.
scripts/test_deployment.sh

# Evaluation campaigns on a real one-node Slurm cluster (installs slurm-wlm and munge if missing).
scripts/test_slurm.sh

# The PyTorch trainer under torchrun against flowpolicy (torch in its own environment, installed on first use).
scripts/test_torch.sh
