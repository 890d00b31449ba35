# Background processes for the test scripts (sourced): `start LOG PATTERN COMMAND...` runs COMMAND in the background
# with its output in LOG and waits (at most 60 s) for a line matching PATTERN; everything started is stopped, with
# its children, and the work folder removed when the script exits.
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start() {
    local log="$1" pattern="$2"
    shift 2
    "$@" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 600); do
        grep -qE "$pattern" "$log" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    printf 'error: %s did not start:\n' "$*" >&2
    cat "$log" >&2
    exit 1
}
