#!/usr/bin/env bash
# Installs what flowpolicy needs and is missing, and says what it does. Safe to run again: it only acts on what is
# missing. Needs Swift 6 on the PATH; installs Debian packages with apt (as root, or through sudo) and Python
# packages into a virtual environment under the cache folder.
set -euo pipefail

cache="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}"
say() { printf '==> %s\n' "$*" >&2; }

if ! command -v swift >/dev/null 2>&1; then
    say "swift is not on the PATH: install Swift 6 (https://www.swift.org/install/linux/) and run this again"
    exit 1
fi

# System libraries (Debian packages): OpenBLAS, MuJoCo 2.2.2, ZeroMQ; Python for the cross-checks; ffmpeg (eval
# --video), Chromium (the report page's test) and Mesa's EGL (MuJoCo's offscreen rendering).
packages=(libopenblas-dev libmujoco-dev libzmq3-dev python3 python3-venv ffmpeg chromium
    libegl-dev libegl-mesa0 libgl1-mesa-dri)
missing=()
for package in "${packages[@]}"; do
    # python3-venv is only needed where the interpreter lacks the venv module (pyenv and similar builds have it).
    if [ "$package" = python3-venv ] && command -v python3 >/dev/null 2>&1 \
        && python3 -c 'import venv, ensurepip' 2>/dev/null; then
        continue
    fi
    if [ "$package" = python3 ] && command -v python3 >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "system packages present: ${packages[*]}"
else
    say "installing system packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python virtual environment for cross-checks (the tests read checkpoints back with the safetensors package), and the
# Python client (clients/python: pyzmq and protobuf) with pytest for its tests.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$cache/venv"
# Dataset import and export (clients/python/flowpolicy_data): pyarrow (LeRobot parquet), h5py (robomimic HDF5), zarr 2
# (Diffusion Policy's replay buffers are zarr format 2; zarr 2.18.7 is the last 2.x, numcodecs 0.15 its codecs),
# PyYAML (task.yaml), Pillow and PyAV (LeRobot's image and video features: PNG/JPEG and mp4); matplotlib (flowpolicy
# report's plots); onnx and onnxruntime (tools/bench_onnx_reference.py: ONNX Runtime's speed beside flowpolicy's, and
# its chunks checked against flowpolicy's).
requirements=(safetensors numpy pyarrow==26.0.1 h5py==3.16.0 zarr==2.18.7 numcodecs==0.15.2 pyyaml==6.0.4
    pillow==13.0.0 av==18.1.0 matplotlib==3.11.2 onnx==1.23.2 onnxruntime==1.32.0)
if [ ! -x "$venv/bin/python" ]; then
    say "creating the Python environment $venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
fi
# Installed versions compared to the pins, not only imported: a venv made by an older setup.sh keeps its old versions
# otherwise. Prints what is missing or differs (nothing when all match).
differing="$("$venv/bin/python" - "${requirements[@]}" <<'PYTHON'
import importlib.metadata as metadata, sys
for requirement in sys.argv[1:]:
    name, _, pin = requirement.partition("==")
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        print(f"{name} missing")
        continue
    if pin and version != pin:
        print(f"{name} {version} installed, {pin} pinned")
PYTHON
)" || differing="the version check failed"
if [ -z "$differing" ]; then
    say "Python packages present in $venv: ${requirements[*]}"
else
    say "installing Python packages into $venv (${differing//$'\n'/; }): ${requirements[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
fi
client="$root/clients/python"
if "$venv/bin/python" - "$client" 2>/dev/null <<'PYTHON'
import os, sys
import google.protobuf, pytest, zmq, flowpolicy_client
sys.exit(0 if os.path.realpath(flowpolicy_client.__file__).startswith(os.path.realpath(sys.argv[1]) + os.sep) else 1)
PYTHON
then
    say "Python client present in $venv (clients/python, editable)"
else
    say "installing the Python client (clients/python: pyzmq, protobuf) and pytest into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$client[test]"
fi

# Third-party task assets (tasks/*/assets.json: Gymnasium-Robotics' Franka Kitchen scene, robosuite's models for the
# Robomimic tasks) into the asset cache, verified by file list and SHA-256; downloads only what is missing or altered,
# so it works offline once fetched.
"$venv/bin/python" "$root/scripts/fetch_assets.py"
