#!/usr/bin/env bash
# The test command: installs what is missing, builds in release (numeric code is slow in debug), runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export FLOWPOLICY_PYTHON="${FLOWPOLICY_CACHE:-$HOME/.cache/flowpolicy}/venv/bin/python"
printf '==> building and running the tests (release)\n' >&2
swift build -c release --build-tests
swift test -c release --skip-build "$@"
