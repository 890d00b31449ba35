"""The command line refuses bad numbers and bad paths with one clear line, and never traps.

Commands and options come from `--experimental-dump-help` (swift-argument-parser's tool info) of both executables,
flowpolicy and flowpolicy-runtime, so a new command or option is covered without touching this file. An option is
numeric when a non-number is refused naming it (`--steps abc`) and a number is not, and an integer when `1.5` is
refused. Every numeric option is then given 0, -1, nan and a huge value (1e300, or 99999999999999999999 for an
integer) on the smallest command line the command takes. The process must not die of a signal (a Swift trap is
SIGILL or SIGTRAP) and must end quickly, either at once with status 0 or with an `error:` / `Error:` line that names
the option when the value is wrong. The other arguments make every command fail fast once the numbers pass (a
checkpoint or dataset that does not exist), so no case starts real work. Paths: every file a command writes (`--out`,
`--json`) is refused when it is a folder, and every file it reads (`--checkpoint`, `--dataset`, ...) when it is a
folder or missing, before any work starts.

The binaries are taken from FLOWPOLICY_BIN (default .build/release, relative to the repository), built beforehand.
No server or robot is needed: the options of conftest.py are not used."""

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]
BIN = REPOSITORY / os.environ.get("FLOWPOLICY_BIN", ".build/release")
EXECUTABLES = ["flowpolicy", "flowpolicy-runtime"]
TIMEOUT = 10  # seconds; a case normally ends in a few tens of milliseconds
WORKERS = 2
TRAPS = {132, 133, 134, 139}  # SIGILL, SIGTRAP, SIGABRT, SIGSEGV as a shell reports them

# Where 0 (or -1) is a legitimate value; every other numeric option must refuse them, naming itself.
ZERO_ALLOWED = {"--seed", "--policy-seed", "--spin-us", "--warmup", "--weight-decay", "--head-rank", "--lambda-fm",
                "--lambda-prox", "--observation-noise", "--ensemble-decay", "--valid-ratio", "--observation",
                "--disturbance"}  # --disturbance 0: a push before the first action
NEGATIVE_ALLOWED = {"--observation"}  # an observation window is a list of any finite numbers
# Values for required options that are not paths (paths get one that does not exist).
REQUIRED_VALUES = {"--task": "pusht", "--observation": "0", "--name": "key", "--robot": "tcp://127.0.0.1:9"}
NUMERIC_REQUIRED_VALUES = {("collect", "--episodes"): "1"}
# Options that make a command fail fast when every number is fine, the first one a command has: the command's own
# validate() checks them after its numbers. A bad --task is the last resort (robot, bench env have no input file).
FAIL_FAST = ["--checkpoint", "--dataset", "--python"]
# Files a command reads, refused when missing or a folder.
INPUT_FILES = {"--checkpoint", "--dataset", "--python", "--secret-key", "--robot-key", "--policy-key", "--remote-key"}


