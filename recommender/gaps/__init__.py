"""Underserved content: where users' learned targets cluster far from any item.

``build_report(store)`` (report.py) is the one computation behind ``GET /v1/gaps``, the
``/gaps`` page and ``sumo gaps``; ``generate.py`` fills gaps with SDXL-Turbo (optional).
"""

from recommender.gaps.report import GapOptions, GapReport, Region, build_report

__all__ = ["GapOptions", "GapReport", "Region", "build_report"]
