"""The append-only audit log and a ticket's trail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.store.models import audit_log
from router.store.service import append_audit, ticket_trail

KEY = "jira:HDFS-123"


def _append(session: Session, *, event: str = "override") -> int:
    return append_audit(
        session,
        event=event,
        ticket_key=KEY,
        actor="cli:alice",
        inputs={"from_group": "platform-team"},
        versions={"model": "routing-2025.03.1", "policy": "policy-7"},
        details={"to_group": "storage-team"},
    )


def test_audit_update_is_rejected(session: Session) -> None:
    entry_id = _append(session)
    session.commit()

    with pytest.raises(IntegrityError, match="audit_log is append-only: UPDATE"):
        session.execute(
            update(audit_log).where(audit_log.c.id == entry_id).values(actor="x")
        )


def test_audit_delete_is_rejected(session: Session) -> None:
    entry_id = _append(session)
    session.commit()

    with pytest.raises(IntegrityError, match="audit_log is append-only: DELETE"):
        session.execute(delete(audit_log).where(audit_log.c.id == entry_id))


def test_rejected_update_keeps_row(session: Session) -> None:
    entry_id = _append(session)
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(update(audit_log).values(actor="mallory"))
    session.rollback()

    [entry] = ticket_trail(session, ticket_key=KEY)

    assert entry.id == entry_id
    assert entry.actor == "cli:alice"


def test_append_audit_stores_all_fields(session: Session) -> None:
    entry_id = _append(session)
    session.commit()

    [entry] = ticket_trail(session, ticket_key=KEY)

    assert entry.id == entry_id
    assert entry.event == "override"
    assert entry.ticket_key == KEY
    assert entry.actor == "cli:alice"
    assert entry.inputs == {"from_group": "platform-team"}
    assert entry.versions == {"model": "routing-2025.03.1", "policy": "policy-7"}
    assert entry.details == {"to_group": "storage-team"}
    assert entry.at.tzinfo is UTC


def test_append_audit_defaults_to_empty_objects(session: Session) -> None:
    append_audit(session, event="model_trained", ticket_key=None, actor="opsroute")

    row = session.execute(audit_log.select()).one()

    assert row.inputs == {}
    assert row.versions == {}
    assert row.details == {}


def test_append_audit_rejects_empty_actor(session: Session) -> None:
    with pytest.raises(ValueError, match="actor is empty"):
        append_audit(session, event="override", ticket_key=KEY, actor="")


def test_trail_orders_by_time_then_id(session: Session) -> None:
    later = datetime(2025, 3, 2, tzinfo=UTC)
    earlier = datetime(2025, 3, 1, tzinfo=UTC)
    common = {"ticket_key": KEY, "actor": "opsroute", "inputs": {}, "versions": {}}
    session.execute(
        insert(audit_log),
        [
            common | {"at": later, "event": "third", "details": {}},
            common | {"at": earlier, "event": "first", "details": {}},
            common | {"at": later, "event": "fourth", "details": {}},
            common | {"at": earlier, "event": "second", "details": {}},
        ],
    )

    events = [entry.event for entry in ticket_trail(session, ticket_key=KEY)]

    assert events == ["first", "second", "third", "fourth"]


def test_trail_leaves_out_other_tickets(session: Session) -> None:
    _append(session)
    append_audit(session, event="override", ticket_key="jira:HDFS-9", actor="x")

    keys = {entry.ticket_key for entry in ticket_trail(session, ticket_key=KEY)}

    assert keys == {KEY}
