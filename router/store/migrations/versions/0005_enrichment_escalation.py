"""Create the policy_outcomes and escalations tables.

`policy_outcomes` keeps, per decision, the rules that fired and the effects they
asked for. `escalations` keeps each ticket's escalation state, so that its timers
survive a restart. Both tables are new, so the upgrade leaves existing data alone.

Revision ID: 0005_enrichment_escalation
Revises: 0004_connector_state
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_enrichment_escalation"
down_revision: str | Sequence[str] | None = "0004_connector_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "policy_outcomes",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("ticket_key", sa.String(300), nullable=False),
        sa.Column("rules_fired", JSON, nullable=False),
        sa.Column("tasks", JSON, nullable=False),
        sa.Column("notifications", JSON, nullable=False),
        sa.Column("escalation", sa.String(100), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("unknown_fields", JSON, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_policy_outcomes"),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name="fk_policy_outcomes_decision_id_decisions",
        ),
    )
    op.create_index("ix_policy_outcomes_ticket_key", "policy_outcomes", ["ticket_key"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_key", sa.String(300), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("levels", JSON, nullable=False),
        sa.Column("business_hours", JSON, nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("repeats_done", sa.Integer(), nullable=False),
        sa.Column("notifications_sent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("entitlement", sa.String(100), nullable=True),
        sa.Column("assignment_group", sa.String(255), nullable=True),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("next_fire_at", TIMESTAMP, nullable=True),
        sa.Column("sla_due_at", TIMESTAMP, nullable=True),
        sa.Column("sla_breached_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')",
            name="ck_escalations_status",
        ),
    )
    op.create_index(
        "uq_escalations_active_ticket_key",
        "escalations",
        ["ticket_key"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.create_index(
        "ix_escalations_status_next_fire_at",
        "escalations",
        ["status", "next_fire_at"],
    )


def downgrade() -> None:
    op.drop_table("escalations")
    op.drop_table("policy_outcomes")
