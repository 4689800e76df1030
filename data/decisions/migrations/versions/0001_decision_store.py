"""The decision store: users, proposals, decisions, limit requests and the append-only audit log.

The definitions are written out here rather than imported from the models, so this revision
keeps creating the same schema whatever the models become later. On SQLite every table is
AUTOINCREMENT: the id of a proposal replaced by a rerun is never given to another one.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIONS = "('increase', 'decrease', 'maintain', 'cancel', 'refer')"
OPEN_REQUEST = sa.text("status IN ('received', 'queued')")
APPEND_ONLY = "audit_log is append-only"


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Numeric(precision=18, scale=2, asdecimal=False), nullable=nullable)


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"

    op.create_table(
        "users",
        _id(),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        _money("authority_amount", nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("api_token_hash", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "role IN ('underwriter', 'analyst', 'viewer', 'system')", name=op.f("ck_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "proposals",
        _id(),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("policyholder_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("proposed_action", sa.String(length=32), nullable=False),
        _money("limit_amount"),
        _money("recommended_amount"),
        _money("requested_amount", nullable=True),
        _money("exposure", nullable=True),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("previous_grade", sa.Integer(), nullable=True),
        sa.Column("pd", sa.Double(), nullable=True),
        sa.Column("reason_codes", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        _money("expected_loss_before"),
        _money("expected_loss_after"),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("human_required", sa.Boolean(), nullable=False),
        sa.Column("automatic_rule", sa.Text(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("new_today", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("policy_version", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(f"action IN {ACTIONS}", name=op.f("ck_proposals_action")),
        sa.CheckConstraint(
            f"proposed_action IN {ACTIONS}", name=op.f("ck_proposals_proposed_action")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'decided', 'superseded')", name=op.f("ck_proposals_status")
        ),
        sa.CheckConstraint("priority >= 1", name=op.f("ck_proposals_priority")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
        sa.UniqueConstraint(
            "as_of_date",
            "policyholder_id",
            "buyer_id",
            name=op.f("uq_proposals_as_of_date_policyholder_id_buyer_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_proposals_status_priority"), "proposals", ["status", "priority"], unique=False
    )
    op.create_index(
        op.f("ix_proposals_policyholder_id_buyer_id_status"),
        "proposals",
        ["policyholder_id", "buyer_id", "status"],
        unique=False,
    )

    # Requests and decisions reference each other. SQLite accepts a reference to a table
    # that does not exist yet (and cannot add one later without rebuilding the table);
    # PostgreSQL needs the referenced table first, so there the constraint comes after.
    decision_fk = sa.ForeignKeyConstraint(
        ["decision_id"], ["decisions.id"], name=op.f("fk_limit_requests_decision_id_decisions")
    )
    op.create_table(
        "limit_requests",
        _id(),
        sa.Column("policyholder_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        _money("amount"),
        _timestamp("received_at"),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('api', 'cli', 'file')", name=op.f("ck_limit_requests_channel")
        ),
        sa.CheckConstraint(
            "status IN ('received', 'granted', 'partially_granted', 'declined', 'queued', "
            "'withdrawn')",
            name=op.f("ck_limit_requests_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_limit_requests_amount")),
        *([decision_fk] if sqlite else []),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_requests")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_limit_requests_policyholder_id_buyer_id"),
        "limit_requests",
        ["policyholder_id", "buyer_id"],
        unique=False,
    )
    op.create_index(
        "uq_limit_requests_open_pair_amount",
        "limit_requests",
        ["policyholder_id", "buyer_id", "amount"],
        unique=True,
        sqlite_where=OPEN_REQUEST,
        postgresql_where=OPEN_REQUEST,
    )

    op.create_table(
        "decisions",
        _id(),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("policyholder_id", sa.String(length=64), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("recommended_action", sa.String(length=32), nullable=True),
        _money("recommended_amount", nullable=True),
        sa.Column("decided_action", sa.String(length=32), nullable=False),
        _money("decided_amount"),
        _money("previous_amount", nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        _timestamp("decided_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("notice_days", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("policy_version", sa.String(length=128), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        _timestamp("applied_at", nullable=True),
        sa.CheckConstraint(
            f"decided_action IN {ACTIONS}", name=op.f("ck_decisions_decided_action")
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'modified', 'rejected', 'automatic')",
            name=op.f("ck_decisions_outcome"),
        ),
        sa.CheckConstraint("decided_amount >= 0", name=op.f("ck_decisions_decided_amount")),
        sa.CheckConstraint("notice_days >= 0", name=op.f("ck_decisions_notice_days")),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.id"], name=op.f("fk_decisions_proposal_id_proposals")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["limit_requests.id"],
            name=op.f("fk_decisions_request_id_limit_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("proposal_id", name=op.f("uq_decisions_proposal_id")),
        sa.UniqueConstraint("request_id", name=op.f("uq_decisions_request_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_decisions_policyholder_id_buyer_id"),
        "decisions",
        ["policyholder_id", "buyer_id"],
        unique=False,
    )
    op.create_index(op.f("ix_decisions_decided_at"), "decisions", ["decided_at"], unique=False)
    op.create_index(op.f("ix_decisions_applied_at"), "decisions", ["applied_at"], unique=False)
    if not sqlite:
        op.create_foreign_key(
            op.f("fk_limit_requests_decision_id_decisions"),
            "limit_requests",
            "decisions",
            ["decision_id"],
            ["id"],
        )

    op.create_table(
        "audit_log",
        _id(),
        _timestamp("at"),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_audit_log_entity_entity_id"), "audit_log", ["entity", "entity_id"], unique=False
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    _protect_audit_log(sqlite)


def _protect_audit_log(sqlite: bool) -> None:
    """Triggers that refuse to change or remove audit rows, whoever connects."""
    if sqlite:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege'; END; $$"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_table("audit_log")  # its triggers go with it
    if not sqlite:
        op.execute("DROP FUNCTION audit_log_append_only()")
        op.drop_constraint(
            op.f("fk_limit_requests_decision_id_decisions"), "limit_requests", type_="foreignkey"
        )
    op.drop_table("decisions")
    op.drop_table("limit_requests")
    op.drop_table("proposals")
    op.drop_table("users")
