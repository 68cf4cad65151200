"""Create the inbox_events, outbox_actions, leases and job_runs tables.

The four tables are new and reference only decisions.id, so the upgrade runs on a
database at 0002 with data in it and leaves that data alone.

Revision ID: 0003
Revises: 0002
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(800), nullable=False),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("instance", sa.String(100), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=True),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("record_version", sa.String(100), nullable=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_events"),
        sa.UniqueConstraint("dedupe_key", name="uq_inbox_events_dedupe_key"),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'skipped', 'failed')",
            name="ck_inbox_events_status",
        ),
    )
    op.create_index("ix_inbox_events_status_id", "inbox_events", ["status", "id"])

    op.create_table(
        "outbox_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("instance", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ticket_key", sa.String(300), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("marker", sa.String(255), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claim_expires_at", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("done_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_actions"),
        sa.UniqueConstraint("marker", name="uq_outbox_actions_marker"),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name="fk_outbox_actions_decision_id_decisions",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'done', 'dead')",
            name="ck_outbox_actions_status",
        ),
        sa.CheckConstraint(
            "kind IN ('write_back', 'task', 'notification')",
            name="ck_outbox_actions_kind",
        ),
    )
    op.create_index(
        "ix_outbox_actions_status_next_attempt_at",
        "outbox_actions",
        ["status", "next_attempt_at"],
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )

    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("slot_start", TIMESTAMP, nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("ran_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("job", "slot_start", name="pk_job_runs"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_table("leases")
    op.drop_table("outbox_actions")
    op.drop_table("inbox_events")
