"""The in-process sliding-window counters (``LocalWindows``), on a clock the test sets."""

from __future__ import annotations

import pytest
from limits import parse

from recommender.api.ratelimit import LocalWindows

TEN_A_SECOND = parse("10/second")
ALICE = ("user", "alice")


def hits(
    windows: LocalWindows, n: int, now: float, who: tuple[str, str] = ALICE
) -> list[float | None]:
    return [windows.hit(TEN_A_SECOND, who, now) for _ in range(n)]


def test_a_window_takes_its_amount_then_refuses_without_counting() -> None:
    w = LocalWindows()
    assert hits(w, 10, 100.0) == [None] * 10
    refused = hits(w, 3, 100.0)
    assert all(s is not None and s > 0 for s in refused)
    assert refused[0] == refused[1] == refused[2]  # refusals are not counted
    assert hits(w, 1, 100.0, ("user", "bob")) == [None]  # another user has their own


def test_the_previous_window_fades_as_the_window_slides() -> None:
    w = LocalWindows()
    hits(w, 10, 100.0)
    # A quarter into the next second, 7.5 of the previous ten still count (7, rounded
    # down as ``limits`` does): three fit, and the fourth once they weigh less than 7.
    assert hits(w, 4, 101.25) == [None] * 3 + [pytest.approx(0.05)]
    # Two windows later nothing of them is left.
    assert hits(w, 10, 103.0) == [None] * 10


def test_a_burst_across_a_window_boundary_is_not_refused_early() -> None:
    # A burst straddling a minute: just after it the first three weigh 2.99..., rounded
    # down to 2 as ``limits`` does, so the estimate errs by at most one request toward
    # letting it through, never toward refusing within the limit.
    w = LocalWindows()
    five = parse("5/minute")
    assert [w.hit(five, ALICE, 119.999) for _ in range(3)] == [None] * 3
    assert [w.hit(five, ALICE, 120.001) for _ in range(3)] == [None] * 3
    wait = w.hit(five, ALICE, 120.001)
    assert wait is not None and 0 < wait <= 60


def test_the_wait_is_when_one_more_request_fits() -> None:
    w = LocalWindows()
    hits(w, 10, 100.0)
    wait = w.hit(TEN_A_SECOND, ALICE, 100.0)
    # Ten in this window: in the next one they weigh 10 * (1 - f), below 10 at any f > 0.
    assert wait == pytest.approx(1.0)
    assert w.hit(TEN_A_SECOND, ALICE, 101.0) is not None
    assert w.hit(TEN_A_SECOND, ALICE, 101.0 + 1e-6) is None


def test_stale_windows_are_swept() -> None:
    w = LocalWindows()
    for k in range(100):
        w.hit(TEN_A_SECOND, ("user", f"u{k}"), 100.0)
    w.hit(TEN_A_SECOND, ALICE, 100.0 + LocalWindows.SWEEP_S + 1)
    assert len(w._windows) == 1
