"""Per-user tokens: a token opens its own user's routes and the catalog, nothing else;
expired, forged, ``alg: none`` and wrong-secret tokens are refused; two secrets during a
rotation; the service key acts for any user; the check runs before the body is read."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from api_helpers import make_settings
from fastapi.testclient import TestClient

from indexer.store.server import ServerStore
from recommender.api import tokens
from recommender.api.app import create_app
from recommender.settings import Settings
from recommender.sim.corpus import SyntheticCorpus, load_corpus, make_corpus

SECRET, OLD_SECRET = "s" * 64, "o" * 64
SERVICE_KEY, ADMIN_KEY = "service-key-123", "admin-key-456"


@pytest.fixture(scope="module")
def corpus() -> SyntheticCorpus:
    return make_corpus(40, dim=8, clusters=3, seed=5)


@pytest.fixture(scope="module")
def store(corpus: SyntheticCorpus) -> Iterator[ServerStore]:
    s = ServerStore(":memory:")
    load_corpus(s, corpus)
    yield s
    s.close()


def settings(tmp: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"api_key": SERVICE_KEY, "admin_key": ADMIN_KEY, "token_secret": SECRET}
    return make_settings(tmp, **(base | overrides))


@pytest.fixture(scope="module")
def client(store: ServerStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path_factory.mktemp("t")), store=store)) as c:
        yield c


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


def token_for(user: str, secret: str = SECRET, ttl: int = 600) -> str:
    return tokens.mint(Settings(token_secret=secret), user, ttl)


def feedback(corpus: SyntheticCorpus) -> dict[str, Any]:
    return {"events": [{"item_id": corpus.ids[0], "dwell_ms": 1500}]}


def test_a_token_opens_its_own_user_and_nobody_elses(
    client: TestClient, corpus: SyntheticCorpus
) -> None:
    alice = bearer(token_for("alice"))
    assert client.get("/v1/users/alice/recommendations", headers=alice).status_code == 200
    r = client.post("/v1/users/alice/feedback", json=feedback(corpus), headers=alice)
    assert r.status_code == 200 and r.json()["applied"] == 1
    assert client.get("/v1/users/alice", headers=alice).json()["events"] == 1
    # Everything the outside tester did to alice with the shared key, now with bob's token.
    bob = bearer(token_for("bob"))
    attempts = [
        client.get("/v1/users/alice", headers=bob),
        client.get("/v1/users/alice/recommendations", headers=bob),
        client.post("/v1/users/alice/feedback", json=feedback(corpus), headers=bob),
        client.get("/v1/users/alice/recommendations", params={"policy": "random"}, headers=bob),
        client.post("/v1/users/alice/seed", json={"text": "cats"}, headers=bob),
        client.delete("/v1/users/alice", headers=bob),
    ]
    for r in attempts:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    after = client.get("/v1/users/alice", headers=alice).json()
    assert after["events"] == 1 and after["policy"] == "sumo"  # untouched
    # The catalog is shared: any valid token reads items and images.
    item = corpus.ids[0]
    assert client.get(f"/v1/items/{item}", headers=bob).status_code == 200
    # Admin endpoints are not for tokens.
    assert client.get("/metrics", headers=alice).status_code == 403
    assert client.get("/v1/gaps", headers=alice).status_code == 403


def test_a_token_records_searches_only_as_its_own_user(client: TestClient) -> None:
    alice = bearer(token_for("alice"))
    search = {"q": "boats", "user_id": "bob"}
    r = client.get("/v1/search", params=search, headers=alice)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # Past the check (this collection has no text encoder, hence 409), for her own id and
    # for the service key acting for anyone.
    own = client.get("/v1/search", params={**search, "user_id": "alice"}, headers=alice)
    assert own.status_code == 409
    assert client.get("/v1/search", params=search, headers=bearer(SERVICE_KEY)).status_code == 409


def test_the_service_key_acts_for_any_user_and_the_admin_key_for_all(
    client: TestClient, corpus: SyntheticCorpus
) -> None:
    for key in (SERVICE_KEY, ADMIN_KEY):
        r = client.post("/v1/users/carol/feedback", json=feedback(corpus), headers=bearer(key))
        assert r.status_code == 200
        assert client.get("/v1/users/carol", headers=bearer(key)).status_code == 200
    assert client.get("/metrics", headers=bearer(SERVICE_KEY)).status_code == 403
    assert client.get("/metrics", headers=bearer(ADMIN_KEY)).status_code == 200
    assert client.delete("/v1/users/carol", headers=bearer(SERVICE_KEY)).json()["deleted"]


def unsigned(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature, as an attacker would write it."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_bad_tokens_are_401_and_say_why(client: TestClient) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": "alice", "exp": now - 10}, SECRET, algorithm="HS256")
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    bad_sub = jwt.encode({"sub": "a b", "exp": now + 60}, SECRET, algorithm="HS256")
    other_alg = jwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS512")
    good = token_for("alice")
    head, body, _ = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged_body = base64.urlsafe_b64encode(
        json.dumps(claims | {"sub": "mallory"}).encode()).rstrip(b"=").decode()
    cases = {
        "expired": (expired, "expired"),
        "no exp": (no_exp, "exp"),
        "bad subject": (bad_sub, "subject"),
        "HS512": (other_alg, "not valid"),
        "alg none": (unsigned({"sub": "alice", "exp": now + 60}), "not valid"),
        "wrong secret": (token_for("alice", secret="w" * 40), "signature"),
        "forged claims": (f"{head}.{forged_body}.{good.split('.')[2]}", "signature"),
        "garbage": ("a.b.c", "not valid"),
    }
    for name, (credential, why) in cases.items():
        r = client.get("/v1/users/alice", headers=bearer(credential))
        assert r.status_code == 401, (name, r.text)
        assert why in r.json()["error"]["message"], (name, r.json())
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # Not a token and not a key: a wrong key.
    assert client.get("/v1/users/alice", headers=bearer("guess")).status_code == 403
    r = client.get("/v1/users/alice")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_rotation_accepts_both_secrets_until_the_old_one_is_unset(
    store: ServerStore, tmp_path: Path
) -> None:
    old, new = token_for("dave", secret=OLD_SECRET), token_for("dave", secret=SECRET)
    rotating = settings(tmp_path, token_secret_previous=OLD_SECRET)
    with TestClient(create_app(rotating, store=store)) as c:
        for t in (old, new):
            assert c.get("/v1/users/dave/recommendations", headers=bearer(t)).status_code == 200
        # New tokens are signed with the current secret only.
        minted = tokens.mint(rotating, "dave")
        assert jwt.decode(minted, SECRET, algorithms=["HS256"])["sub"] == "dave"
    with TestClient(create_app(settings(tmp_path), store=store)) as c:
        assert c.get("/v1/users/dave", headers=bearer(old)).status_code == 401
        assert c.get("/v1/users/dave/recommendations", headers=bearer(new)).status_code == 200


def test_tokens_alone_close_user_routes_and_admin(store: ServerStore, tmp_path: Path) -> None:
    only_tokens = settings(tmp_path, api_key=None, admin_key=None)
    with TestClient(create_app(only_tokens, store=store)) as c:
        assert c.get("/v1/users/erin/recommendations").status_code == 401
        assert c.get("/v1/search", params={"q": "x"}).status_code == 401
        assert c.get("/v1/users/erin", headers=bearer(token_for("erin"))).status_code == 404
        r = c.get("/metrics", headers=bearer(token_for("erin")))
        assert r.status_code == 403 and "SUMO_ADMIN_KEY" in r.json()["error"]["message"]


def test_credentials_are_checked_before_the_body_is_read(
    client: TestClient, corpus: SyntheticCorpus
) -> None:
    malformed = {"content": b'{"events": [', "headers": {"content-type": "application/json"}}
    r = client.post("/v1/users/alice/feedback", **malformed)  # type: ignore[arg-type]
    assert r.status_code == 401
    bob = {"content-type": "application/json"} | bearer(token_for("bob"))
    r = client.post("/v1/users/alice/feedback", content=b'{"events": [', headers=bob)
    assert r.status_code == 403
    r = client.post("/v1/users/bob/feedback", content=b'{"events": [', headers=bob)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["type"] == "json_invalid"


def test_mint_refuses_bad_requests() -> None:
    with pytest.raises(tokens.TokensDisabled):
        tokens.mint(Settings(token_secret=None), "alice")
    with pytest.raises(tokens.BadTokenRequest):
        tokens.mint(Settings(token_secret=SECRET), "not a valid id")
    with pytest.raises(tokens.BadTokenRequest):
        tokens.mint(Settings(token_secret=SECRET), "alice", 0)
    with pytest.raises(ValueError, match="at least 32"):
        Settings(token_secret="short")


def test_sumo_token_prints_a_token_for_the_user(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMO_")}
    cmd = [sys.executable, "-m", "sumo", "token", "frank", "--ttl", "120"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env | {"SUMO_TOKEN_SECRET": SECRET},
                       timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 0, r.stderr
    claims = jwt.decode(r.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "frank" and 110 <= claims["exp"] - time.time() <= 121
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60,
                       cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 2 and "SUMO_TOKEN_SECRET" in r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                       env=env | {"SUMO_TOKEN_SECRET": "short"},
                       cwd=Path(__file__).resolve().parents[3])
    assert r.returncode == 2 and "(SUMO_TOKEN_SECRET): String should have at least 32" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    keyed = Settings(token_secret=SECRET)
    token = tokens.mint(keyed, "grace", ttl_s=60)
    assert tokens.verify(keyed, token) == "grace"  # checked, and now remembered
    later = time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(keyed, token)
    # Remembered per secret set: with the secret gone the same token is refused.
    monkeypatch.undo()
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.verify(Settings(token_secret="n" * 64), token)
