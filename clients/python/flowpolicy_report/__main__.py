"""Command line: `python -m flowpolicy_report REPORT.json... --out page.html [--title T] [--max-videos N]`.

Bad input ends with one line `error: ...` on standard error and exit status 1 (no traceback); notes (videos left out)
go to standard error as `note: ...` lines; the last line on standard output says what was written.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .reports import ReportError, read_reports


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m flowpolicy_report",
        description="One self-contained HTML page from flowpolicy's JSON reports: eval and merge reports, merged "
                    "campaigns (campaign.json), train reports and bench reports.")
    parser.add_argument("reports", nargs="+", metavar="REPORT.json", help="the reports to show, in table order")
    parser.add_argument("--out", required=True, help="the HTML file to write (replaced atomically)")
    parser.add_argument("--title", default="flowpolicy report", help="the page's title")
    parser.add_argument("--max-videos", type=int, default=12,
                        help="embed at most this many episode videos, failures first (default 12)")
    return parser


def _write_atomically(path, text):
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReportError(f"--out: the folder {folder} does not exist; create it first")
    if path.is_dir():
        raise ReportError(f"--out: {path} is a folder; give a file path to write")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(arguments=None):
    options = _parser().parse_args(arguments)
    if options.max_videos < 0:
        sys.stderr.write(f"error: --max-videos must be 0 or more, got {options.max_videos}\n")
        return 1
    try:
        from .page import build_page
    except ImportError as missing:  # matplotlib or numpy missing from this interpreter
        sys.stderr.write(f"error: {sys.executable} cannot import {missing.name or missing}: run scripts/setup.sh (it "
                         "installs matplotlib into the project's environment), or set FLOWPOLICY_PYTHON to an "
                         "interpreter that has it\n")
        return 1
    try:
        reports = read_reports(options.reports)
        page, notes = build_page(reports, options.reports, options.title, options.max_videos)
        for note in notes:
            sys.stderr.write(f"note: {note}\n")
        out = Path(options.out)
        _write_atomically(out, page)
    except ReportError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    except OSError as error:
        sys.stderr.write(f"error: {options.out}: cannot be written ({error.strerror or error})\n")
        return 1
    videos = page.count("<video ")
    plots = page.count('<svg class="plot"')
    print(f"wrote {out} ({len(page.encode()) / 1e6:.2f} MB: {len(reports.evaluations)} evaluation(s), "
          f"{len(reports.trainings)} training run(s), {len(reports.benchmarks)} benchmark(s); {plots} plot(s), "
          f"{videos} video(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
