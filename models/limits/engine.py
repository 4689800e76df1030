"""The limit policy engine: one recommended action per (policyholder, buyer) credit limit.

Pure and vectorised (2 million pairs in seconds, no Python loop per row). Input: the
`pairs` frame built by `models.limits.inputs.assemble_pairs` (one row per limit or pending
request, with the buyer's PD, grade, previous grade, capacity inputs and last event dates);
output: the recommendations table (`RECOMMENDATION_COLUMNS`).

Words underwriters use:
- *capacity*: the most cover the insurer wants on one buyer across all its policyholders,
  from its equity and turnover (or, without usable statements, its payments within terms);
- *aggregate cover*: the sum of the buyer's limits over its policyholders;
- *expected loss* (EL): PD x LGD x covered amount x the policy's indemnity %, where the
  covered amount is the limit, capped at the receivable expected on the buyer (its
  exposure, or the requested amount while a request is pending).

Order of the rules (each documented in config/limit_policy.yaml):
1. cancel on a cancelling event (insolvency, liquidation), a recent claim, or a cancel grade;
2. decrease when aggregate cover exceeds capacity (pro rata over the policyholders), after
   a downgrade of N notches, or with invoices overdue; one cut at most `max_step` of the limit;
3. increase a pending request at good grades, within the buyer's remaining capacity (partial
   grants allowed), not soon after a decrease;
4. hysteresis: changes below the minimum size are maintained;
5. nothing is proposed that would not change the book: no reduction of a limit already at
   0, no reduction already decided and waiting for its notice period, and no proposal on a
   pair an underwriter decided recently unless something material changed since (grade,
   event, request, exposure over the limit);
6. excess-of-loss pairs within the discretionary limit stay the policyholder's decision;
7. the system's authority: within it the proposal is decided automatically (recorded with
   the rule that allowed it); beyond it, referred to a human with a deadline.
Reductions take effect after the policy's notice period (at once on a cancelling event);
what was shipped before stays covered, so the expected loss after a cut still counts the
exposure. The review queue puts what a human must decide first, then the money at risk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data.reference import EVENT_TYPES
from models.limits.policy import ACTIONS, LimitPolicy
from models.master_scale import MASTER_SCALE

#: Columns `recommend_limits` needs in `pairs` (see models/limits/inputs.py).
PAIR_COLUMNS = [
    "as_of_date",
    "policyholder_id",
    "buyer_id",
    "scheme",
    "indemnity_pct",
    "discretionary_limit",
    "country",
    "political_risk_class",
    "pd",
    "grade",
    "previous_grade",
    "limit_amount",
    "requested_amount",
    "exposure",
    "equity",
    "turnover",
    "statement_age_months",
    "paid_within_terms_12m",
    "oldest_overdue_days",
    "last_decrease_date",
    *(f"last_{event}_date" for event in sorted(EVENT_TYPES)),
    "scheduled_amount",
    "scheduled_date",
    "last_decision_date",
    "last_decision_grade",
    "request_date",
    "previous_action",
]

RECOMMENDATION_COLUMNS = [
    "as_of_date",
    "policyholder_id",
    "buyer_id",
    "scheme",
    "country",
    "political_risk_class",
    "grade",
    "previous_grade",
    "pd",
    "limit_amount",
    "requested_amount",
    "exposure",
    "capacity",
    "capacity_basis",
    "aggregate_limit",
    "action",
    "proposed_action",
    "recommended_amount",
    "change",
    "reason_codes",
    "explanation",
    "expected_loss_before",
    "expected_loss_after",
    "priority",
    "human_required",
    "automatic_rule",
    "effective_date",
    "notice_days",
    "deadline",
    "new_today",
    "model_version",
    "policy_version",
]


@dataclass(frozen=True)
class Reason:
    code: str
    text: str


#: Every reason code, in the order they are listed on a recommendation (most severe first).
REASONS: tuple[Reason, ...] = (
    Reason("NO_SCORE", "no score for the buyer at as-of: an underwriter must look"),
    Reason("IN_DEFAULT", "buyer in default"),
    Reason("INSOLVENCY", "insolvency filed"),
    Reason("LIQUIDATION", "in liquidation"),
    Reason("CANCEL_EVENT", "other cancelling event"),
    Reason("CLAIM_FILED", "claim filed on the buyer"),
    Reason("CANCEL_GRADE", "grade at the cancellation level"),
    Reason("OVER_CAPACITY", "aggregate cover above the buyer's capacity"),
    Reason("DOWNGRADE", "downgraded"),
    Reason("OVERDUE", "invoices overdue"),
    Reason("STEP_CAPPED", "cut limited to the maximum step"),
    Reason("COUNTRY_CAP", "country cap for its political risk"),
    Reason("CAPACITY_FROM_PAYMENTS", "capacity from payment history (no usable statement)"),
    Reason("REQUEST_GRANTED", "request granted in full"),
    Reason("REQUEST_PARTIAL", "request granted in part (capacity)"),
    Reason("REQUEST_DECLINED_WARNING", "request declined: downgrade or overdue invoices"),
    Reason("REQUEST_DECLINED_GRADE", "request declined: grade too weak"),
    Reason("REQUEST_DECLINED_CAPACITY", "request declined: no capacity left"),
    Reason("REQUEST_DECLINED_RECENT_DECREASE", "request declined: recent decrease"),
    Reason("BELOW_MIN_CHANGE", "change too small to act on"),
    Reason("NO_COVER", "no cover to reduce"),
    Reason("CHANGE_SCHEDULED", "the change is already decided and waits for its notice period"),
    Reason("DECIDED_RECENTLY", "decided recently, nothing material changed since"),
    Reason("WITHIN_DISCRETIONARY_LIMIT", "within the policyholder's discretionary limit"),
    Reason("ABOVE_AUTHORITY", "above the automatic authority"),
    Reason("NO_CHANGE", "within capacity, no warning signs"),
)
REASON_CODES = [r.code for r in REASONS]
_BIT = {r.code: np.int64(1) << np.int64(k) for k, r in enumerate(REASONS)}
_VERB = {
    "increase": "Increase",
    "decrease": "Decrease",
    "maintain": "Maintain",
    "cancel": "Cancel",
    "refer": "Refer",
}


def _by_grade(table: dict[int, float], grade: np.ndarray) -> np.ndarray:
    """Look up a per-grade multiple (0 for grades not in the table)."""
    lookup = np.zeros(MASTER_SCALE.default_grade + 1)
    for g, value in table.items():
        lookup[g] = value
    return lookup[np.clip(grade, 0, MASTER_SCALE.default_grade)]


def _grades(pairs: pd.DataFrame) -> np.ndarray:
    """Grades as int64, 0 where the buyer has no score (0 has no capacity multiple)."""
    grade = pairs["grade"].to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(grade), 0, grade).astype("int64")


def _per_buyer_sum(codes: np.ndarray, values: np.ndarray, n_buyers: int) -> np.ndarray:
    """Sum of `values` over each row's buyer, broadcast back to the rows."""
    return np.bincount(codes, weights=values, minlength=n_buyers)[codes]


