# Background processes for the test scripts (sourced): `start LOG PATTERN COMMAND...` runs COMMAND (an executable,
# not a shell function) in the background with its output in LOG and waits (at most 60 s) for a line matching
# PATTERN; everything started is stopped, with its children, and the work folder removed when the script exits.
work="$(mktemp -d)"
groups=()
cleanup() {
    # Each process leads its own process group (setsid), so killing the group stops its children too, without procps.
    for group in "${groups[@]}"; do kill -- "-$group" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# Interrupted or terminated: exit, so that the EXIT trap still cleans up (bash skips it on an untrapped SIGTERM).
trap 'exit 130' INT
trap 'exit 143' TERM HUP

start() {
    local log="$1" pattern="$2"
    shift 2
    if [[ "$1" == */* && ! -x "$1" ]]; then
        printf 'error: %s is missing: run swift build -c release first\n' "$1" >&2
        exit 1
    fi
    # Started from a script (no job control), the background process is not a group leader, so setsid does not
    # fork: $! is the new session's and process group's id.
    setsid "$@" >"$log" 2>&1 </dev/null &
    groups+=($!)
    for _ in $(seq 600); do
        grep -qE "$pattern" "$log" && return 0
        kill -0 "${groups[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    printf 'error: %s did not start (no line matching %s); its output:\n' "$*" "$pattern" >&2
    cat "$log" >&2
    exit 1
}