def run(binary, args, cwd):
    """(returncode, stderr); returncode None when the process did not end within TIMEOUT (it is then killed)."""
    try:
        process = subprocess.run([str(BIN / binary)] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr or ""
        return None, stderr
    return process.returncode, process.stderr


def error_line(stderr):
    """The first `error:` or `Error:` line, or None."""
    return next((line for line in stderr.splitlines() if line.startswith(("error:", "Error:"))), None)


def names(line, option):
    """Whether an error line blames `option` (or a positional `<path>`): our messages (`--steps must be ...`,
    `--out: ...`) or the parser's (`The value 'x' is invalid for '--steps <steps>'`)."""
    return re.search(rf"(^|[\s'(]){re.escape(option)}([\s:',]|$)", line) is not None


class Command:
    """A (sub)command from the tool info, with the smallest command line that gets it to its own validate()."""

    def __init__(self, binary, path, info, scratch):
        self.binary, self.path = binary, path
        self.name = " ".join(path)
        self.missing = scratch / "missing"  # never created
        arguments = info.get("arguments") or []
        self.options = {}  # "--name" -> argument info
        self.positionals = []
        for argument in arguments:
            if argument["kind"] == "positional":
                self.positionals.append(argument)
            elif argument["kind"] == "option" and argument.get("preferredName", {}).get("kind") == "long":
                self.options["--" + argument["preferredName"]["name"]] = argument
        self.base = {}  # option -> value, in order
        for option, argument in self.options.items():
            if argument["isOptional"]:
                continue
            key = (self.name, option)
            if key in NUMERIC_REQUIRED_VALUES:
                self.base[option] = NUMERIC_REQUIRED_VALUES[key]
            elif argument.get("allValues"):
                self.base[option] = argument["allValues"][0]
            else:
                self.base[option] = REQUIRED_VALUES.get(option, str(self.missing / option.lstrip("-")))
        fail_fast = next((option for option in FAIL_FAST if option in self.options), None)
        if fail_fast:
            self.base[fail_fast] = str(self.missing / fail_fast.lstrip("-"))
        elif "--task" in self.options and self.options["--task"]["isOptional"]:
            self.base["--task"] = "no-such-task"
        self.arguments = [str(self.missing / argument["valueName"]) for argument in self.positionals
                          if not argument["isOptional"]]

    def line(self, **overrides):
        values = dict(self.base)
        values.update(overrides)
        flat = [item for option, value in values.items() for item in (option, value)]
        return self.path + flat + self.arguments


def commands(binary, scratch):
    dump = subprocess.run([str(BIN / binary), "--experimental-dump-help"], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True)
    found = []

    def walk(info, path):
        subcommands = [sub for sub in info.get("subcommands") or [] if sub["commandName"] != "help"]
        if path and not subcommands:
            found.append(Command(binary, path, info, scratch))
        for sub in subcommands:
            walk(sub, path + [sub["commandName"]])

    walk(json.loads(dump.stdout)["command"], [])
    return found


def parallel(jobs):
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda job: job(), jobs))


def check_case(command, option, value, refused, returncode, stderr):
    """A problem with one case, or None."""
    shown = f"{command.binary} {' '.join(command.line(**{option: value}))}"
    if returncode is None:
        return f"{shown}: still running after {TIMEOUT} s"
    if returncode < 0 or returncode in TRAPS or "Fatal error" in stderr:
        return f"{shown}: killed (status {returncode}): {stderr.strip()[-400:]}"
    if returncode == 0:
        return f"{shown}: exit 0 for a value that must be refused" if refused else None
    line = error_line(stderr)
    if line is None:
        return f"{shown}: status {returncode} without an error line: {stderr.strip()[-400:]}"
    if "Missing value for" in line:
        return f"{shown}: {value} was taken for an option, not a value (declare it with parsing: .unconditional)"
    if refused and not names(line, option):
        return f"{shown}: the error does not name {option}: {line}"
    if not refused and (f"{option} must" in line or f"for '{option} " in line):
        return f"{shown}: a legitimate value was refused: {line}"
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    for binary in EXECUTABLES:
        if not (BIN / binary).exists():
            pytest.fail(f"{BIN / binary} is missing: build first (swift build -c release), or set FLOWPOLICY_BIN")
    return tmp_path_factory.mktemp("cli")


