"""How clients drive the engine, for the simulated users: the capture benchmark's batches
and the feed page's paging, in this process or over HTTP.

A page is chosen from the dwells the engine has when it is asked for. The benchmark's
runner (``recommender.sim.runner``) feeds back every dwell of a batch before asking again;
a client that keeps images ready asks while some of its last page is still unseen. The
protocols here replay a client's order of requests against a ``Client`` (the engine in
this process, or ``sumo serve``'s user routes), so the two can be measured on the same
users (``benchmarks/bench_feed.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np

from recommender.engine import Engine, Observation
from recommender.sim.corpus import SyntheticCorpus
from recommender.sim.runner import Impressions
from recommender.sim.users import SimUser
from recommender.state import UserState
from recommender.users import document


class UnknownProtocol(ValueError):
    """A protocol name ``protocol`` cannot read (or a ``feed.js`` without its constants)."""


FEED_JS = Path(__file__).resolve().parents[1] / "web" / "feed.js"


@dataclass(frozen=True)
class FeedConstants:
    page: int
    prefetch_at: int
    flush_ms: float  # > 0: the waiting dwells are sent before a page is asked for
    batch: int
    batch_ms: float


def feed_constants(text: str | None = None) -> FeedConstants:
    """The feed page's paging and feedback constants, read from ``feed.js`` itself."""
    source = FEED_JS.read_text() if text is None else text

    def const(name: str) -> int:
        found = re.search(rf"\bconst {name} = (\d+);", source)
        if found is None:
            raise UnknownProtocol(f"feed.js has no `const {name} = <number>;`")
        return int(found.group(1))

    return FeedConstants(const("PAGE"), const("PREFETCH_AT"), float(const("FLUSH_MS")),
                         const("BATCH"), float(const("BATCH_MS")))


# --- clients ------------------------------------------------------------------------------
class Client(Protocol):
    """One user's session with the recommender."""

    def recommend(self, limit: int) -> list[str]: ...

    def feedback(self, events: Sequence[tuple[str, float]]) -> None: ...


class EngineClient:
    """The engine in this process, as the capture benchmark's runner calls it. ``stored``:
    the state goes through the service's user document after every call, as it does
    between a service's requests (the runner keeps it in memory)."""

    def __init__(self, engine: Engine, corpus: SyntheticCorpus, user_id: str, *,
                 stored: bool = False) -> None:
        self.engine, self.corpus, self.stored = engine, corpus, stored
        self.state = engine.new_state(user_id)

    def recommend(self, limit: int) -> list[str]:
        hits = self.engine.recommend(self.state, limit)
        self._store()
        return [h.id for h in hits]

    def feedback(self, events: Sequence[tuple[str, float]]) -> None:
        self.engine.observe(self.state, [
            Observation(item, self.corpus.vectors[self.corpus.index(item)], dwell)
            for item, dwell in events])
        self._store()

    def _store(self) -> None:
        if self.stored:
            self.state = UserState.from_dict(document.state_body(document.pack(self.state, [])))


class HttpClient:
    """``sumo serve``'s user routes, as any client calls them."""

    def __init__(self, http: httpx.Client, user_id: str) -> None:
        self.http, self.path = http, f"/v1/users/{user_id}"

    def recommend(self, limit: int) -> list[str]:
        r = self.http.get(f"{self.path}/recommendations", params={"limit": limit})
        r.raise_for_status()
        return [item["id"] for item in r.json()["items"]]

    def feedback(self, events: Sequence[tuple[str, float]]) -> None:
        body = {"events": [{"item_id": item, "dwell_ms": round(dwell),
                            "event_id": uuid.uuid4().hex, "ts": time.time()}
                           for item, dwell in events]}
        self.http.post(f"{self.path}/feedback", json=body).raise_for_status()


# --- protocols ----------------------------------------------------------------------------
View = Callable[[str], float]  # shows one item, returns its dwell (ms)
Session = Callable[[Client, View, int], None]  # a client's requests over so many views


def batches(n: int) -> Session:
    """The capture benchmark's protocol: ask for n, show them all, send every dwell."""

    def run(client: Client, view: View, horizon: int) -> None:
        shown = 0
        while shown < horizon:
            items = client.recommend(min(n, horizon - shown))
            if not items:
                return
            client.feedback([(item, view(item)) for item in items])
            shown += len(items)

    return run


def feed(c: FeedConstants) -> Session:
    """The feed page's protocol (``feed.js``: ``loadMore``, ``nearEnd``, ``record``,
    ``schedule``, ``flushed``), on a simulated clock that advances by each dwell. Requests
    take no time here: a page asked for while a card is on screen is chosen from the dwells
    sent by then, as in the browser."""

    def run(client: Client, view: View, horizon: int) -> None:
        cards = client.recommend(c.page)
        queue: list[tuple[str, float]] = []
        clock = 0.0
        timer: float | None = None  # when the waiting dwells go without a full batch
        exhausted = False

        def send() -> None:  # send(): everything waiting, in one request
            nonlocal queue, timer
            client.feedback(queue)
            queue, timer = [], None

        for i in range(horizon):
            if i >= len(cards):
                return
            if i >= len(cards) - c.prefetch_at and not exhausted:  # nearEnd, then loadMore
                if c.flush_ms > 0 and queue:  # flushed(): what waits goes first
                    send()
                fresh = [x for x in client.recommend(c.page) if x not in cards]
                exhausted = not fresh
                cards += fresh
            dwell = view(cards[i])
            clock += dwell
            if timer is not None and timer <= clock:  # fired while this card was on screen
                send()
            queue.append((cards[i], dwell))  # recorded as the next card comes into view
            if len(queue) >= c.batch:
                send()
            elif timer is None:
                timer = clock + c.batch_ms

    return run


def protocol(name: str) -> Session:
    """``batchN``, ``feed``, or ``feed:PAGE=5;BATCH=1`` (the page with some constants
    changed: what a change to ``feed.js`` would give)."""
    if name == "feed" or name.startswith("feed:"):
        c = feed_constants()
        try:
            changes = dict(kv.split("=", 1) for kv in name[5:].split(";") if kv)
            c = replace(c, **{k.lower(): type(getattr(c, k.lower()))(v)
                              for k, v in changes.items()})
        except (TypeError, ValueError, AttributeError) as exc:
            raise UnknownProtocol(f"protocol {name!r}: {exc}") from None
        return feed(c)
    if name.startswith("batch") and name[5:].isdigit() and int(name[5:]) > 0:
        return batches(int(name[5:]))
    raise UnknownProtocol(f"unknown protocol {name!r}: feed or batchN (e.g. batch5)")


# --- one user -----------------------------------------------------------------------------
def run_protocol(client: Client, session: Session, corpus: SyntheticCorpus, user: SimUser,
                 rng: np.random.Generator, horizon: int) -> Impressions:
    """What ``user`` was shown, impression by impression, under one client and protocol."""
    seen = Impressions(user, corpus, rng, horizon)
    session(client, lambda item: seen.view(corpus.index(item)), horizon)
    if seen.t < horizon:
        raise RuntimeError(f"the session ended after {seen.t} of {horizon} impressions")
    return seen
