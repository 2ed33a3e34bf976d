"""The studies' constant overrides (run by the suite: ``research`` is among pytest's paths)."""

from __future__ import annotations

import pytest
from variants import UnknownConstant, override


def test_variants_override_sumo_constants_by_name() -> None:
    import recommender.policies.evidence as evidence_module
    import recommender.policies.sumo as sumo_module

    before = sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.PROBE
    try:
        override(["BETA1=0.7", "PRIOR_G=1,0.25", "PROBE=0"])
        assert sumo_module.BETA1 == 0.7 and isinstance(sumo_module.BETA1, float)
        assert evidence_module.PRIOR_G == (1.0, 0.25)
        assert sumo_module.PROBE is False  # not bool("0")
        override(["PROBE=on"])
        assert sumo_module.PROBE is True
    finally:
        sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.PROBE = before
    for bad in ("NOPE=1", "unit=1", "BETA1", "PRIOR_G=1", "SOURCES=1.5", "PROBE=maybe"):
        with pytest.raises((UnknownConstant, ValueError)):
            override([bad])
    assert before == (sumo_module.BETA1, evidence_module.PRIOR_G, sumo_module.PROBE)
