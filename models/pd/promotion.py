"""The promotion gate: may the challenger replace the champion? A pure decision with reasons.

Both models are scored on the same out-of-time rows (the challenger's test set). The
challenger passes when its AUC is not worse than the champion's by more than the tolerance
and its calibration traffic light is not red. An analyst may override a refusal, but only
with a written reason, which is recorded on the model version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Largest AUC loss against the champion that still allows promotion (absolute AUC points).
DEFAULT_AUC_TOLERANCE = 0.005


@dataclass(frozen=True)
class GateDecision:
    approved: bool
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "approved" if self.approved else "refused"
        return f"promotion {verdict}: " + "; ".join(self.reasons)


def promotion_decision(
    challenger_auc: float,
    champion_auc: float | None,
    challenger_traffic_light: str,
    tolerance: float = DEFAULT_AUC_TOLERANCE,
) -> GateDecision:
    """Apply the gate. `champion_auc` is None when there is no champion yet.

    Without a champion the daily rescoring cannot run at all, so the first model is always
    promoted; a red light is then reported as a warning to act on, not a refusal.
    """
    reasons: list[str] = []
    ok = True
    if champion_auc is None:
        reasons.append("no champion yet: the first model becomes champion")
        if challenger_traffic_light == "red":
            reasons.append("WARNING: its calibration traffic light is red on the out-of-time test")
        return GateDecision(True, reasons)
    if challenger_traffic_light == "red":
        ok = False
        reasons.append("calibration traffic light is red on the out-of-time test")
    else:
        reasons.append(f"calibration traffic light is {challenger_traffic_light}")
    if challenger_auc < champion_auc - tolerance:
        ok = False
        reasons.append(
            f"AUC {challenger_auc:.4f} is worse than the champion's {champion_auc:.4f} "
            f"by more than the tolerance {tolerance:.4f}"
        )
    else:
        reasons.append(
            f"AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} (tolerance {tolerance:.4f})"
        )
    return GateDecision(ok, reasons)
