"""Create the connector_state table: poll watermark, go-live switches and health.

The table is new and references nothing, so the upgrade leaves existing data alone.

Revision ID: 0004_connector_state
Revises: 0003
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_connector_state"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connector_state",
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("instance", sa.String(100), nullable=False),
        sa.Column("watermark", TIMESTAMP, nullable=True),
        sa.Column("cursor", JSON, nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("observe_only", sa.Boolean(), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", TIMESTAMP, nullable=True),
        sa.Column("last_poll_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("system", "instance", name="pk_connector_state"),
    )


def downgrade() -> None:
    op.drop_table("connector_state")
