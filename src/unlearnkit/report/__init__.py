"""Results store (SQLite index of run folders), tables, plots and the HTML report.

``ResultsStore`` is light to import; ``build_report`` pulls in matplotlib and is loaded lazily.
"""

from __future__ import annotations

from typing import Any

from unlearnkit.report.store import ResultsStore, find_run_dirs, run_meta_from_config

__all__ = ["ResultsStore", "build_report", "find_run_dirs", "run_meta_from_config"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from unlearnkit.report.build import build_report

        return build_report
    raise AttributeError(f"module 'unlearnkit.report' has no attribute {name!r}")
