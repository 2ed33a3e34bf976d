"""The feed page in a real browser: Debian's headless Chromium, driven by Playwright, against
the real app (real Edge store, real tiny CLIP over generated images) on loopback.

A reader scrolls through 20 images holding each for a planted time; the server must receive
every dwell within 10% and never show an image twice. The last view ends by leaving the
page, so its event can only arrive by the page-hide beacon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image, ImageDraw

from recommender.sim.clients import feed_constants

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
N_IMAGES = 32
N_VIEWS = 20
TOLERANCE = 0.10
API_KEY = "feed-test-key"  # the service key: the test acts as the operator's backend
TOKEN_SECRET = "feed-test-secret-" + "x" * 32

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
class FeedbackRecorder:
    """Pure ASGI wrapper keeping every feedback request the real route answered (the API
    stores the effect of dwell, the learned taste, not the raw numbers we check) and, for
    every page of recommendations asked for, how many of that user's events the server had
    accepted by then. It answers ``GET /__recorded`` itself."""

    app: ASGIApp
    received: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["path"] == "/__recorded":
            body = json.dumps(self.received).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"].endswith("/recommendations"):
            feedback = scope["path"].removesuffix("/recommendations") + "/feedback"
            self.received.append({"at": time.time(), "path": scope["path"],
                                  "known": len(self.accepted(feedback))})
        if not (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].endswith("/feedback")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Recorded before the client can see the answer (the body is read by now),
                # so a page it asks for next counts these events.
                body = json.loads(b"".join(chunks) or b"{}")
                self.received.append({
                    "at": time.time(), "status": message["status"], "path": scope["path"],
                    "content_type": dict(scope["headers"]).get(b"content-type", b"").decode(),
                    "events": list(body.get("events", [])),
                })
            await send(message)

        await self.app(scope, recording_receive, recording_send)

    def accepted(self, path: str) -> set[str]:
        return {e["event_id"] for r in self.received
                if r["path"] == path and 200 <= r.get("status", 0) < 300 for e in r["events"]}


def serve(photos: str, data: str, open_fd: int, keyed_fd: int) -> None:
    """The server process: indexes ``photos`` into ``data`` with the real indexer, then
    serves two apps over copies of it (open, and with ``API_KEY``) on inherited listening
    sockets. A process of its own, so the browser driver's timing never waits for the
    server (and torch is imported once, here)."""
    from indexer.ingest import run_index
    from recommender.api.app import create_app

    open_data, keyed_data = Path(data) / "open", Path(data) / "keyed"
    if run_index(settings_for(open_data), [photos]) != 0:
        raise SystemExit("indexing failed")
    shutil.copytree(open_data, keyed_data)  # an Edge folder has one owner
    servers = [
        (uvicorn.Server(uvicorn.Config(
            FeedbackRecorder(create_app(settings_for(folder, key))),
            log_level="warning", lifespan="on",
        )), socket.socket(fileno=fd))
        for folder, key, fd in ((open_data, None, open_fd), (keyed_data, API_KEY, keyed_fd))
    ]

    async def main() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    asyncio.run(main())


def settings_for(data: Path, api_key: str | None = None) -> Any:
    from recommender.settings import Settings

    return Settings(
        data=data, model="sumo-tiny", pretrained="none", device="cpu",
        api_key=api_key, admin_key=None, token_secret=TOKEN_SECRET if api_key else None,
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server process exited"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the app at {base} did not start")


def acknowledged(base: str, uid: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, event) for each event the server accepted for ``uid``, once: retries and
    beacon copies share an event_id."""
    seen: set[str] = set()
    out = []
    for request in httpx.get(f"{base}/__recorded", timeout=10).json():
        if request["path"] == f"/v1/users/{uid}/feedback" and 200 <= request["status"] < 300:
            for event in request["events"]:
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
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two apps over one indexed corpus: open, and with an API key."""
    tmp = tmp_path_factory.mktemp("feed")
    make_images(tmp / "photos", N_IMAGES)
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(2)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
        fds = [sock.fileno() for sock in socks]
        root = str(Path(__file__).resolve().parents[2])  # importable even if not installed
        proc = subprocess.Popen(
            [sys.executable, __file__, str(tmp / "photos"), str(tmp / "data"), *map(str, fds)],
            pass_fds=fds, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (root, os.environ.get("PYTHONPATH")) if p)},
        )
        stack.callback(proc.wait)
        stack.callback(proc.kill)  # a test server: nothing to shut down gracefully
        bases = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
        for base in bases:
            wait_ready(base, proc)
        yield {"open": bases[0], "keyed": bases[1]}


def feed_context(browser: Any) -> Any:
    """A phone-sized browser context. Reduced motion: a key press jumps to the next image
    at once, so the edges of a view are the presses."""
    return browser.new_context(viewport={"width": 390, "height": 700}, reduced_motion="reduce")


def planted_dwells(n: int, seed: int = 1) -> list[int]:
    """Varied hold times in ms. The last view ends by leaving the page, which takes the
    browser ~50 ms longer to act on than a key press: that one is held longer."""
    rng = random.Random(seed)
    return [rng.randrange(500, 1501, 50) for _ in range(n - 1)] + [1500]


def sleep_until(deadline: float) -> None:
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


CARDS_JS = """() => [...document.querySelectorAll('.card')].map(c => ({
    id: c.dataset.id, src: c.querySelector('img').currentSrc,
    viewed: !!c.dataset.viewed, width: c.querySelector('img').naturalWidth}))"""


def test_dwell_reaches_the_server_and_nothing_repeats(servers: dict[str, str]) -> None:
    base = servers["open"]
    planted = planted_dwells(N_VIEWS)
    viewed: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        page = feed_context(browser).new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/")
        # The first image: on screen since some moment during the load, so its dwell
        # is only known to be at least what we see here. The planted views follow it.
        page.wait_for_function("document.body.dataset.current", timeout=20_000)
        first = page.evaluate("document.body.dataset.current")
        seen_at = time.monotonic()
        page.keyboard.press("Shift")  # ignored by the page; warms up the input path
        sleep_until(seen_at + 0.3)
        first_hold = time.monotonic() - seen_at
        previous = first
        # When each planted view began: the moment the browser took the key press
        # (press() returns once the page has handled it; on a loaded machine that
        # can be well after we asked).
        starts = []
        for hold_ms in planted:
            page.keyboard.press("ArrowDown")
            start = time.monotonic()
            starts.append(start)
            # The next image is already there (prefetched): the view starts at once.
            page.wait_for_function(
                "prev => document.body.dataset.current !== prev", arg=previous, timeout=1000
            )
            previous = page.evaluate("document.body.dataset.current")
            viewed.append(previous)
            sleep_until(start + hold_ms / 1000)
        cards = page.evaluate(CARDS_JS)
        uid = page.evaluate("localStorage.getItem('sumo.uid')")
        # Leaving ends the last view; only the page-hide beacon can still deliver it.
        left_at = time.time()
        starts.append(time.monotonic())
        page.goto("about:blank")
        deadline = time.monotonic() + 10
        while len(acknowledged(base, uid)) < N_VIEWS + 1 and time.monotonic() < deadline:
            time.sleep(0.1)  # the browser delivers it after the page is gone
    accepted = acknowledged(base, uid)
    # What the reader really held: a loaded machine may oversleep or deliver a press late.
    held = [round((b - a) * 1000) for a, b in zip(starts, starts[1:], strict=False)]
    assert all(h >= p for h, p in zip(held, planted, strict=True))
    assert not errors, errors

    # Never twice: not on the page, not in its images, not in what the reader saw.
    ids = [c["id"] for c in cards]
    assert len(ids) == len(set(ids)), "the page listed an item twice"
    assert len({c["src"] for c in cards}) == len(cards)
    assert ids[: N_VIEWS + 1] == [first, *viewed]
    assert all(c["width"] > 0 for c in cards if c["viewed"]), "an image did not load"

    # Every view arrived once, in order, as JSON, each dwell within 10% of the hold.
    assert [e["item_id"] for _, e in accepted] == [first, *viewed]
    assert accepted[0][1]["dwell_ms"] >= first_hold * 1000
    for (request, event), hold_ms in zip(accepted[1:], held, strict=True):
        assert abs(event["dwell_ms"] - hold_ms) <= TOLERANCE * hold_ms, (event, hold_ms)
        assert request["content_type"].startswith("application/json")
    assert accepted[-1][0]["at"] > left_at, "the last view should come by the page-hide beacon"

    user = httpx.get(f"{base}/v1/users/{uid}", timeout=10).json()
    assert user["events"] == N_VIEWS + 1

    # The server agrees: none of these comes back.
    more = httpx.get(f"{base}/v1/users/{uid}/recommendations", params={"limit": 50}, timeout=10)
    assert not set(ids) & {item["id"] for item in more.json()["items"]}

    # Every page was asked for once the dwells of all cards before the one on screen had
    # been accepted (what it is chosen from), as the capture benchmark's feed protocol
    # replays the page (recommender.sim.clients); the last request is this test's own.
    c = feed_constants()
    asked_at = [0, *range(c.page - c.prefetch_at, N_VIEWS + 1, c.page)]
    pages = [r["known"] for r in httpx.get(f"{base}/__recorded", timeout=10).json()
             if r["path"] == f"/v1/users/{uid}/recommendations"]
    assert pages == [*asked_at, N_VIEWS + 1]



@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, closed however the test ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_feed(browser: Any, url: str) -> Any:
    page = feed_context(browser).new_page()
    page.goto(url)
    page.wait_for_function("document.body.dataset.current", timeout=20_000)
    return page


def step(page: Any, hold_s: float = 0.2) -> str:
    """Hold the current image a moment, then go to the next; returns the new one's id."""
    time.sleep(hold_s)
    before = page.evaluate("document.body.dataset.current")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("prev => document.body.dataset.current !== prev", arg=before)
    return str(page.evaluate("document.body.dataset.current"))


