"""flowpolicy_report: one self-contained HTML page from flowpolicy's JSON reports (evaluations, merged campaigns,
training runs, benchmarks), with plots drawn by matplotlib and inlined as SVG, and episode videos embedded.

    PYTHONPATH=clients/python python -m flowpolicy_report tasks/pusht/reports/rerun-k*.json --out report.html

    from flowpolicy_report import read_reports, build_page
    reports = read_reports(["eval-k2.json", "eval-k10.json", "train.json"])
    page, notes = build_page(reports, sources=[...], title="Push-T")

`read_reports` raises ReportError, naming the file and what was expected, for anything that is not a report.
`flowpolicy report` runs this package with the project's Python environment (scripts/setup.sh installs matplotlib).
"""

from .reports import ReportError, Reports, read_reports

__all__ = ["ReportError", "Reports", "read_reports", "build_page"]


def build_page(reports, sources, title, max_videos=12):
    """The page's HTML and the notes worth printing; see flowpolicy_report.page (imports matplotlib)."""
    from .page import build_page as build
    return build(reports, sources, title, max_videos)
