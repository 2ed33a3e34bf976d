"""Helpers shared by the API tests (imported by conftest and the test modules)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from serve_process import free_port

from indexer.store.base import Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender.settings import Settings

BACKENDS = ("edge", "server")
N_ITEMS = 240
DIM = 32


def open_backend(kind: str, folder: Path) -> Store:
    if kind == "edge":
        return EdgeStore(folder / "data")
    return ServerStore(":memory:")


def make_settings(folder: Path, **overrides: Any) -> Settings:
    # Explicit values: a SUMO_* variable in the environment must not change the tests.
    base: dict[str, Any] = {
        "data": folder / "data", "qdrant_url": None, "api_key": None, "admin_key": None,
        "token_secret": None, "token_secret_previous": None,
        # Off unless a test is about them: tests hammer one user on purpose.
        "rate_limit_user": "", "rate_limit_key": "",
        "policy": "sumo", "max_limit": 100, "max_events_per_request": 64,
        "max_body_bytes": 200_000,
    }
    return Settings(**(base | overrides))


def user() -> str:
    """A fresh user id: tests share a store, never a user."""
    return f"u-{uuid.uuid4().hex[:12]}"


class LiveServer:
    """A real uvicorn server for one app on 127.0.0.1, in a thread; stops by itself."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
