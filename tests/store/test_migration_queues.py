"""Revision 0003 on a database that already contains tickets at revision 0002."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from router.schemas import Decision, Ticket
from router.store.db import (
    current_revision,
    downgrade,
    head_revision,
    session_factory,
    upgrade,
)
from router.store.inbox import count_pending_inbox, insert_inbox_events
from router.store.service import find_ticket, latest_decision, save_decisions

from .queue_support import build_events

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]

QUEUE_TABLES = {"inbox_events", "outbox_actions", "leases", "job_runs"}


def _engine_at_0002_with_ticket(
    engine: Engine, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> Engine:
    upgrade(engine, revision="0002")
    ticket = make_ticket()
    with session_factory(engine).begin() as session:
        save_decisions(session, items=[(ticket, make_decision(ticket))])
    return engine


def test_upgrade_from_0002_keeps_tickets(
    engine: Engine, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    _engine_at_0002_with_ticket(engine, make_ticket, make_decision)

    upgrade(engine)

    with session_factory(engine)() as session:
        stored = find_ticket(session, ref="jira:HDFS-123")
        decision = latest_decision(session, ticket_id=stored.id)
    assert current_revision(engine) == head_revision()
    assert stored.title == "NameNode fails over every night"
    assert decision is not None
    assert decision.resolver_group == "storage-team"


def test_upgrade_from_0002_creates_queue_tables(
    engine: Engine, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    _engine_at_0002_with_ticket(engine, make_ticket, make_decision)

    upgrade(engine)

    assert QUEUE_TABLES <= set(inspect(engine).get_table_names())
    with session_factory(engine).begin() as session:
        insert_inbox_events(session, events=build_events(2))
        assert count_pending_inbox(session) == 2


def test_downgrade_to_0002_drops_only_queue_tables(
    engine: Engine, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    _engine_at_0002_with_ticket(engine, make_ticket, make_decision)
    upgrade(engine)

    downgrade(engine, revision="0002")

    tables = set(inspect(engine).get_table_names())
    assert tables & QUEUE_TABLES == set()
    assert "tickets" in tables
    with Session(engine) as session:
        assert find_ticket(session, ref="HDFS-123").key == "jira:HDFS-123"