def buyer_capacity(pairs: pd.DataFrame, policy: LimitPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(capacity, basis) per row: the buyer's capacity and where it comes from.

    Statement basis: min(max(equity, 0) x equity multiple, turnover x turnover multiple)
    by grade, from a statement no older than the configured age; without one, payments
    within terms x payment multiple. Then the country cap of its political-risk class.
    """
    cap = policy.capacity
    grade = _grades(pairs)
    equity = pairs["equity"].to_numpy(dtype="float64", na_value=np.nan)
    turnover = pairs["turnover"].to_numpy(dtype="float64", na_value=np.nan)
    age = pairs["statement_age_months"].to_numpy(dtype="float64", na_value=np.nan)
    paid = pairs["paid_within_terms_12m"].to_numpy(dtype="float64", na_value=0.0)
    from_equity = np.maximum(equity, 0.0) * _by_grade(cap.equity_multiple, grade)
    from_turnover = np.where(turnover > 0, turnover, np.nan) * _by_grade(
        cap.turnover_multiple, grade
    )
    from_statement = np.fmin(from_equity, from_turnover)  # NaN only when both are missing
    usable = (age <= cap.max_statement_age_months) & ~np.isnan(from_statement)
    capacity = np.where(usable, from_statement, paid * _by_grade(cap.payment_multiple, grade))
    basis = np.where(usable, "statement", "payments")
    country_cap = np.full(len(pairs), np.inf)
    classes = pairs["political_risk_class"].to_numpy(dtype="float64", na_value=np.nan)
    for risk_class, amount in policy.country_caps.items():
        country_cap[classes == risk_class] = amount
    capped = country_cap < capacity
    capacity = np.where(capped, country_cap, capacity)
    basis = np.where(capped, "country cap", basis)
    return capacity, basis


def _date_within(dates: pd.Series, as_of: pd.Series, days: int) -> np.ndarray:
    """True where `dates` is known and no more than `days` before as-of."""
    age = (as_of - dates).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    return age <= days


def _decided_recently(
    pairs: pd.DataFrame, grade: np.ndarray, limit: np.ndarray, policy: LimitPolicy
) -> np.ndarray:
    """Pairs decided (by an underwriter or automatically) within
    `queue.reconsider_after_days` with nothing material since: same grade, no event after the decision, no open request since the decision day,
    exposure within the limit. Such a pair is not proposed
    again: a limit does not move every day as inputs drift."""
    decided_on = pairs["last_decision_date"]
    recent = _date_within(decided_on, pairs["as_of_date"], policy.queue.reconsider_after_days)
    recent &= ~(((pairs["as_of_date"] - decided_on).dt.days.to_numpy(na_value=-1)) < 0)
    at_decision = pairs["last_decision_grade"].to_numpy(dtype="float64", na_value=np.nan)
    material = ~(at_decision == grade)
    for column in [f"last_{event}_date" for event in sorted(EVENT_TYPES)]:
        material |= (pairs[column] > decided_on).to_numpy(dtype=bool, na_value=False)
    # a request still open was not answered by that decision, even when it came the same day
    material |= (pairs["request_date"] >= decided_on).to_numpy(dtype=bool, na_value=False)
    material |= pairs["exposure"].to_numpy(dtype="float64", na_value=0.0) > limit
    return recent & ~material


def automatic_rules(
    proposed: np.ndarray,
    severe: np.ndarray,
    grade: np.ndarray,
    recommended: np.ndarray,
    change: np.ndarray,
    policy: LimitPolicy,
) -> np.ndarray:
    """The policy rule under which the system decides each proposal on its own ('' = a
    human must decide): cancellations on a cancelling event; cuts and cancellations on the
    grade within the change authority; increases within the increase authority at a good
    enough grade. A resulting limit above `max_amount` always needs a human."""
    auth = policy.authority
    within = (np.abs(change) <= auth.max_change) & (recommended <= auth.max_amount)
    cancel = proposed == "cancel"
    rules = np.full(len(proposed), "", dtype=object)
    rules[(proposed == "decrease") & within] = "decrease_within_authority"
    rules[cancel & ~severe & within] = "cancel_on_grade"
    rules[cancel & severe & auth.cancel_on_events] = "cancel_on_event"
    rules[
        (proposed == "increase")
        & within
        & (change <= auth.max_increase)
        & (grade <= auth.increase_max_grade)
    ] = "increase_within_authority"
    return rules


def recommend_limits(pairs: pd.DataFrame, policy: LimitPolicy, model_version: str) -> pd.DataFrame:
    """The recommendations table: one action per row of `pairs` (same order)."""
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"limit inputs lack columns {missing}")
    n = len(pairs)
    as_of = pairs["as_of_date"]
    unscored = pairs["grade"].isna().to_numpy()
    grade = _grades(pairs)
    previous = pairs["previous_grade"].to_numpy(dtype="float64", na_value=np.nan)
    limit = pairs["limit_amount"].to_numpy(dtype="float64")
    requested = pairs["requested_amount"].to_numpy(dtype="float64", na_value=np.nan)
    pending = requested > limit  # a request for more cover than granted today
    bits = np.zeros(n, dtype="int64")

    def flag(code: str, mask: np.ndarray) -> None:
        np.bitwise_or(bits, _BIT[code], out=bits, where=mask)

    # 1. cancellations: events and grades; no step limit, no hysteresis.
    in_default = grade >= MASTER_SCALE.default_grade
    event_hit = np.zeros(n, dtype=bool)
    for event in policy.cancel.events:
        hit = pairs[f"last_{event}_date"].notna().to_numpy()
        flag(
            {"insolvency": "INSOLVENCY", "liquidation": "LIQUIDATION"}.get(event, "CANCEL_EVENT"),
            hit,
        )
        event_hit |= hit
    claim = _date_within(pairs["last_claim_filed_date"], as_of, policy.cancel.claim_lookback_days)
    flag("CLAIM_FILED", claim)
    severe = event_hit | claim
    grade_cancel = (grade >= policy.cancel.grade) & ~in_default
    flag("IN_DEFAULT", in_default)
    flag("CANCEL_GRADE", grade_cancel)
    cancel = severe | in_default | grade_cancel

    # 2. decreases: over capacity (pro rata), downgrade, overdue; capped at max_step.
    capacity, basis = buyer_capacity(pairs, policy)
    buyer_codes, buyers = pd.factorize(pairs["buyer_id"])
    aggregate = _per_buyer_sum(buyer_codes, limit, len(buyers))
    over = (aggregate > capacity * (1 + 1e-9)) & (limit > 0)
    share = np.divide(limit, aggregate, out=np.zeros(n), where=aggregate > 0)
    dec = policy.decrease
    downgrade = (grade - previous) >= dec.downgrade_notches
    overdue = (
        pairs["oldest_overdue_days"].to_numpy(dtype="float64", na_value=0.0) >= dec.overdue_days
    ) | _date_within(pairs["last_overdue_notification_date"], as_of, 91)
    target = limit.copy()
    target = np.where(over, np.minimum(target, capacity * share), target)
    target = np.where(downgrade, np.minimum(target, limit * (1 - dec.downgrade_cut)), target)
    target = np.where(overdue, np.minimum(target, limit * (1 - dec.overdue_cut)), target)
    floor = limit * (1 - dec.max_step)
    step_capped = target < floor
    target = np.maximum(target, floor)
    cut = (over | downgrade | overdue) & (target < limit)

    # 3. increases on pending requests, within the buyer's remaining capacity.
    recent_decrease = _date_within(
        pairs["last_decrease_date"], as_of, policy.hysteresis.no_increase_after_decrease_days
    )
    weak = grade > policy.increase.max_grade
    # Warning signs block any increase, also where the limit is 0 and nothing can be cut.
    warned = downgrade | overdue
    considered = pending & ~cancel & ~cut & ~warned
    eligible = considered & ~weak & ~recent_decrease
    # The free capacity is shared among the eligible requests only, pro rata to what each asks.
    asked = np.where(eligible, requested - limit, 0.0)
    headroom = np.maximum(capacity - aggregate, 0.0)
    asked_by_buyer = _per_buyer_sum(buyer_codes, asked, len(buyers))
    room = headroom * np.divide(asked, asked_by_buyer, out=np.zeros(n), where=asked_by_buyer > 0)
    grant = eligible & (room > 0)
    granted = np.where(grant, limit + np.minimum(asked, room), limit)

    recommended = np.where(cancel, 0.0, np.where(cut, target, granted))

    # 4. hysteresis: too small a change is not worth a decision.
    hyst = policy.hysteresis
    change = recommended - limit
    small = (
        ~cancel
        & (change != 0)
        & (
            (np.abs(change) < hyst.min_change_amount)
            | (np.abs(change) < hyst.min_change_share * limit)
        )
    )
    recommended = np.where(small, limit, recommended)

    proposed = np.select(
        [cancel, recommended > limit, recommended < limit],
        ["cancel", "increase", "decrease"],
        "maintain",
    ).astype(object)

    # 5. nothing that would not change the book.
    reducing = (proposed == "cancel") | (proposed == "decrease")
    no_cover = reducing & (limit <= 0) & ~pending
    scheduled = pairs["scheduled_amount"].to_numpy(dtype="float64", na_value=np.nan)
    already = reducing & ~no_cover & (scheduled <= recommended + hyst.min_change_amount)
    decided = (
        _decided_recently(pairs, grade, limit, policy)
        & (proposed != "maintain")
        & ~no_cover
        & ~already
    )
    quiet = no_cover | already | decided
    recommended = np.where(quiet, limit, recommended)
    proposed = np.where(quiet, "maintain", proposed)

    # 6. excess of loss: within the discretionary limit it is the policyholder's call.
    discretionary = pairs["discretionary_limit"].to_numpy(dtype="float64", na_value=0.0)
    xol = (
        policy.excess_of_loss.respect_discretionary_limit
        & (pairs["scheme"].to_numpy() == "excess_of_loss")
        & ~cancel
        & (limit <= discretionary)
        & (np.fmax(recommended, np.where(pending, requested, 0.0)) <= discretionary)
    )
    recommended = np.where(xol, limit, recommended)
    proposed = np.where(xol, "maintain", proposed)

    # 7. the system's authority: automatic within it, referred to a human beyond.
    change = recommended - limit
    rule = automatic_rules(proposed, severe, grade, recommended, change, policy)
    above = (proposed != "maintain") & (rule == "")
    action = np.where(above, "refer", proposed)
    # Buyers without a score: nothing is decided automatically, except on a cancelling
    # event (a fact, not a score).
    unscored = unscored & ~severe
    recommended = np.where(unscored, limit, recommended)
    proposed = np.where(unscored, "maintain", proposed)
    action = np.where(unscored, "refer", action)
    rule = np.where(unscored, "", rule)
    change = recommended - limit

    acted_up = proposed == "increase"
    flag("OVER_CAPACITY", over & cut & ~cancel & ~xol)
    flag("DOWNGRADE", downgrade & ~cancel & ~xol)
    flag("OVERDUE", overdue & ~cancel & ~xol)
    flag("STEP_CAPPED", step_capped & cut & ~cancel & ~small & ~xol)
    flag("COUNTRY_CAP", (basis == "country cap") & ((over & cut) | (pending & ~grant)) & ~cancel)
    flag("CAPACITY_FROM_PAYMENTS", (basis == "payments") & ((over & cut) | pending) & ~cancel)
    full = granted >= requested
    flag("REQUEST_GRANTED", acted_up & full)
    flag("REQUEST_PARTIAL", acted_up & ~full)
    flag("REQUEST_DECLINED_WARNING", pending & ~cancel & ~cut & warned & ~xol)
    flag("REQUEST_DECLINED_GRADE", considered & weak & ~xol)
    flag("REQUEST_DECLINED_RECENT_DECREASE", considered & ~weak & recent_decrease & ~xol)
    flag("REQUEST_DECLINED_CAPACITY", considered & ~weak & ~recent_decrease & ~grant & ~xol)
    flag("BELOW_MIN_CHANGE", small & ~xol)
    flag("NO_COVER", no_cover & ~xol)
    flag("CHANGE_SCHEDULED", already & ~xol)
    flag("DECIDED_RECENTLY", decided & ~xol)
    flag("WITHIN_DISCRETIONARY_LIMIT", xol)
    flag("ABOVE_AUTHORITY", above)
    bits[unscored] = _BIT["NO_SCORE"]
    flag("NO_CHANGE", bits == 0)

    el_before, el_after = expected_losses(pairs, recommended, policy.lgd)
    notice = np.where(
        (proposed == "cancel") | (proposed == "decrease"),
        np.where(severe & policy.notice.immediate_on_events, 0, policy.notice.days),
        0,
    ).astype("int64")
    acting = proposed != "maintain"
    as_of_days = as_of.to_numpy().astype("datetime64[D]")
    effective = np.where(acting, as_of_days + notice.astype("timedelta64[D]"), np.datetime64("NaT"))
    human = action == "refer"
    deadline = np.where(
        human,
        np.busday_offset(as_of_days, policy.queue.deadline_business_days, roll="forward"),
        np.datetime64("NaT"),
    )
    before = pairs["previous_action"].astype(object).to_numpy()
    new_today = (action != "maintain") & ~(before == proposed)
    out = pd.DataFrame(
        {
            "as_of_date": pairs["as_of_date"].to_numpy(),
            "policyholder_id": pairs["policyholder_id"].array,
            "buyer_id": pairs["buyer_id"].array,
            "scheme": pairs["scheme"].array,
            "country": pairs["country"].array,
            "political_risk_class": pairs["political_risk_class"].to_numpy(),
            "grade": pairs["grade"].astype("Int64").array,
            "previous_grade": pd.array(previous, dtype="Float64").astype("Int64"),
            "pd": pairs["pd"].to_numpy(dtype="float64"),
            "limit_amount": limit,
            "requested_amount": requested,
            "exposure": pairs["exposure"].to_numpy(dtype="float64"),
            "capacity": capacity,
            "capacity_basis": basis,
            "aggregate_limit": aggregate,
            "action": action,
            "proposed_action": proposed,
            "recommended_amount": recommended,
            "change": change,
            "reason_codes": reason_strings(bits),
            "explanation": "",
            "expected_loss_before": el_before,
            "expected_loss_after": el_after,
            "priority": review_priority(
                action, el_before, el_after, np.abs(change) * pairs["pd"].to_numpy(), policy
            ),
            "human_required": human,
            "automatic_rule": pd.array(np.where(rule == "", None, rule), dtype="str"),
            "effective_date": effective.astype("datetime64[ns]"),
            "notice_days": notice,
            "deadline": deadline.astype("datetime64[ns]"),
            "new_today": new_today,
            "model_version": str(model_version),
            "policy_version": policy.version,
        }
    )
    out["explanation"] = explanations(out, bits)
    return out


def expected_losses(
    pairs: pd.DataFrame, recommended: np.ndarray, lgd: float
) -> tuple[np.ndarray, np.ndarray]:
    """EL before and after: PD x LGD x covered amount x indemnity %.

    Covered = the limit capped at the receivable expected on the buyer: its exposure, or
    the requested amount while a request for more is pending (that is what the
    policyholder intends to ship). After a cut or a cancellation, what was shipped under
    the old limit stays covered until paid: the covered amount never falls below the
    exposure within the old limit.
    """
    limit = pairs["limit_amount"].to_numpy(dtype="float64")
    requested = pairs["requested_amount"].to_numpy(dtype="float64", na_value=np.nan)
    exposure = pairs["exposure"].to_numpy(dtype="float64")
    expected_exposure = np.where(requested > limit, np.fmax(exposure, requested), exposure)
    rate = (
        pairs["pd"].to_numpy(dtype="float64")
        * lgd
        * pairs["indemnity_pct"].to_numpy(dtype="float64")
        / 100.0
    )
    kept = np.minimum(exposure, limit)  # shipped under the old limit: stays covered
    after = np.minimum(expected_exposure, recommended)
    return (
        rate * np.minimum(expected_exposure, limit),
        rate * np.where(recommended < limit, np.maximum(after, kept), after),
    )


def combine_recommendations(parts: list[pd.DataFrame], policy: LimitPolicy) -> pd.DataFrame:
    """Recommendations computed per buyer partition, as one table equal to what
    `recommend_limits` gives on all pairs at once: ordered by (policyholder, buyer), review
    priority ranked across the whole portfolio. (Every rule is per buyer or per pair; only
    the review queue's rank spans partitions.)"""
    filled = [p for p in parts if len(p)]
    if len(filled) <= 1:
        return filled[0] if filled else parts[0]
    out = pd.concat(filled, ignore_index=True).sort_values(
        ["policyholder_id", "buyer_id"], kind="stable", ignore_index=True
    )
    out["priority"] = review_priority(
        out["action"].to_numpy(),
        out["expected_loss_before"].to_numpy(),
        out["expected_loss_after"].to_numpy(),
        out["change"].abs().to_numpy() * out["pd"].to_numpy(),
        policy,
    )
    return out


def review_priority(
    action: np.ndarray,
    el_before: np.ndarray,
    el_after: np.ndarray,
    cover_at_risk: np.ndarray,
    policy: LimitPolicy,
) -> np.ndarray:
    """Rank 1..n for the review queue: what a human must decide first, then the size of the
    expected-loss change, then the cover change at risk (|change| x PD), then the action's
    weight (the policy's `priority_weights`)."""
    weights = policy.priority_weights
    weight = np.zeros(len(action))
    for name in ACTIONS:
        weight[action == name] = weights.get(name, 0)
    human = np.asarray(action) == "refer"
    order = np.lexsort(
        (-weight, -np.nan_to_num(cover_at_risk), -np.abs(el_before - el_after), ~human)
    )
    rank = np.empty(len(action), dtype="int64")
    rank[order] = np.arange(1, len(action) + 1)
    return rank


def reason_strings(bits: np.ndarray) -> np.ndarray:
    """Reason codes joined by '|' per row (built once per distinct combination)."""
    combos, inverse = np.unique(bits, return_inverse=True)
    text = np.array(
        ["|".join(c for c in REASON_CODES if int(combo) & int(_BIT[c])) for combo in combos],
        dtype=object,
    )
    return text[inverse.ravel()]


def _reason_texts(bits: np.ndarray) -> np.ndarray:
    combos, inverse = np.unique(bits, return_inverse=True)
    text = np.array(
        ["; ".join(r.text for r in REASONS if int(combo) & int(_BIT[r.code])) for combo in combos],
        dtype=object,
    )
    return text[inverse.ravel()]


def money_text(amounts: np.ndarray) -> pa.Array:
    """'EUR 350k' / 'EUR 1.2M' for each amount, as an Arrow string array (vectorised)."""
    x = np.asarray(amounts, dtype="float64")
    # below EUR 10k one decimal ('EUR 2.5k'), so small amounts never read as 'EUR 0k'
    thousands = pc.cast(
        pa.array(np.where(x < 9_950, np.round(x / 100) / 10, np.round(x / 1e3))), pa.string()
    )
    millions = pc.cast(pa.array(np.round(x / 1e5) / 10), pa.string())
    big = pa.array(x >= 999_500)
    body = pc.if_else(
        big,
        pc.binary_join_element_wise(millions, "M", ""),
        pc.binary_join_element_wise(thousands, "k", ""),
    )
    body = pc.if_else(pa.array(x == 0), pa.scalar("0"), body)
    return pc.binary_join_element_wise("EUR ", body, "")


def explanations(recs: pd.DataFrame, bits: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """One line per row: 'Decrease EUR 200k -> EUR 100k (grade 4 -> 7): <reasons>'."""
    verbs = pa.array(pd.Series(recs["action"]).map(_VERB).to_numpy(dtype=object), pa.string())
    grade = pc.cast(pa.array(recs["grade"].astype("Int64")), pa.string())
    previous = pc.cast(pa.array(recs["previous_grade"].astype("Int64")), pa.string())
    grade_text = pc.if_else(
        pc.is_null(grade),
        pa.scalar("no grade"),
        pc.if_else(
            pc.fill_null(pc.equal(previous, grade), True),
            pc.binary_join_element_wise("grade ", grade, ""),
            pc.binary_join_element_wise("grade ", previous, " -> ", grade, ""),
        ),
    )
    line = pc.binary_join_element_wise(
        verbs,
        " ",
        money_text(recs["limit_amount"].to_numpy()),
        " -> ",
        money_text(recs["recommended_amount"].to_numpy()),
        " (",
        grade_text,
        "): ",
        pa.array(_reason_texts(bits), pa.string()),
        "",
    )
    return line.to_pandas().array  # stays Arrow-backed text: no Python object per row