@pytest.mark.parametrize("binary", EXECUTABLES)
def test_every_numeric_option_refuses_bad_values_without_trapping(binary, scratch):
    start = time.monotonic()
    found = commands(binary, scratch)
    assert found, f"{binary} lists no commands"
    # Which options are numbers, and which of those integers.
    candidates = [(command, option) for command in found for option, argument in command.options.items()
                  if not argument.get("allValues")]
    probe_values = ("abc", "1.5", "7")
    probes = parallel([lambda c=c, o=o, v=v: run(binary, c.line(**{o: v}), scratch)
                       for c, o in candidates for v in probe_values])
    numeric = []
    for index, (command, option) in enumerate(candidates):
        parsed = {value: f"The value '{value}' is invalid for '{option} " not in (error_line(stderr) or "")
                  for value, (_, stderr) in zip(probe_values, probes[3 * index:3 * index + 3])}
        refuses_text = not parsed["abc"] or f"{option} must" in (error_line(probes[3 * index][1]) or "")
        if refuses_text and (parsed["1.5"] or parsed["7"]):  # an enumeration refuses numbers too
            numeric.append((command, option, not parsed["1.5"]))
    assert numeric, f"no numeric options found in {binary}"

    # With every number at its default, each of these commands must fail fast, else the cases would start real work.
    tested = [command for command in found if any(c is command for c, _, _ in numeric)]
    problems = []
    for command, (returncode, stderr) in zip(tested, parallel(
            [lambda c=c: run(binary, c.line(), scratch) for c in tested])):
        if returncode is None or returncode <= 0 or error_line(stderr) is None:
            problems.append(f"{binary} {' '.join(command.line())}: does not fail fast (status {returncode}) "
                            f"{stderr.strip()[-300:]}")
    assert not problems, "\n".join(problems)

    cases = []
    for command, option, integer in numeric:
        for value in ("0", "-1", "nan", "99999999999999999999" if integer else "1e300"):
            refused = not (value == "0" and option in ZERO_ALLOWED or value == "-1" and option in NEGATIVE_ALLOWED)
            cases.append((command, option, value, refused))
    results = parallel([lambda c=c, o=o, v=v: run(binary, c.line(**{o: v}), scratch) for c, o, v, _ in cases])
    for (command, option, value, refused), result in zip(cases, results):
        problem = check_case(command, option, value, refused, *result)
        if problem:
            problems.append(problem)
    options = sorted({f"{c.name} {o}" for c, o, _ in numeric})
    print(f"\n{binary}: {len(found)} commands, {len(options)} numeric options, {len(cases)} cases "
          f"in {time.monotonic() - start:.1f} s")
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)


@pytest.mark.parametrize("binary", EXECUTABLES)
def test_paths_are_checked_before_any_work(binary, scratch):
    """Outputs that are folders, inputs that are folders or missing: refused at once, naming the option. The other
    inputs are an empty file, which passes the path checks (the libraries judge contents later)."""
    folder = scratch / "a-folder"
    folder.mkdir(exist_ok=True)
    empty = scratch / "empty.file"
    empty.write_bytes(b"")
    cases = []
    for command in commands(binary, scratch):
        # Every path the command needs, an existing (empty) file, so that only the path under test can be refused.
        real = {option: str(empty) for option, value in command.base.items()
                if option in INPUT_FILES or value.startswith(str(command.missing))}
        real_arguments = [str(empty) for _ in command.arguments]
        outputs = [option for option, argument in command.options.items() if option in ("--out", "--json")
                   and "folder" not in (argument.get("abstract") or "").lower()]
        for option in outputs:
            cases.append((command, option, dict(real, **{option: str(folder)}), real_arguments))
        for option in sorted(INPUT_FILES & command.options.keys()):
            for path in (folder, command.missing / "input"):
                cases.append((command, option, dict(real, **{option: str(path)}), real_arguments))
        for index, argument in enumerate(command.positionals):
            if "folder" in (argument.get("abstract") or "").lower() or argument["isOptional"]:
                continue  # a folder is a legitimate input there (import's LeRobot or zarr source)
            for path in (folder, command.missing / "input"):
                arguments = list(real_arguments)
                arguments[index] = str(path)
                cases.append((command, f"<{argument['valueName']}>", real, arguments))

    def job(command, overrides, arguments):
        values = dict(command.base)
        values.update(overrides)
        line = command.path + [item for pair in values.items() for item in pair] + arguments
        return line, run(binary, line, scratch)

    problems = []
    for (command, option, _, _), (line, (returncode, stderr)) in zip(
            cases, parallel([lambda c=c, o=o, a=a: job(c, o, a) for c, _, o, a in cases])):
        shown = f"{binary} {' '.join(line)}"
        error = error_line(stderr) or ""
        if returncode is None or returncode <= 0 or returncode in TRAPS:
            problems.append(f"{shown}: status {returncode}, expected a refusal")
        elif not (names(error, option) or option.startswith("<") and option in error):
            problems.append(f"{shown}: the error does not name {option}: {error or stderr.strip()[-300:]}")
    print(f"\n{binary}: {len(cases)} path cases")
    assert cases and not problems, "\n".join(problems)
