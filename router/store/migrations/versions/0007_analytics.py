"""Add model states for shadow and rollback, and the shadow_decisions table.

`models.state` is one of active, shadow, previous or retired. Existing rows become
active when their `active` flag is set, and retired otherwise, so the upgrade keeps
the model that is routing now. `active` stays, and is true exactly when the state
is active.

Revision ID: 0007_analytics
Revises: 0006_slack
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_analytics"
down_revision: str | Sequence[str] | None = "0006_slack"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column("state", sa.String(20), nullable=False, server_default="retired")
        )
    op.execute("UPDATE models SET state = 'active' WHERE active")
    op.create_table(
        "shadow_decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "decision_id",
            sa.Integer(),
            sa.ForeignKey(
                "decisions.id", name="fk_shadow_decisions_decision_id_decisions"
            ),
            nullable=False,
        ),
        sa.Column("ticket_key", sa.String(300), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("resolver_group", sa.String(255), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shadow_decisions"),
    )
    op.create_index(
        "ix_shadow_decisions_model_version_decided_at",
        "shadow_decisions",
        ["model_version", "decided_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_shadow_decisions_model_version_decided_at", table_name="shadow_decisions"
    )
    op.drop_table("shadow_decisions")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("state")
