"""Commands of the decision loop: the underwriters' queue and decisions, policyholders'
limit requests, users and the decision store's schema."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import pandas as pd
import typer

from flows.cli.app import LakeOption, app, cli_date, fail, run_context
from flows.cli.output import OUT, compact_money

users_app = typer.Typer(
    help="Users of the decision loop and their authority.", no_args_is_help=True
)
db_app = typer.Typer(help="The decision store's database.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")

FORMATS = ("table", "csv", "json")
FormatOption = Annotated[
    str, typer.Option("--format", help="table (terminal), csv or json (for other systems).")
]
QUEUE_COLUMNS = [
    "id", "priority", "deadline", "new_today", "policyholder_id", "buyer_id", "buyer_name",
    "country", "grade", "action", "proposed_action", "limit_amount", "recommended_amount",
    "requested_amount", "exposure", "expected_loss_before", "expected_loss_after", "explanation",
    "as_of_date",
]  # fmt: skip


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")


def _emit(frame: pd.DataFrame, fmt: str, title: str, table_rows) -> None:
    """A frame as CSV or JSON on stdout (whole, machine-readable) or as a table; the CSV
    is spreadsheet-safe like every CSV export (`data.lake.spreadsheet_safe`)."""
    if fmt == "csv":
        from data.lake import spreadsheet_safe

        spreadsheet_safe(frame).to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", indent=1))
    else:
        table_rows(title)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the decision store's schema to this version (Alembic)."""
    store = run_context().decisions
    store.upgrade()
    OUT.success(f"decision store at {store.location} is at revision {store.revision()}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (as given to --user and at sign-in).")],
    role: Annotated[
        str, typer.Option("--role", help="underwriter, analyst or viewer.")
    ] = "underwriter",
    authority: Annotated[
        float | None,
        typer.Option("--authority", help="Largest limit (EUR) the user may keep or grant."),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin (else one is made)."),
    ] = False,
) -> None:
    """Add a user of the workbench and the command line; underwriters decide limits up to
    their authority amount. A random password is printed once unless given on stdin."""
    from data.decisions import DecisionStoreError
    from flows.cli.web_commands import _read_password
    from flows.web.auth import hash_password, new_password

    if role not in ("underwriter", "analyst", "viewer"):
        raise typer.BadParameter("must be underwriter, analyst or viewer", param_hint="--role")
    if role == "underwriter" and (authority is None or authority <= 0):
        raise typer.BadParameter("an underwriter needs an authority > 0", param_hint="--authority")
    given = _read_password(password_stdin)
    password = given or new_password()
    try:
        user = run_context().decisions.add_user(
            name, role, authority_amount=authority, password_hash=hash_password(password)
        )
    except DecisionStoreError as exc:
        fail(str(exc))
    held = "" if user.authority_amount is None else f", authority EUR {user.authority_amount:,.0f}"
    OUT.success(f"user {user.name} added: {user.role}{held}")
    if given is None:
        OUT.line(f"password (shown once): {password}")


@users_app.command("list")
def users_list() -> None:
    """The users, their roles and authority."""
    users = run_context().decisions.users()
    OUT.table(
        f"{len(users)} user(s)",
        ("name", "role", "authority (EUR)", "active"),
        [
            (
                u.name,
                u.role,
                "–" if u.authority_amount is None else f"{u.authority_amount:,.0f}",
                "yes" if u.active else "no",
            )
            for u in users
        ],
        right={"authority (EUR)"},
    )