def events_of(base: str, uid: str, key: str = "") -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.get(f"{base}/v1/users/{uid}", headers=headers, timeout=10)
    return 0 if r.status_code == 404 else int(r.json()["events"])


def wait_for(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_reset_my_taste_forgets_and_starts_over(servers: dict[str, str]) -> None:
    base = servers["open"]
    with chromium() as browser:
        page = open_feed(browser, base + "/")
        uid = page.evaluate("localStorage.getItem('sumo.uid')")
        for _ in range(3):
            step(page)
        assert wait_for(lambda: events_of(base, uid) == 3)  # one batch of three

        page.click("#reset")
        assert page.text_content("#reset") == "tap again to reset"  # one tap does nothing
        time.sleep(0.3)
        assert events_of(base, uid) == 3
        page.click("#reset")
        page.wait_for_function("document.getElementById('counter').textContent === '1'")
        assert wait_for(lambda: events_of(base, uid) == 0)
        assert page.evaluate("document.querySelectorAll('.card').length") > 0

        # Only what is viewed after the reset counts; the image on screen at the tap
        # (viewed before it) is not sent.
        time.sleep(0.2)
        page.goto("about:blank")
        assert wait_for(lambda: events_of(base, uid) == 1)
    assert len(acknowledged(base, uid)) == 4


def test_feedback_waits_out_an_outage_and_a_reload(servers: dict[str, str]) -> None:
    base = servers["open"]
    queued = "JSON.parse(localStorage.getItem('sumo.queue.' + localStorage.getItem('sumo.uid')))"
    with chromium() as browser:
        context = feed_context(browser)
        outage = "**/v1/users/*/feedback"
        context.route(outage, lambda route: route.abort())  # the API is unreachable
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_function("document.body.dataset.current", timeout=20_000)
        uid = page.evaluate("localStorage.getItem('sumo.uid')")
        for _ in range(4):
            step(page)
        page.wait_for_function(f"{queued}.length === 4")  # a batch was tried and failed

        page.reload()  # closing the tab mid-outage: the queue is in localStorage
        page.wait_for_function("document.body.dataset.current", timeout=20_000)
        pending = page.evaluate(queued)
        assert len(pending) == 5  # and the view the reload ended
        assert len({e["event_id"] for e in pending}) == 5

        context.unroute(outage)  # back: the retry with back-off delivers them
        page.wait_for_function(f"{queued}.length === 0", timeout=15_000)
    # Exactly once each, however many times they were sent.
    assert events_of(base, uid) == 5
    assert {e["event_id"] for _, e in acknowledged(base, uid)} == {e["event_id"] for e in pending}


def test_a_token_from_the_address_opens_the_feed(servers: dict[str, str]) -> None:
    from recommender.api.tokens import mint
    from recommender.settings import Settings

    base = servers["keyed"]
    token = mint(Settings(token_secret=TOKEN_SECRET), "reader-1", 600)
    with chromium() as browser:
        # Without a key the page says what is missing instead of showing nothing.
        bare = browser.new_context().new_page()
        bare.goto(base + "/")
        bare.wait_for_function("document.getElementById('status').textContent !== ''")
        assert "token needed" in (bare.text_content("#status") or "")

        page = open_feed(browser, f"{base}/?token={token}")
        assert "token=" not in page.url  # remembered, then taken out of the address bar
        assert page.evaluate("localStorage.getItem('sumo.token')") == token
        uid = page.evaluate("localStorage.getItem('sumo.uid')")
        assert uid == "reader-1"  # the token's user is who the page is
        step(page)
        step(page)
        # Images come through fetch with the token (an <img> cannot send a header).
        page.wait_for_function("""() => [...document.querySelectorAll('.card[data-viewed] img')]
            .every(i => i.naturalWidth > 0 && i.src.startsWith('blob:'))""")
        page.goto("about:blank")  # with a token the page-hide send is a keepalive fetch
        assert wait_for(lambda: events_of(base, uid, API_KEY) == 3)
    assert httpx.get(f"{base}/v1/users/{uid}", timeout=10).status_code == 401


DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"  # the docs use these


def test_first_screen_hint_counter_label_and_search_box(servers: dict[str, str]) -> None:
    base = servers["open"]
    with chromium() as browser:
        page = open_feed(browser, base + "/")
        uid = page.evaluate("localStorage.getItem('sumo.uid')")
        # How the feed works, on the first screen; the counter says what it counts.
        assert page.is_visible("#hint")
        hint = page.text_content("#hint") or ""
        assert "Swipe" in hint and "How long you look" in hint
        assert (page.text_content("#seen") or "").startswith("seen ")
        assert page.is_visible("#more-text")
        assert page.text_content("label[for=more-text]") == "show me more of"
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "feed.png"))
        step(page)
        step(page)
        page.wait_for_function("document.getElementById('hint').classList.contains('gone')")

        # "Show me more of ...": seeds the taste from the text and refills what is ahead.
        ahead = page.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.id)")
        page.fill("#more-text", "red circles")
        with page.expect_response(lambda r: r.url.endswith("/seed")) as answer:
            page.press("#more-text", "Enter")
        assert answer.value.status == 200
        page.wait_for_function("document.getElementById('more-text').value === ''")
        page.wait_for_function(
            "n => document.querySelectorAll('.card').length > n", arg=3, timeout=20_000)
        after = page.evaluate("[...document.querySelectorAll('.card')].map(c => c.dataset.id)")
        assert after[:3] == ahead[:3]  # what was already seen stays
        assert not set(after[3:]) & set(ahead[3:])  # what was ahead was replaced
        step(page)  # the feed goes on
    # The query is kept as demand for the gap report.
    body = httpx.get(f"{base}/v1/gaps", params={"refresh": "true"}, timeout=120).json()
    assert body["sampled"]["searches"] >= 1
    assert httpx.get(f"{base}/v1/users/{uid}", timeout=10).status_code == 200


