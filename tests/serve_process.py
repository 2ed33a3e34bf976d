"""``sumo serve`` in a child process on loopback, for the tests (and the load benchmark)
that need a real server (its own interpreter, uvicorn and store lock), not an app in the
same process. Tests import it as ``serve_process`` (pytest puts ``tests/`` on the path),
the benchmark as ``tests.serve_process`` (run from the repository root)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """Starts ``sumo serve --data DATA`` (or ``command``, given ``--port``) and returns
    once ``/readyz`` answers 200.

    The child sees no ``SUMO_*`` variable of the caller's environment (a key or a server
    URL there would change what is measured), only ``env``. Its output goes to ``log``,
    whose tail is in the error when it exits or never becomes ready."""

    def __init__(
        self, data: Path, log: Path, *, env: Mapping[str, str] | None = None,
        ready_s: float = 60.0, command: Sequence[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.name = "sumo serve" if command is None else " ".join(command)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SUMO_")}
        child_env.update(env or {})
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*(command or [sys.executable, "-m", "sumo", "serve", "--data", str(data)]),
                 "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=child_env,
            )
        deadline = time.monotonic() + ready_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self._tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} not ready in {ready_s:.0f} s:\n{self._tail()}")
            time.sleep(0.1)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run (the restart test's crash)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and a clean shutdown; SIGKILL if it takes over 20 s."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
