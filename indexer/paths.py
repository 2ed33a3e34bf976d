"""File paths in JSON payloads and documents, losslessly.

A POSIX file name is bytes. Python hands names that are not valid UTF-8 over as ``str``
with lone surrogates (``caf\\udce9.jpg`` for the bytes ``caf\\xe9.jpg``), which no JSON
encoder, and so no store, accepts. Such a path is stored twice: ``path`` is a readable form
(the bad bytes written as ``\\xe9`` escapes) for people and logs, and ``path_b64`` is the
exact bytes (base64) that ``unpack`` turns back into the name the file system knows. A
UTF-8 path is stored as itself, with no extra field, as it always was.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Any

RAW_KEY = "path_b64"  # in a payload ``files`` record, beside ``path``
RAW_ROOTS_KEY = "raw"  # in the roots document: readable root -> base64 bytes


def is_text(path: str) -> bool:
    """Whether ``path`` can be stored as a JSON string as it is."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def readable(path: str) -> str:
    """``path`` for people: undecodable bytes as ``\\xNN`` escapes (always valid UTF-8)."""
    if is_text(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def pack(path: str) -> dict[str, str]:
    """The JSON-safe fields that record ``path``: ``{"path"}``, plus ``path_b64`` if needed."""
    if is_text(path):
        return {"path": path}
    return {"path": readable(path), RAW_KEY: base64.b64encode(os.fsencode(path)).decode("ascii")}


def unpack(record: Mapping[str, Any]) -> str:
    """The file system's path from a record made by ``pack`` (or a plain ``{"path"}``)."""
    raw = record.get(RAW_KEY)
    if isinstance(raw, str):
        return os.fsdecode(base64.b64decode(raw))
    return str(record["path"])


def pack_roots(roots: Sequence[str]) -> dict[str, Any]:
    """The roots document's body: readable roots, and the exact bytes of those that need it."""
    body: dict[str, Any] = {"roots": [readable(r) for r in roots]}
    raw = {readable(r): pack(r)[RAW_KEY] for r in roots if not is_text(r)}
    if raw:
        body[RAW_ROOTS_KEY] = raw
    return body


def unpack_roots(body: Mapping[str, Any]) -> list[str]:
    """The roots a ``pack_roots`` body names, as file system paths."""
    raw = body.get(RAW_ROOTS_KEY) or {}
    return [unpack({"path": r, RAW_KEY: raw[r]} if r in raw else {"path": r})
            for r in body.get("roots", [])]


def item_paths(payload: Mapping[str, Any]) -> list[str]:
    """An item's file system paths: from its ``files`` records, else its ``paths`` list."""
    files = payload.get("files")
    if isinstance(files, list):
        return [unpack(r) for r in files if isinstance(r, Mapping) and "path" in r]
    return [str(p) for p in payload.get("paths") or []]