def make_demand(base: str, users: int = 3, views: int = 6) -> None:
    """A few users with enough feedback to count, and a search, through the API."""
    for u in range(users):
        uid = f"gaps-page-{u}"
        items = httpx.get(f"{base}/v1/users/{uid}/recommendations",
                          params={"limit": views}, timeout=30).json()["items"]
        events = [{"item_id": it["id"], "dwell_ms": 400 + 900 * (i % 3), "event_id": f"{uid}-{i}"}
                  for i, it in enumerate(items)]
        r = httpx.post(f"{base}/v1/users/{uid}/feedback", json={"events": events}, timeout=30)
        assert r.status_code == 200, r.text
    r = httpx.get(f"{base}/v1/search", params={"q": "green squares", "user_id": "gaps-page-0"},
                  timeout=30)
    assert r.status_code == 200, r.text


def test_gaps_page_maps_every_region_and_captions_thumbnails(servers: dict[str, str]) -> None:
    base = servers["open"]
    make_demand(base)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        with page.expect_response(lambda r: "/v1/gaps" in r.url, timeout=120_000) as answer:
            page.goto(base + "/gaps")
        body = answer.value.json()
        page.wait_for_function("document.querySelectorAll('.region').length > 0")
        n = len(body["regions"])
        assert n >= 1
        # Every region is on the map, not only gaps, and each mark names its labels.
        assert page.eval_on_selector_all(".region-mark", "m => m.length") == n
        titles = page.eval_on_selector_all(".region-mark title",
                                           "t => t.map(x => x.textContent)")
        assert all(t.startswith("r") and ":" in t for t in titles)
        # The key form stays hidden: no key is needed here, and the one in use works.
        assert page.is_hidden("#keyform")
        # A tiny model with random weights: the page says its labels mean nothing.
        assert body["random_weights"] and page.is_visible("#banner")
        assert "random weights" in (page.text_content("#banner") or "")
        # Thumbnails are captioned by file name.
        page.wait_for_function("document.querySelectorAll('.thumbs figcaption').length > 0")
        captions = page.eval_on_selector_all(".thumbs figcaption",
                                             "c => c.map(x => x.textContent)")
        assert all(c.startswith("img_") and c.endswith(".jpg") for c in captions), captions
        # Clicking a mark brings its card forward.
        last = body["regions"][-1]["id"]
        page.click(f".region-mark[data-region='{last}']")
        page.wait_for_function(
            "id => document.getElementById('region-' + id).classList.contains('focus')",
            arg=last)
        page.evaluate("window.scrollTo(0, 0)")
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "gaps.png"))
        assert errors == []


if __name__ == "__main__":  # the server process started by the ``server`` fixture
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
