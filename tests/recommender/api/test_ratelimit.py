"""The in-process sliding-window counters (``LocalWindows``), on a clock the test sets."""

from __future__ import annotations

import pytest
from limits import parse

from recommender.api.ratelimit import LocalWindows

TEN_A_SECOND = parse("10/second")
ALICE = ("user", "alice")


def hits(windows: LocalWindows, n: int, now: float, who: tuple[str, str] = ALICE) -> list[float]:
    return [windows.hit(TEN_A_SECOND, who, now) for _ in range(n)]


def test_a_window_takes_its_amount_then_refuses_without_counting() -> None:
    w = LocalWindows()
    assert hits(w, 10, 100.0) == [0.0] * 10
    refused = hits(w, 3, 100.0)
    assert all(s > 0 for s in refused)
    assert refused[0] == refused[1] == refused[2]  # refusals are not counted
    assert hits(w, 1, 100.0, ("user", "bob")) == [0.0]  # another user has their own


def test_the_previous_window_fades_as_the_window_slides() -> None:
    w = LocalWindows()
    hits(w, 10, 100.0)
    # Halfway through the next second, half of the previous ten still count: five fit.
    assert hits(w, 6, 101.5) == [0.0] * 5 + [pytest.approx(0.1)]
    # Two windows later nothing of them is left.
    assert hits(w, 10, 103.0) == [0.0] * 10


def test_the_wait_is_when_one_more_request_fits() -> None:
    w = LocalWindows()
    hits(w, 10, 100.0)
    wait = w.hit(TEN_A_SECOND, ALICE, 100.0)
    # Ten in this window: in the next one they weigh 10 * (1 - f); 9 or less at f = 0.1.
    assert wait == pytest.approx(1.1)
    assert w.hit(TEN_A_SECOND, ALICE, 100.0 + wait - 0.01) > 0
    assert w.hit(TEN_A_SECOND, ALICE, 100.0 + wait + 1e-9) == 0.0


def test_stale_windows_are_swept() -> None:
    w = LocalWindows()
    for k in range(100):
        w.hit(TEN_A_SECOND, ("user", f"u{k}"), 100.0)
    w.hit(TEN_A_SECOND, ALICE, 100.0 + LocalWindows.SWEEP_S + 1)
    assert len(w._windows) == 1
