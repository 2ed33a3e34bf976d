"""API keys (401 without, 403 with the wrong one, admin vs user), the bind guard, rate
limits, and the OpenAPI document and its pages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import make_settings
from fastapi.testclient import TestClient

from indexer.store.server import ServerStore
from recommender.api.app import create_app
from recommender.commands.serve import InsecureBind, check_bind, is_loopback
from recommender.sim.corpus import load_corpus, make_corpus

USER_KEY, ADMIN_KEY = "user-key-123", "admin-key-456"


@pytest.fixture(scope="module")
def store() -> Iterator[ServerStore]:
    s = ServerStore(":memory:")
    load_corpus(s, make_corpus(50, dim=8, clusters=3, seed=2))
    yield s
    s.close()


def client_with(store: ServerStore, tmp: Path, **keys: Any) -> TestClient:
    return TestClient(create_app(make_settings(tmp, **keys), store=store))


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


USER_ENDPOINT = "/v1/users/alice/recommendations"


def test_keys_guard_user_and_admin_endpoints(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, api_key=USER_KEY, admin_key=ADMIN_KEY) as c:
        r = c.get(USER_ENDPOINT)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthorized"
        r = c.get(USER_ENDPOINT, headers=auth("wrong"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert c.get(USER_ENDPOINT, headers={"authorization": USER_KEY}).status_code == 401
        assert c.get(USER_ENDPOINT, headers=auth(USER_KEY)).status_code == 200
        assert c.get(USER_ENDPOINT, headers=auth(ADMIN_KEY)).status_code == 200  # admin > user
        assert c.get("/v1/items/x", headers=auth("wrong")).status_code == 403
        assert c.get("/v1/search", params={"q": "a"}).status_code == 401
        # Admin endpoints: the user key is not enough.
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth(USER_KEY)).status_code == 403
        assert c.get("/metrics", headers=auth(ADMIN_KEY)).status_code == 200
        # Probes stay open for load balancers.
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200


def test_no_keys_means_open(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path) as c:
        assert c.get(USER_ENDPOINT).status_code == 200
        assert c.get("/metrics").status_code == 200


def test_only_admin_key_leaves_user_endpoints_open(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, admin_key=ADMIN_KEY) as c:
        assert c.get(USER_ENDPOINT).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth(ADMIN_KEY)).status_code == 200


def test_only_user_key_closes_admin_endpoints(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, api_key=USER_KEY) as c:
        assert c.get(USER_ENDPOINT, headers=auth(USER_KEY)).status_code == 200
        r = c.get("/metrics", headers=auth(USER_KEY))
        assert r.status_code == 403 and "SUMO_ADMIN_KEY" in r.json()["error"]["message"]


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.0.10", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_beyond_loopback_needs_a_key(tmp_path: Path) -> None:
    check_bind(make_settings(tmp_path, host="127.0.0.1"))
    with pytest.raises(InsecureBind, match="SUMO_API_KEY"):
        check_bind(make_settings(tmp_path, host="0.0.0.0"))
    with pytest.raises(InsecureBind):
        check_bind(make_settings(tmp_path, host="0.0.0.0", admin_key=ADMIN_KEY))
    check_bind(make_settings(tmp_path, host="0.0.0.0", api_key=USER_KEY))
    check_bind(make_settings(tmp_path, host="0.0.0.0", token_secret="s" * 32))
    # Mid-rotation with only the previous secret left: tokens still open user routes, and
    # only those, so the bind is as closed as the API.
    check_bind(make_settings(tmp_path, host="0.0.0.0", token_secret_previous="p" * 32))


def test_sumo_serve_refuses_an_open_public_bind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMO_")}
    r = subprocess.run(
        [sys.executable, "-m", "sumo", "serve", "--data", str(tmp_path / "d"),
         "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert r.returncode == 2
    assert "refusing to serve on 0.0.0.0" in r.stderr and "SUMO_TOKEN_SECRET" in r.stderr


# --- rate limits ----------------------------------------------------------------------------
def test_a_user_over_the_rate_limit_gets_429_and_others_do_not(
    store: ServerStore, tmp_path: Path
) -> None:
    limits = {"rate_limit_user": "5/minute", "rate_limit_key": "6/minute"}
    with client_with(store, tmp_path, api_key=USER_KEY, **limits) as c:
        key = auth(USER_KEY)
        codes = [c.get("/v1/users/greedy/recommendations", headers=key).status_code
                 for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = c.get("/v1/users/greedy", headers=key)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Another user is not starved by the first...
        assert c.get("/v1/users/patient/recommendations", headers=key).status_code == 200
        # ...until the service key is over its own limit: 6 a minute, used by the 5 greedy
        # requests under the user limit and the patient one (refused ones do not count).
        r = c.get("/v1/users/third/recommendations", headers=key)
        assert r.status_code == 429 and "key rate limit" in r.json()["error"]["message"]
        # Probes are never limited.
        assert c.get("/healthz").status_code == 200


def test_rate_limits_can_be_turned_off(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, rate_limit_user="", rate_limit_key="") as c:
        assert c.app.state.limiter is None  # type: ignore[attr-defined]
        assert all(c.get("/v1/users/x/recommendations").status_code == 200 for _ in range(30))


# --- the document and its pages ---------------------------------------------------------
def test_docs_work_offline(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path) as c:
        for page in ("/docs", "/redoc"):
            html = c.get(page).text
            assert "cdn." not in html and "unpkg" not in html and "googleapis" not in html
            assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html)
            assert assets, html
            for asset in assets:
                assert c.get(asset).status_code == 200, asset


def test_405_lists_every_method_of_the_path(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path) as c:
        r = c.options("/v1/users/alice")
        assert r.status_code == 405 and r.headers["allow"] == "GET, DELETE"
        assert c.put("/v1/users/alice/feedback").headers["allow"] == "POST"


def test_the_document_states_the_bounds(store: ServerStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, max_limit=40) as c:
        doc = c.get("/openapi.json").json()
    rec = doc["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    params = {p["name"]: p["schema"] for p in rec["parameters"]}
    assert params["limit"]["maximum"] == 40 and params["limit"]["minimum"] == 1
    assert "sumo" in params["policy"]["enum"] and "" not in params["policy"]["enum"]
    assert {"401", "403", "422", "429"} <= set(rec["responses"])
    feedback = doc["paths"]["/v1/users/{user_id}/feedback"]["post"]["responses"]
    assert {"400", "401", "403", "413", "422", "429"} <= set(feedback)
    seed = doc["components"]["schemas"]["SeedRequest"]
    assert seed["anyOf"] == [{"required": ["text"]}, {"required": ["item_ids"]}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
