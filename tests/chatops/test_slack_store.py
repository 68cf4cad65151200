"""Request keys that make repeats act once, and the stored messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from chatops.store import (
    claim_request,
    find_message,
    save_message,
    update_message_state,
)

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def test_first_claim_is_new(session: Session) -> None:
    assert claim_request(session, key="k", now=NOW, window_seconds=10) is True


def test_claim_within_window_is_repeat(session: Session) -> None:
    claim_request(session, key="k", now=NOW, window_seconds=10)
    later = NOW + timedelta(seconds=9)

    assert claim_request(session, key="k", now=later, window_seconds=10) is False


def test_claim_after_window_is_new(session: Session) -> None:
    claim_request(session, key="k", now=NOW, window_seconds=10)
    later = NOW + timedelta(seconds=11)

    assert claim_request(session, key="k", now=later, window_seconds=10) is True
    assert claim_request(session, key="k", now=later, window_seconds=10) is False


def test_event_key_never_reclaimed(session: Session) -> None:
    claim_request(session, key="event:Ev1", now=NOW, window_seconds=None)
    later = NOW + timedelta(hours=20)

    assert (
        claim_request(session, key="event:Ev1", now=later, window_seconds=None) is False
    )


def test_old_keys_are_deleted(session: Session) -> None:
    claim_request(session, key="event:Ev1", now=NOW, window_seconds=None)
    two_days_later = NOW + timedelta(days=2)
    claim_request(session, key="other", now=two_days_later, window_seconds=None)

    assert (
        claim_request(session, key="event:Ev1", now=two_days_later, window_seconds=None)
        is True
    )


def test_saved_message_is_replaced(session: Session) -> None:
    for ts in ("1.1", "1.2"):
        save_message(
            session,
            ticket_key="jira:HDFS-1",
            kind="escalation",
            channel="C1",
            ts=ts,
            payload={"title": ts},
            state={},
            now=NOW,
        )

    message = find_message(session, ticket_key="jira:HDFS-1", kind="escalation")
    assert message is not None
    assert message.ts == "1.2"
    assert message.payload == {"title": "1.2"}


def test_state_changes_merge(session: Session) -> None:
    save_message(
        session,
        ticket_key="jira:HDFS-1",
        kind="escalation",
        channel="C1",
        ts="1.1",
        payload={},
        state={"marker": "m"},
        now=NOW,
    )

    (updated,) = update_message_state(
        session, ticket_key="jira:HDFS-1", changes={"group": "HIVE"}, now=NOW
    )

    assert updated.state == {"marker": "m", "group": "HIVE"}
    stored = find_message(session, ticket_key="jira:HDFS-1", kind="escalation")
    assert stored is not None
    assert stored.state == {"marker": "m", "group": "HIVE"}
