"""Create the tickets, decisions, review_items, models and audit_log tables.

Revision ID: 0001
Revises:
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("source_system", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("key", name="uq_tickets_key"),
    )
    op.create_index("ix_tickets_external_id", "tickets", ["external_id"])

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("resolver_group", sa.String(255), nullable=False),
        sa.Column("intent", sa.String(255), nullable=False),
        sa.Column("urgency", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("explanation", JSON, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_decisions_ticket_id_tickets"
        ),
        sa.CheckConstraint(
            "action IN ('auto_route', 'review', 'forced_review')",
            name="ck_decisions_action",
        ),
    )
    op.create_index(
        "ix_decisions_ticket_id_decided_at", "decisions", ["ticket_id", "decided_at"]
    )

    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("candidates", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_group", sa.String(255), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name="fk_review_items_ticket_id_tickets"
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name="fk_review_items_decision_id_decisions",
        ),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name="ck_review_items_status"
        ),
    )
    op.create_index(
        "uq_review_items_open_ticket_id",
        "review_items",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_review_items_status_created_at", "review_items", ["status", "created_at"]
    )

    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("dataset", sa.String(255), nullable=False),
        sa.Column("label_set", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("data_hash", sa.String(128), nullable=False),
        sa.Column("artefact", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.UniqueConstraint("version", name="uq_models_version"),
    )
    op.create_index(
        "uq_models_active_kind_dataset",
        "models",
        ["kind", "dataset"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_index("ix_models_kind_data_hash", "models", ["kind", "data_hash"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("ticket_key", sa.String(300), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("versions", JSON, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_ticket_key_at", "audit_log", ["ticket_key", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("models")
    op.drop_table("review_items")
    op.drop_table("decisions")
    op.drop_table("tickets")
