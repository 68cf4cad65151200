"""Escalations: levels, repeats, acknowledgement, SLA breaches and restarts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from router.escalation.records import use_mappings
from router.escalation.service import (
    EscalationPolicyNotFoundError,
    acknowledge,
    current_escalation,
    escalate_now,
    resolve_escalation,
    start_escalation,
)
from router.escalation.timers import run_timers
from router.mapping import load_mappings
from router.store.db import make_engine, session_factory
from router.store.models import outbox_actions
from router.store.service import append_audit, ticket_trail

TICKET = "servicenow:INC0031337"
START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _shipped_policies() -> Iterator[None]:
    use_mappings(load_mappings())
    yield
    use_mappings(None)


def notifications(session: Session) -> list[tuple[str, str, int]]:
    rows = session.execute(
        select(outbox_actions.c.marker, outbox_actions.c.payload).order_by(
            outbox_actions.c.id
        )
    ).all()
    return [
        (row.marker, row.payload["target"], row.payload["escalation"]["level"])
        for row in rows
    ]


def events(session: Session) -> list[str]:
    return [entry.event for entry in ticket_trail(session, ticket_key=TICKET)]


def start(session: Session, **values: object) -> None:
    start_escalation(
        session,
        ticket_key=TICKET,
        policy=str(values.get("policy", "premium-incident")),
        now=START,
        priority=1,
    )


def test_start_notifies_first_level(session: Session) -> None:
    start(session)
    record = current_escalation(session, ticket_key=TICKET)
    assert record is not None
    assert record.level == 0
    assert record.status == "open"
    assert record.next_fire_at == START + timedelta(minutes=10)
    assert record.sla_due_at == START + timedelta(minutes=240)
    assert notifications(session) == [
        (f"opsroute:notify:esc-{record.id}:1", "channel:#incident-premium", 0),
        (f"opsroute:notify:esc-{record.id}:2", "user:oncall-primary@example.com", 0),
    ]
    assert events(session) == ["escalation_started"]


def test_start_twice_keeps_one_escalation(session: Session) -> None:
    start(session)
    start(session)
    assert len(notifications(session)) == 2


def test_unanswered_level_repeats_then_advances(session: Session) -> None:
    start(session)
    first = run_timers(session, now=START + timedelta(minutes=10))
    second = run_timers(session, now=START + timedelta(minutes=20))
    record = current_escalation(session, ticket_key=TICKET)
    assert first.repeated == 1
    assert second.advanced == 1
    assert record is not None
    assert record.level == 1
    assert [level for _, _, level in notifications(session)] == [0, 0, 0, 0, 1, 1]
    assert events(session) == ["escalation_started", "escalation_level"]


def test_timer_before_due_does_nothing(session: Session) -> None:
    start(session)
    outcome = run_timers(session, now=START + timedelta(minutes=9))
    assert outcome.repeated == 0
    assert outcome.advanced == 0
    assert len(notifications(session)) == 2


def test_acknowledge_stops_timers(session: Session) -> None:
    start(session)
    record = acknowledge(
        session,
        ticket_key=TICKET,
        actor="slack:U123",
        source="slack",
        now=START + timedelta(minutes=3),
    )
    outcome = run_timers(session, now=START + timedelta(minutes=30))
    assert record is not None
    assert record.status == "acknowledged"
    assert record.acknowledged_by == "slack:U123"
    assert record.next_fire_at is None
    assert outcome.repeated == 0
    assert outcome.advanced == 0
    assert events(session) == ["escalation_started", "escalation_acknowledged"]


def test_acknowledge_without_escalation_returns_none(session: Session) -> None:
    record = acknowledge(
        session, ticket_key=TICKET, actor="slack:U1", source="slack", now=START
    )
    assert record is None


def test_escalate_now_advances_acknowledged(session: Session) -> None:
    start(session)
    acknowledge(session, ticket_key=TICKET, actor="slack:U1", source="slack", now=START)
    record = escalate_now(
        session,
        ticket_key=TICKET,
        actor="slack:U1",
        reason="customer called",
        now=START,
    )
    assert record.level == 1
    assert record.status == "open"
    assert record.acknowledged_by is None


def test_escalate_now_starts_default_policy(session: Session) -> None:
    record = escalate_now(
        session, ticket_key=TICKET, actor="slack:U9", reason=None, now=START
    )
    assert record.policy == "standard-incident"
    assert record.level == 0


def test_unknown_policy_is_rejected(session: Session) -> None:
    with pytest.raises(EscalationPolicyNotFoundError, match="expected one of"):
        start_escalation(session, ticket_key=TICKET, policy="gold", now=START)


def test_resolve_ends_escalation(session: Session) -> None:
    start(session)
    record = resolve_escalation(
        session, ticket_key=TICKET, actor="opsroute", now=START, reason="resolved"
    )
    assert record is not None
    assert record.status == "resolved"
    assert run_timers(session, now=START + timedelta(hours=9)).breached == 0


def test_sla_breach_is_recorded_once(session: Session) -> None:
    start(session)
    acknowledge(session, ticket_key=TICKET, actor="slack:U1", source="slack", now=START)
    late = START + timedelta(minutes=241)
    first = run_timers(session, now=late)
    second = run_timers(session, now=late + timedelta(minutes=1))
    [breach] = [
        entry
        for entry in ticket_trail(session, ticket_key=TICKET)
        if entry.event == "sla_breached"
    ]
    assert first.breached == 1
    assert second.breached == 0
    assert breach.details["priority"] == 1
    assert breach.details["caused_by_reassignment"] is False


def test_breach_after_transfer_blames_reassignment(session: Session) -> None:
    start(session)
    append_audit(
        session,
        event="transfer",
        ticket_key=TICKET,
        actor="servicenow:jdoe",
        details={"from_group": "Platform Operations", "to_group": "Network"},
    )
    run_timers(session, now=datetime.now(UTC) + timedelta(minutes=241))
    [breach] = [
        entry
        for entry in ticket_trail(session, ticket_key=TICKET)
        if entry.event == "sla_breached"
    ]
    assert breach.details["caused_by_reassignment"] is True


def test_timers_survive_restart(migrated_engine: Engine, database_url: str) -> None:
    with session_factory(migrated_engine).begin() as session:
        start(session)
    migrated_engine.dispose()

    # A new engine stands for a replica started after the first one died.
    restarted = make_engine(database_url)
    try:
        with session_factory(restarted).begin() as session:
            outcome = run_timers(session, now=START + timedelta(minutes=25))
        with session_factory(restarted)() as session:
            record = current_escalation(session, ticket_key=TICKET)
    finally:
        restarted.dispose()
    assert outcome.repeated == 1
    assert record is not None
    assert record.level == 0
    assert record.next_fire_at == START + timedelta(minutes=35)
