"""The outbox: queueing actions, claiming due ones, and their final states."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from router.schemas import Decision, Ticket
from router.store.db import session_factory
from router.store.errors import ActionNotDeadError, ActionNotFoundError
from router.store.models import outbox_actions
from router.store.outbox import (
    claim_due_actions,
    count_actions,
    enqueue_actions,
    get_action,
    list_actions,
    mark_action_done,
    mark_actions_done,
    park_action_dead,
    reschedule_action,
    retry_action,
)
from router.store.service import (
    find_ticket,
    latest_decision,
    save_decisions,
    ticket_trail,
)

from .queue_support import build_action, postgres_only

TicketBuilder = Callable[..., Ticket]
DecisionBuilder = Callable[..., Decision]

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
LEASE_SECONDS = 30.0


def _enqueue(session: Session, count: int = 1, *, at: datetime = NOW) -> list[int]:
    actions = [build_action(marker=f"opsroute-action-{n}") for n in range(count)]
    return enqueue_actions(session, actions=actions, now=at)


def _claim(session: Session, *, at: datetime = NOW, limit: int = 10) -> list[int]:
    claimed = claim_due_actions(
        session, limit=limit, now=at, worker="replica-a", lease_seconds=LEASE_SECONDS
    )
    return [action.id for action in claimed]


def test_enqueue_returns_ids_in_order(session: Session) -> None:
    ids = _enqueue(session, 3)
    stored = session.execute(
        select(outbox_actions.c.id, outbox_actions.c.marker).order_by(
            outbox_actions.c.id
        )
    ).all()

    assert ids == [row.id for row in stored]
    assert [row.marker for row in stored] == [
        "opsroute-action-0",
        "opsroute-action-1",
        "opsroute-action-2",
    ]


def test_enqueued_action_is_pending_and_due(session: Session) -> None:
    [action_id] = _enqueue(session)

    action = get_action(session, action_id=action_id)

    assert action.status == "pending"
    assert action.attempts == 0
    assert action.next_attempt_at == NOW
    assert action.created_at == NOW
    assert action.payload == {"resolver_group": "storage-team"}
    assert action.result is None
    assert action.done_at is None


def test_enqueue_same_marker_returns_stored_id(session: Session) -> None:
    [first_id] = _enqueue(session)
    session.commit()

    again = enqueue_actions(
        session, actions=[build_action(marker="opsroute-action-new"), build_action()]
    )
    second = enqueue_actions(
        session, actions=[build_action(marker="opsroute-action-0")]
    )

    assert again[1] != first_id
    assert second == [first_id]
    assert count_actions(session, status="pending") == 3


def test_enqueue_repeated_marker_in_batch_stores_one(session: Session) -> None:
    ids = enqueue_actions(session, actions=[build_action(), build_action()])

    assert ids[0] == ids[1]
    assert count_actions(session, status="pending") == 1


def test_enqueue_links_decision(
    session: Session, make_ticket: TicketBuilder, make_decision: DecisionBuilder
) -> None:
    ticket = make_ticket()
    save_decisions(session, items=[(ticket, make_decision(ticket))])
    stored = find_ticket(session, ref=ticket.key)
    decision = latest_decision(session, ticket_id=stored.id)
    assert decision is not None

    [action_id] = enqueue_actions(
        session, actions=[build_action(decision_id=decision.id)]
    )

    assert get_action(session, action_id=action_id).decision_id == decision.id


def test_enqueue_rejects_unknown_kind(session: Session) -> None:
    with pytest.raises(ValueError, match="kind 'email' for jira:HDFS-123 is invalid"):
        enqueue_actions(session, actions=[build_action(kind="email")])


def test_enqueue_rejects_empty_marker(session: Session) -> None:
    with pytest.raises(ValueError, match="empty marker"):
        enqueue_actions(session, actions=[build_action(marker="")])


def test_claim_marks_action_in_flight(session: Session) -> None:
    [action_id] = _enqueue(session)

    [claimed] = claim_due_actions(
        session, limit=5, now=NOW, worker="replica-a", lease_seconds=LEASE_SECONDS
    )

    assert claimed.id == action_id
    assert claimed.status == "in_flight"
    assert claimed.claimed_by == "replica-a"
    assert claimed.claim_expires_at == NOW + timedelta(seconds=LEASE_SECONDS)
    assert claimed.attempts == 1


def test_claim_leaves_future_actions(session: Session) -> None:
    _enqueue(session, at=NOW + timedelta(minutes=5))

    assert _claim(session) == []


def test_claim_takes_earliest_due_first(session: Session) -> None:
    late = enqueue_actions(
        session, actions=[build_action(marker="late")], now=NOW - timedelta(minutes=1)
    )
    early = enqueue_actions(
        session, actions=[build_action(marker="early")], now=NOW - timedelta(minutes=2)
    )

    assert _claim(session) == early + late


def test_claim_respects_limit(session: Session) -> None:
    ids = _enqueue(session, 5)

    assert _claim(session, limit=2) == ids[:2]


def test_live_claim_is_not_taken_again(session: Session) -> None:
    _enqueue(session)
    _claim(session)

    assert _claim(session, at=NOW + timedelta(seconds=LEASE_SECONDS - 1)) == []


def test_expired_claim_is_due_again(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)
    later = NOW + timedelta(seconds=LEASE_SECONDS)

    [again] = claim_due_actions(
        session, limit=5, now=later, worker="replica-b", lease_seconds=LEASE_SECONDS
    )

    assert again.id == action_id
    assert again.claimed_by == "replica-b"
    assert again.attempts == 2


def test_claim_filters_by_target(session: Session) -> None:
    jira_ids = enqueue_actions(session, actions=[build_action(marker="j")], now=NOW)
    enqueue_actions(
        session, actions=[build_action(marker="s", system="servicenow")], now=NOW
    )

    claimed = claim_due_actions(
        session,
        limit=5,
        now=NOW,
        worker="replica-a",
        lease_seconds=LEASE_SECONDS,
        targets=[("jira", "default"), ("salesforce", "default")],
    )

    assert [action.id for action in claimed] == jira_ids


def test_claim_with_no_targets_takes_nothing(session: Session) -> None:
    _enqueue(session)

    claimed = claim_due_actions(
        session,
        limit=5,
        now=NOW,
        worker="replica-a",
        lease_seconds=LEASE_SECONDS,
        targets=[],
    )

    assert claimed == []


def test_claim_rejects_zero_lease(session: Session) -> None:
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        claim_due_actions(
            session, limit=5, now=NOW, worker="replica-a", lease_seconds=0
        )


def test_done_action_keeps_result(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)
    finished = NOW + timedelta(seconds=2)

    mark_action_done(
        session, action_id=action_id, result={"marker_found": False}, now=finished
    )
    action = get_action(session, action_id=action_id)

    assert action.status == "done"
    assert action.result == {"marker_found": False}
    assert action.done_at == finished
    assert action.claim_expires_at is None
    assert _claim(session, at=NOW + timedelta(hours=1)) == []


def test_actions_done_together_keep_their_own_results(session: Session) -> None:
    first, second, untouched = _enqueue(session, 3)
    _claim(session)
    finished = NOW + timedelta(seconds=2)

    mark_actions_done(
        session,
        results=[(first, {"sys_id": "a"}), (second, {"sys_id": "b"})],
        now=finished,
    )

    assert get_action(session, action_id=first).result == {"sys_id": "a"}
    assert get_action(session, action_id=second).result == {"sys_id": "b"}
    assert get_action(session, action_id=second).status == "done"
    assert get_action(session, action_id=second).done_at == finished
    assert get_action(session, action_id=untouched).status == "in_flight"


def test_only_first_claim_is_first_attempt(session: Session) -> None:
    [action_id] = _enqueue(session)
    [first] = claim_due_actions(
        session, limit=1, now=NOW, worker="replica-a", lease_seconds=LEASE_SECONDS
    )
    # The claim expires unrecorded, as when a dispatcher is killed mid-delivery.
    [again] = claim_due_actions(
        session,
        limit=1,
        now=NOW + timedelta(seconds=LEASE_SECONDS + 1),
        worker="replica-b",
        lease_seconds=LEASE_SECONDS,
    )

    assert first.first_attempt is True
    assert again.id == action_id
    assert again.first_attempt is False


def test_retried_dead_action_is_not_a_first_attempt(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)
    park_action_dead(session, action_id=action_id, error="HTTP 400", now=NOW)
    retry_action(session, action_id=action_id, actor="cli:test", now=NOW)

    [claimed] = claim_due_actions(
        session, limit=1, now=NOW, worker="replica-a", lease_seconds=LEASE_SECONDS
    )

    assert claimed.attempts == 1
    assert claimed.first_attempt is False


def test_rescheduled_action_waits_until_due(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)
    retry_at = NOW + timedelta(seconds=8)

    reschedule_action(
        session, action_id=action_id, error="HTTP 503", next_attempt_at=retry_at
    )
    action = get_action(session, action_id=action_id)

    assert action.status == "pending"
    assert action.last_error == "HTTP 503"
    assert action.next_attempt_at == retry_at
    assert _claim(session, at=retry_at - timedelta(seconds=1)) == []
    assert _claim(session, at=retry_at) == [action_id]


def test_dead_action_is_not_claimed(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)

    park_action_dead(session, action_id=action_id, error="HTTP 404: no such record")
    action = get_action(session, action_id=action_id)

    assert action.status == "dead"
    assert action.last_error == "HTTP 404: no such record"
    assert _claim(session, at=NOW + timedelta(days=1)) == []


def test_reschedule_leaves_done_action_done(session: Session) -> None:
    [action_id] = _enqueue(session)
    _claim(session)
    mark_action_done(session, action_id=action_id, result={})

    reschedule_action(
        session, action_id=action_id, error="late failure", next_attempt_at=NOW
    )

    assert get_action(session, action_id=action_id).status == "done"


def test_unknown_action_raises_not_found(session: Session) -> None:
    with pytest.raises(ActionNotFoundError, match="Outbox action 404 not found"):
        mark_action_done(session, action_id=404, result={})


def test_reschedule_unknown_action_raises(session: Session) -> None:
    with pytest.raises(ActionNotFoundError):
        reschedule_action(session, action_id=404, error="x", next_attempt_at=NOW)


def test_list_actions_newest_first(session: Session) -> None:
    ids = _enqueue(session, 3)

    listed = [action.id for action in list_actions(session)]

    assert listed == list(reversed(ids))


def test_list_actions_filters_by_status(session: Session) -> None:
    first, second = _enqueue(session, 2)
    _claim(session, limit=1)
    park_action_dead(session, action_id=first, error="HTTP 400")

    dead = list_actions(session, status="dead")

    assert [action.id for action in dead] == [first]
    assert [action.id for action in list_actions(session, status="pending")] == [second]


def test_list_actions_rejects_unknown_status(session: Session) -> None:
    with pytest.raises(ValueError, match="'stuck' is invalid"):
        list_actions(session, status="stuck")


def test_count_actions_by_status(session: Session) -> None:
    _enqueue(session, 3)
    _claim(session, limit=1)

    assert count_actions(session, status="pending") == 2
    assert count_actions(session, status="in_flight") == 1
    assert count_actions(session, status="dead") == 0


def _dead_action(session: Session) -> int:
    [action_id] = _enqueue(session)
    for attempt in range(3):
        _claim(session, at=NOW + timedelta(hours=attempt))
    park_action_dead(session, action_id=action_id, error="HTTP 401: bad credentials")
    return action_id


def test_retry_requeues_dead_action(session: Session) -> None:
    action_id = _dead_action(session)
    retried_at = NOW + timedelta(days=1)

    action = retry_action(
        session, action_id=action_id, actor="cli:alice", now=retried_at
    )

    assert action.status == "pending"
    assert action.attempts == 0
    assert action.next_attempt_at == retried_at
    assert action.claimed_by is None
    assert action.last_error == "HTTP 401: bad credentials"
    assert _claim(session, at=retried_at) == [action_id]


def test_retry_appends_audit_row(session: Session) -> None:
    action_id = _dead_action(session)

    retry_action(session, action_id=action_id, actor="cli:alice")
    [entry] = ticket_trail(session, ticket_key="jira:HDFS-123")

    assert entry.event == "outbox_retried"
    assert entry.actor == "cli:alice"
    assert entry.inputs == {"attempts": 3, "last_error": "HTTP 401: bad credentials"}
    assert entry.details["action_id"] == action_id
    assert entry.details["marker"] == "opsroute-action-0"


def test_retry_unknown_action_raises_lookup_error(session: Session) -> None:
    with pytest.raises(LookupError, match="Outbox action 404 not found"):
        retry_action(session, action_id=404, actor="cli:alice")


def test_retry_pending_action_raises_value_error(session: Session) -> None:
    [action_id] = _enqueue(session)

    with pytest.raises(ActionNotDeadError, match="is pending, not dead") as caught:
        retry_action(session, action_id=action_id, actor="cli:alice")

    assert isinstance(caught.value, ValueError)


@postgres_only
def test_concurrent_dispatchers_claim_disjoint_actions(
    migrated_engine: Engine,
) -> None:
    factory = session_factory(migrated_engine)
    with factory.begin() as setup:
        _enqueue(setup, 10)

    with factory() as first, factory() as second:
        ids_first = set(_claim(first, limit=6))
        ids_second = set(_claim(second, limit=6))
        first.rollback()
        second.rollback()

    assert len(ids_first) == 6
    assert len(ids_second) == 4
    assert ids_first & ids_second == set()


@postgres_only
def test_rolled_back_claim_releases_actions(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    with factory.begin() as setup:
        all_ids = set(_enqueue(setup, 6))

    with factory() as crashed, factory() as survivor:
        lost = set(_claim(crashed, limit=3))
        survivor_ids = set(_claim(survivor, limit=3))
        survivor.commit()
        crashed.rollback()

        rest = set(_claim(survivor))
        survivor.commit()

    assert survivor_ids == all_ids - lost
    assert rest == lost
