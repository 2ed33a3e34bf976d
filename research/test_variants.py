"""The studies' constant overrides (run by the suite: ``research`` is among pytest's paths)."""

from __future__ import annotations

import pytest
from variants import UnknownConstant, overridden, override, patched


def test_variants_override_sumo_constants_by_name() -> None:
    import recommender.policies.evidence as evidence_module
    import recommender.policies.sumo as sumo_module

    before = sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.COVER
    try:
        override(["BETA1=0.7", "PRIOR_G=1,0.25", "COVER=2"])
        assert sumo_module.BETA1 == 0.7 and isinstance(sumo_module.BETA1, float)
        assert evidence_module.PRIOR_G == (1.0, 0.25)
        assert sumo_module.COVER == 2 and isinstance(sumo_module.COVER, int)
    finally:
        sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.COVER = before
    for bad in ("NOPE=1", "unit=1", "BETA1", "PRIOR_G=1", "SOURCES=1.5", "COVER=maybe"):
        with pytest.raises((UnknownConstant, ValueError)):
            override([bad])
    assert before == (sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.COVER)


def test_overridden_restores_every_constant_even_after_an_error() -> None:
    import recommender.policies.sumo as sumo_module

    before = sumo_module.CANDIDATES
    with overridden(["CANDIDATES=20"]):
        assert sumo_module.CANDIDATES == 20
    assert before == sumo_module.CANDIDATES
    with pytest.raises(UnknownConstant), overridden(["CANDIDATES=30", "NOPE=1"]):
        pass
    assert before == sumo_module.CANDIDATES


def test_patched_restores_the_module_even_after_an_error() -> None:
    import recommender.policies.sumo as sumo_module

    before = sumo_module.CENTRES
    with pytest.raises(RuntimeError), patched(sumo_module, {"CENTRES": 4}):
        assert sumo_module.CENTRES == 4
        raise RuntimeError
    assert before == sumo_module.CENTRES
