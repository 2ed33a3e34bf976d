// SUMO feed: one image per screen. How long each image stays in view is the only signal
// the recommender gets, so this file is mostly about measuring that honestly and never
// losing a measurement on the way to the server.
"use strict";

(() => {
  // Paging decides what the recommender learns from: a page is chosen from the dwells the
  // server has when it is asked for, so the page sends what waits first, and asks while
  // few cards are left. Pages of 5 are the batches SUMO is measured with; pages of 8 asked
  // 3 cards ahead without the waiting dwells cost 15% of the taste captured, now 5%
  // (python -m benchmarks.bench_feed, docs/recommender.md "What a client gets").
  const PAGE = 5; // recommendations fetched per request
  const PREFETCH_AT = 2; // fetch the next page when this close to the end
  const FLUSH_MS = 1000; // before fetching, wait at most this long for waiting dwells to land
  const BATCH = 3; // send feedback as soon as this many events wait...
  const BATCH_MS = 5000; // ...or at most this long after the first one
  const MAX_BATCH = 100; // events per request (the server caps batch sizes)
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 60000;
  const VISIBLE = 0.5; // "looking at it" means at least half of it on screen

  // --- settings kept in the browser ----------------------------------------------------
  const storage = {
    // localStorage throws in some private modes: the feed still works, just forgets more.
    get(k) { try { return localStorage.getItem(k); } catch { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch { /* not persisted */ } },
    del(k) { try { localStorage.removeItem(k); } catch { /* nothing stored */ } },
  };

  function tokenSubject(token) {
    // The payload is read, not verified: the server checks the signature on every call.
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const sub = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "="))).sub;
      return typeof sub === "string" ? sub : "";
    } catch { return ""; }
  }

  function uuid() {
    // randomUUID exists only in secure contexts; a phone on http://LAN-IP:8000 is not one.
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // ?token=... (a per-user token from the operator's backend or `sumo token USER`) is
  // remembered, then removed from the address bar so it is not shared by accident.
  const params = new URLSearchParams(location.search);
  storage.del("sumo.key"); // a shared key is never kept in a browser
  if (params.has("token")) {
    const t = params.get("token");
    if (t) storage.set("sumo.token", t); else storage.del("sumo.token");
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
  }
  const key = storage.get("sumo.token") || ""; // the bearer credential: a per-user token
  // A token is for one user (its `sub` claim): that user is who this page is.
  let uid = tokenSubject(key) || storage.get("sumo.uid");
  if (!uid) uid = uuid();
  storage.set("sumo.uid", uid);
  const userPath = `/v1/users/${encodeURIComponent(uid)}`;
  const feedbackPath = `${userPath}/feedback`;
  const auth = key ? { Authorization: `Bearer ${key}` } : {};

  const api = (path, init = {}) =>
    fetch(path, { ...init, headers: { ...auth, ...(init.headers || {}) } });

  const feed = document.getElementById("feed");
  const counter = document.getElementById("counter");
  const statusLine = document.getElementById("status");
  const resetButton = document.getElementById("reset");
  const reduceMotion = matchMedia("(prefers-reduced-motion: reduce)");
  const say = (text) => { statusLine.textContent = text; };
  const backoff = (failures) =>
    Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, failures - 1)) * (0.5 + Math.random() / 2);

  // --- the feed --------------------------------------------------------------------------
  const cards = []; // <section> per item, in feed order
  const shown = new Set(); // item ids put on screen by this page: never twice
  let loading = false;
  let exhausted = false;
  let loadFailures = 0;
  let blocked = false; // wrong, expired or missing token: stop calling until reload
  let generation = 0; // bumped by "reset": answers to requests from before it are dropped

  async function loadMore() {
    if (loading || exhausted || blocked) return;
    loading = true;
    const asked = generation;
    let fresh = 0;
    try {
      await flushed(FLUSH_MS);
      if (asked !== generation) return; // reset meanwhile: it asks for its own page
      const r = await api(`${userPath}/recommendations?limit=${PAGE}`);
      if (r.status === 401 || r.status === 403) { block(); return; }
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const { items } = await r.json();
      if (asked !== generation) return; // the reset has its own request
      for (const item of items) {
        if (!shown.has(item.id)) { addCard(item); fresh += 1; }
      }
      // Nothing new (the server never repeats, so this is the end of the corpus).
      if (!fresh) { exhausted = true; endMessage(); }
      loadFailures = 0;
      if (!queue.length) say("");
    } catch (err) {
      loadFailures += 1;
      say("offline, retrying");
      setTimeout(loadMore, backoff(loadFailures));
    } finally {
      if (asked === generation) loading = false;
    }
    if (fresh) nearEnd();
  }

  function addCard(item) {
    const card = document.createElement("section");
    card.className = "card";
    card.dataset.id = item.id;
    card.dataset.index = String(cards.length);
    const img = document.createElement("img");
    img.alt = "";
    img.decoding = "async";
    img.draggable = false;
    img.addEventListener("load", () => {
      img.classList.add("loaded");
      // A loaded image keeps its pixels; the blob behind a fetched load can go.
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    });
    img.addEventListener("error", () => card.classList.add("failed"));
    card.append(img);
    feed.append(card);
    cards.push(card);
    shown.add(item.id);
    observer.observe(card);
    // Loading starts now, screens ahead of the reader: scrolling never waits for bytes.
    imageSource(item.image_url).then((src) => { img.src = src; }, () => card.classList.add("failed"));
  }

  function sized(url) {
    // The screen's longest side in device pixels; the server snaps it to a few cached sizes.
    const u = new URL(url, location.href);
    u.searchParams.set("size", String(Math.min(2048, Math.ceil(Math.max(innerWidth, innerHeight) * devicePixelRatio))));
    return u.href;
  }

  async function imageSource(imageUrl) {
    const url = sized(imageUrl);
    if (!key) return url; // a plain <img> load: cached and decoded by the browser
    // An <img> cannot send a header, so with a token the bytes come through fetch.
    const r = await api(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return URL.createObjectURL(await r.blob());
  }

  function endMessage() {
    const p = document.createElement("p");
    p.className = "message";
    p.textContent = cards.length ? "That is everything for now." : "Nothing to show yet: index some images first.";
    feed.append(p);
  }

  function block() {
    blocked = true;
    say(key ? "token refused or expired: open a fresh link" : "token needed: open this page with ?token=…");
  }

  function nearEnd() {
    const i = current ? Number(current.dataset.index) : 0;
    if (i >= cards.length - PREFETCH_AT) loadMore();
  }

  // --- navigation: swipe and wheel are native scroll-snap; keys move one card -----------
  let navTarget = null; // where a key press is taking us, so two quick presses go two cards
  let settleTimer = 0;

  function go(delta) {
    if (!cards.length) return;
    const from = navTarget ?? (current ? Number(current.dataset.index) : 0);
    navTarget = Math.max(0, Math.min(cards.length - 1, from + delta));
    feed.scrollTo({ top: cards[navTarget].offsetTop, behavior: reduceMotion.matches ? "auto" : "smooth" });
  }

  feed.addEventListener("scroll", () => {
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => { navTarget = null; }, 150);
  }, { passive: true });

  const KEYS = { ArrowDown: 1, PageDown: 1, j: 1, " ": 1, ArrowUp: -1, PageUp: -1, k: -1 };
  addEventListener("keydown", (e) => {
    const delta = (KEYS[e.key] ?? 0) * (e.key === " " && e.shiftKey ? -1 : 1);
    if (!delta || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.target instanceof HTMLElement && e.target.closest("button, input, textarea")) return;
    e.preventDefault();
    go(delta);
  });

  // --- dwell: time a card is at least half visible while the tab is visible ------------
  let current = null; // the card at least half on screen
  let view = null; // { card, start } while current is on screen and the tab is visible
  let viewed = 0;
  let resetting = false; // between "reset" and the fresh feed, nothing on screen counts
  let away = false; // leaving: pagehide comes while the page still reports itself visible

  const observer = new IntersectionObserver((entries) => {
    let now = 0;
    for (const e of entries) {
      now = Math.max(now, e.time);
      if (e.intersectionRatio >= VISIBLE) current = e.target;
      else if (current === e.target) current = null;
    }
    sync(now);
  }, { root: feed, threshold: VISIBLE });

  function sync(now) {
    if (resetting) return;
    const want = document.visibilityState === "visible" && !away ? current : null;
    if (view && view.card === want) return;
    if (view) record(view.card.dataset.id, now - view.start);
    view = want ? { card: want, start: now } : null;
    if (!want) return;
    if (!want.dataset.viewed) { want.dataset.viewed = "1"; counter.textContent = String(++viewed); }
    if (viewed > 1) hideHint();
    document.body.dataset.current = want.dataset.id;
    nearEnd();
  }

  // --- feedback: a queue in localStorage until the server acknowledges each event ------
  const queueKey = `sumo.queue.${uid}`;
  let queue = [];
  try { queue = JSON.parse(storage.get(queueKey) || "[]"); } catch { queue = []; }
  const save = () => storage.set(queueKey, JSON.stringify(queue));
  let sending = null; // the request in flight, if any
  let batchTimer = 0;
  let sendFailures = 0;
  let maxBatch = MAX_BATCH;

  function record(itemId, ms) {
    // event_id makes every retry (and the beacon duplicate) idempotent on the server.
    queue.push({ event_id: uuid(), item_id: itemId, dwell_ms: Math.max(0, Math.round(ms)), ts: Date.now() / 1000 });
    save();
    schedule();
  }

  function schedule(delay) {
    if (sending || blocked || !queue.length) return;
    // A full batch goes at once, except while backing off after a failure.
    if (delay === undefined && queue.length >= BATCH && !sendFailures) {
      clearTimeout(batchTimer);
      batchTimer = 0;
      send();
    } else if (!batchTimer) {
      batchTimer = setTimeout(() => { batchTimer = 0; send(); }, delay ?? BATCH_MS);
    }
  }

  // Sends what waits and resolves once the server has it all, a send fails, or limitMs
  // has passed (a slow network delays the next page by at most that).
  async function flushed(limitMs) {
    const until = performance.now() + limitMs;
    while ((queue.length || sending) && !blocked && !sendFailures) {
      const left = until - performance.now();
      if (left <= 0) return;
      if (!sending) {
        clearTimeout(batchTimer);
        batchTimer = 0;
        send();
        if (!sending) return;
      }
      await Promise.race([sending, new Promise((done) => setTimeout(done, left))]);
    }
  }

  function send() {
    if (sending || blocked || !queue.length) return;
    const batch = queue.slice(0, maxBatch);
    sending = post(batch).finally(() => {
      sending = null;
      schedule(sendFailures ? backoff(sendFailures) : undefined);
    });
  }

  async function post(batch) {
    try {
      const r = await api(feedbackPath, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ events: batch }),
      });
      if (r.ok) acknowledge(batch);
      // The server applied nothing and named the bad events: they can never succeed.
      else if (r.status === 422) acknowledge(rejected(batch, await r.json().catch(() => null)));
      else if (r.status === 413) maxBatch = Math.max(1, maxBatch >> 1);
      else if (r.status === 401 || r.status === 403) block();
      else throw new Error(`HTTP ${r.status}`);
      sendFailures = 0;
      if (!blocked) say("");
    } catch (err) {
      sendFailures += 1;
      say(`offline, ${queue.length} waiting`);
    }
  }

  function acknowledge(events) {
    const done = new Set(events.map((e) => e.event_id));
    queue = queue.filter((e) => !done.has(e.event_id));
    save();
  }

  // The events a 422 names, by index ({"index": i} entries, or FastAPI's loc paths);
  // a 422 that names none means the batch as a whole is malformed.
  function rejected(batch, body) {
    const bad = new Set();
    (function walk(v) {
      if (Array.isArray(v)) { v.forEach(walk); return; }
      if (!v || typeof v !== "object") return;
      if (Number.isInteger(v.index)) bad.add(v.index);
      if (Array.isArray(v.loc)) {
        const at = v.loc.indexOf("events");
        if (at >= 0 && Number.isInteger(v.loc[at + 1])) bad.add(v.loc[at + 1]);
      }
      Object.values(v).forEach(walk);
    })(body);
    if (!bad.size) console.warn("feedback refused as a whole", body);
    return bad.size ? batch.filter((_, i) => bad.has(i)) : batch;
  }

  // Leaving (tab switch, app switch, close): end the running view and hand what is queued
  // to the browser, which delivers it even if this page dies. It stays queued until a
  // normal request is acknowledged, so a lost beacon loses nothing.
  const beaconed = new Set(); // event ids already handed over since the page was hidden
  function leave() {
    away = true;
    sync(performance.now());
    const events = queue.filter((e) => !beaconed.has(e.event_id)).slice(0, maxBatch);
    if (blocked || !events.length) return;
    for (const e of events) beaconed.add(e.event_id);
    const body = JSON.stringify({ events });
    // A beacon cannot carry Authorization, so with a token a keepalive fetch does the job.
    const sent = !key && navigator.sendBeacon
      && navigator.sendBeacon(feedbackPath, new Blob([body], { type: "application/json" }));
    if (!sent) {
      fetch(feedbackPath, {
        method: "POST", keepalive: true, body,
        headers: { ...auth, "Content-Type": "application/json" },
      }).catch(() => { /* still queued */ });
    }
  }

  function resume() {
    away = false;
    beaconed.clear();
    sync(performance.now());
    schedule(0);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") resume(); else leave();
  });
  addEventListener("pagehide", leave); // some browsers skip visibilitychange on unload
  addEventListener("pageshow", (e) => { if (e.persisted) resume(); });
  addEventListener("online", () => {
    sendFailures = 0;
    clearTimeout(batchTimer);
    batchTimer = 0;
    schedule(0);
    if (!cards.length) loadMore();
  });

  // --- reset my taste --------------------------------------------------------------------
  let armed = 0;
  resetButton.addEventListener("click", async () => {
    // Two taps, no modal dialog: one stray tap must not throw away what was learned.
    if (!armed) {
      resetButton.textContent = "tap again to reset";
      armed = setTimeout(() => { armed = 0; resetButton.textContent = "reset my taste"; }, 3000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    resetButton.textContent = "reset my taste";
    resetting = true;
    view = null; // the image on screen now is not feedback
    queue = [];
    save();
    clearTimeout(batchTimer);
    batchTimer = 0;
    await sending; // a batch already on the wire must land before the delete, not after
    const r = await api(userPath, { method: "DELETE" }).catch(() => null);
    resetting = false;
    if (!r || (!r.ok && r.status !== 404)) { say("reset failed, try again"); return; }
    for (const c of cards) observer.unobserve(c);
    cards.length = 0;
    shown.clear();
    current = null;
    navTarget = null;
    viewed = 0;
    counter.textContent = "0";
    exhausted = false;
    generation += 1;
    loading = false;
    feed.replaceChildren();
    feed.scrollTo({ top: 0 });
    say("");
    loadMore();
  });

  // --- first-screen hint ----------------------------------------------------------------
  const hint = document.getElementById("hint");
  function hideHint() { if (hint) hint.classList.add("gone"); }
  if (hint && storage.get("sumo.hinted")) hideHint(); // once per device
  else storage.set("sumo.hinted", "1");

  // --- "show me more of ...": seeds the taste from text, then refills what is ahead -----
  const more = document.getElementById("more");
  const moreText = document.getElementById("more-text");
  more.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = moreText.value.trim();
    if (!text || blocked) return;
    say("looking…");
    const r = await api(`${userPath}/seed`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    }).catch(() => null);
    if (!r || !r.ok) {
      if (r && (r.status === 401 || r.status === 403)) { block(); return; }
      say(r && r.status === 409 ? "search is off for this collection" : "search failed, try again");
      return;
    }
    moreText.value = "";
    moreText.blur();
    hideHint();
    // Cards not yet reached were chosen before the hint: replace them.
    const keep = current ? cards.indexOf(current) + 1 : 0;
    for (const c of cards.splice(keep)) { observer.unobserve(c); c.remove(); }
    exhausted = false;
    generation += 1; // a page already on its way was chosen before the hint too
    loading = false;
    say("");
    await loadMore();
  });

  loadMore();
  schedule(0); // events left from an earlier visit
})();
