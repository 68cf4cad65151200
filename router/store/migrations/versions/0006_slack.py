"""Create the slack_messages and slack_requests tables of the Slack app.

slack_messages keeps the channel and ts of each ticket's message, so the message is
updated in place. slack_requests keeps the keys of handled Slack requests, so a
retried event, a double click or a repeated command acts once. Both tables are new
and reference nothing, so the upgrade leaves existing data alone.

Revision ID: 0006_slack
Revises: 0005_enrichment_escalation
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_slack"
down_revision: str | Sequence[str] | None = "0005_enrichment_escalation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("posted_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slack_messages"),
        sa.UniqueConstraint(
            "ticket_key", "kind", name="uq_slack_messages_ticket_key_kind"
        ),
    )
    op.create_table(
        "slack_requests",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("seen_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_slack_requests"),
    )


def downgrade() -> None:
    op.drop_table("slack_requests")
    op.drop_table("slack_messages")