@app.command()
def queue(
    policyholder: Annotated[
        str | None, typer.Option("--policyholder", help="Only this one.")
    ] = None,
    buyer: Annotated[str | None, typer.Option("--buyer", help="Only this buyer_id.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this proposed action.")
    ] = None,
    country: Annotated[
        str | None, typer.Option("--country", help="Only buyers of this country.")
    ] = None,
    grade: Annotated[int | None, typer.Option("--grade", help="Only buyers at this grade.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also items the system may decide (default: humans').")
    ] = False,
    new_today: Annotated[bool, typer.Option("--new-today", help="Only items new today.")] = False,
    top: Annotated[int, typer.Option("--top", help="Rows shown in the table.")] = 30,
    fmt: FormatOption = "table",
    lake: LakeOption = None,
) -> None:
    """The underwriters' queue: open proposals a human must decide, most urgent first
    (decide them with `solvency decide ID`)."""
    _check_format(fmt)
    ctx = run_context(lake_dir=lake)
    filters = {"human_required": None if everything else True,
               "new_today": True if new_today else None,
               "policyholder_id": policyholder, "buyer_id": buyer}  # fmt: skip
    items = ctx.decisions.open_proposals(**{k: v for k, v in filters.items() if v is not None})
    buyers = ctx.lake.read("buyers", ["buyer_id", "name", "country"]).rename(
        columns={"name": "buyer_name"}
    )
    items = items.merge(buyers, on="buyer_id", how="left")
    if action:
        items = items.loc[(items["proposed_action"] == action) | (items["action"] == action)]
    if country:
        items = items.loc[items["country"] == country]
    if grade is not None:
        items = items.loc[items["grade"] == grade]
    items = items.sort_values(["human_required", "priority"], ascending=[False, True])[
        QUEUE_COLUMNS
    ]

    def rows(title: str) -> None:
        shown = items.head(top)
        OUT.table(
            title,
            (
                "id",
                "#",
                "due",
                "new",
                "policyholder",
                "buyer",
                "name",
                "grade",
                "proposal",
                "limit",
                "to",
                "EL change",
                "why",
            ),
            [
                (
                    str(r.id),
                    str(r.priority),
                    "" if pd.isna(r.deadline) else str(r.deadline)[:10],
                    "new" if r.new_today else "",
                    r.policyholder_id,
                    r.buyer_id,
                    str(r.buyer_name),
                    "–" if pd.isna(r.grade) else str(int(r.grade)),
                    r.proposed_action,
                    compact_money(r.limit_amount),
                    compact_money(r.recommended_amount),
                    compact_money(r.expected_loss_after - r.expected_loss_before),
                    str(r.explanation).split(": ", 1)[-1],
                )
                for r in shown.itertuples()
            ],
            right={"id", "#", "grade", "limit", "to", "EL change"},
        )
        if len(items) > len(shown):
            OUT.line(f"… and {len(items) - len(shown):,} more (--top N, or --format csv)")

    _emit(items, fmt, f"Queue: {len(items):,} open item(s) (EUR)", rows)


@app.command()
def decide(
    proposal: Annotated[int, typer.Argument(help="The item's id (see `solvency queue`).")],
    accept: Annotated[bool, typer.Option("--accept", help="Accept the proposal as it is.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it: the limit stays.")] = False,
    modify: Annotated[
        float | None, typer.Option("--modify", help="Decide another limit (EUR).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the decision).")] = "",
    user: Annotated[str, typer.Option("--user", help="Who decides (see `solvency users`).")] = "",
    as_of: Annotated[
        str, typer.Option("--as-of", help="Day of the decision (default today).")
    ] = "",
    lake: LakeOption = None,
) -> None:
    """Decide one queued proposal within your authority: --accept, --reject or --modify
    AMOUNT, with --reason and --user. Reductions take effect after the notice period."""
    from data.decisions import DecisionStoreError
    from flows.underwriting import decide as take_decision
    from models.limits.decisions import DecisionRefused

    chosen = [name for name, on in (("accepted", accept), ("rejected", reject),
                                    ("modified", modify is not None)) if on]  # fmt: skip
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --accept, --reject, --modify AMOUNT")
    if not user:
        raise typer.BadParameter("who decides?", param_hint="--user")
    ctx = run_context(cli_date(as_of, "--as-of"), lake_dir=lake)
    try:
        record = take_decision(ctx, ctx.decisions, proposal, outcome=chosen[0], user=user,
                               reason=reason, amount=modify)  # fmt: skip
    except (DecisionRefused, DecisionStoreError) as exc:
        fail(f"not decided: {exc}")
    OUT.success(
        f"decision {record.id}: {record.outcome} by {record.decided_by}, limit of "
        f"{record.policyholder_id} on {record.buyer_id} EUR {record.previous_amount:,.0f} -> "
        f"EUR {record.decided_amount:,.0f}, effective {record.effective_date}"
        + (f" ({record.notice_days} days' notice)" if record.notice_days else "")
    )


