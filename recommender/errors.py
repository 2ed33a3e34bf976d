"""Tiny exception classes of the recommender. Each carries a message meant for people."""

from __future__ import annotations

from typing import Any

from indexer.errors import SumoError


class UnknownPolicy(SumoError):
    """A request named a policy this deployment does not have."""

    def __init__(self, name: str, valid: list[str]) -> None:
        self.name = name
        self.valid = list(valid)
        super().__init__(f"unknown policy {name!r}; valid policies: {', '.join(self.valid)}")


class InvalidFeedback(SumoError):
    """Some feedback events were bad; none of the batch was applied."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        detail = "; ".join(f"#{p['index']} ({p.get('item_id')}): {p['error']}"
                           for p in problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} bad feedback event(s): {detail}{more}")


class BadState(SumoError):
    """A stored user state could not be decoded (corrupt, or written by an unknown version)."""
