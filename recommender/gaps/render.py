"""The HTML report: one page (``recommender/web/gaps.html``), plain HTML/CSS/JS, no build.

Served at ``/gaps``, the page fetches ``/v1/gaps?map=true`` with the admin key kept in the
browser. ``standalone(report)`` embeds a report's JSON into the same page, so
``sumo gaps --html FILE`` writes a file that renders offline (thumbnails then need the
server: the page links item ids instead).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parents[1] / "web" / "gaps.html"
_MARK = "<!--SUMO-GAPS-DATA-->"


def standalone(body: dict[str, Any]) -> str:
    """The report page with ``body`` (``/v1/gaps?map=true`` JSON) embedded."""
    data = json.dumps(body, separators=(",", ":")).replace("</", "<\\/")
    script = f'<script id="sumo-gaps-data" type="application/json">{data}</script>'
    return PAGE.read_text(encoding="utf-8").replace(_MARK, script, 1)
