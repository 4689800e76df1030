"""The promotion gate refuses a worse or red challenger and accepts a better one."""

from __future__ import annotations

import pytest

from models.pd.promotion import promotion_decision


@pytest.mark.parametrize("light", ["green", "red"])
def test_first_model_becomes_champion_with_a_warning_when_red(light):
    decision = promotion_decision(0.70, None, light)
    assert decision.approved
    assert "first model" in decision.summary()
    assert ("WARNING" in decision.summary()) is (light == "red")


@pytest.mark.parametrize(
    ("challenger", "champion", "light", "approved"),
    [
        (0.80, 0.78, "green", True),  # better
        (0.778, 0.78, "yellow", True),  # worse but within tolerance
        (0.76, 0.78, "green", False),  # worse beyond tolerance
        (0.85, 0.78, "red", False),  # better but badly calibrated
    ],
)
def test_gate(challenger, champion, light, approved):
    decision = promotion_decision(challenger, champion, light, tolerance=0.005)
    assert decision.approved is approved
    if not approved:
        assert any(("worse" in r) or ("red" in r) for r in decision.reasons)
