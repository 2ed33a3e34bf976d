"""Tuning runs of SUMO: its constants overridden by name for one process.

``research/bench_variants.py --set COVER=2`` and ``research/diagnose_sumo.py --set ...``
patch SUMO's module constants for the length of one process, so every "tried and not kept"
row in docs/research.md is one command, without a constant kept in the code for it. The
constants live in ``recommender.policies.sumo`` (the optimizer, the candidate queries),
``recommender.policies.evidence`` (the dwell model) and ``recommender.regions`` (the map,
built after the override by the throw-away store).
Both run the full benchmark's users, runner and capture (``recommender.sim.harness``), in this
process, on a smaller corpus.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import ClassVar

import recommender.policies.evidence as evidence_module
import recommender.policies.sumo as sumo_module
import recommender.regions as regions_module
from indexer.store.base import Hit
from recommender.policies import REGISTRY
from recommender.policies.sumo import SumoPolicy
from recommender.state import UserState


class UnknownConstant(ValueError):
    pass


MODULES = (sumo_module, evidence_module, regions_module)


def override(assignments: Iterable[str]) -> None:
    """Apply ``NAME=VALUE`` assignments to SUMO's constants (each keeps its type; a pair
    like ``PRIOR_G=1.0,0.5`` is given as comma-separated numbers, a switch as 1/0)."""
    for a in assignments:
        name, _, value = a.partition("=")
        module = next((m for m in MODULES if name.isupper() and hasattr(m, name)), None)
        if module is None:
            where = " or ".join(m.__name__ for m in MODULES)
            raise UnknownConstant(f"{a}: {where} has no constant {name!r}")
        old = getattr(module, name)
        new = (tuple(type(o)(v) for o, v in zip(old, value.split(","), strict=True))
               if isinstance(old, tuple) else _flag(value) if isinstance(old, bool)
               else type(old)(value))
        setattr(module, name, new)


@contextmanager
def overridden(assignments: Iterable[str]) -> Iterator[None]:
    """``override`` for the length of a ``with`` block, the constants restored after (a
    paired run: baseline and variant over one store and the same users)."""
    saved = [(m, n, getattr(m, n)) for m in MODULES for n in vars(m) if n.isupper()]
    try:
        override(assignments)
        yield
    finally:
        for m, n, v in saved:
            setattr(m, n, v)


def _flag(value: str) -> bool:
    # bool("0") is True: a switch is spelled out instead.
    words = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
    if value.lower() not in words:
        raise ValueError(f"{value!r} is not a switch (1/0, true/false, on/off)")
    return words[value.lower()]


def override_or_exit(assignments: Iterable[str]) -> None:
    """``override`` for a command line: a bad ``--set`` ends the script with its reason."""
    try:
        override(assignments)
    except (UnknownConstant, ValueError) as e:
        raise SystemExit(f"--set {e}") from None


@contextmanager
def patched(module: ModuleType, values: Mapping[str, object]) -> Iterator[None]:
    """``module``'s attributes set to ``values`` for the length of a ``with`` block."""
    kept = {name: getattr(module, name) for name in values}
    try:
        for name, value in values.items():
            setattr(module, name, value)
        yield
    finally:
        for name, value in kept.items():
            setattr(module, name, value)


class PatchedPolicy(SumoPolicy):
    """``sumo`` with some names of ``recommender.policies.sumo`` set otherwise during its
    own recommendations: constants, for timing beside ``sumo`` in one process (capture is
    ``bench_variants.py --set``), or ``RegionEvidence``, a study's subclass computing the
    posterior otherwise. Updates are ``sumo``'s own, so the stored sums are the same."""

    patches: ClassVar[dict[str, object]] = {}

    def recommend(self, state: UserState, limit: int, exclude: Collection[str]) -> list[Hit]:
        with patched(sumo_module, self.patches):
            return super().recommend(state, limit, exclude)


def study_policy(name: str, description: str, **patches: object) -> type[PatchedPolicy]:
    """A ``PatchedPolicy`` with ``patches``, registered as ``name``."""
    cls = type(name.title().replace("-", ""), (PatchedPolicy,),
               {"name": name, "description": description, "patches": patches})
    REGISTRY[name] = cls
    return cls
