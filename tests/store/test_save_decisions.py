"""save_decisions: tickets, decisions, review items and audit rows in one batch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from router.schemas import Decision, DecisionAction, Ticket
from router.store.db import make_engine, session_factory, upgrade
from router.store.models import audit_log, decisions, review_items, tickets
from router.store.service import (
    MODEL_INPUT_FIELDS,
    find_ticket,
    latest_decision,
    save_decisions,
    ticket_trail,
)

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]


def _count(session: Session, table: Table) -> int:
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def test_saved_ticket_has_its_fields(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])
    session.commit()

    row = session.execute(select(tickets)).one()

    assert row.key == "jira:HDFS-123"
    assert row.source_system == "jira"
    assert row.external_id == "HDFS-123"
    assert row.record_id == "10001"
    assert row.title == "NameNode fails over every night"
    assert row.payload == ticket.model_dump(mode="json")
    assert row.first_seen_at == row.last_seen_at
    assert row.first_seen_at.tzinfo is UTC


def test_saved_decision_has_its_fields(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    decision = make_decision(ticket)
    save_decisions(session, items=[(ticket, decision)])
    session.commit()

    row = session.execute(select(decisions)).one()

    assert row.ticket_id == find_ticket(session, ref=ticket.key).id
    assert row.resolver_group == "storage-team"
    assert row.intent == "incident"
    assert row.urgency == 1
    assert row.confidence == pytest.approx(0.91)
    assert row.action == "auto_route"
    assert row.threshold == pytest.approx(0.75)
    assert row.candidates[0] == {"group": "storage-team", "probability": 0.91}
    assert row.explanation == decision.explanation.model_dump(mode="json")
    assert row.explanation["notes"] == ["description mentions NameNode"]
    assert row.model_version == "routing-2025.03.1"
    assert row.policy_version == "policy-7"
    assert row.decided_at == datetime(2025, 3, 1, 9, 31, tzinfo=UTC)


def test_latest_decision_rebuilds_decision(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    decision = make_decision(ticket)
    save_decisions(session, items=[(ticket, decision)])

    stored = latest_decision(session, ticket_id=find_ticket(session, ref="HDFS-123").id)

    assert stored is not None
    assert stored.ticket_key == ticket.key
    assert stored.to_decision() == decision


def test_latest_decision_picks_newest(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    later = datetime(2025, 3, 2, tzinfo=UTC)
    earlier = datetime(2025, 3, 1, tzinfo=UTC)
    items = [
        (ticket, make_decision(ticket, resolver_group="later", decided_at=later)),
        (ticket, make_decision(ticket, resolver_group="earlier", decided_at=earlier)),
    ]
    save_decisions(session, items=items)

    stored = latest_decision(session, ticket_id=find_ticket(session, ref=ticket.key).id)

    assert stored is not None
    assert stored.resolver_group == "later"


def test_latest_decision_without_decisions_is_none(session: Session) -> None:
    assert latest_decision(session, ticket_id=12345) is None


def test_decided_at_comes_back_in_utc(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    paris = timezone(timedelta(hours=1))
    decided_at = datetime(2025, 3, 1, 10, 31, tzinfo=paris)
    save_decisions(
        session, items=[(ticket, make_decision(ticket, decided_at=decided_at))]
    )
    session.commit()

    stored = session.execute(select(decisions.c.decided_at)).scalar_one()

    assert stored == decided_at
    assert stored.tzinfo is UTC


def test_auto_route_opens_no_review(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])

    assert _count(session, review_items) == 0


@pytest.mark.parametrize(
    "action", [DecisionAction.REVIEW, DecisionAction.FORCED_REVIEW]
)
def test_review_actions_open_review_item(
    session: Session,
    make_ticket: TicketBuilder,
    make_decision: DecisionBuilder,
    action: DecisionAction,
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket, action=action))])
    session.commit()

    item = session.execute(select(review_items)).one()
    decision_id = session.execute(select(decisions.c.id)).scalar_one()

    assert item.status == "open"
    assert item.decision_id == decision_id
    assert item.candidates[1] == {"group": "platform-team", "probability": 0.06}
    assert item.resolved_group is None
    assert item.created_at.tzinfo is UTC


def test_saving_writes_two_audit_rows(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(
        session, items=[(ticket, make_decision(ticket))], actor="opsroute-worker-2"
    )
    session.commit()

    trail = ticket_trail(session, ticket_key=ticket.key)

    assert [entry.event for entry in trail] == ["classification", "decision"]
    assert {entry.actor for entry in trail} == {"opsroute-worker-2"}


def test_classification_audit_records_model_inputs(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])

    entry = ticket_trail(session, ticket_key=ticket.key)[0]

    assert set(entry.inputs["ticket"]) == set(MODEL_INPUT_FIELDS)
    assert entry.inputs["ticket"]["title"] == "NameNode fails over every night"
    assert "labels" not in entry.inputs["ticket"]
    assert entry.inputs["candidates"][0]["group"] == "storage-team"
    assert entry.versions == {"model": "routing-2025.03.1", "policy": "policy-7"}
    assert entry.details["intent"] == "incident"


def test_decision_audit_records_policy_outcome(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    decision = make_decision(ticket, action=DecisionAction.REVIEW, confidence=0.5)
    save_decisions(session, items=[(ticket, decision)])

    entry = ticket_trail(session, ticket_key=ticket.key)[1]
    decision_id = session.execute(select(decisions.c.id)).scalar_one()

    assert entry.details["action"] == "review"
    assert entry.details["resolver_group"] == "storage-team"
    assert entry.details["decision_id"] == decision_id
    assert entry.inputs["confidence"] == pytest.approx(0.5)
    assert entry.inputs["threshold"] == pytest.approx(0.75)
    assert entry.inputs["context"] == {"account_tier": "gold"}
    assert entry.versions == {"model": "routing-2025.03.1", "policy": "policy-7"}


def test_custom_input_fields_are_recorded(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(
        session,
        items=[(ticket, make_decision(ticket))],
        input_fields=("title", "requester"),
    )

    entry = ticket_trail(session, ticket_key=ticket.key)[0]

    assert entry.inputs["ticket"] == {
        "title": "NameNode fails over every night",
        "requester": "ops@example.com",
    }


def test_unknown_input_field_is_rejected(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()

    with pytest.raises(ValueError, match="'summary'"):
        save_decisions(
            session, items=[(ticket, make_decision(ticket))], input_fields=("summary",)
        )


def test_resaving_ticket_updates_single_row(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])
    session.commit()
    first = find_ticket(session, ref=ticket.key)

    renamed = make_ticket(title="NameNode fails over twice a night")
    save_decisions(session, items=[(renamed, make_decision(renamed))])
    session.commit()
    second = find_ticket(session, ref=ticket.key)

    assert _count(session, tickets) == 1
    assert _count(session, decisions) == 2
    assert second.id == first.id
    assert second.title == "NameNode fails over twice a night"
    assert second.payload["title"] == "NameNode fails over twice a night"
    assert second.first_seen_at == first.first_seen_at
    assert second.last_seen_at > first.last_seen_at


def test_second_review_updates_open_item(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(
        session,
        items=[(ticket, make_decision(ticket, action=DecisionAction.REVIEW))],
    )
    session.commit()
    first_item = session.execute(select(review_items)).one()

    again = make_decision(
        ticket, action=DecisionAction.FORCED_REVIEW, resolver_group="platform-team"
    )
    save_decisions(session, items=[(ticket, again)])
    session.commit()
    items = session.execute(select(review_items)).all()
    newest_decision = session.execute(select(func.max(decisions.c.id))).scalar_one()

    assert len(items) == 1
    assert items[0].id == first_item.id
    assert items[0].decision_id == newest_decision
    assert items[0].created_at == first_item.created_at


def test_ticket_twice_in_batch_keeps_last(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    first = make_ticket(title="first title")
    last = make_ticket(title="last title")
    items = [
        (first, make_decision(first, action=DecisionAction.REVIEW)),
        (last, make_decision(last, action=DecisionAction.REVIEW)),
    ]
    save_decisions(session, items=items)
    session.commit()

    item = session.execute(select(review_items)).one()
    last_decision = session.execute(select(func.max(decisions.c.id))).scalar_one()

    assert find_ticket(session, ref="HDFS-123").title == "last title"
    assert _count(session, decisions) == 2
    assert _count(session, audit_log) == 4
    assert item.decision_id == last_decision


def test_large_batch_is_stored_in_order(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    items = []
    for number in range(1200):
        ticket = make_ticket(external_id=f"HDFS-{number}")
        action = DecisionAction.REVIEW if number % 3 == 0 else DecisionAction.AUTO_ROUTE
        items.append((ticket, make_decision(ticket, action=action)))
    save_decisions(session, items=items)
    session.commit()

    pairs = session.execute(
        select(tickets.c.external_id, decisions.c.id)
        .join(decisions, decisions.c.ticket_id == tickets.c.id)
        .order_by(decisions.c.id)
    ).all()
    reviewed = session.execute(
        select(tickets.c.external_id).join(
            review_items, review_items.c.ticket_id == tickets.c.id
        )
    ).scalars()

    assert [external_id for external_id, _ in pairs] == [
        f"HDFS-{n}" for n in range(1200)
    ]
    assert set(reviewed) == {f"HDFS-{n}" for n in range(0, 1200, 3)}
    assert _count(session, audit_log) == 2400


def test_mismatched_ticket_key_is_rejected(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    other = make_ticket(external_id="HDFS-999")

    with pytest.raises(ValueError, match="'jira:HDFS-999' is paired with ticket"):
        save_decisions(session, items=[(ticket, make_decision(other))])


def test_empty_batch_writes_nothing(session: Session) -> None:
    save_decisions(session, items=[])

    assert _count(session, tickets) == 0
    assert _count(session, audit_log) == 0


def test_sqlite_autocommit_keeps_decision_order(
    tmp_path: Path, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'autocommit.db'}")
    upgrade(engine)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    ticket_list = [make_ticket(external_id=f"HDFS-{n}") for n in range(50)]
    items = [
        (ticket, make_decision(ticket, action=DecisionAction.REVIEW))
        for ticket in ticket_list
    ]

    with session_factory(autocommit)() as session:
        save_decisions(session, items=items)
        linked = session.execute(
            select(review_items.c.ticket_id, decisions.c.ticket_id).join(
                decisions, decisions.c.id == review_items.c.decision_id
            )
        ).all()
    engine.dispose()

    assert len(linked) == 50
    assert all(
        item_ticket == decision_ticket for item_ticket, decision_ticket in linked
    )


def test_save_decisions_returns_ids_in_order(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    first = make_ticket(external_id="HDFS-1")
    second = make_ticket(external_id="HDFS-2")
    items = [
        (second, make_decision(second, resolver_group="HDFS")),
        (first, make_decision(first, resolver_group="YARN")),
    ]

    ids = save_decisions(session, items=items)

    groups = dict(
        session.execute(
            select(decisions.c.id, decisions.c.resolver_group).where(
                decisions.c.id.in_(ids)
            )
        ).all()
    )
    assert len(ids) == 2
    assert groups[ids[0]] == "HDFS"
    assert groups[ids[1]] == "YARN"


def test_save_nothing_returns_no_ids(session: Session) -> None:
    assert save_decisions(session, items=[]) == []
