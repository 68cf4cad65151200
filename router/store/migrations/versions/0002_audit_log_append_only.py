"""Make audit_log append-only with triggers that reject UPDATE and DELETE.

Revision ID: 0002
Revises: 0001
Created: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_log is append-only: {operation} is not allowed"

SQLITE_TRIGGER = """
CREATE TRIGGER audit_log_reject_{name}
BEFORE {operation} ON audit_log
BEGIN
    SELECT RAISE(ABORT, '{message}');
END
"""

# The function is created unqualified, so it lands in the first schema of the
# connection's search_path, next to the table. SQLSTATE 23000 makes psycopg raise
# IntegrityError, the class SQLite's RAISE(ABORT) gives, so callers catch one error.
POSTGRESQL_FUNCTION = """
CREATE FUNCTION audit_log_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""

POSTGRESQL_TRIGGERS = (
    "CREATE TRIGGER audit_log_reject_update_delete BEFORE UPDATE OR DELETE "
    "ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change()",
    "CREATE TRIGGER audit_log_reject_truncate BEFORE TRUNCATE "
    "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change()",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                SQLITE_TRIGGER.format(
                    name=operation.lower(),
                    operation=operation,
                    message=MESSAGE.format(operation=operation),
                )
            )
    elif dialect == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        raise NotImplementedError(
            f"No append-only triggers for the {dialect!r} backend; "
            "opsroute supports sqlite and postgresql."
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_log_reject_update")
        op.execute("DROP TRIGGER audit_log_reject_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER audit_log_reject_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_reject_update_delete ON audit_log")
        op.execute("DROP FUNCTION audit_log_reject_change()")
