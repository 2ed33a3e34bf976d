"""The server deployment: docker-compose.yml as Docker Compose itself reads it, plus the
Dockerfile, the proxy config and the CLI lines they run.

Compose is validated with Debian's ``docker-compose config`` (no Docker engine needed);
those tests skip when it is not installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NGINX = ROOT / "deploy" / "nginx.conf"
DOCKER_COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"
KEYS = {"SUMO_TOKEN_SECRET": "token-secret-for-test-" + "x" * 32,
        "SUMO_ADMIN_KEY": "admin-key-for-test"}
README = ROOT / "deploy" / "README.md"

needs_compose = pytest.mark.skipif(
    not Path(DOCKER_COMPOSE).exists(),
    reason="docker-compose is not installed (apt-get install docker-compose)",
)


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUMO_", "QDRANT_"))}
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE), "config"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    if not Path(DOCKER_COMPOSE).exists():
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    done = compose_config(KEYS)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["volumes"]) >= {"qdrant-0", "qdrant-1", "qdrant-2", "models"}
    return dict(config["services"])


def argv(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def named(services: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in services.items() if re.fullmatch(rf"{prefix}-\d+", k)}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (volume name or host path)."""
    out = {}
    for v in service.get("volumes", []):
        source, target = (v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"]))
        out[target] = source
    return out


@needs_compose
def test_keys_are_required() -> None:
    done = compose_config({})
    assert done.returncode != 0
    assert "SUMO_TOKEN_SECRET" in done.stderr
    done = compose_config({"SUMO_TOKEN_SECRET": KEYS["SUMO_TOKEN_SECRET"]})
    assert done.returncode != 0 and "SUMO_ADMIN_KEY" in done.stderr


def test_browsers_get_tokens_never_a_shared_key() -> None:
    guide = README.read_text()
    assert "?key=" not in guide and "?token=" in guide
    assert "sumo token" in guide and "SUMO_TOKEN_SECRET" in guide
    assert "?key=" not in (ROOT / "recommender" / "web" / "feed.js").read_text()


def test_qdrant_is_a_three_node_cluster(services: dict[str, Any]) -> None:
    nodes = named(services, "qdrant")
    assert sorted(nodes) == ["qdrant-0", "qdrant-1", "qdrant-2"]
    for name, node in nodes.items():
        assert node["image"].startswith("qdrant/qdrant:")
        assert str(node["environment"]["QDRANT__CLUSTER__ENABLED"]).lower() == "true"
        assert option(argv(node), "--uri") == f"http://{name}:6335"
        assert mounts(node)["/qdrant/storage"] == name  # a volume of its own
        assert "healthcheck" in node and "/readyz" in " ".join(node["healthcheck"]["test"])
        assert "ports" not in node  # reachable only inside the deployment
    assert "--bootstrap" not in argv(nodes["qdrant-0"])
    for name in ("qdrant-1", "qdrant-2"):
        assert option(argv(nodes[name]), "--bootstrap") == "http://qdrant-0:6335"
        assert nodes[name]["depends_on"]["qdrant-0"]["condition"] == "service_healthy"


def test_two_stateless_api_replicas(services: dict[str, Any]) -> None:
    apis = named(services, "api")
    assert sorted(apis) == ["api-1", "api-2"]
    qdrant_hosts = set()
    for api in apis.values():
        args = argv(api)
        assert args[:2] == ["sumo", "serve"]
        assert option(args, "--host") == "0.0.0.0"
        url = option(args, "--qdrant-url")
        host = re.fullmatch(r"http://(qdrant-\d+):6333", url)
        assert host and host.group(1) in services
        qdrant_hosts.add(host.group(1))
        env = api["environment"]
        assert env["SUMO_TOKEN_SECRET"] == KEYS["SUMO_TOKEN_SECRET"]
        assert env["SUMO_ADMIN_KEY"] == KEYS["SUMO_ADMIN_KEY"]
        assert not env["SUMO_API_KEY"]  # no service key unless the operator sets one
        # What compose hands the replica is a valid configuration.
        from recommender.settings import Settings
        settings = Settings(**{k.removeprefix("SUMO_").lower(): v for k, v in env.items()
                               if k.startswith(("SUMO_TOKEN", "SUMO_API_KEY", "SUMO_RATE"))})
        assert settings.token_secret and settings.token_secret_previous is None
        assert "/readyz" in " ".join(api["healthcheck"]["test"])
        assert {n for n, d in api["depends_on"].items() if d["condition"] == "service_healthy"} \
            == {"qdrant-0", "qdrant-1", "qdrant-2"}
        assert "ports" not in api  # only through the proxy
        # No local state: nothing mounted but the shared model cache and the photos.
        assert set(mounts(api)) == {"/home/sumo/.cache", "/photos"}
    assert len(qdrant_hosts) == 2  # one Qdrant node down leaves a replica untouched


def test_proxy_balances_exactly_the_replicas(services: dict[str, Any]) -> None:
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert [p["target"] if isinstance(p, dict) else int(str(p).split(":")[-1])
            for p in proxy["ports"]] == [80]
    assert Path(mounts(proxy)["/etc/nginx/conf.d/default.conf"]) == NGINX
    assert "healthcheck" in proxy
    conf = NGINX.read_text()
    upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream.group(2), re.M)
    assert sorted(servers) == [("api-1", "8000"), ("api-2", "8000")]
    assert f"proxy_pass http://{upstream.group(1)};" in conf
    # Every replica listens where the proxy sends it.
    for name, port in servers:
        assert option(argv(services[name]), "--port") == port


def test_indexer_is_one_shot_over_the_mounted_folder(services: dict[str, Any]) -> None:
    indexer = services["indexer"]
    args = argv(indexer)
    assert args[:2] == ["sumo", "index"]
    assert "/photos" in args
    assert re.fullmatch(r"http://qdrant-\d+:6333", option(args, "--qdrant-url"))
    assert str(indexer["restart"]) == "no"
    assert indexer["profiles"] == ["index"]  # `docker-compose up` does not start it
    photos = mounts(indexer)["/photos"]
    # The replicas serve the indexed files by the paths the indexer recorded.
    for api in named(services, "api").values():
        assert mounts(api)["/photos"] == photos
        assert api["image"] == indexer["image"]


def test_compose_command_lines_parse_with_the_real_cli(services: dict[str, Any]) -> None:
    from sumo.cli import build_parser

    parser = build_parser()
    for name in ("api-1", "api-2", "indexer"):
        args = argv(services[name])
        assert args[0] == "sumo"
        parsed = parser.parse_args(args[1:])
        assert parsed.qdrant_url == option(args, "--qdrant-url")
    assert build_parser().parse_args(dockerfile_cmd()[1:]).command == "serve"


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.M)
    assert match is not None
    return list(yaml.safe_load(match.group(1)))


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD .*/healthz", text, re.M)
    assert dockerfile_cmd()[:2] == ["sumo", "serve"]


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = [
        line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        part
        for line in re.findall(r"^COPY\s+(.+)$", DOCKERFILE.read_text(), re.M)
        for part in line.split()[:-1]
        if not part.startswith("--")
    ]
    assert {"pyproject.toml", "README.md", "indexer", "recommender", "sumo"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not any(fnmatch(src, pat) for pat in ignored), f"{src} is in .dockerignore"
    # The feed page ships inside the package (served by recommender.api.routes.web).
    assert (ROOT / "recommender" / "web" / "index.html").exists()
