"""Stored state of each connector instance: poll watermark, switches and health.

One row per (system, instance), created on first use. The poller saves its new
watermark in the same transaction as the inbox events it read, so a crash between
the two loses nothing. Like the rest of the store, these functions never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from router.store.db import dialect_insert
from router.store.models import connector_state

logger = logging.getLogger(__name__)

# Maximum length of the error text stored with a connector's state.
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """The stored state of one connector instance."""

    system: str
    instance: str
    watermark: datetime | None
    cursor: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    observe_only: bool = False
    healthy: bool = True
    last_error: str | None = None
    failures: int = 0
    retry_at: datetime | None = None
    last_poll_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        """Return `system/instance`, the name the CLI and /readyz use."""
        return f"{self.system}/{self.instance}"

    @property
    def seen(self) -> list[str]:
        """Return the `key@version` strings of records polled near the watermark."""
        return sorted(str(item) for item in self.cursor.get("seen") or {})


def ensure_connector_state(
    session: Session,
    *,
    system: str,
    instance: str,
    watermark: datetime | None = None,
    observe_only: bool = False,
) -> ConnectorState:
    """Return the state of a connector, creating its row if there is none.

    `watermark` and `observe_only` apply only to a row created by this call.
    """
    now = datetime.now(UTC)
    stmt = (
        dialect_insert(session, connector_state)
        .values(
            system=system,
            instance=instance,
            watermark=watermark,
            cursor={"seen": {}},
            paused=False,
            observe_only=observe_only,
            healthy=True,
            last_error=None,
            failures=0,
            retry_at=None,
            last_poll_at=None,
            updated_at=now,
        )
        .on_conflict_do_nothing(
            index_elements=[connector_state.c.system, connector_state.c.instance]
        )
    )
    session.execute(stmt)
    state = get_connector_state(session, system=system, instance=instance)
    if state is None:
        raise RuntimeError(f"connector state of {system}/{instance} was not created")
    return state


def get_connector_state(
    session: Session, *, system: str, instance: str, for_update: bool = False
) -> ConnectorState | None:
    """Return the stored state of a connector, or None if it has no row yet.

    With `for_update`, PostgreSQL locks the row until the transaction ends.
    """
    query = select(connector_state).where(
        connector_state.c.system == system, connector_state.c.instance == instance
    )
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).first()
    return ConnectorState(**row._mapping) if row is not None else None


def list_connector_states(session: Session) -> list[ConnectorState]:
    """Return the state of every connector that has a row, ordered by name."""
    rows = session.execute(
        select(connector_state).order_by(
            connector_state.c.system, connector_state.c.instance
        )
    ).all()
    return [ConnectorState(**row._mapping) for row in rows]


def update_connector_state(
    session: Session, *, system: str, instance: str, **values: Any
) -> bool:
    """Set columns of a connector's row and `updated_at`; return whether it exists.

    Raises:
        ValueError: a name in `values` is not a column of the state.
    """
    unknown = set(values) - set(connector_state.c.keys())
    if unknown or {"system", "instance"} & set(values):
        raise ValueError(
            f"cannot set {sorted(unknown | ({'system', 'instance'} & set(values)))} "
            "of a connector state; pass columns such as paused or watermark"
        )
    if "last_error" in values and values["last_error"] is not None:
        values["last_error"] = str(values["last_error"])[:MAX_ERROR_CHARS]
    result = session.execute(
        update(connector_state)
        .where(
            connector_state.c.system == system, connector_state.c.instance == instance
        )
        .values(**values, updated_at=datetime.now(UTC))
        .returning(connector_state.c.system)
    )
    return result.first() is not None


def observe_only_connectors(session: Session) -> set[tuple[str, str]]:
    """Return the (system, instance) pairs switched to observe-only in the store."""
    rows = session.execute(
        select(connector_state.c.system, connector_state.c.instance).where(
            connector_state.c.observe_only.is_(True)
        )
    ).all()
    return {(row.system, row.instance) for row in rows}
