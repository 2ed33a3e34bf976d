"""The OpenAPI document is honest: schemathesis generates requests for every operation
(valid ones, then ones that break the schema) and checks each response against the
document: no 5xx, only documented status codes, content types and shapes.

Runs in-process against the ASGI app over a small real store, open (no credentials,
the loopback default) and with every credential configured: without any (401s), with a
per-user token (403 on other users' routes), with the service key. Bounded: a fixed
number of derandomized examples per operation, so a run is repeatable and short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from api_helpers import make_settings
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from indexer.store.server import ServerStore
from recommender.api import tokens
from recommender.api.app import create_app
from recommender.sim.corpus import load_corpus, make_corpus

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 8}
SECRET, SERVICE_KEY, ADMIN_KEY = "t" * 64, "service-key-789", "admin-key-012"


@pytest.fixture(scope="module")
def store() -> Iterator[ServerStore]:
    s = ServerStore(":memory:")
    load_corpus(s, make_corpus(60, dim=8, clusters=3, seed=4))
    yield s
    s.close()


def started(app: FastAPI) -> Iterator[FastAPI]:
    # The lifespan runs once here; schemathesis's own ASGI calls find the state it set.
    with TestClient(app):
        yield app


@pytest.fixture(scope="module")
def open_app(store: ServerStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    yield from started(create_app(make_settings(tmp_path_factory.mktemp("open")), store=store))


@pytest.fixture(scope="module")
def keyed_app(store: ServerStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    keyed = make_settings(tmp_path_factory.mktemp("keyed"), api_key=SERVICE_KEY,
                          admin_key=ADMIN_KEY, token_secret=SECRET)
    yield from started(create_app(keyed, store=store))


def fuzz(app: FastAPI, headers: dict[str, str], user: str | None = None) -> list[str]:
    """Every operation, both generation modes; the failures found, one entry each.
    ``user``: the user id in every path that has one (a token's own user)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            try:
                exercise(operation, mode, examples, headers, calls, user)
            except Unsatisfiable:
                pass  # nothing to break (no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # collect them all, report at the end
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:1500])
    # Every documented operation was called, most of them many times.
    assert set(calls) == {r.ok().label for r in schema.get_all_operations()}
    assert len(calls) > 150, len(calls)
    return failures


def exercise(operation: Any, mode: GenerationMode, examples: int, headers: dict[str, str],
             calls: list[str], user: str | None) -> None:
    fixed = {"user_id": user} if user and "{user_id}" in operation.path else None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        calls.append(operation.label)
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_open_api_matches_its_document(open_app: FastAPI) -> None:
    failures = fuzz(open_app, {})
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("credential", ["none", "token", "service"])
def test_keyed_api_matches_its_document(keyed_app: FastAPI, credential: str) -> None:
    headers = {
        "none": {},
        "token": {"authorization": "Bearer " + tokens.mint(keyed_app.state.settings, "alice")},
        "service": {"authorization": f"Bearer {SERVICE_KEY}"},
    }[credential]
    # The token's runs stay on its own user, so they reach the handlers, not only the 403.
    failures = fuzz(keyed_app, headers, user="alice" if credential == "token" else None)
    assert failures == [], "\n".join(failures)


def test_the_fuzzer_is_not_blind(open_app: FastAPI, tmp_path: Path) -> None:
    """An undocumented status on one route must be reported (the checks are live)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", open_app)
    document = schema.raw_schema
    saved = document["paths"]["/v1/users/{user_id}"]["get"]["responses"].pop("404")
    try:
        failures = fuzz_operation(schema, "GET /v1/users/{user_id}")
    finally:
        document["paths"]["/v1/users/{user_id}"]["get"]["responses"]["404"] = saved
    assert failures, "a 404 missing from the document went unnoticed"


def fuzz_operation(schema: Any, label: str) -> list[str]:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label != label:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=5, derandomize=True, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(str(exc).splitlines()[0])
    return failures
