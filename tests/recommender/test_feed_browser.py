"""The feed page in a real browser: Debian's headless Chromium, driven by Playwright, against
the real app (real Edge store, real tiny CLIP over generated images) on loopback.

A reader scrolls through 20 images holding each for a planted time; the server must receive
every dwell within 10% and never show an image twice. The last view ends by leaving the
page, so its event can only arrive by the page-hide beacon.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image, ImageDraw

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
N_IMAGES = 32
N_VIEWS = 20
TOLERANCE = 0.10

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
    ),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


@dataclass
class Received:
    at: float  # time.monotonic() when the response went out
    status: int
    content_type: str
    events: list[dict[str, Any]]


@dataclass
class FeedbackRecorder:
    """Pure ASGI wrapper keeping every feedback request the real route answered: the API
    stores the effect of dwell (the learned taste), not the raw numbers we want to check."""

    app: ASGIApp
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].endswith("/feedback")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = 0

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        headers = dict(scope["headers"])
        body = json.loads(b"".join(chunks) or b"{}")
        with self.lock:
            self.received.append(Received(
                time.monotonic(), status, headers.get(b"content-type", b"").decode(),
                list(body.get("events", [])),
            ))

    def acknowledged(self) -> list[tuple[Received, dict[str, Any]]]:
        """Each event the server accepted, once (retries and beacon copies share an id)."""
        seen: set[str] = set()
        out = []
        with self.lock:
            for request in self.received:
                if 200 <= request.status < 300:
                    for event in request.events:
                        if event["event_id"] not in seen:
                            seen.add(event["event_id"])
                            out.append((request, event))
        return out


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """Small distinct pictures: a colour field with a few random shapes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        w, h = rng.choice([(160, 120), (120, 160), (144, 144)])
        image = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randint(2, 6)):
            x0, y0 = rng.randrange(w), rng.randrange(h)
            box = (x0, y0, x0 + rng.randint(10, w), y0 + rng.randint(10, h))
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        image.save(folder / f"img_{i:03d}.jpg", quality=85)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FeedbackRecorder]]:
    from indexer.ingest import run_index
    from recommender.api.app import create_app
    from recommender.settings import Settings

    tmp = tmp_path_factory.mktemp("feed")
    make_images(tmp / "photos", N_IMAGES)
    settings = Settings(
        data=tmp / "data", model="sumo-tiny", pretrained="none", device="cpu",
        api_key=None, admin_key=None,
    )
    assert run_index(settings, [tmp / "photos"]) == 0
    recorder = FeedbackRecorder(create_app(settings))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(recorder, log_level="warning", lifespan="on")
    uvi = uvicorn.Server(config)
    thread = threading.Thread(target=uvi.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvi.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        uvi.should_exit = True
        thread.join(15)
        sock.close()


def planted_dwells(n: int, seed: int = 1) -> list[int]:
    """Varied hold times in ms; the first view also absorbs the page-load detection lag."""
    rng = random.Random(seed)
    return [1200] + [rng.randrange(500, 1501, 50) for _ in range(n - 1)]


def sleep_until(deadline: float) -> None:
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def test_dwell_reaches_the_server_and_nothing_repeats(
    server: tuple[str, FeedbackRecorder],
) -> None:
    from playwright.sync_api import sync_playwright

    base, recorder = server
    planted = planted_dwells(N_VIEWS)
    viewed: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Reduced motion: key presses jump instantly, so a view's edges are the presses.
            context = browser.new_context(
                viewport={"width": 390, "height": 700}, reduced_motion="reduce"
            )
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base + "/")
            uid = page.evaluate("localStorage.getItem('sumo.uid')")
            assert uid

            page.wait_for_function("document.body.dataset.current", timeout=20_000)
            start = time.monotonic()  # view 0 is on screen
            for i, hold_ms in enumerate(planted):
                current = page.evaluate("document.body.dataset.current")
                assert current not in viewed, f"{current} shown twice"
                viewed.append(current)
                sleep_until(start + hold_ms / 1000)
                if i == len(planted) - 1:
                    break
                start = time.monotonic()
                page.keyboard.press("ArrowDown")
                # The next image must already be there: prefetching means no waiting.
                page.wait_for_function(
                    "prev => document.body.dataset.current !== prev", arg=current, timeout=1000
                )

            cards = page.evaluate("""() => [...document.querySelectorAll('.card')].map(c => ({
                id: c.dataset.id, src: c.querySelector('img').currentSrc,
                viewed: !!c.dataset.viewed, width: c.querySelector('img').naturalWidth}))""")
            left_at = time.monotonic()
            page.goto("about:blank")  # page hide: the last view ends, the beacon goes out
            # The browser (not the page, gone now) delivers it within a few seconds.
            deadline = time.monotonic() + 10
            while len(recorder.acknowledged()) < N_VIEWS and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            browser.close()
    accepted = recorder.acknowledged()
    print([(round(r.at - left_at, 2), r.status, len(r.events)) for r in recorder.received])
    assert not errors, errors

    ids = [c["id"] for c in cards]
    assert len(ids) == len(set(ids)), "the page listed an item twice"
    assert len({c["src"] for c in cards}) == len(cards)
    assert ids[:N_VIEWS] == viewed
    assert all(c["width"] > 0 for c in cards if c["viewed"]), "an image did not load"

    assert [e["item_id"] for _, e in accepted] == viewed
    for (request, event), hold_ms, item in zip(accepted, planted, viewed, strict=True):
        assert abs(event["dwell_ms"] - hold_ms) <= TOLERANCE * hold_ms, (item, event, hold_ms)
        assert request.content_type.startswith("application/json")
    last_request, _ = accepted[-1]
    assert last_request.at > left_at, "the last view should have come by the page-hide beacon"

    user = httpx.get(f"{base}/v1/users/{uid}", timeout=10).json()
    assert user["events"] == N_VIEWS

    # The server agrees: none of these comes back.
    more = httpx.get(f"{base}/v1/users/{uid}/recommendations", params={"limit": 50}, timeout=10)
    assert not set(ids) & {item["id"] for item in more.json()["items"]}
