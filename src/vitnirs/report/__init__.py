"""The HTML report of a run: ``write_report(DIR)`` → ``DIR/report.html`` (one self-contained file).

Modules: :mod:`~vitnirs.report.discover` (which files a run directory holds),
:mod:`~vitnirs.report.figures` (matplotlib → PNG bytes), :mod:`~vitnirs.report.tables`
(escaped HTML tables, the encoder-vs-classical comparison), :mod:`~vitnirs.report.sections`
(LODO, transfer, robustness), :mod:`~vitnirs.report.checks` (synthetic checks, ablations) and
:mod:`~vitnirs.report.html` (the page). The loss curve comes from :mod:`vitnirs.pretrain_log`:
the report imports neither :mod:`vitnirs.config` nor :mod:`vitnirs.train`.
"""

from vitnirs.report.html import SECTION_TITLES, build_html, write_report

__all__ = ["SECTION_TITLES", "build_html", "write_report"]
