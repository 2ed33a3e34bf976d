"""Find published CLIP weights on this machine, or say exactly why they are not here.

open_clip would retry a dead network for most of a minute and then raise a generic
``RuntimeError``; SUMO looks in the caches first, probes the host for a few seconds only, and
turns every way of not having the weights into one ``WeightsMissing`` message.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from indexer.embedder.registry import UnknownModel
from indexer.errors import WeightsMissing

HF_DEFAULT_FILE = "open_clip_pytorch_model.bin"
PROBE_TIMEOUT_S = 3.0


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if env := os.environ.get("HF_HUB_CACHE"):
        return Path(env)
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home) / "hub"


def url_cache() -> Path:
    """Where open_clip keeps weights it downloads by URL (the OpenAI ones)."""
    return Path(os.path.expanduser("~/.cache/clip"))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hf_parts(cfg: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(repo id, candidate file names, safetensors first) of a tag's hub entry."""
    hub = cfg.get("hf_hub") or ""
    if not hub:
        return None
    # "org/repo/file.bin", or "org/repo/" for the default file name
    repo, filename = os.path.split(hub)
    filename = filename or HF_DEFAULT_FILE
    names = [filename]
    if filename == HF_DEFAULT_FILE:
        names.insert(0, "open_clip_model.safetensors")
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo, names


def _cached(cfg: dict[str, Any]) -> str | None:
    if cfg.get("file"):
        return str(cfg["file"])
    if parts := _hf_parts(cfg):
        from huggingface_hub import try_to_load_from_cache

        repo, names = parts
        for name in names:
            hit = try_to_load_from_cache(repo, name, cache_dir=str(hf_hub_cache()))
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    if url := cfg.get("url"):
        target = url_cache() / os.path.basename(urlparse(url).path)
        if target.is_file():
            return str(target)
    return None


def _reachable(host: str) -> str | None:
    """None when ``host`` answers on 443, else a short reason."""
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
        return None
    except OSError as exc:
        return f"{host} is unreachable ({exc.strerror or exc})"


def _download(cfg: dict[str, Any]) -> str:
    from open_clip.pretrained import download_pretrained_from_hf, download_pretrained_from_url

    if parts := _hf_parts(cfg):
        repo, names = parts
        return str(
            download_pretrained_from_hf(repo, filename=names[-1], cache_dir=str(hf_hub_cache()))
        )
    return str(download_pretrained_from_url(cfg["url"]))


def resolve_tag(model: str, tag: str) -> tuple[str, dict[str, Any]]:
    """The local checkpoint file of ``model``/``tag`` and the tag's preprocessing config.

    Downloads only when the host answers; raises ``WeightsMissing`` otherwise.
    """
    import open_clip

    cfg: dict[str, Any] = dict(open_clip.get_pretrained_cfg(model, tag) or {})
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise UnknownModel(
            f"{model!r} has no pretrained tag {tag!r}. Known tags: {', '.join(tags) or 'none'}; "
            "or pass a local checkpoint file, or `none` for random weights (testing only)."
        )
    if hit := _cached(cfg):
        return hit, cfg
    parts = _hf_parts(cfg)
    host = "huggingface.co" if parts else urlparse(cfg.get("url", "")).hostname or "?"
    if parts and os.environ.get("HF_ENDPOINT"):
        host = urlparse(os.environ["HF_ENDPOINT"]).hostname or host
    reason = "HF_HUB_OFFLINE is set" if parts and _offline() else _reachable(host)
    if reason is None:
        try:
            return _download(cfg), cfg
        except Exception as exc:  # any network or hub failure ends in the same advice
            reason = f"the download failed: {exc}"
    raise WeightsMissing(_missing_message(model, tag, cfg, reason))


def _missing_message(model: str, tag: str, cfg: dict[str, Any], reason: str) -> str:
    if parts := _hf_parts(cfg):
        repo, names = parts
        where = f"the Hugging Face cache {hf_hub_cache()} (repo {repo}, file {names[-1]})"
    else:
        where = f"open_clip's cache {url_cache()} ({os.path.basename(cfg.get('url', ''))})"
    return (
        f"CLIP weights for model {model} with pretrained tag {tag} are not on this machine "
        f"and cannot be downloaded: {reason}. Looked in {where}. Put the file there from a "
        "machine with network access, or pass a local checkpoint with "
        "SUMO_PRETRAINED=/path/to/weights.safetensors (or --pretrained FILE), or use "
        "SUMO_PRETRAINED=none for random weights (testing only: such vectors mean nothing)."
    )
