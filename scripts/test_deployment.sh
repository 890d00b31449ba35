#!/usr/bin/env bash
# The robot computer, as a new user sets it up: the flowpolicy-runtime binary (the Swift standard library linked in)
# and the shipped checkpoints copied into an empty folder, an empty asset cache, no tasks/ folder, no Swift toolchain
# on PATH. Every checkpoint is served, and run against `flowpolicy robot` (the simulator, from the repository, standing
# in for the arm) on loopback: in this process, and through the server. Run by scripts/test.sh after the Swift tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repository="$PWD"
flowpolicy="$repository/.build/release/flowpolicy"
# The simulator standing in for the arm comes from the release build, which this script does not make.
if [ ! -x "$flowpolicy" ]; then
    printf 'error: %s is missing: run swift build -c release first\n' "$flowpolicy" >&2
    exit 1
fi

printf '==> building flowpolicy-runtime with the Swift standard library linked in (.build-static)\n' >&2
swift build -c release --product flowpolicy-runtime --static-swift-stdlib --scratch-path .build-static
binary=".build-static/release/flowpolicy-runtime"
# Output captured before grep: in `ldd | grep` a failing ldd would pass for "no unwanted library".
libraries="$(ldd "$binary")" || { printf 'error: ldd %s failed (see above)\n' "$binary" >&2; exit 1; }
if grep -E 'libmujoco|libswift|libFoundation|libdispatch' <<<"$libraries"; then
    printf 'error: %s links the libraries above; it must need only OpenBLAS and ZeroMQ\n' "$binary" >&2
    exit 1
fi

source scripts/background.sh
computer="$work/robot-computer"
mkdir -p "$computer/home" "$computer/empty-cache"
cp "$binary" "$computer/"
tasks=(pusht pusht_image franka_kitchen robomimic_lift robomimic_can robomimic_square)
for task in "${tasks[@]}"; do cp "tasks/$task/policy.safetensors" "$computer/$task.safetensors"; done

# The robot computer's commands: in its folder, an empty environment but for PATH (no Swift), HOME and a cache with
# nothing in it. A command line (env), not a shell function, so that `start` can run it under setsid.
on_computer=(env -i -C "$computer" PATH=/usr/bin:/bin HOME="$computer/home" FLOWPOLICY_CACHE="$computer/empty-cache"
    FLOWPOLICY_TASKS="$computer/no-tasks" ./flowpolicy-runtime)

# `run` must have acted and seen the episode end; prints its one-line result.
check_run() {
    local report="$1" name="$2"
    python3 - "$report" "$name" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
loop = report["loop"]
assert loop["actCommands"] > 0 and loop["episodesEnded"] >= 1, f"{sys.argv[2]}: {loop}"
print(f"{sys.argv[2]}: {loop['actCommands']} ACT, {loop['holdCommands']} HOLD, "
      f"{loop['episodesEnded']} episode(s) ended, final state {loop['finalState']}")
EOF
}

# Captured, then grepped: in `inspect | grep -q` grep's early exit can fail inspect with SIGPIPE (pipefail), and a
# failing inspect would be hidden.
if ! inspected="$("${on_computer[@]}" inspect pusht.safetensors)"; then
    printf 'error: flowpolicy-runtime inspect pusht.safetensors failed on the robot computer (see above)\n' >&2
    exit 1
fi
if ! grep -q 'deployment  10 Hz' <<<"$inspected"; then
    printf 'error: inspect pusht.safetensors shows no deployment contract (deployment  10 Hz):\n%s\n' "$inspected" >&2
    exit 1
fi
for task in "${tasks[@]}"; do
    printf '==> %s: serve and run on the robot computer, against flowpolicy robot --task %s\n' "$task" "$task" >&2
    start "$work/$task-robot.log" 'commands tcp://' \
        "$flowpolicy" robot --task "$task" --lock-step --episodes 2 --bind 'tcp://127.0.0.1:*'
    state="$(grep -oE 'state tcp://[0-9.]+:[0-9]+' "$work/$task-robot.log" | head -1 | cut -c7-)"
    commands="$(grep -oE 'commands tcp://[0-9.]+:[0-9]+' "$work/$task-robot.log" | head -1 | cut -c10-)"
    "${on_computer[@]}" run --checkpoint "$task.safetensors" --robot "$state" --robot-commands "$commands" --lock-step \
        --episodes 1 --control none --json "$work/$task-run.json" >"$work/$task-run.log" 2>&1 \
        || { cat "$work/$task-run.log" >&2; exit 1; }
    check_run "$work/$task-run.json" "$task, in process"
    start "$work/$task-serve.log" ' on tcp://' "${on_computer[@]}" serve --checkpoint "$task.safetensors" \
        --bind 'tcp://127.0.0.1:*'
    server="$(grep -oE 'on tcp://[0-9.]+:[0-9]+' "$work/$task-serve.log" | head -1 | cut -c4-)"
    "${on_computer[@]}" run --policy "$server" --robot "$state" --robot-commands "$commands" --lock-step --episodes 1 \
        --control none --json "$work/$task-remote.json" >"$work/$task-remote.log" 2>&1 \
        || { cat "$work/$task-remote.log" >&2; exit 1; }
    check_run "$work/$task-remote.json" "$task, served"
done
printf 'flowpolicy-runtime: %s bytes; ldd:\n' "$(stat -c %s "$binary")"
sed 's/^/    /' <<<"$libraries"