@app.command()
def decisions(
    policyholder: Annotated[str | None, typer.Option("--policyholder")] = None,
    buyer: Annotated[str | None, typer.Option("--buyer")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="accepted, modified, rejected, automatic.")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Decided by this user.")] = None,
    since: Annotated[str, typer.Option("--since", help="From this day (YYYY-MM-DD).")] = "",
    until: Annotated[str, typer.Option("--until", help="To this day, included.")] = "",
    top: Annotated[int, typer.Option("--top", help="Latest rows shown in the table.")] = 30,
    fmt: FormatOption = "table",
) -> None:
    """The decisions on record: who decided what, when, why, under which model and policy."""
    _check_format(fmt)
    filters = {"policyholder_id": policyholder, "buyer_id": buyer, "outcome": outcome,
               "decided_by": user, "since": cli_date(since, "--since"),
               "until": cli_date(until, "--until")}  # fmt: skip
    found = run_context().decisions.decisions(**{k: v for k, v in filters.items() if v})

    def rows(title: str) -> None:
        shown = found.tail(top)
        OUT.table(
            title,
            (
                "id",
                "decided",
                "by",
                "outcome",
                "policyholder",
                "buyer",
                "limit",
                "to",
                "effective",
                "rule / reason",
            ),
            [
                (
                    str(r.id),
                    str(r.decided_at)[:16],
                    r.decided_by,
                    r.outcome,
                    r.policyholder_id,
                    r.buyer_id,
                    compact_money(r.previous_amount or 0.0),
                    compact_money(r.decided_amount),
                    str(r.effective_date),
                    r.rule if isinstance(r.rule, str) else str(r.reason),
                )
                for r in shown.itertuples()
            ],
            right={"id", "limit", "to"},
        )

    _emit(found, fmt, f"{len(found):,} decision(s) (EUR)", rows)


@app.command()
def request(
    policyholder: Annotated[str, typer.Option("--policyholder", help="Who asks.")],
    buyer: Annotated[str, typer.Option("--buyer", help="On which buyer.")],
    amount: Annotated[float, typer.Option("--amount", help="The limit asked for (EUR).")],
    user: Annotated[str, typer.Option("--user", help="Who enters it.")] = "cli",
    lake: LakeOption = None,
) -> None:
    """A policyholder's limit request: answered at once when the policy allows it (granted,
    partly granted or declined, with the reason), else queued for an underwriter."""
    from data.decisions import DecisionStoreError
    from flows.underwriting import RequestDesk, apply_decisions
    from models.limits.decisions import DecisionRefused

    ctx = run_context(lake_dir=lake)
    try:
        desk = RequestDesk(ctx, ctx.decisions)
        answer = desk.request(policyholder, buyer, amount, requested_by=user, channel="cli")
        apply_decisions(ctx, ctx.decisions)
    except (DecisionRefused, DecisionStoreError, RuntimeError) as exc:
        fail(f"request refused: {exc}")
    OUT.line(json.dumps({
        "request_id": answer.request_id, "status": answer.status, "requested": answer.requested,
        "granted": answer.granted, "previous": answer.previous,
        "effective_date": str(answer.effective_date) if answer.effective_date else None,
        "decision_id": answer.decision_id, "queued_as": answer.proposal_id,
        "explanation": answer.explanation, "milliseconds": round(1000 * answer.seconds, 1),
    }, indent=1))  # fmt: skip
